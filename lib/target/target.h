/*
 * target.h - a host target (a process or a cgroup) resolved to the
 * resources a fault acts on: its cgroup v2 directory, the cgroup v1
 * accounting hierarchies it is in (hybrid hosts), and its mount namespace.
 *
 * A target is given as exactly one of a pid or a cgroup path. The cgroup
 * path is relative to the v2 root or absolute under /sys/fs/cgroup (also
 * /sys/fs/cgroup/unified on hybrid hosts); a path that leaves the root
 * (symlinks, "..") is refused. Faults anchor their undo to these resources
 * (the cgroup, the filesystem), never to the pid used to find them: the
 * pid may die while the resource lives on.
 *
 * Hosts: v2 mounted at /sys/fs/cgroup (unified) or /sys/fs/cgroup/unified
 * (hybrid). On a hybrid host a pid target also yields its v1 cpu, cpuacct,
 * memory and blkio cgroups, so that workers joining the target are
 * accounted where the v1-bound controllers count. v1-only hosts: pid
 * targets join the v1 hierarchies only; cgroup targets are refused.
 */
#ifndef CEP_TARGET_H
#define CEP_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define CEP_TARGET_MAX_V1 6

typedef struct cep_target cep_target;

/* The cgroup v2 root of this host: "/sys/fs/cgroup" or
 * "/sys/fs/cgroup/unified". NOT_FOUND when v2 is not mounted. */
int cep_target_cgroup2_root(char *out, size_t len, cep_err *err);

/* Exactly one of pid (> 0) and cgroup (non-NULL). */
int cep_target_resolve(int64_t pid, const char *cgroup, cep_target **out,
    cep_err *err);
void cep_target_free(cep_target *t); /* NULL is fine */

/* "pid 123" or "cgroup /sys/fs/cgroup/unified/x", for messages. */
const char *cep_target_name(const cep_target *t);
pid_t cep_target_pid(const cep_target *t); /* 0: cgroup target */
/* Absolute v2 directory ("" on a v1-only host) and its inode. */
const char *cep_target_cgroup(const cep_target *t);
uint64_t cep_target_cgroup_ino(const cep_target *t);
/* v1 accounting cgroup directories (pid targets on hybrid/v1 hosts). */
size_t cep_target_nv1(const cep_target *t);
const char *cep_target_v1(const cep_target *t, size_t i);

/* The target's mount namespace: an open fd (-1 for a cgroup target,
 * which lives in the host's), its inode, and whether it is ours. */
int cep_target_mntns_fd(const cep_target *t);
uint64_t cep_target_mntns_ino(const cep_target *t);
bool cep_target_mntns_is_self(const cep_target *t);

/* Moves pid into the target's v2 cgroup and v1 accounting cgroups. */
int cep_target_join(const cep_target *t, pid_t pid, cep_err *err);

/* Runs fn in a freshly forked child that entered the target's mount
 * namespace (setns CLONE_NEWNS; the caller's threads never move). fn may
 * write up to outlen bytes of answer to outfd; they land in out. fn runs
 * after fork in a threaded process: async-signal-safe calls only. Its
 * return value is the child's exit status (0 = success). */
int cep_target_run_in_mntns(const cep_target *t,
    int (*fn)(void *arg, int outfd), void *arg, char *out, size_t outlen,
    size_t *got, cep_err *err);

/* True when the directory no longer exists or is another one than the
 * inode recorded: a removed cgroup holds nothing any more. */
bool cep_target_dir_gone(const char *dir, uint64_t ino);

/* Reads a kernel file (st_size 0: /proc, cgroupfs) to EOF, at most max
 * bytes, NUL-terminated. Caller frees. */
int cep_target_read_kfile(const char *path, size_t max, char **data,
    size_t *len, cep_err *err);

/* Inode of /proc/<pid>/ns/mnt ("self" when pid is 0); 0 if unknown. */
uint64_t cep_target_mntns_of(pid_t pid);

#endif
