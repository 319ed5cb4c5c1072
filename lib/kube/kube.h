/*
 * kube.h - a Kubernetes API client: kubeconfig or in-cluster credentials,
 * JSON requests over libcurl (jansson for the bodies), errors as the API
 * server's Status explains them, retries for 429/5xx, watches that survive
 * an expired resourceVersion.
 *
 * One cep_kube is one API server with one identity. It is safe to use from
 * several threads at once (each call takes its own curl easy handle), so a
 * connector's launches and watches share it. Every call has a timeout
 * (default 10 s, watches excepted: they run until their own deadline).
 *
 * Errors: an API Status maps to a cep code - 400/422 INVALID_ARGUMENT,
 * 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND,
 * 409 ALREADY_EXISTS (reason AlreadyExists) or ABORTED (Conflict),
 * 410 OUT_OF_RANGE (Expired/Gone), 429 RESOURCE_EXHAUSTED, 5xx and
 * transport failures UNAVAILABLE, timeouts DEADLINE_EXCEEDED - and the
 * message names the verb, the object and the server's reason:
 *     "create pods shop/cep-runner-r-0a1b: 403 Forbidden: pods is
 *      forbidden: User \"delegate\" cannot create ..."
 * Tokens, keys and Authorization headers never appear in messages or logs.
 */
#ifndef CEP_KUBE_H
#define CEP_KUBE_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct cep_kube cep_kube;

/* Where the in-cluster credentials live, as every pod sees them. */
#define CEP_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/*
 * Loads a kubeconfig (clusters, users, contexts; token or tokenFile;
 * client-certificate(-data) and client-key(-data); certificate-authority
 * (-data); tls-server-name; proxy-url). context NULL or "" = the file's
 * current-context. insecure-skip-tls-verify is refused unless
 * allow_insecure (a connector must say so explicitly). Relative file paths
 * are relative to the kubeconfig's folder, as kubectl does. Errors name the
 * file and the key (yamldoc positions).
 */
int cep_kube_from_kubeconfig(const char *path, const char *context,
    bool allow_insecure, cep_kube **out, cep_err *err);

/* In-cluster: KUBERNETES_SERVICE_HOST/PORT, token, ca.crt and namespace
 * from CEP_KUBE_SA_DIR. The token file is re-read when it changes
 * (projected tokens rotate). */
int cep_kube_in_cluster(cep_kube **out, cep_err *err);

void cep_kube_free(cep_kube *k);

/* Per-call timeout (ms), default 10000; and the retry budget for 429/5xx
 * and transport errors (attempts, default 5; backoff 200 ms doubling to
 * 5 s with jitter, or the server's Retry-After when it sends one). */
void cep_kube_set_timeout(cep_kube *k, int64_t ms);
void cep_kube_set_retries(cep_kube *k, int attempts);
/* Requests made through k and new connections they opened (each a TLS
 * handshake): connections are kept and reused across calls. */
void cep_kube_http_stats(cep_kube *k, uint64_t *calls, uint64_t *connects);

const char *cep_kube_server(const cep_kube *k); /* https://host:port */
/* The context's namespace, or the service account's; "" if none. */
const char *cep_kube_namespace(const cep_kube *k);

/* A resource type: group/version ("v1", "apps/v1") and plural name. */
typedef struct cep_kube_res {
	const char *gv;
	const char *plural;
	const char *kind;
	bool namespaced;
} cep_kube_res;

extern const cep_kube_res cep_kube_pods;
extern const cep_kube_res cep_kube_secrets;
extern const cep_kube_res cep_kube_nodes;
extern const cep_kube_res cep_kube_namespaces;
extern const cep_kube_res cep_kube_deployments;
extern const cep_kube_res cep_kube_ssar; /* selfsubjectaccessreviews */
/* By plural or kind ("pods", "Pod", "deployments"...); NULL if unknown. */
const cep_kube_res *cep_kube_res_find(const char *name);

/* The request path: /api/v1/namespaces/NS/pods/NAME/SUB. ns NULL for
 * cluster-scoped (or all namespaces), name/sub NULL when absent. */
int cep_kube_path(const cep_kube_res *r, const char *ns, const char *name,
    const char *sub, char *buf, size_t len, cep_err *err);

/* A raw request: what is sent, and the words its errors start with. */
typedef struct cep_kube_req {
	const char *method;       /* "GET", "POST", ... */
	const char *path;         /* from cep_kube_path, or "/version" */
	const char *query;        /* without '?', or NULL */
	json_t *body;             /* NULL or JSON (not taken) */
	const char *content_type; /* NULL: application/json */
	const char *what;         /* e.g. "create pods shop/x" */
} cep_kube_req;

/*
 * Sends req. *out (may be NULL) gets the decoded JSON body of a 2xx
 * response; *http (may be NULL) the final status. Non-2xx becomes an error
 * as described above, prefixed by req->what.
 */
int cep_kube_request(cep_kube *k, const cep_kube_req *req, long *http,
    json_t **out, cep_err *err);

int cep_kube_get(cep_kube *k, const cep_kube_res *r, const char *ns,
    const char *name, json_t **obj, cep_err *err);

typedef struct cep_kube_list_opts {
	const char *label_selector; /* NULL = none */
	const char *field_selector;
	int64_t limit; /* page size, 0 = server default */
} cep_kube_list_opts;

/* All pages (limit/continue) merged: *items is a JSON array (new ref);
 * rv (may be NULL) gets the list's resourceVersion. A continue token that
 * expires mid-way (410) restarts the listing once. */
int cep_kube_list(cep_kube *k, const cep_kube_res *r, const char *ns,
    const cep_kube_list_opts *o, json_t **items, char *rv, size_t rvlen,
    cep_err *err);

/* *created (may be NULL) gets the object as stored. obj is not stolen. */
int cep_kube_create(cep_kube *k, const cep_kube_res *r, const char *ns,
    json_t *obj, json_t **created, cep_err *err);

typedef struct cep_kube_delete_opts {
	int64_t grace_seconds;   /* < 0 = the object's default */
	const char *propagation; /* NULL, Background, Foreground, Orphan */
	const char *uid;         /* precondition, NULL = none */
} cep_kube_delete_opts;

/* NOT_FOUND when already gone (callers that only want it gone treat that
 * as success). o NULL = defaults. */
int cep_kube_delete(cep_kube *k, const cep_kube_res *r, const char *ns,
    const char *name, const cep_kube_delete_opts *o, cep_err *err);

enum cep_kube_patch {
	CEP_KUBE_MERGE_PATCH,     /* application/merge-patch+json */
	CEP_KUBE_STRATEGIC_PATCH, /* application/strategic-merge-patch+json */
};

/* What to patch and how. */
typedef struct cep_kube_patch_req {
	const cep_kube_res *res;
	const char *ns; /* NULL for cluster-scoped resources */
	const char *name;
	const char *sub; /* NULL or a subresource ("scale", "status") */
	enum cep_kube_patch type;
	json_t *patch; /* not taken */
} cep_kube_patch_req;

/* *out (may be NULL) gets the patched object. */
int cep_kube_patch(cep_kube *k, const cep_kube_patch_req *p, json_t **out,
    cep_err *err);

/* Deployment ns/name's spec.replicas through its scale subresource (what
 * a fault and its undo both write). */
int cep_kube_scale_set(cep_kube *k, const char *ns, const char *name,
    json_int_t replicas, cep_err *err);
/* Node name's spec.unschedulable: true cordons; false removes the field
 * (null), as `kubectl uncordon` leaves a node. */
int cep_kube_node_unschedulable(cep_kube *k, const char *name, bool on,
    cep_err *err);
/* Node name's spec.taints edited by fn (a copy of the list, [] when
 * none; fn sets *changed when it changed it), written back with a merge
 * patch pinned to the resourceVersion read, tried again on a conflict
 * (at most 5 times). An emptied list removes the field. */
typedef int (*cep_kube_taints_fn)(json_t *taints, void *arg, bool *changed,
    cep_err *err);
int cep_kube_node_taints(cep_kube *k, const char *name, cep_kube_taints_fn fn,
    void *arg, cep_err *err);

/* Evicts pod ns/name through its eviction subresource (a policy/v1
 * Eviction): the API server refuses with 429 (RESOURCE_EXHAUSTED, once
 * the client's retries are spent) while the pod's PodDisruptionBudget
 * allows no disruption. */
int cep_kube_evict(cep_kube *k, const char *ns, const char *name, cep_err *err);

/*
 * List-then-watch. fn is called with "ADDED" for each object of the
 * initial list, then with each ADDED/MODIFIED/DELETED event (bookmarks are
 * requested and consumed: they only advance the resourceVersion). When the
 * server ends the stream the watch resumes from the last resourceVersion;
 * when it answers 410 (an ERROR event carrying an Expired Status, or a 410
 * response) it lists again and re-delivers the current objects as
 * "ADDED" - so fn must be idempotent per object. fn returns 0 to go on,
 * non-zero to stop (cep_kube_watch then returns CEP_OK). Returns
 * DEADLINE_EXCEEDED after timeout_ms, CANCELLED when *stop becomes true
 * (checked at least every 500 ms; stop may be NULL), or the error that
 * made watching impossible (403, 401, retries exhausted).
 */
typedef int (*cep_kube_watch_fn)(void *arg, const char *type, json_t *obj);
typedef struct cep_kube_watch_spec {
	const cep_kube_res *res;
	const char *ns;                 /* NULL: cluster-scoped or all */
	const cep_kube_list_opts *list; /* selectors; NULL: none */
	int64_t timeout_ms;
	const atomic_bool *stop; /* may be NULL */
	cep_kube_watch_fn fn;
	void *arg; /* fn's */
} cep_kube_watch_spec;
int cep_kube_watch(cep_kube *k, const cep_kube_watch_spec *w, cep_err *err);

/*
 * SelfSubjectAccessReview: may the caller do verb on resource (group ""
 * for core; sub NULL or e.g. "scale") in ns? *allowed gets the answer,
 * reason (may be NULL) the server's reason. Errors only when the review
 * itself could not be made.
 */
typedef struct cep_kube_access {
	const char *verb;     /* "create", "patch", ... */
	const char *group;    /* "" or NULL: core */
	const char *resource; /* "pods", "deployments" */
	const char *sub;      /* NULL or "scale", "eviction" */
	const char *ns;       /* NULL: cluster-wide */
} cep_kube_access;
int cep_kube_can_i(cep_kube *k, const cep_kube_access *a, bool *allowed,
    char *reason, size_t rlen, cep_err *err);

/* GET /version: gitVersion ("v1.32.4"). */
int cep_kube_version(cep_kube *k, char *buf, size_t len, cep_err *err);

/* A Status object (or any error body) to "409 Conflict: <message>"; used
 * by the client and by tests. http is the response code. */
void cep_kube_status_text(long http, json_t *body, char *buf, size_t len);
int cep_kube_status_code(long http, const char *reason); /* -> cep code */

#endif
