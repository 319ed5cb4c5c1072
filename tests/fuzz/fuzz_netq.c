/* fuzz_netq.c - libFuzzer target: the NFQUEUE workers' packet paths
 * (runner/fault_net_mangle.c, fault_net_latency.c) as the worker runs
 * them: a queue message read by runner_netq_drain from the queue socket (a
 * socketpair here), handled by the corrupt/duplicate or the delay
 * callback, verdicts read back from the other end. The first byte picks
 * the fault (corrupt 100%, corrupt at some percent, duplicate, latency)
 * and whether the rest is a raw netlink buffer (what the kernel sends) or
 * a packet the fuzzer wraps in a well-formed queue message (second byte:
 * percent / delay, third: packet id). Invariants, for a wrapped packet:
 * corrupt/duplicate give exactly one verdict, NF_ACCEPT with the
 * packet's id; a corrupted packet comes back the same length with
 * exactly one bit flipped, after the IP header, and only when there is a
 * byte to corrupt; duplicate and a missed percent hand back nothing;
 * latency holds the packet (no verdict) unless its heap is full. For raw
 * buffers: every verdict is a well-formed NF_ACCEPT. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fault_net_int.h"

#define PKT_MAX 65000 /* an attribute's length is 16 bits */
#define BUF (PKT_MAX + 1024)

static void trap_unless(int ok)
{
	if (!ok)
		__builtin_trap();
}

typedef struct verdict {
	bool ok; /* well formed */
	uint32_t verdict, id;
	const uint8_t *pkt; /* NULL: the packet unchanged */
	size_t len;
} verdict;

static int attr_cb(const struct nlattr *a, void *data)
{
	verdict *v = data;
	if (mnl_attr_get_type(a) == NFQA_VERDICT_HDR &&
	    mnl_attr_get_payload_len(a) ==
	        sizeof(struct nfqnl_msg_verdict_hdr)) {
		const struct nfqnl_msg_verdict_hdr *h = mnl_attr_get_payload(a);
		v->verdict = ntohl(h->verdict);
		v->id = ntohl(h->id);
		v->ok = true;
	} else if (mnl_attr_get_type(a) == NFQA_PAYLOAD) {
		v->pkt = mnl_attr_get_payload(a);
		v->len = mnl_attr_get_payload_len(a);
	}
	return MNL_CB_OK;
}

/* Reads what the worker answered: the verdicts, the last in *last. */
static int verdicts(int fd, uint8_t *buf, verdict *last)
{
	int n = 0;
	ssize_t got;
	while ((got = recv(fd, buf, BUF, MSG_DONTWAIT)) > 0) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		trap_unless(mnl_nlmsg_ok(nlh, (int)got));
		trap_unless(nlh->nlmsg_type ==
		    ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT));
		*last = (verdict){0};
		mnl_attr_parse(nlh, sizeof(struct nfgenmsg), attr_cb, last);
		trap_unless(last->ok && last->verdict == NF_ACCEPT);
		n++;
	}
	return n;
}

/* A queue message as the kernel makes it: packet header and payload. */
static size_t wrap(uint8_t *buf, uint32_t id, const uint8_t *p, size_t len,
    bool capped)
{
	struct nlmsghdr *nlh = nfq_nlmsg_put((char *)buf, NFQNL_MSG_PACKET,
	    CEP_NETQ_BASE);
	struct nfqnl_msg_packet_hdr ph = {.packet_id = htonl(id),
	    .hw_protocol = htons(p[0] >> 4 == 6 ? 0x86dd : 0x0800),
	    .hook = 3};
	mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof(ph), &ph);
	mnl_attr_put(nlh, NFQA_PAYLOAD, len, p);
	if (capped)
		mnl_attr_put_u32(nlh, NFQA_CAP_LEN, htonl((uint32_t)len + 100));
	return nlh->nlmsg_len;
}

/* The corrupted copy: same length, one bit flipped, past the IP header. */
static void check_corrupt(const uint8_t *p, size_t len, const verdict *v)
{
	size_t off = runner_netq_corrupt_offset(p, len);
	trap_unless(off == SIZE_MAX || off < len);
	if (off == SIZE_MAX) {
		trap_unless(v->pkt == NULL);
		return;
	}
	trap_unless(v->pkt != NULL && v->len == len);
	size_t l4 = p[0] >> 4 == 4 ? (size_t)(p[0] & 0x0f) * 4 : 40;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t d = p[i] ^ v->pkt[i];
		if (d != 0)
			trap_unless(i >= l4 && (d & (d - 1)) == 0);
		bits += d != 0;
	}
	trap_unless(bits == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int sv[2] = {-1, -1};
	static uint8_t *in, *out;
	if (sv[0] < 0) {
		trap_unless(
		    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0);
		int big = 1 << 20;
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
		setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
		in = malloc(BUF);
		out = malloc(BUF);
		trap_unless(in != NULL && out != NULL);
	}
	if (size < 4 || size - 3 > PKT_MAX)
		return 0;
	int mode = data[0] & 3;
	bool raw = data[0] & 0x80, capped = data[0] & 0x40;
	mangle_arg ma = {.duplicate = mode == 2,
	    .percent = mode == 1 ? data[1] % 101u : 100};
	lat_arg la = {.delay_ns = (int64_t)data[1] * 1000000,
	    .jitter_ns = (int64_t)(data[1] & 0x0f) * 1000000};
	cep_netq q = {.sock = sv[0],
	    .raw4 = -1,
	    .raw6 = -1,
	    .nsfd = -1,
	    .qnum = CEP_NETQ_BASE,
	    .copy_packet = mode != 3,
	    .priv = mode == 3 ? (const void *)&la : (const void *)&ma};
	cep_netq_packet_fn cb = mode == 3 ? runner_netq_delay_cb :
	                                    runner_netq_mangle_cb;
	const uint8_t *p = data + 3;
	size_t len = size - 3;
	size_t n = raw ? len : wrap(in, data[2], p, len, capped);
	trap_unless(send(sv[1], raw ? p : in, n, 0) == (ssize_t)n);
	runner_netq_drain(&q, cb);

	verdict v = {0};
	int got = verdicts(sv[1], out, &v);
	if (raw)
		return 0;
	if (mode == 3) { /* held; at once only when the heap is full */
		trap_unless(
		    got == 0 || (got == 1 && v.pkt == NULL && v.id == data[2]));
		return 0;
	}
	trap_unless(got == 1 && v.id == data[2]);
	if (mode == 0 && !capped)
		check_corrupt(p, len, &v);
	else if (mode == 2 || ma.percent == 0 || capped)
		trap_unless(v.pkt == NULL);
	else if (v.pkt != NULL)
		check_corrupt(p, len, &v);
	return 0;
}
