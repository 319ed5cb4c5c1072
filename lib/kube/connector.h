/*
 * connector.h - the target clusters an appliance may reach: one YAML file
 * per cluster in the home's connectors.d/ (DIR/config/connectors.d or
 * /etc/cep/connectors.d), named after the file (shop-prod.yaml ->
 * "shop-prod"). docs/connectors.md is the reference. Example:
 *
 *   kubeconfig: /etc/cep/kube/shop-prod.yaml  # relative: to connectors.d
 *   context: shop-prod-admin                  # default: current-context
 *   insecureSkipTLSVerify: false              # must be true to accept a
 *                                             # kubeconfig that skips TLS
 *   namespaces: [shop, payments]              # allowed (exact or glob)
 *   applianceNamespace: cep-system            # denied unless listed
 *   runner:
 *     serviceAccount: cep-runner
 *     image: registry.example.com/cep/runner:1.0
 *     imagePullPolicy: IfNotPresent
 *     imagePullSecrets: [regcred]
 *     relay: tls+tcp://10.0.0.5:7443          # as the cluster reaches it;
 *                                             # default: relay.advertise
 *     serverName: relay.cep                   # name in the relay cert
 *     resources: {cpuRequest: 50m, cpuLimit: 500m,
 *                 memoryRequest: 32Mi, memoryLimit: 128Mi}
 *     nodeSelector: {kubernetes.io/os: linux}
 *     tolerations: [{key: dedicated, operator: Equal, value: chaos,
 *                    effect: NoSchedule}]
 *     labels: {team: sre}
 *     annotations: {sidecar.istio.io/inject: "false"}
 *     proxy: {httpProxy: ..., httpsProxy: ..., noProxy: ...}
 *   timeouts: {request: 10s, launch: 2m}
 *
 * kube-system and applianceNamespace are refused even when a glob would
 * allow them, unless listed by exact name.
 */
#ifndef CEP_CONNECTOR_H
#define CEP_CONNECTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paths.h"
#include "err.h"
#include "kube.h"

#define CEP_CONN_MAX_NS 64

/* Read-only after load. The json_t members are objects/arrays ready to be
 * put in a pod spec (never NULL: empty when not configured). */
typedef struct cep_connector {
	char name[64];
	char file[CEP_PATH_MAX];
	char kubeconfig[CEP_PATH_MAX]; /* absolute */
	char context[128];
	bool allow_insecure;
	size_t n_ns;
	char namespaces[CEP_CONN_MAX_NS][64];
	char appliance_ns[64];
	char service_account[64];
	char image[256];
	char pull_policy[16];
	char relay[256]; /* "" = relay.advertise */
	char server_name[256];
	char cpu_request[16], cpu_limit[16], mem_request[16], mem_limit[16];
	json_t *node_selector, *tolerations, *pull_secrets;
	json_t *labels, *annotations;
	char http_proxy[256], https_proxy[256], no_proxy[512];
	int64_t request_timeout_ms; /* default 10s */
	int64_t launch_timeout_ms;  /* pod to Running: default 2m */
} cep_connector;

typedef struct cep_connectors cep_connectors;

/* Loads every *.yaml in connectors.d beside p->config. A missing folder is
 * an empty set. Each bad file is an error with file:line:col; the first
 * one fails the load (an appliance must not run on half its config). */
int cep_connector_list_load(const cep_paths *p, cep_connectors **out,
    cep_err *err);
/* One file (tests, `cepctl connectors --file`). */
int cep_connector_load_file(const char *path, cep_connector **out,
    cep_err *err);
void cep_connector_free(cep_connector *c);
void cep_connector_list_free(cep_connectors *cs);

size_t cep_connector_list_count(const cep_connectors *cs);
const cep_connector *cep_connector_list_at(const cep_connectors *cs, size_t i);
const cep_connector *cep_connector_list_find(const cep_connectors *cs,
    const char *name);

/* Is ns allowed? false with a reason naming the rule ("kube-system is
 * denied unless connectors.d/x.yaml lists it in namespaces"). */
bool cep_connector_ns_allowed(const cep_connector *c, const char *ns, char *why,
    size_t len);

/* A client for the connector's cluster (kubeconfig + context, timeouts). */
int cep_connector_client(const cep_connector *c, cep_kube **out, cep_err *err);

/* The commented example `cepctl init` writes as connectors.d/
 * example.yaml.sample (every key, all commented out). */
const char *cep_connector_example_yaml(void);

#endif
