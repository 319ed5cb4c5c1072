/*
 * netns.h - network namespaces as fault targets.
 *
 * A network fault is anchored to the namespace that holds it, never to the
 * process used to find it: a target is resolved once (pid, name under
 * /run/netns, or a path) to the namespace's identity (nsfs dev + inode),
 * and every later undo finds the namespace again by that identity, whoever
 * holds it then. A namespace that nothing holds any more (no process, no
 * bind mount, no open fd) is truly gone, and with it every rule it held.
 *
 * setns(CLONE_NEWNET) changes only the calling thread, so work inside a
 * namespace runs on a fresh thread (cep_netns_run); the caller's thread
 * never moves.
 */
#ifndef CEP_NETNS_H
#define CEP_NETNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct cep_netns_id {
	uint64_t dev, ino;
} cep_netns_id;

/* Resolves a target: pid > 0 -> /proc/PID/ns/net; otherwise netns is an
 * absolute path or a name under /run/netns. Opens it (O_RDONLY|O_CLOEXEC)
 * and checks that it is a network namespace. path (may be NULL) receives
 * the path used. */
int cep_netns_open(int64_t pid, const char *netns, int *fd, cep_netns_id *id,
    char *path, size_t plen, cep_err *err);

/* Finds a namespace by identity: first hint (a path, may be NULL or stale),
 * then every entry of /run/netns, /proc/[pid]/ns/net, /proc/[pid]/task/[tid]/ns/net,
 * open fds in /proc/[pid]/fd and nsfs mounts. CEP_OK with *fd open, or
 * CEP_NOT_FOUND when nothing holds it any more (truly gone). */
int cep_netns_find(const cep_netns_id *id, const char *hint, int *fd,
    cep_err *err);

/* Identity of the namespace behind an open fd. */
int cep_netns_id_of(int fd, cep_netns_id *id, cep_err *err);

/* The init process's network namespace (the host's) or the caller's own
 * (the appliance's): a fault target only with
 * policy.network.allowHostNetns (delegate/policy.c, runner/fault_net.c). */
bool cep_netns_is_host(const cep_netns_id *id);

/* Runs fn(arg, err) on a new thread that has entered the namespace of fd;
 * returns fn's status. The calling thread's namespace is untouched. */
typedef int (*cep_netns_fn)(void *arg, cep_err *err);
int cep_netns_run(int fd, cep_netns_fn fn, void *arg, cep_err *err);

/* Moves the calling thread into the namespace of fd, for a fault worker
 * forked from the runner (its one thread is the process). Only setns:
 * async-signal-safe, allocates nothing; 0, or -1 with errno. Everything
 * else enters through cep_netns_run, so that no thread of a daemon ever
 * moves; this and cep_netns_run are the only ways in. */
int cep_netns_enter(int fd);

#endif
