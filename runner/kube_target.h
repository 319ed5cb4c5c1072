/*
 * kube_target.h - the runner's Kubernetes context: the API client its
 * faults and k8s probes use, the one namespace they may act in, and the
 * most objects one fault may touch (policy.kubernetes.maxTargets).
 *
 * In a pod the client is the in-cluster one (service-account token),
 * made on first use; the scope comes from the assignment (its namespace
 * and max_targets), never from a fault's parameters. Tests hand in a
 * client of their own with runner_kube_target_set.
 *
 * Safe from several threads (faults on the engine thread, probes on the
 * scheduler's).
 */
#ifndef CEP_RUNNER_KUBE_TARGET_H
#define CEP_RUNNER_KUBE_TARGET_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"
#include "exp.h"
#include "kube.h"

#define CEP_KUBE_TARGET_DEFAULT_MAX 10

/* From the assignment: ns ("" = the service account's namespace) and
 * max_targets (0 = CEP_KUBE_TARGET_DEFAULT_MAX). */
void runner_kube_target_configure(const char *ns, uint32_t max_targets);

/* Tests: use k (borrowed: the caller frees it after
 * runner_kube_target_reset) instead of the in-cluster client. */
void runner_kube_target_set(cep_kube *k, const char *ns, uint32_t max_targets);

/* Forgets the client (frees it if it was made here) and the scope. */
void runner_kube_target_reset(void);

/* The client (borrowed, valid until reset) and the run's namespace
 * (copied into ns). FAILED_PRECONDITION when no namespace is known. */
int runner_kube_target_get(cep_kube **k, char *ns, size_t nslen, cep_err *err);

uint32_t runner_kube_target_max(void);

/* Before a fault acts: may the runner's account do everything the type
 * needs (lib/kube/kube_rbac.h) in ns? PERMISSION_DENIED naming each missing
 * verb ("pod-delete: the runner may not delete pods in shop"). */
int runner_kube_target_check_perms(cep_kube *k, const char *type,
    const char *ns, cep_err *err);

/* describe -> inject hand-over: what describe read (the objects a fault
 * records in its undo before acting), kept for inject so that it acts on
 * exactly what was recorded. key is the experiment item. stash steals v;
 * take returns a new reference or NULL. */
void runner_kube_target_stash(const void *key, json_t *v);
json_t *runner_kube_target_take(const void *key);

/* The nodes a node fault acts on (kube_target_nodes.c): the item's `node`
 * (by name) or those matching its `nodeSelector`, sorted by name, at most
 * its `count` and runner_kube_target_max(). fn makes each node's entry of *out (a new
 * array) from the node object, NULL to skip it; what gets "node X" or
 * "2 of 3 nodes matching ...". NOT_FOUND when no node is left; errors
 * start with type. */
typedef json_t *(
    *runner_kube_node_fn)(json_t *node, const char *name, const void *arg);
int runner_kube_target_nodes(const cep_exp_item *it, cep_kube *k,
    const char *type, runner_kube_node_fn fn, const void *arg, json_t **out,
    char *what, size_t wlen, cep_err *err);

/* Cordoning as node-cordon does (fault_kube_cordon.c), for node-drain:
 * the record {"nodes": [{"name", "unschedulable"}]} (the k8s-cordon undo)
 * and the cordon of each node it names. */
struct cep_fault_ctx;
int runner_kube_cordon_read(const cep_exp_item *it, cep_kube *k,
    const char *type, const char *ns, json_t **undo, char *what, size_t wlen,
    cep_err *err);
int runner_kube_cordon_act(const cep_exp_item *it, cep_kube *k, json_t *undo,
    const struct cep_fault_ctx *ctx, cep_err *err);

/* A fault whose whole state is its undo record (kube_record.c). read
 * makes the record (new reference) before anything changes, what gets
 * the target text; act does the fault on it; undo puts back what the
 * record says (the delegate's function too). */
typedef int (*runner_kube_read_fn)(const cep_exp_item *it, cep_kube *k,
    const char *type, const char *ns, json_t **undo, char *what, size_t wlen,
    cep_err *err);
typedef int (*runner_kube_act_fn)(const cep_exp_item *it, cep_kube *k,
    json_t *undo, const struct cep_fault_ctx *ctx, cep_err *err);
typedef int (
    *runner_kube_undo_fn)(cep_kube *k, const char *undo_json, cep_err *err);
typedef struct runner_kube_record {
	const char *type; /* its permissions, and messages */
	runner_kube_read_fn read;
	runner_kube_act_fn act;
	runner_kube_undo_fn undo;
} runner_kube_record;
/* describe: the permissions of type checked, the record read and kept
 * for inject (stash). */
int runner_kube_record_describe(const cep_exp_item *it,
    const runner_kube_record *r, char *target, size_t tlen, json_t **undo,
    cep_err *err);
/* The record describe kept, or read again; and the client. */
int runner_kube_record_take(const cep_exp_item *it, const runner_kube_record *r,
    cep_kube **k, json_t **undo, cep_err *err);
/* inject: act on the record; if act fails, undo before returning. */
int runner_kube_record_inject(const cep_exp_item *it,
    const runner_kube_record *r, const struct cep_fault_ctx *ctx, void **state,
    cep_err *err);
int runner_kube_record_revert(void *state, cep_err *err);

/* A DNS-subdomain object name ([a-z0-9.-], 1..253). */
bool runner_kube_target_name_ok(const char *s);

#endif
