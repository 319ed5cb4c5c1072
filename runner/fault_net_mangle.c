/*
 * fault_net_mangle.c - `network-corrupt` and `network-duplicate` through
 * NFQUEUE (fault_net_queue.c), in copy mode "packet": the "cep-netq"
 * worker sees each matching packet whole and, for `percent`% of them
 * (independently per packet):
 *
 *  - corrupt: flips one bit of one random byte after the IP and transport
 *    headers (in the transport checksum field when there is no payload)
 *    and accepts the modified packet. The kernel does not recompute
 *    transport checksums for a packet handed back by a queue (and marks
 *    it CHECKSUM_NONE), so the receiver's TCP/UDP/ICMP checksum check
 *    drops it - what netem's corrupt does. Any direction.
 *  - duplicate: accepts the packet and sends a copy through a raw socket
 *    (IP_HDRINCL) opened in the namespace, marked CEP_NET_DUP_MARK; the
 *    fault's egress chain accepts that mark before its queue rule, so the
 *    copy is not queued again. Egress only: a copy injected on the way in
 *    would have to be forged as coming from the peer.
 *
 * Where the kernel has sch_netem, netem's corrupt/duplicate could do both
 * for plain egress traffic; that path is not built (this kernel has no
 * netem to test it on): see docs/faults-network.md.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fault_net_int.h"
#include "params.h"

#define PKT_MAX 0xffff

/* ---- worker side: no allocation, no locks ---- */

/* Where the transport header starts and its protocol; false if the packet
 * is too short to tell. fragment: a non-first IPv4 fragment (no header). */
static bool l4_of(const uint8_t *p, size_t len, size_t *l4, int *proto,
    bool *fragment)
{
	*fragment = false;
	if (len >= 20 && p[0] >> 4 == 4) {
		*l4 = (size_t)(p[0] & 0x0f) * 4;
		*proto = p[9];
		*fragment = ((p[6] & 0x1f) | p[7]) != 0;
		return *l4 >= 20 && *l4 <= len;
	}
	if (len >= 40 && p[0] >> 4 == 6) {
		*l4 = 40; /* extension headers are treated as payload */
		*proto = p[6];
		return true;
	}
	return false;
}

/* Transport header length and checksum offset within it (-1: none). */
static size_t l4_header(const uint8_t *p, size_t len, size_t l4, int proto,
    int *csum)
{
	*csum = -1;
	switch (proto) {
	case IPPROTO_TCP:
		if (l4 + 20 > len)
			return 0;
		*csum = 16;
		return (size_t)(p[l4 + 12] >> 4) * 4;
	case IPPROTO_UDP: *csum = 6; return 8;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: *csum = 2; return 8;
	default: return 0;
	}
}

/* The byte to flip: one after the headers; in the checksum field if there
 * is no payload (or if an IPv4 UDP checksum is 0, "none": then a nonzero
 * value makes the receiver check it). SIZE_MAX: nothing to corrupt. */
size_t runner_netq_corrupt_offset(const uint8_t *p, size_t len)
{
	size_t l4;
	int proto, csum;
	bool frag;
	if (!l4_of(p, len, &l4, &proto, &frag))
		return SIZE_MAX;
	size_t th = frag ? 0 : l4_header(p, len, l4, proto, &csum);
	if (frag)
		csum = -1;
	bool udp0 = proto == IPPROTO_UDP && p[0] >> 4 == 4 && l4 + 8 <= len &&
	    p[l4 + 6] == 0 && p[l4 + 7] == 0;
	if (csum >= 0 && (udp0 || l4 + th >= len)) {
		if (l4 + (size_t)csum + 2 > len)
			return SIZE_MAX;
		return l4 + (size_t)csum + runner_netq_rand() % 2;
	}
	if (l4 + th < len)
		return l4 + th + runner_netq_rand() % (len - l4 - th);
	return SIZE_MAX;
}

static void send_copy(const cep_netq *q, const uint8_t *p, size_t len)
{
	if (len >= 20 && p[0] >> 4 == 4 && q->raw4 >= 0) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		memcpy(&sa.sin_addr, p + 16, 4);
		(void)sendto(q->raw4, p, len, 0, (struct sockaddr *)&sa,
		    sizeof(sa));
	} else if (len >= 40 && p[0] >> 4 == 6 && q->raw6 >= 0) {
		struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
		memcpy(&sa.sin6_addr, p + 24, 16);
		(void)sendto(q->raw6, p, len, 0, (struct sockaddr *)&sa,
		    sizeof(sa));
	}
}

static uint8_t pkt[PKT_MAX];

void runner_netq_mangle_cb(const cep_netq *q, uint32_t id,
    struct nlattr *const *attr)
{
	const mangle_arg *a = q->priv;
	size_t len = attr[NFQA_PAYLOAD] ?
	    mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]) :
	    0;
	/* truncated copies (NFQA_CAP_LEN) and misses pass unchanged */
	if (len == 0 || len > PKT_MAX || attr[NFQA_CAP_LEN] != NULL ||
	    runner_netq_rand() % 100 >= a->percent) {
		runner_netq_accept(q, id, NULL, 0);
		return;
	}
	memcpy(pkt, mnl_attr_get_payload(attr[NFQA_PAYLOAD]), len);
	if (a->duplicate) {
		runner_netq_accept(q, id, NULL, 0);
		send_copy(q, pkt, len);
		return;
	}
	size_t off = runner_netq_corrupt_offset(pkt, len);
	if (off == SIZE_MAX) {
		runner_netq_accept(q, id, NULL, 0);
		return;
	}
	pkt[off] ^= (uint8_t)(1u << (runner_netq_rand() % 8));
	runner_netq_accept(q, id, pkt, len);
}

static void mangle_loop(const cep_netq *q)
{
	for (;;) {
		struct pollfd pfd = {.fd = q->sock, .events = POLLIN};
		if (poll(&pfd, 1, -1) > 0)
			runner_netq_drain(q, runner_netq_mangle_cb);
	}
}

/* ---- the faults ---- */

static int duplicate_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	const char *d = runner_param_str(it, "direction", "egress");
	if (strcmp(d, "egress") != 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "network-duplicate: direction %s: only egress is supported "
		    "(copies are sent from the namespace; an incoming copy would "
		    "have to be forged)",
		    d);
	return runner_net_describe(it, target, tlen, undo, err);
}

static int mangle_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    bool duplicate, void **state, cep_err *err)
{
	int64_t pct = runner_param_int(it, "percent", 0);
	if (pct < 1 || pct > 100)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s: percent %lld: want 1..100", cep_exp_item_type(it),
		    (long long)pct);
	mangle_arg a = {.duplicate = duplicate, .percent = (uint32_t)pct};
	cep_netq_spec spec = {.copy_packet = true,
	    .raw = duplicate,
	    .body = mangle_loop,
	    .priv = &a,
	    .grace_ms = 50};
	char what[64];
	snprintf(what, sizeof(what), "%s %lld%% of packets",
	    duplicate ? "duplicate" : "corrupt", (long long)pct);
	return runner_netq_inject(it, ctx, &spec, what, state, err);
}

static int corrupt_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	return mangle_inject(it, ctx, false, state, err);
}

static int duplicate_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	return mangle_inject(it, ctx, true, state, err);
}

const cep_fault_ops runner_fault_net_corrupt = {
    .type = "network-corrupt",
    .mechanism = "nftables",
    .describe = runner_net_describe,
    .inject = corrupt_inject,
    .revert = runner_net_revert_free,
};

const cep_fault_ops runner_fault_net_duplicate = {
    .type = "network-duplicate",
    .mechanism = "nftables",
    .describe = duplicate_describe,
    .inject = duplicate_inject,
    .revert = runner_net_revert_free,
};
