/*
 * fault_net_queue.c - the NFQUEUE plumbing shared by network-latency
 * (fault_net_latency.c) and network-corrupt / network-duplicate
 * (fault_net_mangle.c): the fault's table, the queue socket configured in
 * the target namespace, the "cep-netq" worker, the xtables NFQUEUE rule
 * (lib/node/nft.h, revision 3, bypass), and the worker-side helpers.
 *
 * Fail-safe by construction: bypass lets packets through when no worker
 * listens, the queue is fail-open when full, the rule expires with the
 * armed set, and the revert (or the delegate's undo) deletes the table.
 *
 * The queue socket (and network-duplicate's raw sockets) are opened by the
 * runner on a thread in the target namespace, so errors are reported
 * before injection counts; the worker inherits them, enters the namespace
 * too, and runs a loop that allocates nothing (a forked child of a
 * threaded process): libmnl and libnetfilter_queue's message helpers work
 * on static or stack buffers.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fault_net.h"

#define QUEUE_MAXLEN 16384
/* Largest packet copied to user space (the kernel segments GSO packets
 * first, as the queue does not ask for NFQA_CFG_F_GSO). */
#define COPY_RANGE 0xffff
/* One queued message: a whole packet plus its attributes. */
#define NLBUF (COPY_RANGE + 8192)

/* ---- runner side: the queue socket ---- */

static int nl_send_ack(int sock, struct nlmsghdr *nlh, cep_err *err)
{
	nlh->nlmsg_flags |= NLM_F_ACK;
	if (send(sock, nlh, nlh->nlmsg_len, 0) < 0)
		return cep_err_errno(err, errno,
		    "nfqueue: configuring the queue");
	char buf[8192];
	ssize_t n = recv(sock, buf, sizeof(buf), 0);
	if (n < 0)
		return cep_err_errno(err, errno,
		    "nfqueue: configuring the queue");
	if (mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, 0, NULL, NULL) < 0)
		return cep_err_errno(err, errno,
		    "nfqueue: configuring the queue");
	return CEP_OK;
}

/* Raw sockets for injected copies, marked so the table skips them.
 * IPPROTO_RAW implies IP_HDRINCL; IPv6 is optional (no IPv6 here). */
static int raw_open(cep_netq *q, cep_err *err)
{
	uint32_t mark = CEP_NET_DUP_MARK;
	q->raw4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (q->raw4 < 0)
		return cep_err_errno(err, errno, "raw socket for duplicates");
	if (setsockopt(q->raw4, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0)
		return cep_err_errno(err, errno, "SO_MARK on the raw socket");
	q->raw6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (q->raw6 >= 0 &&
	    setsockopt(q->raw6, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) !=
	        0) {
		close(q->raw6);
		q->raw6 = -1;
	}
	return CEP_OK;
}

static int queue_open(void *arg, cep_err *err)
{
	cep_netq *q = arg;
	q->sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC,
	    NETLINK_NETFILTER);
	if (q->sock < 0)
		return cep_err_errno(err, errno, "nfqueue: netlink socket");
	int big = 8 << 20, one = 1;
	setsockopt(q->sock, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	setsockopt(q->sock, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	if (bind(q->sock, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return cep_err_errno(err, errno, "nfqueue: bind");
	char buf[1024];
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->qnum);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
	nlh->nlmsg_seq = 1;
	int rc = nl_send_ack(q->sock, nlh, err);
	if (rc != CEP_OK)
		return cep_err_wrap(err, "queue %u busy or unavailable",
		    q->qnum);
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->qnum);
	/* copy mode packet also makes the kernel complete a partial
	 * (offloaded) checksum before the copy: what the worker sees and
	 * hands back carries the real checksum */
	nfq_nlmsg_cfg_put_params(nlh,
	    q->copy_packet ? NFQNL_COPY_PACKET : NFQNL_COPY_META,
	    q->copy_packet ? COPY_RANGE : 0);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, QUEUE_MAXLEN);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_FAIL_OPEN));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_FAIL_OPEN));
	nlh->nlmsg_seq = 2;
	rc = nl_send_ack(q->sock, nlh, err);
	if (rc == CEP_OK && q->raw)
		rc = raw_open(q, err);
	return rc;
}

static void close_fds(cep_netq *q)
{
	int *fds[] = {&q->sock, &q->raw4, &q->raw6};
	for (size_t i = 0; i < 3; i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
}

/* ---- worker side: no allocation, no locks ---- */

static uint64_t rng;

int64_t runner_netq_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

uint64_t runner_netq_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

void runner_netq_accept(const cep_netq *q, uint32_t id, const void *pkt,
    size_t len)
{
	static char buf[NLBUF];
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, q->qnum);
	nfq_nlmsg_verdict_put(nlh, (int)id, NF_ACCEPT);
	if (pkt != NULL && len <= COPY_RANGE)
		nfq_nlmsg_verdict_put_pkt(nlh, pkt, (uint32_t)len);
	(void)send(q->sock, nlh, nlh->nlmsg_len, 0);
}

typedef struct drain_job {
	const cep_netq *q;
	cep_netq_packet_fn cb;
} drain_job;

static int packet_of(const struct nlmsghdr *nlh, void *data)
{
	const drain_job *j = data;
	struct nlattr *attr[NFQA_MAX + 1] = {0};
	if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL)
		return MNL_CB_OK;
	struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(
	    attr[NFQA_PACKET_HDR]);
	j->cb(j->q, ntohl(ph->packet_id), attr);
	return MNL_CB_OK;
}

/* libmnl's mnl_nlmsg_ok compares nlmsg_len as a signed int, so a length
 * of 2^31 or more would pass it and be read past the buffer. The kernel
 * never writes one; a buffer with any length that does not fit is
 * dropped whole rather than trusted. */
static bool lengths_fit(const char *buf, size_t n)
{
	size_t off = 0;
	while (n - off >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr h;
		memcpy(&h, buf + off, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > n - off)
			return false;
		off += MNL_ALIGN(h.nlmsg_len);
		if (off > n)
			return true; /* the last message's padding */
	}
	return true;
}

void runner_netq_drain(const cep_netq *q, cep_netq_packet_fn cb)
{
	static char buf[NLBUF];
	drain_job j = {.q = q, .cb = cb};
	for (;;) {
		ssize_t n = recv(q->sock, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			return;
		if (lengths_fit(buf, (size_t)n))
			mnl_cb_run(buf, (size_t)n, 0, 0, packet_of, &j);
	}
}

static void (*worker_loop)(const cep_netq *q);

static void worker_main(const void *p)
{
	const cep_netq *q = p;
	rng = (uint64_t)runner_netq_now_ns() ^ ((uint64_t)getpid() << 32) ^
	    0x9e3779b97f4a7c15ULL;
	if (cep_netns_enter(q->nsfd) != 0)
		_exit(3);
	worker_loop(q);
	_exit(0);
}

/* ---- the fault ---- */

/* The table with its chains and filters; network-duplicate's copies
 * carry CEP_NET_DUP_MARK and pass the egress chain before the queue
 * rule (pass_mark). The queue rules come after the worker. */
static int make_table(const cep_netq_spec *spec, cep_net_fault *f,
    uint16_t qnum, cep_nft_spec *s, cep_err *err)
{
	s->action = CEP_NFT_QUEUE;
	s->qnum = qnum;
	if (spec->raw)
		s->pass_mark = CEP_NET_DUP_MARK;
	return cep_nft_create(f->nsfd, s, err);
}

int runner_netq_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    const cep_netq_spec *spec, const char *what, void **state, cep_err *err)
{
	cep_net_fault *f;
	cep_nft_spec *s;
	int rc = runner_net_prepare(it, &f, &s, err);
	if (rc != CEP_OK)
		return rc;
	cep_netq q = {.sock = -1,
	    .raw4 = -1,
	    .raw6 = -1,
	    .nsfd = f->nsfd,
	    .qnum = (uint16_t)(CEP_NETQ_BASE + f->n % 1000),
	    .copy_packet = spec->copy_packet,
	    .raw = spec->raw,
	    .priv = spec->priv};
	rc = make_table(spec, f, q.qnum, s, err);
	bool table = rc == CEP_OK;
	if (rc == CEP_OK)
		rc = cep_netns_run(f->nsfd, queue_open, &q, err);
	worker_loop = spec->body;
	if (rc == CEP_OK)
		rc = runner_fault_spawn_worker(CEP_NETQ_COMM, worker_main, &q,
		    &f->worker, err);
	close_fds(&q); /* the worker holds them now */
	f->worker_grace_ms = spec->grace_ms;
	if (rc == CEP_OK)
		rc = cep_nft_queue_rules(f->nsfd, s, err);
	free(s);
	if (rc != CEP_OK) {
		if (table || f->worker > 0) {
			f->worker_grace_ms = 0;
			runner_net_revert(f, NULL);
		}
		runner_net_free(f);
		return rc;
	}
	runner_emit_log(ctx->sink,
	    "%s: table %s in network namespace %s, "
	    "NFQUEUE %u, worker pid %d: %s",
	    ctx->fault_id, f->table, f->path, q.qnum, (int)f->worker, what);
	*state = f;
	return CEP_OK;
}
