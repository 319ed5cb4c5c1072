/*
 * fault_target.h - the optional host target of the resource faults
 * (cpu-hog, memory-hog, io-stress, disk-fill): `pid` or `cgroup` from the
 * experiment, resolved with lib/target/target.h, and workers started inside it.
 */
#ifndef CEP_RUNNER_FAULT_TARGET_H
#define CEP_RUNNER_FAULT_TARGET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "err.h"
#include "exp.h"
#include "target.h"

/* The process a node-level fault acts through: `pid`, or with `pod` (a
 * kubernetes target) the init of the pod's container, found on this node
 * through /proc (lib/target/ctrpid.h) after reading the Pod with the
 * runner's client (lib/target/podtarget.h). 0 when neither is given. A pod
 * that is now on another node than CEP_NODE_NAME (the runner's, set by the
 * delegate) is FAILED_PRECONDITION: the runner must not act on whatever it
 * finds. */
int runner_fault_target_pid(const cep_exp_item *it, int64_t *pid, cep_err *err);

/* A fault with labelSelector acts on one chosen pod at a time: the engine
 * names it here (NULL: none) before each call of the fault's operations
 * on that pod; runner_fault_target_pid then reads that pod. Engine thread
 * only. */
void runner_fault_use_pod(const char *pod);
/* Adds "pod", "node", "container" (as the pod was last read) to an undo
 * object, when a chosen pod is in use and was read. */
void runner_fault_pod_undo(json_t *undo);

/* *t = NULL when the item names no target; both pid and cgroup = error.
 * fault: the type, for messages. */
int runner_fault_target_open(const cep_exp_item *it, const char *fault,
    cep_target **t, cep_err *err);

/* With `node` or `nodeSelector` (a kubernetes node target): the cgroup
 * the fault's workers run in, <v2 root>/cep-node-<run>-<fault>, after
 * checking the runner is on that node (CEP_NODE_NAME; with nodeSelector
 * the scheduler chose it, and it is the runner's own); "" without either.
 * runner_fault_target_open creates it; the fault removes it on revert
 * (cep_undo_cgroup_remove). */
bool runner_fault_on_node(const cep_exp_item *it);
int runner_fault_node_cgroup(const cep_exp_item *it, char *dir, size_t len,
    cep_err *err);

/* The mechanism of a hog: "node-cgroup" on a node (its cgroup outlives a
 * killed runner), else "child-process". */
const char *runner_fault_hog_mechanism(const cep_exp_item *it);

/* Revert of a node hog after its workers are reaped: removes dir, its
 * cgroup (runner_fault_node_cgroup; "" = no node, nothing to do). */
int runner_fault_node_remove(const char *dir, cep_err *err);

/* " in cgroup /sys/fs/cgroup/x" style suffix for the FaultRecord target
 * ("" without a target). */
void runner_fault_target_text(const cep_target *t, char *buf, size_t len);

/* Adds "target", "cgroup" and "cgroup_ino" to an undo object. */
void runner_fault_target_undo(const cep_target *t, json_t *undo);

/* The describe step of a hog (workers forked from the runner, named
 * comm): target text "<what> <where>" and the undo record
 * {"runner_pid", "comm", target fields}. */
int runner_fault_hog_describe(const cep_exp_item *it, const char *fault,
    const char *comm, const char *what, char *target, size_t tlen,
    json_t **undo, cep_err *err);

/* runner_fault_spawn_worker, but the worker is moved into t's cgroups
 * before body starts (a gate), so that everything it does is accounted
 * there. t NULL: the plain spawn. */
int runner_fault_spawn_in(const cep_target *t, const char *comm,
    void (*body)(const void *), const void *arg, pid_t *pid, cep_err *err);

/* An absolute path without "." or ".." components (paths inside a
 * target's root are joined to /proc/PID/root: no climbing out). */
bool runner_fault_path_ok(const char *path);

#endif
