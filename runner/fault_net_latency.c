/*
 * fault_net_latency.c - `network-latency` through NFQUEUE: the fault's
 * table sends matching packets to a netfilter queue with the xtables
 * NFQUEUE target (revision 3, bypass) - this kernel family may lack both
 * the nft queue expression and sch_netem - and a worker process
 * ("cep-netq", forked from the runner, PDEATHSIG) holds each packet for
 * delay +- jitter before accepting it.
 *
 * Fail-safe by construction: bypass lets packets through when no worker
 * listens, the queue is fail-open when full, the rule expires with the
 * armed set, and the revert (or the delegate's undo) deletes the table.
 *
 * Where the kernel has sch_netem (probed, lib/tc.h) and the fault is
 * plain egress latency (no cidrs, no ports), a root netem qdisc on each
 * of the namespace's interfaces does the job instead, recorded as
 * mechanism "tc-qdisc" (netem cannot expire by itself; the undo removes
 * the qdiscs by their handle).
 *
 * The queue socket is opened and configured by the runner on a thread in
 * the target namespace (so errors are reported before injection counts);
 * the worker inherits it, enters the namespace too, and runs a loop that
 * allocates nothing (a forked child of a threaded process): libmnl and
 * libnetfilter_queue's message helpers work on stack buffers.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fault_net.h"
#include "params.h"
#include "tc.h"

#define NETQ_COMM "cep-netq"
#define QUEUE_BASE 51200
#define QUEUE_MAXLEN 16384
#define HEAP_MAX 65536
#define NLBUF 65536

typedef struct netq_arg {
	int sock, nsfd;
	uint16_t qnum;
	int64_t delay_ns, jitter_ns;
} netq_arg;

/* ---- runner side: the queue socket ---- */

static int nl_send_ack(int sock, struct nlmsghdr *nlh, cep_err *err)
{
	nlh->nlmsg_flags |= NLM_F_ACK;
	if (send(sock, nlh, nlh->nlmsg_len, 0) < 0)
		return cep_err_errno(err, errno, "nfqueue: configuring the queue");
	char buf[8192];
	ssize_t n = recv(sock, buf, sizeof(buf), 0);
	if (n < 0)
		return cep_err_errno(err, errno, "nfqueue: configuring the queue");
	if (mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, 0, NULL, NULL) < 0)
		return cep_err_errno(err, errno, "nfqueue: configuring the queue");
	return CEP_OK;
}

static int queue_open(void *arg, cep_err *err)
{
	netq_arg *a = arg;
	a->sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (a->sock < 0)
		return cep_err_errno(err, errno, "nfqueue: netlink socket");
	int big = 8 << 20, one = 1;
	setsockopt(a->sock, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	setsockopt(a->sock, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	if (bind(a->sock, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return cep_err_errno(err, errno, "nfqueue: bind");
	char buf[1024];
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, a->qnum);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
	nlh->nlmsg_seq = 1;
	int rc = nl_send_ack(a->sock, nlh, err);
	if (rc != CEP_OK)
		return cep_err_wrap(err, "queue %u busy or unavailable", a->qnum);
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, a->qnum);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_META, 0);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, QUEUE_MAXLEN);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_FAIL_OPEN));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_FAIL_OPEN));
	nlh->nlmsg_seq = 2;
	return nl_send_ack(a->sock, nlh, err);
}

/* ---- worker side: no allocation, no locks ---- */

typedef struct held {
	int64_t due;
	uint32_t id;
} held;

static held heap[HEAP_MAX];
static size_t nheld;
static uint64_t rng;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

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

static void verdict(const netq_arg *a, uint32_t id)
{
	char buf[256];
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, a->qnum);
	nfq_nlmsg_verdict_put(nlh, (int)id, NF_ACCEPT);
	(void)send(a->sock, nlh, nlh->nlmsg_len, 0);
}

static const netq_arg *cur;

static int packet_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)data;
	struct nlattr *attr[NFQA_MAX + 1] = {0};
	if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL)
		return MNL_CB_OK;
	struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(
	    attr[NFQA_PACKET_HDR]);
	uint32_t id = ntohl(ph->packet_id);
	int64_t d = cur->delay_ns;
	if (cur->jitter_ns > 0)
		d += (int64_t)(next_rand() % (uint64_t)(2 * cur->jitter_ns + 1)) -
		    cur->jitter_ns;
	if (d < 0)
		d = 0;
	if (nheld >= HEAP_MAX) {
		verdict(cur, id);   /* full: let it through at once */
		return MNL_CB_OK;
	}
	heap_push((held){.due = now_ns() + d, .id = id});
	return MNL_CB_OK;
}

static void netq_body(const void *p)
{
	static char buf[NLBUF];
	const netq_arg *a = p;
	cur = a;
	rng = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
	if (setns(a->nsfd, CLONE_NEWNET) != 0)
		_exit(3);
	for (;;) {
		int64_t t = now_ns();
		while (nheld > 0 && heap[0].due <= t)
			verdict(a, heap_pop().id);
		struct timespec to, *top = NULL;
		if (nheld > 0) {
			int64_t w = heap[0].due - t;
			to.tv_sec = w / 1000000000LL;
			to.tv_nsec = w % 1000000000LL;
			top = &to;
		}
		struct pollfd pfd = {.fd = a->sock, .events = POLLIN};
		if (ppoll(&pfd, 1, top, NULL) <= 0)
			continue;
		for (;;) {
			ssize_t n = recv(a->sock, buf, sizeof(buf), MSG_DONTWAIT);
			if (n <= 0)
				break;
			mnl_cb_run(buf, (size_t)n, 0, 0, packet_cb, NULL);
		}
	}
}

/* ---- the netem path (fault_net_qdisc.c) ---- */

static int netem_add(const cep_exp_item *it, int nsfd, int ifindex,
    uint16_t major, cep_err *err)
{
	int64_t d = cep_runner_param_ms(it, "delay", 0) * 1000000LL;
	int64_t j = cep_runner_param_ms(it, "jitter", 0) * 1000000LL;
	return cep_tc_netem_add(nsfd, ifindex, major, d, j, err);
}

static const char *latency_mechanism(const cep_exp_item *it)
{
	return cep_net_qdisc_chosen(it) ? "tc-qdisc" : "nftables";
}

static int latency_describe(const cep_exp_item *it, char *target,
    size_t tlen, json_t **undo, cep_err *err)
{
	return cep_net_qdisc_describe(it, cep_net_qdisc_fits(it, "netem",
	    "CEP_NET_NO_NETEM"), "netem", target, tlen, undo, err);
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
	cep_net_fault *f = calloc(1, sizeof(*f));
	char *buf = malloc(CEP_NET_CMD_MAX);
	if (f == NULL || buf == NULL) {
		free(f);
		free(buf);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "no memory");
	}
	int64_t delay = cep_runner_param_ms(it, "delay", 0);
	int64_t jitter = cep_runner_param_ms(it, "jitter", 0);
	size_t off = 0;
	int rc = cep_net_open(it, f, err);
	netq_arg a = {.sock = -1, .nsfd = f->nsfd,
	    .qnum = (uint16_t)(QUEUE_BASE + f->n % 1000),
	    .delay_ns = delay * 1000000LL, .jitter_ns = jitter * 1000000LL};
	if (rc == CEP_OK)
		rc = cep_net_table_cmds(it, f, buf, CEP_NET_CMD_MAX, &off, err);
	if (rc == CEP_OK)
		rc = cep_nft_run(f->nsfd, buf, err);
	free(buf);
	bool table = rc == CEP_OK;
	if (rc == CEP_OK)
		rc = cep_netns_run(f->nsfd, queue_open, &a, err);
	if (rc == CEP_OK)
		rc = cep_fault_spawn_worker(NETQ_COMM, netq_body, &a, &f->worker,
		    err);
	if (a.sock >= 0)
		close(a.sock);   /* the worker holds the queue now */
	f->worker_grace_ms = delay + jitter + 50;
	static const char *const chains[] = {"out", "in"};
	for (int i = 0; rc == CEP_OK && i < 2; i++)
		if (cep_net_dir_has(it, chains[i]))
			rc = cep_nft_add_nfqueue_rule(f->nsfd, f->table, chains[i],
			    a.qnum, err);
	if (rc != CEP_OK) {
		if (table || f->worker > 0) {
			f->worker_grace_ms = 0;
			cep_net_revert(f, NULL);
		}
		cep_net_free(f);
		return rc;
	}
	cep_runner_emit_log(ctx->sink, "%s: table %s in network namespace %s, "
	    "NFQUEUE %u, worker pid %d: delay %lldms +- %lldms", ctx->fault_id,
	    f->table, f->path, a.qnum, (int)f->worker, (long long)delay,
	    (long long)jitter);
	*state = f;
	return CEP_OK;
}

static int latency_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	lat_state *ls = calloc(1, sizeof(*ls));
	if (ls == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "no memory");
	ls->netem = cep_net_qdisc_chosen(it);
	int rc = ls->netem ?
	    cep_net_qdisc_inject(it, ctx, "netem", netem_add, &ls->impl, err) :
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
	int rc;
	if (ls->netem) {
		rc = cep_net_qdisc_revert(ls->impl, err);
	} else {
		cep_net_fault *f = ls->impl;
		rc = cep_net_revert(f, err);
		cep_net_free(f);
	}
	free(ls);
	return rc;
}

const cep_fault_ops cep_fault_net_latency = {
	.type = "network-latency",
	.mechanism = "nftables",
	.mechanism_of = latency_mechanism,
	.describe = latency_describe,
	.inject = latency_inject,
	.revert = latency_revert,
};
