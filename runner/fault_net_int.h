/*
 * fault_net_int.h - the packet paths of the NFQUEUE and DNS workers, for
 * fault_net_*.c and the fuzzers (tests/fuzz/fuzz_netq.c,
 * fuzz_dns_query.c): what a worker does with the bytes the kernel or a
 * client hands it. The rest of the runner uses fault_net.h.
 */
#ifndef CEP_FAULT_NET_INT_H
#define CEP_FAULT_NET_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fault_net.h"

/* network-corrupt / network-duplicate: the worker's parameters (q->priv
 * of runner_netq_mangle_cb). */
typedef struct mangle_arg {
	bool duplicate;
	uint32_t percent;
} mangle_arg;

/* network-latency: the worker's parameters (q->priv of
 * runner_netq_delay_cb). */
typedef struct lat_arg {
	int64_t delay_ns, jitter_ns;
} lat_arg;

/* One queued packet (a cep_netq_packet_fn for runner_netq_drain): corrupted, duplicated
 * or passed per q->priv, always with one verdict (fault_net_mangle.c). */
void runner_netq_mangle_cb(const cep_netq *q, uint32_t id,
    struct nlattr *const *attr);
/* The byte network-corrupt flips in the IPv4/IPv6 packet p: after the
 * headers, or in the transport checksum; SIZE_MAX when there is none. */
size_t runner_netq_corrupt_offset(const uint8_t *p, size_t len);
/* One queued packet (a cep_netq_packet_fn) held for delay +- jitter (the worker's heap;
 * accepted at once when the heap is full) (fault_net_latency.c). */
void runner_netq_delay_cb(const cep_netq *q, uint32_t id,
    struct nlattr *const *attr);

/* The name asked by a one-question DNS query msg (text form, into
 * name[nlen]) and where its question ends (*qend); false for anything
 * else (fault_net_dns.c). */
bool runner_net_dns_query_name(const unsigned char *msg, size_t len, char *name,
    size_t nlen, size_t *qend);

#endif
