/*
 * ctrpid.h - finding a container's process on its node through /proc.
 *
 * A Kubernetes pod target names a container by the id its runtime reports
 * in status.containerStatuses[].containerID ("containerd://<id>",
 * "cri-o://<id>", "docker://<id>"; <id> is 64 lowercase hex digits in all
 * three). The runtimes put each container in a cgroup whose path names
 * that id as one whole path component:
 *
 *   cgroupfs driver (v1 and v2):  .../kubepods/<qos>/pod<uid>/<id>
 *   systemd driver, containerd:   .../cri-containerd-<id>.scope
 *   systemd driver, cri-o:        .../crio-<id>.scope
 *   systemd driver, docker:       .../docker-<id>.scope
 *
 * so a process whose /proc/PID/cgroup has such a component is in the
 * container. "crio-conmon-<id>.scope" (cri-o's monitor, outside the
 * container's namespaces) and ids appearing inside a longer component
 * do not match. The answer is the container's init: a matching process
 * whose parent does not match (every process of the container shares its
 * namespaces and cgroup, but the init is the one a runtime entered them
 * with). Matches in two different cgroup paths are refused as ambiguous.
 *
 * proc_root is "/proc" in production; tests pass a fake tree of
 * <root>/<pid>/cgroup and <root>/<pid>/stat files.
 */
#ifndef CEP_CTRPID_H
#define CEP_CTRPID_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

#define CEP_CTRPID_ID_LEN 64

/* "containerd://<64 hex>" -> id (at least CEP_CTRPID_ID_LEN + 1 bytes)
 * and the runtime name ("containerd", "cri-o", "docker"; static).
 * INVALID_ARGUMENT for anything else. */
int cep_ctrpid_parse_id(const char *container_id, char *id, size_t idlen,
    const char **runtime, cep_err *err);

/* The pid of the container's init (see above) and the cgroup path it was
 * found under (the v2 line's, else the first matching v1 line's).
 * NOT_FOUND when no process matches (container not running on this
 * node, or /proc shows another pid namespace: the runner needs hostPID),
 * FAILED_PRECONDITION when ambiguous. */
int cep_ctrpid_find(const char *proc_root, const char *id, pid_t *pid,
    char *cgpath, size_t cglen, cep_err *err);

#endif
