/*
 * diskfill.c - the disk-fill undo (see diskfill.h): find the directory
 * that holds the fill file by (dev, inode), remove the file, confirm.
 */
#define _GNU_SOURCE
#include "diskfill.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "log.h"
#include "target.h"
#include "run_id.h"

#define DPATH 4096

typedef struct fill_rec {
	const char *path, *host_path, *ns_path, *name;
	uint64_t mntns, dev, ino;
} fill_rec;

int cep_diskfill_name_ok(const char *run_id, const char *name)
{
	size_t pl = strlen(CEP_DISKFILL_PREFIX), rl = strlen(run_id);
	if (strncmp(name, CEP_DISKFILL_PREFIX, pl) != 0 ||
	    strncmp(name + pl, run_id, rl) != 0 || name[pl + rl] != '-')
		return 0;
	const char *d = name + pl + rl + 1;
	if (*d == '\0' || strlen(d) > 12)
		return 0;
	for (; *d != '\0'; d++)
		if (!isdigit((unsigned char)*d))
			return 0;
	return 1;
}

static int parse(const char *run_id, json_t *j, fill_rec *r, cep_err *err)
{
	json_int_t dev = -1, ino = -1, ns = 0;
	memset(r, 0, sizeof(*r));
	if (json_unpack(j, "{s:s, s:I, s:I, s:s, s?:s, s?:s, s?:I}", "path",
	        &r->path, "dev", &dev, "ino_dir", &ino, "name", &r->name,
	        "host_path", &r->host_path, "ns_path", &r->ns_path, "mntns",
	        &ns) != 0 ||
	    dev < 0 || ino < 0 || ns < 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "disk-fill undo: "
		    "expected {path, dev, ino_dir, name} in the record");
	if (!cep_diskfill_name_ok(run_id, r->name))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "disk-fill undo: "
		    "refusing to remove \"%.100s\": not a fill file of run %s",
		    r->name, run_id);
	if (r->path[0] != '/' || (r->host_path && r->host_path[0] != '/') ||
	    (r->ns_path && r->ns_path[0] != '/'))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "disk-fill undo: paths must be absolute");
	r->dev = (uint64_t)dev;
	r->ino = (uint64_t)ino;
	r->mntns = (uint64_t)ns;
	return CEP_OK;
}

/* 1: dir is the recorded one and the file is now absent; 0: not the
 * recorded directory (or unreachable); -1: it is, but removal failed. */
static int try_dir(const fill_rec *r, const char *dir, cep_err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_dev != r->dev ||
	    (uint64_t)st.st_ino != r->ino) {
		close(fd);
		return 0;
	}
	int rv = 1;
	if (unlinkat(fd, r->name, 0) != 0 && errno != ENOENT) {
		cep_err_set(err, CEP_INTERNAL,
		    "disk-fill undo: removing %.300s/%s:"
		    " %s",
		    dir, r->name, strerror(errno));
		rv = -1;
	} else if (fstatat(fd, r->name, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
	    errno != ENOENT) {
		cep_err_set(err, CEP_INTERNAL,
		    "disk-fill undo: %.300s/%s is "
		    "still there after unlink",
		    dir, r->name);
		rv = -1;
	}
	close(fd);
	return rv;
}

/* Does this mountinfo list the recorded device? ("id parent maj:min ...") */
static bool mountinfo_has_dev(const char *path, uint64_t dev)
{
	char *data = NULL, want[48];
	size_t len;
	if (cep_target_read_kfile(path, 4 << 20, &data, &len, NULL) != CEP_OK)
		return false;
	snprintf(want, sizeof(want), " %u:%u ", major((dev_t)dev),
	    minor((dev_t)dev));
	bool hit = false;
	for (char *l = data; !hit && l != NULL && *l != '\0';) {
		char *nl = strchr(l, '\n');
		if (nl != NULL)
			*nl = '\0';
		char *sp = strchr(l, ' ');
		sp = sp ? strchr(sp + 1, ' ') : NULL; /* before maj:min */
		hit = sp != NULL && strncmp(sp, want, strlen(want)) == 0;
		l = nl ? nl + 1 : NULL;
	}
	free(data);
	return hit;
}

/* Every process still in the recorded mount namespace: try its view of
 * ns_path. *mounted: some such process still has the device mounted. */
static int scan_ns(const fill_rec *r, bool *mounted, cep_err *err)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int rv = 0;
	while (d != NULL && rv == 0 && (de = readdir(d)) != NULL) {
		char p[DPATH];
		struct stat st;
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(p, sizeof(p), "/proc/%s/ns/mnt", de->d_name);
		if (stat(p, &st) != 0 || (uint64_t)st.st_ino != r->mntns)
			continue;
		if (snprintf(p, sizeof(p), "/proc/%s/root%s", de->d_name,
		        r->ns_path) < (int)sizeof(p))
			rv = try_dir(r, p, err);
		snprintf(p, sizeof(p), "/proc/%s/mountinfo", de->d_name);
		if (rv == 0 && !*mounted)
			*mounted = mountinfo_has_dev(p, r->dev);
	}
	if (d != NULL)
		closedir(d);
	return rv;
}

static int undo_rec(const char *run_id, const fill_rec *r, cep_err *err)
{
	int rv = try_dir(r, r->path, err);
	if (rv == 0 && r->host_path != NULL)
		rv = try_dir(r, r->host_path, err);
	bool mounted = false;
	if (rv == 0 && r->ns_path != NULL && r->mntns != 0)
		rv = scan_ns(r, &mounted, err);
	if (rv < 0)
		return err != NULL ? err->code : CEP_INTERNAL;
	if (rv > 0)
		return CEP_OK;
	if (mounted || mountinfo_has_dev("/proc/self/mountinfo", r->dev))
		return cep_err_set(err, CEP_INTERNAL,
		    "disk-fill undo: filesystem "
		    "%u:%u is still mounted but directory %.300s (inode %llu) was "
		    "not found: %s may remain",
		    major((dev_t)r->dev), minor((dev_t)r->dev),
		    r->ns_path ? r->ns_path : r->path,
		    (unsigned long long)r->ino, r->name);
	cep_log_info(run_id,
	    "disk-fill undo: filesystem of %s is gone, and "
	    "%s with it",
	    r->path, r->name);
	return CEP_OK;
}

int cep_diskfill_undo(const char *run_id, const char *undo_json, cep_err *err)
{
	if (run_id == NULL || !cep_run_id_valid(run_id) || undo_json == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "disk-fill undo: no valid run id or undo record");
	json_error_t je;
	json_t *j = json_loadb(undo_json, strnlen(undo_json, 64 * 1024), 0,
	    &je);
	if (j == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "disk-fill undo: "
		    "record is not JSON: %s",
		    je.text);
	fill_rec r;
	int rc = parse(run_id, j, &r, err);
	if (rc == CEP_OK)
		rc = undo_rec(run_id, &r, err);
	json_decref(j);
	return rc;
}
