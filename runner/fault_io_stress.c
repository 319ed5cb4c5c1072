/*
 * fault_io_stress.c - `io-stress`: `workers` child processes that each
 * rewrite a `fileMiB` file in `path` with `writeKiB` writes and fdatasync
 * after every pass, so the storage under path really sees the writes.
 *
 * The file is created with O_TMPFILE (never has a name), or, where the
 * filesystem lacks it, created and unlinked at once: a SIGKILL at any
 * point leaves nothing on disk, so the only thing to undo is the
 * processes (mechanism child-process: SIGKILL + waitpid, PDEATHSIG).
 * With `pid` the directory is the one the target sees: it is opened
 * through /proc/PID/root, i.e. in the target's mount namespace and root;
 * with `pid` or `cgroup` the workers join the target's cgroups first, so
 * the I/O is accounted to the target.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "fault_target.h"
#include "params.h"

#define IO_COMM "cep-io-stress"
/* delegate/kube_pod.h CEP_KPOD_NODEFS */
#define NODEFS "/var/run/cep/nodefs"
#define MAX_WORKERS 64

typedef struct io_stress {
	char cg[512]; /* node targets: the cgroup made for the workers */
	size_t n;
	pid_t pids[];
} io_stress;

typedef struct io_arg {
	int dirfd;
	size_t wlen, flen;
} io_arg;

typedef struct io_params {
	int workers;
	size_t wlen, flen;
	const char *path;
	char dir[4200]; /* what the runner opens */
} io_params;

/* Child: an unnamed file in the directory. Async-signal-safe only. */
static int io_open(int dirfd)
{
	int fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	char name[32] = ".cep-io-";
	size_t k = 8;
	char digits[16];
	int nd = 0;
	for (unsigned v = (unsigned)getpid(); v != 0 && nd < 15; v /= 10)
		digits[nd++] = (char)('0' + v % 10);
	while (nd > 0)
		name[k++] = digits[--nd];
	name[k] = '\0';
	fd = openat(dirfd, name,
	    O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0)
		unlinkat(dirfd, name, 0);
	return fd;
}

static void io_body(const void *arg)
{
	const io_arg *a = arg;
	int fd = io_open(a->dirfd);
	char *buf = mmap(NULL, a->wlen, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fd < 0 || buf == MAP_FAILED)
		_exit(1);
	close(a->dirfd);
	for (size_t i = 0; i < a->wlen; i++)
		buf[i] = (char)(i * 31 + 7); /* not zeroes: no shortcuts */
	for (unsigned pass = 0;; pass++) {
		for (size_t off = 0; off < a->flen; off += a->wlen) {
			buf[0] = (char)pass;
			if (pwrite(fd, buf, a->wlen, (off_t)off) < 0)
				break; /* ENOSPC: keep trying next pass */
		}
		fdatasync(fd);
	}
}

static int read_params(const cep_exp_item *it, io_params *p, cep_err *err)
{
	int64_t w = runner_param_int(it, "workers", 1);
	int64_t wk = runner_param_int(it, "writeKiB", 1024);
	int64_t fm = runner_param_int(it, "fileMiB", 64);
	p->path = runner_param_str(it, "path", "/tmp");
	if (w < 1 || w > MAX_WORKERS || wk < 4 || wk > 65536 || fm < 1 ||
	    fm > 4096)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "io-stress: workers "
		    "1..%d, writeKiB 4..65536, fileMiB 1..4096",
		    MAX_WORKERS);
	if (!runner_fault_path_ok(p->path))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "io-stress: path "
		    "\"%.200s\" must be absolute, without \"..\"",
		    p->path);
	p->workers = (int)w;
	p->wlen = (size_t)wk << 10;
	p->flen = (size_t)fm << 20;
	return CEP_OK;
}

/* The directory as the runner reaches it: the target's view with pid;
 * on a node target the node's `path`, which the delegate mounted at
 * NODEFS (hostPath), never the runner container's read-only root. */
static int open_dir(const cep_target *t, bool node, io_params *p, int *fd,
    cep_err *err)
{
	if (node)
		snprintf(p->dir, sizeof(p->dir), "%s", NODEFS);
	else if (t != NULL && cep_target_pid(t) > 0)
		snprintf(p->dir, sizeof(p->dir), "/proc/%d/root%s",
		    (int)cep_target_pid(t), p->path);
	else
		snprintf(p->dir, sizeof(p->dir), "%s", p->path);
	*fd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "io-stress: "
		    "directory %.300s: %s",
		    p->dir, strerror(errno));
	return CEP_OK;
}

/* Parameters, target and its directory, as describe and inject both
 * see them; on failure nothing is left open. */
static int io_prepare(const cep_exp_item *it, io_params *p, cep_target **t,
    int *fd, cep_err *err)
{
	int rc = read_params(it, p, err);
	if (rc != CEP_OK ||
	    (rc = runner_fault_target_open(it, "io-stress", t, err)) != CEP_OK)
		return rc;
	bool node = runner_fault_on_node(it);
	if ((rc = open_dir(*t, node, p, fd, err)) != CEP_OK) {
		cep_target_free(*t);
		*t = NULL;
	}
	return rc;
}

static int io_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	io_params p;
	cep_target *t;
	int fd, rc = io_prepare(it, &p, &t, &fd, err);
	if (rc != CEP_OK)
		return rc;
	close(fd);
	char where[400];
	runner_fault_target_text(t, where, sizeof(where));
	snprintf(target, tlen, "%d writer(s) in %.300s %s", p.workers, p.dir,
	    where);
	*undo = json_pack("{s:i, s:s, s:s}", "runner_pid", (json_int_t)getpid(),
	    "comm", IO_COMM, "dir", p.dir);
	runner_fault_target_undo(t, *undo);
	cep_target_free(t);
	return CEP_OK;
}

static int spawn_all(const cep_target *t, io_arg *a, int workers, io_stress *h,
    cep_err *err)
{
	for (int i = 0; i < workers; i++) {
		int rc = runner_fault_spawn_in(t, IO_COMM, io_body, a,
		    &h->pids[h->n], err);
		if (rc != CEP_OK) {
			runner_fault_kill_workers(h->pids, h->n, NULL);
			return rc;
		}
		h->n++;
	}
	return CEP_OK;
}

static int io_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	io_params p;
	cep_target *t;
	int fd, rc = io_prepare(it, &p, &t, &fd, err);
	if (rc != CEP_OK)
		return rc;
	io_stress *h = calloc(1,
	    sizeof(*h) + (size_t)p.workers * sizeof(pid_t));
	io_arg a = {.dirfd = fd, .wlen = p.wlen, .flen = p.flen};
	rc = h == NULL ?
	    cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "io-stress: no memory") :
	    spawn_all(t, &a, p.workers, h, err);
	close(fd);
	cep_target_free(t);
	if (h != NULL)
		(void)runner_fault_node_cgroup(it, h->cg, sizeof(h->cg), NULL);
	if (rc != CEP_OK) {
		char cg[512];
		if (runner_fault_node_cgroup(it, cg, sizeof(cg), NULL) ==
		    CEP_OK)
			(void)runner_fault_node_remove(cg, NULL);
		free(h);
		return rc;
	}
	runner_emit_log(ctx->sink,
	    "%s: %d io-stress writer(s) in %s, "
	    "%zu KiB writes over %zu MiB",
	    ctx->fault_id, p.workers, p.dir, p.wlen >> 10, p.flen >> 20);
	*state = h;
	return CEP_OK;
}

static int io_revert(void *state, cep_err *err)
{
	io_stress *h = state;
	int rc = runner_fault_kill_workers(h->pids, h->n, err);
	if (rc == CEP_OK)
		rc = runner_fault_node_remove(h->cg, err);
	free(h);
	return rc;
}

const cep_fault_ops runner_fault_io_stress = {
    .type = "io-stress",
    .mechanism = "child-process",
    .mechanism_of = runner_fault_hog_mechanism,
    .describe = io_describe,
    .inject = io_inject,
    .revert = io_revert,
};
