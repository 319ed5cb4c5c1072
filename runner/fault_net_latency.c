/*
 * fault_net_latency.c - `network-latency` through NFQUEUE: the fault's
 * table sends matching packets to a netfilter queue (fault_net_queue.c:
 * xtables NFQUEUE target, revision 3, bypass - this kernel family may lack
 * both the nft queue expression and sch_netem) and the "cep-netq" worker
 * holds each packet for delay +- jitter before accepting it. Copy mode
 * "meta": payloads never cross to user space.
 *
 * Where the kernel has sch_netem (probed, lib/node/tc.h) and the fault is
 * plain egress latency (no cidrs, no ports), a root netem qdisc on each
 * of the namespace's interfaces does the job instead, recorded as
 * mechanism "tc-qdisc" (netem cannot expire by itself; the undo removes
 * the qdiscs by their handle).
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault_net_int.h"
#include "params.h"
#include "tc.h"

#define HEAP_MAX 65536

/* ---- worker side: no allocation, no locks ---- */

typedef struct held {
	int64_t due;
	uint32_t id;
} held;

static held heap[HEAP_MAX];
static size_t nheld;

static void heap_push(held h)
{
	size_t i = nheld++;
	while (i > 0 && heap[(i - 1) / 2].due > h.due) {
		heap[i] = heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	heap[i] = h;
}

static held heap_pop(void)
{
	held top = heap[0], last = heap[--nheld];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= nheld)
			break;
		if (c + 1 < nheld && heap[c + 1].due < heap[c].due)
			c++;
		if (heap[c].due >= last.due)
			break;
		heap[i] = heap[c];
		i = c;
	}
	if (nheld > 0)
		heap[i] = last;
	return top;
}

void runner_netq_delay_cb(const cep_netq *q, uint32_t id,
    struct nlattr *const *attr)
{
	(void)attr;
	const lat_arg *a = q->priv;
	int64_t d = a->delay_ns;
	if (a->jitter_ns > 0)
		d += (int64_t)(runner_netq_rand() %
		         (uint64_t)(2 * a->jitter_ns + 1)) -
		    a->jitter_ns;
	if (d < 0)
		d = 0;
	if (nheld >= HEAP_MAX) {
		runner_netq_accept(q, id, NULL, 0); /* full: let it through */
		return;
	}
	heap_push((held){.due = runner_netq_now_ns() + d, .id = id});
}

static void delay_loop(const cep_netq *q)
{
	for (;;) {
		int64_t t = runner_netq_now_ns();
		while (nheld > 0 && heap[0].due <= t)
			runner_netq_accept(q, heap_pop().id, NULL, 0);
		struct timespec to, *top = NULL;
		if (nheld > 0) {
			int64_t w = heap[0].due - t;
			to.tv_sec = w / 1000000000LL;
			to.tv_nsec = w % 1000000000LL;
			top = &to;
		}
		struct pollfd pfd = {.fd = q->sock, .events = POLLIN};
		if (ppoll(&pfd, 1, top, NULL) > 0)
			runner_netq_drain(q, runner_netq_delay_cb);
	}
}

/* ---- the netem path (fault_net_qdisc.c) ---- */

static int netem_add(const cep_exp_item *it, int nsfd, int ifindex,
    uint16_t major, cep_err *err)
{
	int64_t d = runner_param_ms(it, "delay", 0) * 1000000LL;
	int64_t j = runner_param_ms(it, "jitter", 0) * 1000000LL;
	return cep_tc_netem_add(nsfd, ifindex, major, d, j, err);
}

static const char *latency_mechanism(const cep_exp_item *it)
{
	return runner_net_qdisc_chosen(it) ? "tc-qdisc" : "nftables";
}

static int latency_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	return runner_net_qdisc_describe(it,
	    runner_net_qdisc_fits(it, "netem", "CEP_NET_NO_NETEM"), "netem",
	    target, tlen, undo, err);
}

/* ---- the fault ---- */

/* state: a qdisc state (netem) or a cep_net_fault (NFQUEUE), told apart
 * by this tag in front of both. */
typedef struct lat_state {
	bool netem;
	void *impl;
} lat_state;

static int nfq_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	int64_t delay = runner_param_ms(it, "delay", 0);
	int64_t jitter = runner_param_ms(it, "jitter", 0);
	lat_arg a = {.delay_ns = delay * 1000000LL,
	    .jitter_ns = jitter * 1000000LL};
	cep_netq_spec spec = {.body = delay_loop,
	    .priv = &a,
	    .grace_ms = delay + jitter + 50};
	char what[96];
	snprintf(what, sizeof(what), "delay %lldms +- %lldms", (long long)delay,
	    (long long)jitter);
	return runner_netq_inject(it, ctx, &spec, what, state, err);
}

static int latency_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	lat_state *ls = calloc(1, sizeof(*ls));
	if (ls == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "no memory");
	ls->netem = runner_net_qdisc_chosen(it);
	int rc = ls->netem ? runner_net_qdisc_inject(it, ctx, "netem",
	                         netem_add, &ls->impl, err) :
	                     nfq_inject(it, ctx, &ls->impl, err);
	if (rc != CEP_OK) {
		free(ls);
		return rc;
	}
	*state = ls;
	return CEP_OK;
}

static int latency_revert(void *state, cep_err *err)
{
	lat_state *ls = state;
	int rc = ls->netem ? runner_net_qdisc_revert(ls->impl, err) :
	                     runner_net_revert_free(ls->impl, err);
	free(ls);
	return rc;
}

const cep_fault_ops runner_fault_net_latency = {
    .type = "network-latency",
    .mechanism = "nftables",
    .mechanism_of = latency_mechanism,
    .describe = latency_describe,
    .inject = latency_inject,
    .revert = latency_revert,
};
