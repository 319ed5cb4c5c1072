/*
 * netns.c - resolving, re-finding and entering network namespaces (see
 * netns.h). Nothing here changes a namespace; lib/node/nft.c and the runner's
 * network faults do that through cep_netns_run.
 */
#define _GNU_SOURCE
#include "netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "err.h"

#ifndef NS_GET_NSTYPE
#define NS_GET_NSTYPE 0xb703
#endif

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

#define NETNS_RUN_DIR "/run/netns"
#define CEP_PATH_MAX_NETNS 4096

static bool name_ok(const char *s)
{
	size_t n = strnlen(s, 256);
	if (n == 0 || n > 255 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	return strchr(s, '/') == NULL;
}

int cep_netns_id_of(int fd, cep_netns_id *id, cep_err *err)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return cep_err_errno(err, errno,
		    "fstat of a network namespace");
	id->dev = (uint64_t)st.st_dev;
	id->ino = (uint64_t)st.st_ino;
	return CEP_OK;
}

/* An nsfs file of type CLONE_NEWNET. */
static bool is_netns_fd(int fd)
{
	int t = ioctl(fd, NS_GET_NSTYPE);
	return t == CLONE_NEWNET;
}

/* Opens p for reading only once it is known to be an nsfs file: the
 * path may come from an experiment (or, in cep-launcher, from the
 * delegate), and opening a FIFO or a device for reading as root would
 * block or act. An O_PATH descriptor reads nothing; nsfs is then reopened
 * through /proc/self/fd. -1 with errno set, -2: not nsfs. */
static int open_nsfs(const char *p)
{
	int o = open(p, O_PATH | O_CLOEXEC);
	if (o < 0)
		return -1;
	struct statfs sf;
	if (fstatfs(o, &sf) != 0 || sf.f_type != NSFS_MAGIC) {
		close(o);
		return -2;
	}
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", o);
	int f = open(self, O_RDONLY | O_CLOEXEC);
	int e = errno;
	close(o);
	errno = e;
	return f < 0 ? -1 : f;
}

int cep_netns_open(int64_t pid, const char *netns, int *fd, cep_netns_id *id,
    char *path, size_t plen, cep_err *err)
{
	char p[CEP_PATH_MAX_NETNS];
	if (pid > 0) {
		if (pid > INT_MAX)
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "pid %lld out of range", (long long)pid);
		snprintf(p, sizeof(p), "/proc/%lld/ns/net", (long long)pid);
	} else if (netns != NULL && netns[0] == '/') {
		if (strnlen(netns, sizeof(p)) >= sizeof(p))
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "netns path too long");
		snprintf(p, sizeof(p), "%s", netns);
	} else if (netns != NULL && name_ok(netns)) {
		snprintf(p, sizeof(p), "%s/%s", NETNS_RUN_DIR, netns);
	} else {
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "network target: give a pid, a netns name (no '/') or an "
		    "absolute path");
	}
	int f = open_nsfs(p);
	if (f == -1)
		return cep_err_errno(err, errno, p);
	if (f < 0 || !is_netns_fd(f)) {
		if (f >= 0)
			close(f);
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s is not a network namespace", p);
	}
	int rc = cep_netns_id_of(f, id, err);
	if (rc != CEP_OK) {
		close(f);
		return rc;
	}
	if (path != NULL)
		snprintf(path, plen, "%s", p);
	*fd = f;
	return CEP_OK;
}

/* Opens p if it is the namespace id; -1 otherwise. */
static int open_if(const char *p, const cep_netns_id *id)
{
	struct stat st;
	if (stat(p, &st) != 0 || (uint64_t)st.st_ino != id->ino ||
	    (uint64_t)st.st_dev != id->dev)
		return -1;
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st2;
	if (fstat(fd, &st2) != 0 || (uint64_t)st2.st_ino != id->ino ||
	    !is_netns_fd(fd)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Each entry of dir as dir/entry/suffix ("" = the entry itself). */
static int scan_dir(const char *dir, const char *suffix, bool digits_only,
    const cep_netns_id *id)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -1;
	int fd = -1;
	struct dirent *de;
	char p[CEP_PATH_MAX_NETNS];
	while (fd < 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (digits_only && (de->d_name[0] < '0' || de->d_name[0] > '9'))
			continue;
		snprintf(p, sizeof(p), "%s/%s%s", dir, de->d_name, suffix);
		fd = open_if(p, id);
	}
	closedir(d);
	return fd;
}

/* Open fds of every process ("net:[ino]" links). */
static int scan_fds(const cep_netns_id *id)
{
	DIR *d = opendir("/proc");
	if (d == NULL)
		return -1;
	int fd = -1;
	struct dirent *de;
	char dir[64], want[64];
	snprintf(want, sizeof(want), "net:[%llu]", (unsigned long long)id->ino);
	while (fd < 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(dir, sizeof(dir), "/proc/%s/fd", de->d_name);
		DIR *f = opendir(dir);
		if (f == NULL)
			continue;
		struct dirent *fe;
		char p[128], link[64];
		while (fd < 0 && (fe = readdir(f)) != NULL) {
			snprintf(p, sizeof(p), "%s/%s", dir, fe->d_name);
			ssize_t n = readlink(p, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (strcmp(link, want) == 0)
				fd = open_if(p, id);
		}
		closedir(f);
	}
	closedir(d);
	return fd;
}

/* Mount points of nsfs mounts (bind-mounted namespaces) in mountinfo:
 * "... <mount point> ... - nsfs ...". Octal escapes (\040) in the mount
 * point are decoded. */
static int scan_mounts(const cep_netns_id *id)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL)
		return -1;
	char line[4096];
	int fd = -1;
	while (fd < 0 && fgets(line, sizeof(line), f) != NULL) {
		char *sep = strstr(line, " - nsfs ");
		if (sep == NULL)
			continue;
		/* fields: id parent maj:min root mountpoint ... */
		char *s = line;
		for (int i = 0; i < 4 && s != NULL; i++) {
			s = strchr(s, ' ');
			if (s != NULL)
				s++;
		}
		if (s == NULL || s >= sep)
			continue;
		char mp[CEP_PATH_MAX_NETNS];
		size_t o = 0;
		for (; *s != ' ' && *s != '\0' && o + 1 < sizeof(mp); s++) {
			if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
			    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
			    s[3] <= '7') {
				mp[o++] = (char)((s[1] - '0') * 64 +
				    (s[2] - '0') * 8 + (s[3] - '0'));
				s += 3;
			} else {
				mp[o++] = *s;
			}
		}
		mp[o] = '\0';
		fd = open_if(mp, id);
	}
	fclose(f);
	return fd;
}

/* Threads of every process: a namespace may be held by one thread only. */
static int scan_tasks(const cep_netns_id *id)
{
	DIR *d = opendir("/proc");
	if (d == NULL)
		return -1;
	int fd = -1;
	struct dirent *de;
	char dir[64];
	while (fd < 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(dir, sizeof(dir), "/proc/%s/task", de->d_name);
		fd = scan_dir(dir, "/ns/net", true, id);
	}
	closedir(d);
	return fd;
}

int cep_netns_find(const cep_netns_id *id, const char *hint, int *fd,
    cep_err *err)
{
	int f = -1;
	if (hint != NULL && hint[0] == '/')
		f = open_if(hint, id);
	if (f < 0)
		f = scan_dir(NETNS_RUN_DIR, "", false, id);
	if (f < 0)
		f = scan_dir("/proc", "/ns/net", true, id);
	if (f < 0)
		f = scan_mounts(id);
	if (f < 0)
		f = scan_tasks(id);
	if (f < 0)
		f = scan_fds(id);
	if (f < 0)
		return cep_err_set(err, CEP_NOT_FOUND,
		    "network namespace %llu:%llu is gone (no process, mount or "
		    "fd holds it)",
		    (unsigned long long)id->dev, (unsigned long long)id->ino);
	*fd = f;
	return CEP_OK;
}

static bool same(const char *p, const cep_netns_id *id)
{
	struct stat st;
	return stat(p, &st) == 0 && (uint64_t)st.st_ino == id->ino &&
	    (uint64_t)st.st_dev == id->dev;
}

/* init's namespace may be unreadable (a container's root without
 * CAP_SYS_PTRACE over pid 1): the caller's own namespace, where the
 * appliance runs, is refused in any case. */
bool cep_netns_is_host(const cep_netns_id *id)
{
	return same("/proc/1/ns/net", id) || same("/proc/self/ns/net", id);
}

typedef struct ns_job {
	int fd;
	cep_netns_fn fn;
	void *arg;
	cep_err err;
	int rc;
} ns_job;

static void *ns_thread(void *p)
{
	ns_job *j = p;
	if (setns(j->fd, CLONE_NEWNET) != 0) {
		j->rc = cep_err_errno(&j->err, errno,
		    "entering the network namespace (setns)");
		return NULL;
	}
	j->rc = j->fn(j->arg, &j->err);
	return NULL;
}

int cep_netns_run(int fd, cep_netns_fn fn, void *arg, cep_err *err)
{
	ns_job j = {.fd = fd, .fn = fn, .arg = arg};
	pthread_t t;
	int e = pthread_create(&t, NULL, ns_thread, &j);
	if (e != 0)
		return cep_err_errno(err, e, "thread for a network namespace");
	pthread_join(t, NULL);
	if (j.rc != CEP_OK && err != NULL)
		*err = j.err;
	return j.rc;
}

int cep_netns_enter(int fd)
{
	return setns(fd, CLONE_NEWNET);
}
