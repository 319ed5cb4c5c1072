/*
 * pod_select.h - pods chosen by label selector, the way pod-delete chooses
 * them (docs/faults-kubernetes.md): the Running pods of the run's
 * namespace that match and are not being deleted, in random order; count
 * of them, or percentage rounded up (cep_podtarget_quota, podtarget.h);
 * never more than the policy's maxTargets (kube_target.h). Used by
 * pod-delete at each round and by the node-level faults with
 * labelSelector at injection (engine.c).
 */
#ifndef CEP_RUNNER_POD_SELECT_H
#define CEP_RUNNER_POD_SELECT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Names (borrowed from items) of the Running pods not being deleted,
 * shuffled; at most cap. node: only the pods on that node go into names
 * (NULL: any); *all (may be NULL): the Running pods on every node. */
size_t runner_podsel_running(json_t *items, const char *node,
    const char **names, size_t cap, size_t *all);

/* Lists the pods matching selector in the run's namespace and chooses
 * among them: out[0..*n) (cap entries), at most maxTargets. The share is
 * of every Running match (cep_podtarget_quota); node (NULL: any): the
 * pods are chosen among those on that node only, and fewer there than
 * the share asks for is FAILED_PRECONDITION naming the node (a node-level
 * fault's runner works on its own node; the delegate placed it on one
 * holding enough, docs/kubernetes.md). *matching: the Running pods that
 * matched; *capped: the policy's cap cut the choice.
 * FAILED_PRECONDITION when none is Running. */
int runner_podsel_choose(const char *selector, int64_t count, int64_t percent,
    const char *node, char (*out)[254], size_t cap, size_t *n, size_t *matching,
    bool *capped, cep_err *err);

#endif
