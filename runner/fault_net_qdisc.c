/*
 * fault_net_qdisc.c - a root qdisc on every interface of a target network
 * namespace, for the network faults that tc does best where the kernel has
 * the qdisc: netem for network-latency, tbf for network-bandwidth.
 *
 * Which mechanism an item gets is decided once, in describe (the undo JSON
 * recorded before injection must match what inject then does), and
 * remembered per item here. The qdiscs carry a handle of the run's own
 * (0xce00 + table ordinal), recorded as mechanism "tc-qdisc": the undo -
 * the runner's revert or lib/undo/undo.c in the delegate - removes a root qdisc
 * only while it still has that handle. A qdisc cannot expire by itself, so
 * the delegate's undo is its only backstop if the runner dies.
 */
#define _GNU_SOURCE
#include "fault_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "params.h"
#include "sink.h"
#include "tc.h"

#define MAX_ITEMS 64

static struct {
	const cep_exp_item *it;
	bool qdisc;
} choice[MAX_ITEMS];

/* The slot of an item (experiments have at most 16 faults, so 64 slots
 * are never exhausted; the last one is shared rather than overflowed). */
static bool *choice_of(const cep_exp_item *it)
{
	for (size_t i = 0; i < MAX_ITEMS; i++)
		if (choice[i].it == it || choice[i].it == NULL) {
			choice[i].it = it;
			return &choice[i].qdisc;
		}
	return &choice[MAX_ITEMS - 1].qdisc;
}

bool runner_net_qdisc_chosen(const cep_exp_item *it)
{
	return *choice_of(it);
}

bool runner_net_qdisc_fits(const cep_exp_item *it, const char *kind,
    const char *optout_env)
{
	if (getenv(optout_env) != NULL ||
	    strcmp(runner_param_str(it, "direction", "egress"), "egress") ||
	    cep_exp_list_len(it, "cidrs") > 0 ||
	    cep_exp_list_len(it, "ports") > 0 || runner_net_target_is_host(it))
		return false;
	bool ok = false;
	cep_err e = {0};
	return cep_tc_kind_available(kind, &ok, &e) == CEP_OK && ok;
}

static uint16_t qdisc_major(unsigned n)
{
	return (uint16_t)(0xce00 + n % 256);
}

static int undo_json(const cep_net_fault *f, json_t **undo, cep_err *err)
{
	int ifs[CEP_TC_MAX_LINKS];
	size_t n = 0;
	int rc = cep_tc_links(f->nsfd, ifs, CEP_TC_MAX_LINKS, &n, err);
	if (rc != CEP_OK)
		return rc;
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_integer(ifs[i]));
	*undo = json_pack("{s:I, s:I, s:s, s:o, s:i}", "netns_dev",
	    (json_int_t)f->id.dev, "netns_inode", (json_int_t)f->id.ino,
	    "netns_path", f->path, "ifindexes", a, "major",
	    (int)qdisc_major(f->n));
	return *undo ? CEP_OK :
	               cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "no memory");
}

int runner_net_qdisc_describe(const cep_exp_item *it, bool use,
    const char *kind, char *target, size_t tlen, json_t **undo, cep_err *err)
{
	*choice_of(it) = use;
	int rc = runner_net_describe(it, target, tlen, undo, err);
	if (rc != CEP_OK || !use)
		return rc;
	json_decref(*undo);
	*undo = NULL;
	cep_net_fault f;
	rc = runner_net_open(it, &f, err);
	if (rc == CEP_OK) {
		rc = undo_json(&f, undo, err);
		close(f.nsfd);
	}
	size_t o = strnlen(target, tlen);
	snprintf(target + o, tlen - o, " (tc %s)", kind);
	return rc;
}

typedef struct qdisc_state {
	cep_net_fault f;
	uint16_t major;
	size_t n;
	int ifindex[CEP_TC_MAX_LINKS];
} qdisc_state;

int runner_net_qdisc_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    const char *kind, cep_net_qdisc_add_fn add, void **state, cep_err *err)
{
	qdisc_state *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "no memory");
	int rc = runner_net_open(it, &s->f, err);
	if (rc == CEP_OK)
		rc = cep_tc_links(s->f.nsfd, s->ifindex, CEP_TC_MAX_LINKS,
		    &s->n, err);
	/* a namespace with only lo (a pod before its CNI, a bare netns): a
	 * qdisc on no interface shapes nothing, and the run would report a
	 * fault that never was */
	if (rc == CEP_OK && s->n == 0)
		rc = cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "%s: network namespace %s has no interface but lo: a %s "
		    "qdisc would shape no traffic",
		    ctx->fault_id, s->f.path, kind);
	s->major = qdisc_major(s->f.n);
	for (size_t i = 0; rc == CEP_OK && i < s->n; i++)
		rc = add(it, s->f.nsfd, s->ifindex[i], s->major, err);
	if (rc != CEP_OK) {
		for (size_t i = 0; i < s->n && s->f.nsfd >= 0; i++)
			cep_tc_root_del(s->f.nsfd, s->ifindex[i], s->major,
			    NULL);
		if (s->f.nsfd >= 0)
			close(s->f.nsfd);
		free(s);
		return rc;
	}
	runner_emit_log(ctx->sink,
	    "%s: %s %x: on %zu interface(s) of "
	    "network namespace %s",
	    ctx->fault_id, kind, s->major, s->n, s->f.path);
	*state = s;
	return CEP_OK;
}

int runner_net_qdisc_revert(void *state, cep_err *err)
{
	qdisc_state *s = state;
	int rc = CEP_OK;
	for (size_t i = 0; i < s->n; i++) {
		int r = cep_tc_root_del(s->f.nsfd, s->ifindex[i], s->major,
		    rc == CEP_OK ? err : NULL);
		if (rc == CEP_OK)
			rc = r;
	}
	close(s->f.nsfd);
	free(s);
	return rc;
}
