/*
 * undo.h - undoing a recorded fault without the runner that injected it.
 *
 * A runner records every fault before injecting it (FaultRecord: type,
 * target, mechanism, undo JSON). Reverting it is the runner's job; when the
 * runner is gone (kill -9, lost node), the delegate calls cep_undo_apply on
 * each fault recorded but not reverted. One table maps a mechanism to its
 * undo function, so the runner's own revert and the delegate's cleanup use
 * the same code (lib/), and adding a mechanism is one line here.
 *
 * An undo function is idempotent and returns CEP_OK only when the resource
 * that held the fault is clean or truly gone (a network namespace that no
 * longer exists holds no rule); anything else is an error naming what is
 * left.
 */
#ifndef CEP_UNDO_H
#define CEP_UNDO_H

#include <stdbool.h>
#include <stdint.h>

#include "cep.pb-c.h"
#include "err.h"
#include "kube.h"

typedef int (
    *cep_undo_fn)(const char *run_id, const char *undo_json, cep_err *err);

/* The undo JSON came from a runner, the least trusted party: a resolver
 * returns the run's cluster client (borrowed, thread-safe) or NULL, and
 * names the run's namespace (ns, "" if unknown); a k8s-scale record for
 * another namespace is refused. */
typedef cep_kube *(
    *cep_undo_kube_fn)(const char *run_id, char *ns, size_t nslen, void *arg);

/* What an undo may use beyond the record: for the Kubernetes mechanisms,
 * the resolver of the run's client (the delegate's, for runs whose runner
 * died). A NULL context, or a NULL resolver: no cluster client, and those
 * mechanisms fail with FAILED_PRECONDITION. */
typedef struct cep_undo_ctx {
	cep_undo_kube_fn kube;
	void *kube_arg;
} cep_undo_ctx;

/* Dispatches on rec->mechanism. Unknown mechanisms are an error (a fault
 * nobody knows how to undo must not be reported as undone), and so is a
 * node mechanism whose function this process has not registered
 * (UNIMPLEMENTED: the delegate undoes those through a cleanup runner). */
int cep_undo_apply(const cep_undo_ctx *ctx, const Cep__V1__FaultRecord *rec,
    cep_err *err);

/* Does the mechanism leave state on the runner's node (nftables tables,
 * qdiscs, fill files), which only something running on that node can
 * undo? False for the kubernetes mechanisms (undone through the API from
 * anywhere) and for those that end with the runner's processes. For a
 * kubernetes run the delegate undoes these with a cleanup runner Pod on
 * the node (docs/kubernetes.md), never on the appliance. */
bool cep_undo_on_node(const char *mechanism);

/* Installs the undo function of a node mechanism (nftables, tc-qdisc,
 * disk-fill): they live in the cep_node library (netfilter libraries),
 * which only runners link; cep_undo_node_register (undo_node.h) does it
 * for all of them. Call at start, before any undo. NOT_FOUND for a
 * mechanism that is not a node one. */
int cep_undo_register(const char *mechanism, cep_undo_fn fn);

/* Mechanisms whose effect ends with the runner's processes (signals to a
 * target, worker processes with PDEATHSIG): the executor's process cleanup
 * is their undo. */
int cep_undo_none(const char *run_id, const char *undo_json, cep_err *err);

/*
 * "node-cgroup" (undo_cgroup.c): the cgroup a hog on a kubernetes node
 * made for its workers, /sys/fs/cgroup[/unified]/cep-node-RUN-FAULT,
 * undo JSON {"cgroup", "cgroup_ino", ...}. Its processes are killed and
 * the directory removed; a directory gone (or another inode by that name)
 * holds no fault. A record naming any other directory, or another run's,
 * is refused (PERMISSION_DENIED).
 */
int cep_undo_node_cgroup(const char *run_id, const char *undo_json,
    cep_err *err);
/* The same on a directory the caller made: SIGKILL its processes until
 * rmdir succeeds (5 s at most). ino 0: not checked. */
int cep_undo_cgroup_remove(const char *dir, uint64_t ino, cep_err *err);
/* dir is a node-cgroup of run_id (the rule above). */
bool cep_undo_cgroup_name_ok(const char *dir, const char *run_id);

/*
 * Kubernetes mechanisms. "k8s-pod-delete" has no undo (a deleted pod is
 * replaced by its controller, nothing of the fault remains: cep_undo_none).
 * "k8s-scale" undo JSON {"namespace", "name", "replicas"}, or
 * {"namespace", "objects": [{"name", "replicas"}...]} (Deployments chosen
 * by label): the original replicas are set again through each
 * deployment's scale subresource and read back from spec.replicas. "k8s-cordon" undo JSON {"nodes": [{"name",
 * "unschedulable"}]}: each node's spec.unschedulable is set back to what it
 * was (a node that was cordoned before stays cordoned) and read back. An
 * object that no longer exists holds no fault (CEP_OK). Through
 * cep_undo_apply they need a context with a resolver (above).
 */

/* The same undo with an explicit client: the runner's own revert. */
int cep_undo_k8s_scale(cep_kube *k, const char *undo_json, cep_err *err);
int cep_undo_k8s_cordon(cep_kube *k, const char *undo_json, cep_err *err);

/* "k8s-taint" (undo_taint.c) undo JSON {"taint": {"key", "value",
 * "effect"}, "nodes": [{"name", "had": taint or null}]}: each node loses
 * exactly that taint (same key, value and effect: one a person changed
 * since is left) and gets back "had", the taint of the same key and
 * effect it carried before; read back. */
int cep_undo_k8s_taint(cep_kube *k, const char *undo_json, cep_err *err);
/* Taints a and b have the same key and effect (and value, if value_too):
 * the API keeps at most one taint per key and effect. */
bool cep_undo_taint_same(json_t *a, json_t *b, bool value_too);
/* undo_json parsed (at most 64 KiB, an object), or NULL with err set
 * naming what. */
json_t *cep_undo_load(const char *what, const char *undo_json, cep_err *err);

#endif
