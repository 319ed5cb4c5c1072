/*
 * target.c - resolving a host target (pid or cgroup) to its cgroups and
 * mount namespace (see target.h). Reads /proc and /sys/fs/cgroup only;
 * the one thing it changes is cgroup membership (cep_target_join), and
 * the one namespace switch happens in a forked child.
 */
#define _GNU_SOURCE
#include "target.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.h"

#define CG2_MAGIC 0x63677270L /* CGROUP2_SUPER_MAGIC */
#define CG1_MAGIC 0x27e0ebL   /* CGROUP_SUPER_MAGIC */
#define CG_BASE "/sys/fs/cgroup"
#define TPATH 4096

struct cep_target {
	char name[TPATH + 16];
	pid_t pid;
	char cg2[TPATH];
	uint64_t cg2_ino;
	size_t nv1;
	char v1[CEP_TARGET_MAX_V1][TPATH];
	int mntns_fd;
	uint64_t mntns_ino;
	bool mntns_self;
};

/* v1 controllers whose accounting a hog's load should show up in. */
static const char *const v1_ctrls[] = {"memory", "cpu", "cpuacct",
    "cpu,cpuacct", "blkio", NULL};

static bool fs_magic_is(const char *path, long magic)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && (long)sf.f_type == magic;
}

int cep_target_cgroup2_root(char *out, size_t len, cep_err *err)
{
	if (fs_magic_is(CG_BASE, CG2_MAGIC))
		return cep_files_path(out, len, err, "%s", CG_BASE);
	if (fs_magic_is(CG_BASE "/unified", CG2_MAGIC))
		return cep_files_path(out, len, err, "%s", CG_BASE "/unified");
	return cep_err_set(err, CEP_NOT_FOUND,
	    "no cgroup v2 hierarchy at " CG_BASE " or " CG_BASE
	    "/unified (v1-only host)");
}

/* No "..", no "." components: the path stays where it says. */
static bool clean_rel(const char *p)
{
	for (const char *s = p; *s != '\0';) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if ((n == 2 && s[0] == '.' && s[1] == '.') ||
		    (n == 1 && s[0] == '.'))
			return false;
		s += n;
		while (*s == '/')
			s++;
	}
	return true;
}

/* root + rel, resolved; refused unless still under root. */
static int cg2_dir(const char *root, const char *rel, char *out, uint64_t *ino,
    cep_err *err)
{
	char joined[TPATH], real[TPATH];
	while (*rel == '/')
		rel++;
	if (!clean_rel(rel))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "cgroup \"%.200s\" must not contain \".\" or \"..\"", rel);
	int rc = cep_files_path(joined, sizeof(joined), err, "%s/%s", root,
	    rel);
	if (rc != CEP_OK)
		return rc;
	if (realpath(joined, real) == NULL)
		return cep_err_set(err, CEP_NOT_FOUND, "cgroup %.300s: %s",
		    joined, strerror(errno));
	size_t rl = strlen(root);
	if (strncmp(real, root, rl) != 0 ||
	    (real[rl] != '\0' && real[rl] != '/'))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "cgroup %.300s resolves outside %s", joined, root);
	struct stat st;
	if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    !fs_magic_is(real, CG2_MAGIC))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%.300s is not a cgroup v2 directory", real);
	*ino = (uint64_t)st.st_ino;
	return cep_files_path(out, TPATH, err, "%s", real);
}

/* A path as the user wrote it -> relative to the v2 root. */
static const char *strip_base(const char *cg, const char *root)
{
	size_t rl = strlen(root);
	if (strncmp(cg, root, rl) == 0 && (cg[rl] == '/' || cg[rl] == '\0'))
		return cg + rl;
	if (strncmp(cg, CG_BASE, sizeof(CG_BASE) - 1) == 0 &&
	    (cg[sizeof(CG_BASE) - 1] == '/' || cg[sizeof(CG_BASE) - 1] == '\0'))
		return cg + sizeof(CG_BASE) - 1;
	/* hybrid: "unified/x" relative to /sys/fs/cgroup, as policy reads it */
	if (strcmp(root, CG_BASE "/unified") == 0 &&
	    strncmp(cg, "unified/", 8) == 0)
		return cg + 8;
	return cg;
}

static bool is_v1_ctrl(const char *c, size_t n)
{
	for (size_t i = 0; v1_ctrls[i] != NULL; i++)
		if (strlen(v1_ctrls[i]) == n && strncmp(v1_ctrls[i], c, n) == 0)
			return true;
	return false;
}

/* One line of /proc/PID/cgroup: "0::/path" (v2) or "N:ctrls:/path". */
static int cgroup_line(cep_target *t, const char *root, char *line,
    cep_err *err)
{
	char *c1 = strchr(line, ':');
	char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (c2 == NULL || c2[1] != '/')
		return CEP_OK;
	const char *ctrls = c1 + 1, *path = c2 + 1;
	size_t cl = (size_t)(c2 - ctrls);
	if (cl == 0 && strncmp(line, "0:", 2) == 0) {
		if (root[0] == '\0')
			return CEP_OK;
		return cg2_dir(root, path, t->cg2, &t->cg2_ino, err);
	}
	if (!is_v1_ctrl(ctrls, cl) || t->nv1 >= CEP_TARGET_MAX_V1 ||
	    !clean_rel(path + 1))
		return CEP_OK;
	char dir[TPATH];
	if (snprintf(dir, sizeof(dir), "%s/%.*s%s", CG_BASE, (int)cl, ctrls,
	        path) >= (int)sizeof(dir) ||
	    !fs_magic_is(dir, CG1_MAGIC))
		return CEP_OK; /* not mounted where we look: not joined */
	snprintf(t->v1[t->nv1++], TPATH, "%s", dir);
	return CEP_OK;
}

static int from_pid(cep_target *t, const char *root, cep_err *err)
{
	char path[64], *data = NULL;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)t->pid);
	int rc = cep_target_read_kfile(path, 64 * 1024, &data, &len, err);
	if (rc != CEP_OK)
		return cep_err_set(err, CEP_NOT_FOUND,
		    "target pid %d: no such "
		    "process",
		    (int)t->pid);
	char *save = data;
	while (rc == CEP_OK && save != NULL && *save != '\0') {
		char *nl = strchr(save, '\n');
		if (nl != NULL)
			*nl = '\0';
		rc = cgroup_line(t, root, save, err);
		save = nl ? nl + 1 : NULL;
	}
	free(data);
	if (rc != CEP_OK)
		return rc;
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)t->pid);
	t->mntns_fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (t->mntns_fd < 0 || fstat(t->mntns_fd, &st) != 0)
		return cep_err_errno(err, errno,
		    "opening the target's mount "
		    "namespace (/proc/PID/ns/mnt)");
	t->mntns_ino = (uint64_t)st.st_ino;
	t->mntns_self = t->mntns_ino == cep_target_mntns_of(0);
	return CEP_OK;
}

int cep_target_resolve(int64_t pid, const char *cgroup, cep_target **out,
    cep_err *err)
{
	*out = NULL;
	if ((pid > 0) == (cgroup != NULL))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "a target is exactly one of pid and cgroup");
	if (pid > 0x7fffffff)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "target pid %lld out of range", (long long)pid);
	char root[TPATH] = "";
	cep_err rerr = {0};
	int rc = cep_target_cgroup2_root(root, sizeof(root), &rerr);
	if (rc != CEP_OK && cgroup != NULL)
		return cep_err_set(err, rc, "cgroup target: %s", rerr.msg);
	cep_target *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	t->mntns_fd = -1;
	if (cgroup != NULL) {
		rc = cg2_dir(root, strip_base(cgroup, root), t->cg2,
		    &t->cg2_ino, err);
		t->mntns_ino = cep_target_mntns_of(0);
		t->mntns_self = true;
		snprintf(t->name, sizeof(t->name), "cgroup %s", t->cg2);
	} else {
		t->pid = (pid_t)pid;
		rc = from_pid(t, root, err);
		snprintf(t->name, sizeof(t->name), "pid %d", (int)t->pid);
	}
	if (rc != CEP_OK) {
		cep_target_free(t);
		return rc;
	}
	*out = t;
	return CEP_OK;
}

void cep_target_free(cep_target *t)
{
	if (t == NULL)
		return;
	if (t->mntns_fd >= 0)
		close(t->mntns_fd);
	free(t);
}

const char *cep_target_name(const cep_target *t)
{
	return t->name;
}
pid_t cep_target_pid(const cep_target *t)
{
	return t->pid;
}
const char *cep_target_cgroup(const cep_target *t)
{
	return t->cg2;
}
uint64_t cep_target_cgroup_ino(const cep_target *t)
{
	return t->cg2_ino;
}
size_t cep_target_nv1(const cep_target *t)
{
	return t->nv1;
}
int cep_target_mntns_fd(const cep_target *t)
{
	return t->mntns_fd;
}
uint64_t cep_target_mntns_ino(const cep_target *t)
{
	return t->mntns_ino;
}
bool cep_target_mntns_is_self(const cep_target *t)
{
	return t->mntns_self;
}

const char *cep_target_v1(const cep_target *t, size_t i)
{
	return i < t->nv1 ? t->v1[i] : NULL;
}

static int write_procs(const char *dir, pid_t pid, cep_err *err)
{
	char path[TPATH + 16], num[24];
	int rc = cep_files_path(path, sizeof(path), err, "%s/cgroup.procs",
	    dir);
	if (rc != CEP_OK)
		return rc;
	int n = snprintf(num, sizeof(num), "%d", (int)pid);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return cep_err_set(err, CEP_INTERNAL, "joining %.300s: %s",
		    path, strerror(errno));
	ssize_t w = write(fd, num, (size_t)n);
	int e = errno;
	close(fd);
	if (w != n)
		return cep_err_set(err, CEP_INTERNAL,
		    "moving pid %d into "
		    "%.300s: %s%s",
		    (int)pid, path, strerror(e),
		    e == EBUSY ?
		        " (the cgroup has controllers enabled for its children; "
		        "target a leaf cgroup)" :
		        "");
	return CEP_OK;
}

int cep_target_join(const cep_target *t, pid_t pid, cep_err *err)
{
	if (t->cg2[0] != '\0') {
		int rc = write_procs(t->cg2, pid, err);
		if (rc != CEP_OK)
			return rc;
	}
	for (size_t i = 0; i < t->nv1; i++) {
		int rc = write_procs(t->v1[i], pid, err);
		if (rc != CEP_OK)
			return rc;
	}
	return CEP_OK;
}

int cep_target_run_in_mntns(const cep_target *t,
    int (*fn)(void *arg, int outfd), void *arg, char *out, size_t outlen,
    size_t *got, cep_err *err)
{
	int p[2];
	*got = 0;
	if (pipe2(p, O_CLOEXEC) != 0)
		return cep_err_errno(err, errno, "pipe");
	pid_t c = fork();
	if (c < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return cep_err_errno(err, e, "fork");
	}
	if (c == 0) {
		close(p[0]);
		if (t->mntns_fd >= 0 && !t->mntns_self &&
		    setns(t->mntns_fd, CLONE_NEWNS) != 0)
			_exit(125);
		_exit(fn(arg, p[1]) & 0xff);
	}
	close(p[1]);
	ssize_t n;
	while (*got < outlen &&
	    ((n = read(p[0], out + *got, outlen - *got)) > 0 ||
	        (n < 0 && errno == EINTR)))
		*got += n > 0 ? (size_t)n : 0;
	close(p[0]);
	int status = 0;
	while (waitpid(c, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return cep_err_set(err, CEP_INTERNAL,
		    "in the mount namespace of "
		    "%s: %s %d",
		    t->name,
		    WIFEXITED(status) ?
		        (WEXITSTATUS(status) == 125 ? "setns failed, status" :
		                                      "failed with status") :
		        "killed by signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	return CEP_OK;
}

bool cep_target_dir_gone(const char *dir, uint64_t ino)
{
	struct stat st;
	if (stat(dir, &st) != 0)
		return errno == ENOENT || errno == ENOTDIR;
	return (uint64_t)st.st_ino != ino;
}

int cep_target_read_kfile(const char *path, size_t max, char **data,
    size_t *len, cep_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cep_err_errno(err, errno, path);
	size_t cap = 4096, got = 0;
	char *buf = malloc(cap + 1);
	ssize_t n = 0;
	while (buf != NULL && got < max) {
		if (got == cap) {
			size_t nc = cap * 2 > max ? max : cap * 2;
			char *nb = realloc(buf, nc + 1);
			if (nb == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap = nc;
		}
		n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	int e = errno;
	close(fd);
	if (buf == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	if (n < 0) {
		free(buf);
		return cep_err_errno(err, e, path);
	}
	buf[got] = '\0';
	*data = buf;
	*len = got;
	return CEP_OK;
}

uint64_t cep_target_mntns_of(pid_t pid)
{
	char path[64];
	struct stat st;
	if (pid > 0)
		snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/mnt");
	return stat(path, &st) == 0 ? (uint64_t)st.st_ino : 0;
}
