/*
 * podtarget.h - a pod named as the target of a node-level fault
 * (docs/kubernetes.md, "Pod targets"): what the delegate needs to place
 * the runner (the pod's node) and what the runner needs to find the
 * container's process there (the runtime's container id, lib/target/ctrpid.h),
 * read from the Pod object both GET. One reading, so that both sides
 * agree on what "a usable target" is.
 */
#ifndef CEP_PODTARGET_H
#define CEP_PODTARGET_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct cep_podtarget {
	char node[254];         /* spec.nodeName */
	char uid[64];           /* metadata.uid */
	char container[64];     /* the container chosen */
	char container_id[160]; /* "containerd://<64 hex>" */
} cep_podtarget;

/* pod: a Pod object (GET). container: the name asked for, or NULL for
 * the pod's only container. FAILED_PRECONDITION (message naming the pod
 * and why) when the pod is not Running, not scheduled, has no such
 * container, or the container is not running; INVALID_ARGUMENT for a
 * malformed object or container id. */
int cep_podtarget_read(const json_t *pod, const char *container,
    cep_podtarget *out, cep_err *err);

/* Pods a fault with a label selector asks for among `running` matching
 * (count > 0, else percent of them rounded up), at most running; before
 * the policy's cap. The one rule the delegate (placing the runner) and
 * the runner (choosing at injection) both apply. */
size_t cep_podtarget_quota(int64_t count, int64_t percent, size_t running);

#endif
