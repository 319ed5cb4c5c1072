/*
 * inspect.c - the Inspect call's facts (proto/cep.proto, "privsep:
 * launcher"; docs/privsep.md "Host facts for the policy"): a process's
 * command name, a network namespace's identity, a filesystem's figures.
 * The delegate's policy decides with them; it cannot read them itself
 * (no capabilities, other users' /proc hidden, its own mount namespace).
 *
 * Everything here only reads, with descriptors that cannot read file
 * contents: paths are resolved with openat2(O_PATH) and measured with
 * fstatvfs; under a pid's root the walk stays inside that root
 * (RESOLVE_IN_ROOT: "..", absolute symlinks); no magic link of /proc is
 * followed on the way (RESOLVE_NO_MAGICLINKS); a namespace file is opened
 * for reading only once it is known to be nsfs (lib/target/netns.c). Nothing is
 * written, created or started. The fields were checked before
 * (launcher_check_inspect).
 */
#define _GNU_SOURCE
#include "launcher_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "netns.h"
#include "procfs.h"

#define WALK_DEPTH 256 /* directories open at once */
#define WALK_LINKS 40  /* symlinks followed, as the kernel's ELOOP */

static int openat2_path(int dirfd, const char *path, uint64_t resolve)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = resolve};
	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

static void close_to(int *st, int *n, int keep)
{
	while (*n > keep)
		close(st[--*n]);
}

/* A symlink met on the walk: its target, then what was left, becomes the
 * rest of the path; an absolute one starts again at the root. */
static int splice_link(int fd, char *rest, size_t len, const char *left,
    int *st, int *n)
{
	char target[CEP_LAUNCHER_MAX_PATH + 1],
	    tmp[2 * (CEP_LAUNCHER_MAX_PATH + 1)];
	ssize_t l = readlinkat(fd, "", target, sizeof(target) - 1);
	if (l < 0)
		return -1;
	target[l] = '\0';
	int w = snprintf(tmp, sizeof(tmp), "%s/%s", target, left);
	if (w < 0 || (size_t)w >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(rest, tmp, (size_t)w + 1);
	if (target[0] == '/')
		close_to(st, n, 1);
	return 0;
}

/* One step of the walk from st[n-1]: "." stays, ".." goes back up the
 * stack (never above the root), a name is opened O_PATH|O_NOFOLLOW.
 * Returns the new fd, -2 for a step without one, -1 with errno. */
static int walk_step(const char *comp, int *st, int *n)
{
	if (strcmp(comp, ".") == 0)
		return -2;
	if (strcmp(comp, "..") == 0) {
		close_to(st, n, *n > 1 ? *n - 1 : 1);
		return -2;
	}
	return openat(st[*n - 1], comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
}

/* The next component of *p into comp (*p moves past it): 1, 0 at the
 * end, -1 (ENAMETOOLONG) for a name longer than NAME_MAX. */
static int next_comp(char **p, char comp[256])
{
	while (**p == '/')
		(*p)++;
	if (**p == '\0')
		return 0;
	char *end = strchrnul(*p, '/');
	if ((size_t)(end - *p) >= 256) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(comp, *p, (size_t)(end - *p));
	comp[end - *p] = '\0';
	*p = end;
	return 1;
}

int launcher_walk(int root, const char *path)
{
	char rest[2 * (CEP_LAUNCHER_MAX_PATH + 1)], comp[256];
	int st[WALK_DEPTH], n = 0, links = 0, more;
	snprintf(rest, sizeof(rest), "%s", path);
	if ((st[n++] = fcntl(root, F_DUPFD_CLOEXEC, 0)) < 0)
		return -1;
	for (char *p = rest; (more = next_comp(&p, comp)) > 0;) {
		int fd = walk_step(comp, st, &n);
		struct stat sb;
		if (fd == -2)
			continue;
		if (fd < 0 || fstat(fd, &sb) != 0) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			errno = e;
			break;
		}
		if (S_ISLNK(sb.st_mode)) {
			int rv = ++links > WALK_LINKS ?
			    (errno = ELOOP, -1) :
			    splice_link(fd, rest, sizeof(rest), p, st, &n);
			int e = errno;
			close(fd);
			errno = e;
			if (rv != 0)
				break;
			p = rest;
			continue;
		}
		if (n == WALK_DEPTH) {
			close(fd);
			errno = ENAMETOOLONG;
			break;
		}
		st[n++] = fd;
	}
	if (more == 0) { /* the end of the path: the last one opened */
		int fd = st[--n];
		close_to(st, &n, 0);
		return fd;
	}
	int e = errno;
	close_to(st, &n, 0);
	errno = e;
	return -1;
}

/* path as a process sees it: under /proc/PID/root when pid > 0. Where
 * openat2 is missing (a kernel before 5.6, or a seccomp filter older
 * than it: systemd-nspawn 252 answers ENOSYS), launcher_walk does
 * the same by hand. */
static int open_path(int32_t pid, const char *path)
{
	char root[64] = "/";
	if (pid > 0)
		snprintf(root, sizeof(root), "/proc/%d/root", (int)pid);
	int r = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (r < 0)
		return -1;
	int fd = openat2_path(r, path,
	    RESOLVE_NO_MAGICLINKS | (pid > 0 ? RESOLVE_IN_ROOT : 0));
	if (fd < 0 && errno == ENOSYS)
		fd = launcher_walk(r, path);
	int e = errno;
	close(r);
	errno = e;
	return fd;
}

static void inspect_path(int32_t pid, const char *path, cep_launcher_facts *f)
{
	Cep__V1__LauncherFacts *r = &f->rep;
	int fd = open_path(pid, path);
	struct statvfs sv;
	if (fd < 0 || fstatvfs(fd, &sv) != 0) {
		r->path_errno = errno != 0 ? errno : EIO;
		if (fd >= 0)
			close(fd);
		return;
	}
	r->f_blocks = sv.f_blocks;
	r->f_bavail = sv.f_bavail;
	r->f_frsize = sv.f_frsize;
	/* symlinks resolved on the host; under a pid's root the link would
	 * name the launcher's view of it, not the process's: left out */
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	ssize_t n = pid == 0 ?
	    readlink(self, f->real_path, sizeof(f->real_path) - 1) :
	    -1;
	if (n > 0 && (size_t)n < sizeof(f->real_path) - 1) {
		f->real_path[n] = '\0';
		r->real_path = f->real_path;
	}
	close(fd);
}

static void inspect_netns(int32_t pid, const char *name, cep_launcher_facts *f)
{
	Cep__V1__LauncherFacts *r = &f->rep;
	cep_netns_id id;
	int fd = -1;
	cep_err e = {0};
	int rv = cep_netns_open(pid, pid > 0 ? NULL : name, &fd, &id, NULL, 0,
	    &e);
	if (rv != CEP_OK) {
		snprintf(f->netns_error, sizeof(f->netns_error), "%s", e.msg);
		r->netns_error = f->netns_error;
		r->netns_code = rv;
		return;
	}
	close(fd);
	r->netns_dev = id.dev;
	r->netns_ino = id.ino;
	r->netns_host = cep_netns_is_host(&id);
}

void launcher_inspect(const Cep__V1__LauncherInspect *q, cep_launcher_facts *f)
{
	memset(f, 0, sizeof(*f));
	Cep__V1__LauncherFacts init = CEP__V1__LAUNCHER_FACTS__INIT;
	f->rep = init;
	f->rep.comm = f->comm;
	f->rep.netns_error = f->netns_error;
	f->rep.real_path = f->real_path;
	if (q->pid > 0)
		f->rep.exists = cep_procfs_info(q->pid, f->comm,
		    sizeof(f->comm), NULL);
	if (!f->rep.exists)
		f->comm[0] = '\0';
	char name[CEP_LAUNCHER_MAX_PATH + 1] = "";
	if (q->netns_name.len > 0 && q->netns_name.len < sizeof(name))
		memcpy(name, q->netns_name.data, q->netns_name.len);
	if (q->netns)
		inspect_netns(q->pid, name, f);
	char path[CEP_LAUNCHER_MAX_PATH + 1] = "";
	if (q->path.len > 0 && q->path.len < sizeof(path)) {
		memcpy(path, q->path.data, q->path.len);
		inspect_path(q->pid, path, f);
	}
}
