/*
 * kube_pod.h - the objects the kubernetes executor creates for a run: the
 * runner Pod and the Secret that carries its identity. Pure JSON building
 * (no network), so the exact shape is testable and documented in one
 * place (docs/kubernetes.md).
 */
#ifndef CEP_KUBE_POD_H
#define CEP_KUBE_POD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "caps.h"
#include "connector.h"
#include "err.h"
#include "executor.h"
#include "exp.h"

#define CEP_KPOD_MANAGED_BY "app.kubernetes.io/managed-by"
#define CEP_KPOD_RUN_ID "cep.io/run-id"
#define CEP_KPOD_APPLIANCE "cep.io/appliance"
#define CEP_KPOD_IDENTITY_DIR "/var/run/cep/identity"
#define CEP_KPOD_NODEFS "/var/run/cep/nodefs" /* runner/fault_io_stress.c */
#define CEP_KPOD_UID 65532 /* the distroless "nonroot" user */

/* Linux capabilities a runner on a pod target's node may get: the bits
 * of the one capability table (lib/proc/caps.h), under their old names. */
enum {
	CEP_KCAP_NET_ADMIN = CEP_CAP_NET_ADMIN,
	CEP_KCAP_NET_RAW = CEP_CAP_NET_RAW,
	CEP_KCAP_SYS_ADMIN = CEP_CAP_SYS_ADMIN,
	CEP_KCAP_SYS_PTRACE = CEP_CAP_SYS_PTRACE,
	CEP_KCAP_DAC_OVERRIDE = CEP_CAP_DAC_OVERRIDE,
};
/* "NET_ADMIN", ... for bit (cep_caps_name); NULL otherwise. */
const char *delegate_kpod_cap_name(unsigned bit);
/* What a node-level fault type on a pod target needs (lib/proc/caps.h,
 * CEP_CAPS_POD; docs/faults.md, "Pod targets"); 0 for every other type.
 * *cgroupfs: the type moves workers into the target's cgroup (the node's
 * cgroupfs is mounted). */
unsigned delegate_kpod_caps_for(const char *type, bool *cgroupfs);

/* The pod targets of e's node-level faults (pod, container), their
 * capabilities merged; INVALID_ARGUMENT beyond CEP_EXEC_MAX_PODS. */
int delegate_kpod_targets(const cep_exp *e, cep_exec_pods *out, cep_err *err);

typedef struct cep_kpod {
	const char *run_id;
	const char *name; /* pod and secret: cep-runner-<run-id> */
	const char *ns;
	const char *appliance;
	const char *relay;       /* what the runner dials */
	const char *server_name; /* "" or NULL: none */
	int64_t deadline_s;      /* activeDeadlineSeconds, >= 1 */
	/* Pod targets (node-level faults): the target's node, or NULL/""
	 * for a runner that acts through the API only. With a node the
	 * pod gets nodeName, hostPID, uid 0 with exactly caps (CEP_KCAP_*,
	 * every other capability dropped), CEP_NODE_NAME, and with cgroupfs
	 * the node's /sys/fs/cgroup. */
	const char *node;
	/* instead of node: the hog's nodeSelector ("k=v,..."), set as the
	 * pod's spec.nodeSelector: the scheduler chooses the node */
	const char *node_selector;
	unsigned caps;
	bool cgroupfs;
	/* node io-stress: the node's directory mounted (hostPath) at
	 * CEP_KPOD_NODEFS for the writers; NULL or "" = none */
	const char *nodefs;
	/* A cleanup runner (`cep-runner --cleanup`): its Secret holds only
	 * cleanup.json (the fault records to undo), no identity and no
	 * relay; it reports in its termination message. */
	bool cleanup;
	/* The control-plane fallback (docs/runner.md): cp_url NULL or ""
	 * for none. The URL and the plane's CA (PEM, may be NULL: the
	 * image's CAs) go into the Secret; cp_proxy (else the connector's
	 * httpsProxy) into the environment. */
	const char *cp_url, *cp_ca_pem, *cp_proxy;
} cep_kpod;

/* The pod name for a run ("cep-runner-r-0123456789abcdef"). */
int delegate_kpod_name(const char *run_id, char *buf, size_t len);
/* Its cleanup runner's ("cep-cleanup-r-0123456789abcdef"). */
int delegate_kpod_cleanup_name(const char *run_id, char *buf, size_t len);
#define CEP_KPOD_CLEANUP_FILE CEP_KPOD_IDENTITY_DIR "/cleanup.json"
#define CEP_KPOD_TERMINATION_LOG "/dev/termination-log"
/* "app.kubernetes.io/managed-by=cep,cep.io/appliance=<appliance>" */
int delegate_kpod_selector(const char *appliance, char *buf, size_t len);

/* New references, NULL when out of memory. */
json_t *delegate_kpod_pod(const cep_connector *c, const cep_kpod *p);
/* The Secret: ca.crt, runner.crt, runner.key (the files the runner's
 * identity dir holds), relay and server-name; owned by the pod uid. */
json_t *delegate_kpod_secret(const cep_connector *c, const cep_kpod *p,
    const char *pod_uid, const char *ca, const char *cert, const char *key);

/* The placement a runner Pod object carries (what delegate_kpod_pod made of
 * node, caps and cgroupfs), for a run adopted after a restart. false
 * (and nothing set) for an API-only runner or a malformed object. */
bool delegate_kpod_placement(const json_t *pod, char *node, size_t len,
    unsigned *caps, bool *cgroupfs);

/* The cleanup runner's Secret: cleanup.json = recs_json, owned by the
 * pod uid. */
json_t *delegate_kpod_cleanup_secret(const cep_connector *c, const cep_kpod *p,
    const char *pod_uid, const char *recs_json);

#endif
