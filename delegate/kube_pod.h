/*
 * kube_pod.h - the objects the kubernetes executor creates for a run: the
 * runner Pod and the Secret that carries its identity. Pure JSON building
 * (no network), so the exact shape is testable and documented in one
 * place (docs/kubernetes.md).
 */
#ifndef CEP_KUBE_POD_H
#define CEP_KUBE_POD_H

#include <jansson.h>
#include <stdint.h>

#include "connector.h"

#define CEP_KPOD_MANAGED_BY "app.kubernetes.io/managed-by"
#define CEP_KPOD_RUN_ID "cep.io/run-id"
#define CEP_KPOD_APPLIANCE "cep.io/appliance"
#define CEP_KPOD_IDENTITY_DIR "/var/run/cep/identity"
#define CEP_KPOD_UID 65532   /* the distroless "nonroot" user */

typedef struct cep_kpod {
	const char *run_id;
	const char *name;        /* pod and secret: cep-runner-<run-id> */
	const char *ns;
	const char *appliance;
	const char *relay;       /* what the runner dials */
	const char *server_name; /* "" or NULL: none */
	int64_t deadline_s;      /* activeDeadlineSeconds, >= 1 */
} cep_kpod;

/* The pod name for a run ("cep-runner-r-0123456789abcdef"). */
int cep_kpod_name(const char *run_id, char *buf, size_t len);
/* "app.kubernetes.io/managed-by=cep,cep.io/appliance=<appliance>" */
int cep_kpod_selector(const char *appliance, char *buf, size_t len);

/* New references, NULL when out of memory. */
json_t *cep_kpod_pod(const cep_connector *c, const cep_kpod *p);
/* The Secret: ca.crt, runner.crt, runner.key (the files the runner's
 * identity dir holds), relay and server-name; owned by the pod uid. */
json_t *cep_kpod_secret(const cep_connector *c, const cep_kpod *p,
    const char *pod_uid, const char *ca, const char *cert, const char *key);

#endif
