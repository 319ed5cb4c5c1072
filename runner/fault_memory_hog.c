/*
 * fault_memory_hog.c - `memory-hog`: one child process that maps `mib` MiB
 * and writes to every page (so resident memory really grows), then sleeps.
 * With a target (`pid` or `cgroup`) the child is moved into the target's
 * cgroups before it touches a page, so the memory is charged there
 * (memory.current on v2; memory.usage_in_bytes of the pid's v1 memory
 * cgroup on hybrid hosts) and counts against the target's limits.
 * Reverted by SIGKILL + waitpid, which gives the memory back.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fault.h"
#include "fault_target.h"
#include "params.h"

#define HOG_COMM "cep-mem-hog"
#define MAX_MIB (64 * 1024)

typedef struct mem_hog {
	char cg[512]; /* node targets: the cgroup made for the worker */
	pid_t pid;
} mem_hog;

typedef struct mem_arg {
	size_t len, page; /* computed before fork */
} mem_arg;

/* Child: mmap, touch, pause - all async-signal-safe. */
static void mem_body(const void *arg)
{
	const mem_arg *a = arg;
	char *p = mmap(NULL, a->len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(1);
	for (size_t off = 0; off < a->len; off += a->page)
		p[off] = 1;
	for (;;)
		pause();
}

static int read_mib(const cep_exp_item *it, int64_t *mib, cep_err *err)
{
	*mib = runner_param_int(it, "mib", 0);
	if (*mib < 1 || *mib > MAX_MIB)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "memory-hog: mib %lld out of range 1..%d", (long long)*mib,
		    MAX_MIB);
	return CEP_OK;
}

static int mem_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	int64_t mib;
	int rc = read_mib(it, &mib, err);
	if (rc != CEP_OK)
		return rc;
	char what[64];
	snprintf(what, sizeof(what), "%lld MiB", (long long)mib);
	return runner_fault_hog_describe(it, "memory-hog", HOG_COMM, what,
	    target, tlen, undo, err);
}

static int mem_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	int64_t mib;
	int rc = read_mib(it, &mib, err);
	if (rc != CEP_OK)
		return rc;
	cep_target *t;
	if ((rc = runner_fault_target_open(it, "memory-hog", &t, err)) !=
	    CEP_OK)
		return rc;
	mem_hog *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		cep_target_free(t);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "memory-hog: no memory");
	}
	mem_arg a = {.len = (size_t)mib << 20,
	    .page = (size_t)sysconf(_SC_PAGESIZE)};
	(void)runner_fault_node_cgroup(it, h->cg, sizeof(h->cg), NULL);
	rc = runner_fault_spawn_in(t, HOG_COMM, mem_body, &a, &h->pid, err);
	cep_target_free(t);
	if (rc != CEP_OK) {
		(void)runner_fault_node_remove(h->cg, NULL);
		free(h);
		return rc;
	}
	runner_emit_log(ctx->sink, "%s: memory-hog pid %d filling %lld MiB",
	    ctx->fault_id, (int)h->pid, (long long)mib);
	*state = h;
	return CEP_OK;
}

static int mem_revert(void *state, cep_err *err)
{
	mem_hog *h = state;
	int rc = runner_fault_kill_workers(&h->pid, 1, err);
	if (rc == CEP_OK)
		rc = runner_fault_node_remove(h->cg, err);
	free(h);
	return rc;
}

const cep_fault_ops runner_fault_memory_hog = {
    .type = "memory-hog",
    .mechanism = "child-process",
    .mechanism_of = runner_fault_hog_mechanism,
    .describe = mem_describe,
    .inject = mem_inject,
    .revert = mem_revert,
};
