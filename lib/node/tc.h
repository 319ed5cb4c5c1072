/*
 * tc.h - root qdiscs in a network namespace over rtnetlink (libmnl): the
 * tc netem path of network-latency, where the kernel has sch_netem, and
 * the tbf shaper of network-bandwidth.
 *
 * Whether the kernel has a qdisc kind is detected, not assumed: the qdisc
 * is created on the loopback of a throwaway namespace (unshare on a fresh
 * thread), so the probe never touches a target. A qdisc this module adds
 * carries a handle of its own (major 0xce00 + n); the undo removes a root
 * qdisc only if it still has that handle, so it never removes what someone
 * else put there since.
 */
#ifndef CEP_TC_H
#define CEP_TC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "netns.h"

#define CEP_TC_MAX_LINKS 32

/* ok = the kernel can create a root qdisc of this kind ("netem"). */
int cep_tc_kind_available(const char *kind, bool *ok, cep_err *err);

/* Interfaces of the namespace other than loopback. */
int cep_tc_links(int nsfd, int *ifindex, size_t max, size_t *n, cep_err *err);

/* Root netem qdisc on ifindex: delay +- jitter (ns), handle major:0. */
int cep_tc_netem_add(int nsfd, int ifindex, uint16_t major, int64_t delay_ns,
    int64_t jitter_ns, cep_err *err);

/* Root tbf qdisc on ifindex (network-bandwidth, egress): rate in bytes/s,
 * burst (bucket) in bytes, limit = bytes queued before drops. */
int cep_tc_tbf_add(int nsfd, int ifindex, uint16_t major, uint64_t rate_Bps,
    uint32_t burst, uint32_t limit, cep_err *err);

/* Removes the root qdisc of ifindex if its handle is major:0; an absent
 * interface or another root qdisc = nothing of ours left (OK). */
int cep_tc_root_del(int nsfd, int ifindex, uint16_t major, cep_err *err);

/* Undo record {"netns_dev","netns_inode","netns_path","ifindexes":[..],
 * "major"}; lib/undo/undo.c mechanism "tc-qdisc". */
int cep_tc_undo(const char *run_id, const char *undo_json, cep_err *err);

#endif
