/*
 * hostview.c - the policy's facts about the host (hostview.h), read
 * directly or asked of cep-launcher (Launcher/Inspect). One ops table per
 * backend; the policy never knows which one answered.
 */
#define _GNU_SOURCE
#include "hostview.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cep.pb-c.h"
#include "rpc.h"
#include "files.h"
#include "procfs.h"

/* A launcher that does not answer must not hold a submission up for
 * long (the policy runs outside the delegate's lock, but the operator
 * waits). */
#define INSPECT_TIMEOUT_MS 2000

typedef struct hostview_ops {
	const char *name;
	int (*comm)(cep_hostview *, int64_t, char *, size_t, cep_err *);
	int (*netns)(cep_hostview *, int64_t, const char *, cep_netns_id *,
	    bool *, cep_err *);
	int (*fs)(cep_hostview *, int64_t, const char *, cep_hostview_fs *,
	    cep_err *);
} hostview_ops;

struct cep_hostview {
	const hostview_ops *ops;
	cep_rpc_client *c; /* launcher */
	char url[512];
};

/* ---- direct: the delegate's own eyes ---- */

static int direct_comm(cep_hostview *hv, int64_t pid, char *comm, size_t len,
    cep_err *err)
{
	(void)hv;
	if (pid <= 0 || pid > INT_MAX ||
	    !cep_procfs_info((int)pid, comm, len, NULL))
		return cep_err_set(err, CEP_NOT_FOUND, "no such process");
	return CEP_OK;
}

static int direct_netns(cep_hostview *hv, int64_t pid, const char *netns,
    cep_netns_id *id, bool *is_host, cep_err *err)
{
	(void)hv;
	int fd;
	int rv = cep_netns_open(pid, netns, &fd, id, NULL, 0, err);
	if (rv != CEP_OK)
		return rv;
	close(fd);
	*is_host = cep_netns_is_host(id);
	return CEP_OK;
}

static int direct_fs(cep_hostview *hv, int64_t pid, const char *path,
    cep_hostview_fs *fs, cep_err *err)
{
	(void)hv;
	char dir[4200];
	struct statvfs sv;
	memset(fs, 0, sizeof(*fs));
	if (pid > 0)
		snprintf(dir, sizeof(dir), "/proc/%lld/root%s", (long long)pid,
		    path);
	else
		snprintf(dir, sizeof(dir), "%s", path);
	if (statvfs(dir, &sv) != 0)
		return cep_err_set(err, CEP_FAILED_PRECONDITION, "%s",
		    strerror(errno));
	fs->blocks = sv.f_blocks;
	fs->bavail = sv.f_bavail;
	fs->frsize = sv.f_frsize;
	if (pid <= 0 && realpath(path, fs->real) == NULL)
		fs->real[0] = '\0';
	return CEP_OK;
}

static const hostview_ops direct_ops = {
    .name = "direct",
    .comm = direct_comm,
    .netns = direct_netns,
    .fs = direct_fs,
};

static cep_hostview direct_view = {.ops = &direct_ops};

cep_hostview *delegate_hostview_direct(void)
{
	return &direct_view;
}

/* ---- launcher: Launcher/Inspect ---- */

static int inspect(cep_hostview *hv, Cep__V1__LauncherInspect *q,
    Cep__V1__LauncherFacts **out, cep_err *err)
{
	ProtobufCMessage *m = NULL;
	int rv = cep_rpc_invoke(hv->c, "cep.v1.Launcher/Inspect", &q->base,
	    &cep__v1__launcher_facts__descriptor, &m, INSPECT_TIMEOUT_MS, err);
	if (rv != CEP_OK)
		return cep_err_wrap(err, "asking cep-launcher at %s", hv->url);
	*out = (Cep__V1__LauncherFacts *)m;
	return CEP_OK;
}

static int launcher_comm(cep_hostview *hv, int64_t pid, char *comm, size_t len,
    cep_err *err)
{
	/* beyond the kernel's limit no process can exist: not worth a call */
	if (pid <= 0 || pid > 4194304)
		return cep_err_set(err, CEP_NOT_FOUND, "no such process");
	Cep__V1__LauncherInspect q = CEP__V1__LAUNCHER_INSPECT__INIT;
	q.pid = (int32_t)pid;
	Cep__V1__LauncherFacts *f = NULL;
	int rv = inspect(hv, &q, &f, err);
	if (rv != CEP_OK)
		return rv;
	if (f->exists)
		snprintf(comm, len, "%s", f->comm);
	else
		rv = cep_err_set(err, CEP_NOT_FOUND, "no such process");
	protobuf_c_message_free_unpacked(&f->base, NULL);
	return rv;
}

/* The delegate's own namespace: "the appliance's own" includes it even
 * where the launcher runs in another. */
static bool own_netns(const cep_netns_id *id)
{
	struct stat st;
	return stat("/proc/self/ns/net", &st) == 0 &&
	    (uint64_t)st.st_dev == id->dev && (uint64_t)st.st_ino == id->ino;
}

/* A netns target lib/target/netns.c would try to open. */
static bool netns_target_ok(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return false;
	return s[0] == '/' ||
	    (strnlen(s, 256) <= 255 && strchr(s, '/') == NULL &&
	        strcmp(s, ".") != 0 && strcmp(s, "..") != 0);
}

static int launcher_netns(cep_hostview *hv, int64_t pid, const char *netns,
    cep_netns_id *id, bool *is_host, cep_err *err)
{
	Cep__V1__LauncherInspect q = CEP__V1__LAUNCHER_INSPECT__INIT;
	/* what the launcher would refuse as a field, refused here in the
	 * words of lib/target/netns.c */
	if (pid > 4194304)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "pid %lld out of range", (long long)pid);
	if (pid <= 0 && !netns_target_ok(netns))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "network target: "
		    "give a pid, a netns name (no '/') or an absolute path");
	q.netns = true;
	q.pid = pid > 0 ? (int32_t)pid : 0;
	if (pid <= 0 && netns != NULL) {
		q.netns_name.data = (uint8_t *)netns;
		q.netns_name.len = strlen(netns);
	}
	Cep__V1__LauncherFacts *f = NULL;
	int rv = inspect(hv, &q, &f, err);
	if (rv != CEP_OK)
		return rv;
	if (f->netns_error[0] != '\0') {
		rv = cep_err_set(err,
		    f->netns_code > 0 && f->netns_code <= 16 ? f->netns_code :
		                                               CEP_INTERNAL,
		    "%s", f->netns_error);
	} else {
		id->dev = f->netns_dev;
		id->ino = f->netns_ino;
		*is_host = f->netns_host || own_netns(id);
	}
	protobuf_c_message_free_unpacked(&f->base, NULL);
	return rv;
}

static int launcher_fs(cep_hostview *hv, int64_t pid, const char *path,
    cep_hostview_fs *fs, cep_err *err)
{
	memset(fs, 0, sizeof(*fs));
	if (pid > 4194304)
		return cep_err_set(err, CEP_FAILED_PRECONDITION, "%s",
		    strerror(ENOENT));
	Cep__V1__LauncherInspect q = CEP__V1__LAUNCHER_INSPECT__INIT;
	q.pid = pid > 0 ? (int32_t)pid : 0;
	q.path.data = (uint8_t *)path;
	q.path.len = strlen(path);
	Cep__V1__LauncherFacts *f = NULL;
	int rv = inspect(hv, &q, &f, err);
	if (rv != CEP_OK)
		return rv;
	if (f->path_errno != 0) {
		rv = cep_err_set(err, CEP_FAILED_PRECONDITION, "%s",
		    strerror(f->path_errno));
	} else {
		fs->blocks = f->f_blocks;
		fs->bavail = f->f_bavail;
		fs->frsize = f->f_frsize;
		snprintf(fs->real, sizeof(fs->real), "%s", f->real_path);
	}
	protobuf_c_message_free_unpacked(&f->base, NULL);
	return rv;
}

static const hostview_ops launcher_ops = {
    .name = "launcher",
    .comm = launcher_comm,
    .netns = launcher_netns,
    .fs = launcher_fs,
};

int delegate_hostview_launcher_new(const char *url, cep_hostview **out,
    cep_err *err)
{
	cep_hostview *hv = calloc(1, sizeof(*hv));
	if (hv == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	hv->ops = &launcher_ops;
	int rv = cep_files_path(hv->url, sizeof(hv->url), err, "%s", url);
	if (rv == CEP_OK)
		rv = cep_rpc_client_new(&hv->c, url, NULL, err);
	if (rv != CEP_OK) {
		free(hv);
		return cep_err_wrap(err, "the launcher's host view");
	}
	*out = hv;
	return CEP_OK;
}

void delegate_hostview_free(cep_hostview *hv)
{
	if (hv == NULL || hv == &direct_view)
		return;
	cep_rpc_client_free(hv->c);
	free(hv);
}

const char *delegate_hostview_name(const cep_hostview *hv)
{
	return hv->ops->name;
}

int delegate_hostview_comm(cep_hostview *hv, int64_t pid, char *comm,
    size_t len, cep_err *err)
{
	return hv->ops->comm(hv, pid, comm, len, err);
}

int delegate_hostview_netns(cep_hostview *hv, int64_t pid, const char *netns,
    cep_netns_id *id, bool *is_host, cep_err *err)
{
	return hv->ops->netns(hv, pid, netns, id, is_host, err);
}

int delegate_hostview_fs_of(cep_hostview *hv, int64_t pid, const char *path,
    cep_hostview_fs *fs, cep_err *err)
{
	return hv->ops->fs(hv, pid, path, fs, err);
}
