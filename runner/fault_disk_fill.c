/*
 * fault_disk_fill.c - `disk-fill`: one file `.cep-fill-<run-id>-<n>` in
 * the directory `path`, sized so that the filesystem is `percent` full, or
 * `mib` MiB large (capped at the free space). With `pid` the directory is
 * the one the target sees: opened through /proc/PID/root, i.e. in the
 * target's mount namespace and root.
 *
 * Record before create: describe() opens the directory and puts its
 * (dev, inode), the paths that reach it and the file name into the undo
 * JSON (lib/node/diskfill.h), so the delegate can remove the file when the
 * runner is gone. The space is reserved with fallocate (instant, no data
 * written); filesystems without it get zero writes. Revert = unlink
 * through the directory fd held since inject, then check the name is gone.
 * n is the fault's line in the experiment: stable between describe and
 * inject, unique within the run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "diskfill.h"
#include "fault.h"
#include "fault_target.h"
#include "params.h"
#include "run_id.h"

#define CHUNK (1 << 20)

typedef struct fill_where {
	char dir[4200];      /* as the runner opens it */
	char host[PATH_MAX]; /* the same directory in our namespace, or "" */
	char name[128];
	uint64_t mntns;
	struct stat st;
	int fd;
} fill_where;

typedef struct disk_fill {
	int dirfd;
	bool created;
	char dir[4200];
	char name[128];
} disk_fill;

static int check_params(const cep_exp_item *it, const char **path, cep_err *err)
{
	*path = runner_param_str(it, "path", NULL);
	if (!runner_fault_path_ok(*path))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "disk-fill: path "
		    "\"%.200s\" must be absolute, without \".\" or \"..\"",
		    *path ? *path : "");
	if (cep_exp_has(it, "percent") == cep_exp_has(it, "mib"))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "disk-fill: exactly one of percent and mib");
	const char *run = runner_fault_run_id();
	if (!cep_run_id_valid(run))
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "disk-fill: no run id set (runner_fault_set_run)");
	return CEP_OK;
}

/* Opens the directory (the target's view with pid) and learns what the
 * undo record needs. w->fd open on success. */
static int locate(const cep_exp_item *it, fill_where *w, cep_err *err)
{
	const char *path;
	int rc = check_params(it, &path, err);
	if (rc != CEP_OK)
		return rc;
	int64_t pid;
	if ((rc = runner_fault_target_pid(it, &pid, err)) != CEP_OK)
		return rc;
	cep_target *t = NULL;
	w->mntns = cep_target_mntns_of(0);
	bool self = true;
	if (pid > 0) {
		if ((rc = cep_target_resolve(pid, NULL, &t, err)) != CEP_OK)
			return cep_err_wrap(err, "disk-fill");
		w->mntns = cep_target_mntns_ino(t);
		self = cep_target_mntns_is_self(t);
		cep_target_free(t);
		snprintf(w->dir, sizeof(w->dir), "/proc/%lld/root%s",
		    (long long)pid, path);
	} else {
		snprintf(w->dir, sizeof(w->dir), "%s", path);
	}
	snprintf(w->name, sizeof(w->name), CEP_DISKFILL_PREFIX "%s-%d",
	    runner_fault_run_id(), cep_exp_item_line(it));
	w->fd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->fd < 0 || fstat(w->fd, &w->st) != 0) {
		rc = cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "disk-fill: directory"
		    " %.300s: %s",
		    w->dir, strerror(errno));
		if (w->fd >= 0)
			close(w->fd);
		return rc;
	}
	w->host[0] = '\0';
	if (self && realpath(w->dir, w->host) == NULL)
		w->host[0] = '\0';
	return CEP_OK;
}

static int fill_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	fill_where w;
	int rc = locate(it, &w, err);
	if (rc != CEP_OK)
		return rc;
	close(w.fd);
	if (cep_exp_has(it, "percent"))
		snprintf(target, tlen, "%.300s filled to %lld%%", w.dir,
		    (long long)runner_param_int(it, "percent", 0));
	else
		snprintf(target, tlen, "%.300s + %lld MiB", w.dir,
		    (long long)runner_param_int(it, "mib", 0));
	*undo = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "path", w.dir,
	    "ns_path", runner_param_str(it, "path", "/"), "mntns",
	    (json_int_t)w.mntns, "dev", (json_int_t)w.st.st_dev, "ino_dir",
	    (json_int_t)w.st.st_ino, "name", w.name);
	if (*undo != NULL && w.host[0] != '\0')
		json_object_set_new(*undo, "host_path", json_string(w.host));
	return *undo != NULL ? CEP_OK :
	                       cep_err_set(err, CEP_INTERNAL,
	                           "disk-fill: building the undo record");
}

/* Bytes to add for the requested fill; 0 = already there. */
static int64_t wanted(const cep_exp_item *it, const struct statvfs *sv)
{
	int64_t total = (int64_t)sv->f_blocks * (int64_t)sv->f_frsize;
	int64_t avail = (int64_t)sv->f_bavail * (int64_t)sv->f_frsize;
	int64_t need;
	if (cep_exp_has(it, "percent")) {
		int64_t pct = runner_param_int(it, "percent", 0);
		need = avail - total / 100 * (100 - pct);
	} else {
		need = runner_param_int(it, "mib", 0) << 20;
	}
	if (need > avail)
		need = avail;
	return need > 0 ? need : 0;
}

/* Zero writes where fallocate is not supported (or ran out of space
 * halfway); stops at ENOSPC: "as full as it gets" is the fault. */
static int64_t write_fill(int fd, int64_t need)
{
	static const char zero[CHUNK];
	int64_t done = 0;
	while (done < need) {
		size_t n = need - done < CHUNK ? (size_t)(need - done) : CHUNK;
		ssize_t w = pwrite(fd, zero, n, (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += w;
	}
	fdatasync(fd);
	return done;
}

static int64_t do_fill(int fd, int64_t need)
{
	if (need == 0)
		return 0;
	if (fallocate(fd, 0, 0, (off_t)need) == 0)
		return need;
	return write_fill(fd, need);
}

static int fill_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	fill_where w;
	int rc = locate(it, &w, err);
	if (rc != CEP_OK)
		return rc;
	disk_fill *h = calloc(1, sizeof(*h));
	struct statvfs sv;
	if (h == NULL || fstatvfs(w.fd, &sv) != 0) {
		rc = h == NULL ? cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		                     "disk-fill: no memory") :
		                 cep_err_errno(err, errno, "statvfs");
		close(w.fd);
		free(h);
		return rc;
	}
	h->dirfd = w.fd;
	snprintf(h->dir, sizeof(h->dir), "%s", w.dir);
	snprintf(h->name, sizeof(h->name), "%s", w.name);
	int64_t need = wanted(it, &sv), got = 0;
	if (need > 0) {
		int fd = openat(w.fd, w.name,
		    O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			rc = cep_err_set(err, CEP_INTERNAL,
			    "disk-fill: creating "
			    "%.300s/%s: %s",
			    w.dir, w.name, strerror(errno));
			close(w.fd);
			free(h);
			return rc;
		}
		h->created = true;
		got = do_fill(fd, need);
		close(fd);
	}
	fstatvfs(w.fd, &sv);
	runner_emit_log(ctx->sink,
	    "%s: disk-fill %s/%s: %lld MiB added, "
	    "filesystem %.1f%% used",
	    ctx->fault_id, w.dir, w.name, (long long)(got >> 20),
	    sv.f_blocks ? 100.0 * (double)(sv.f_blocks - sv.f_bavail) /
	            (double)sv.f_blocks :
	                  0.0);
	*state = h;
	return CEP_OK;
}

static int fill_revert(void *state, cep_err *err)
{
	disk_fill *h = state;
	int rc = CEP_OK;
	struct stat st;
	if (unlinkat(h->dirfd, h->name, 0) != 0 && errno != ENOENT)
		rc = cep_err_set(err, CEP_INTERNAL,
		    "disk-fill: removing "
		    "%.300s/%s: %s",
		    h->dir, h->name, strerror(errno));
	else if (fstatat(h->dirfd, h->name, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
	    errno != ENOENT)
		rc = cep_err_set(err, CEP_INTERNAL,
		    "disk-fill: %.300s/%s still "
		    "there after unlink",
		    h->dir, h->name);
	close(h->dirfd);
	free(h);
	return rc;
}

const cep_fault_ops runner_fault_disk_fill = {
    .type = "disk-fill",
    .mechanism = "disk-fill",
    .describe = fill_describe,
    .inject = fill_inject,
    .revert = fill_revert,
};
