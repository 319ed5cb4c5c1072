/*
 * fault_net.h - what the network faults share: the target namespace, the
 * fault's nftables table (lib/node/nft.h), the filter rules, the revert.
 *
 * Every network fault is one table cep_<run>_<n> in the target namespace,
 * recorded as mechanism "nftables" with the namespace's identity, so the
 * delegate's undo finds it again even after the process that named the
 * target is gone. Backends: fault_net_nft.c (loss, partition, bandwidth:
 * rules only), fault_net_latency.c (NFQUEUE + a delay worker),
 * fault_net_mangle.c (NFQUEUE + a worker that corrupts or duplicates;
 * the queue plumbing both share is fault_net_queue.c),
 * fault_net_dns.c (a redirect + a DNS responder worker).
 *
 * The host's network namespace is a target only with
 * policy.network.allowHostNetns; there every table first accepts the
 * relay's TCP port both ways, so the runner never cuts its own lifeline.
 */
#ifndef CEP_FAULT_NET_H
#define CEP_FAULT_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fault.h"
#include "netns.h"
#include "nft.h"

typedef struct cep_net_fault {
	int nsfd;
	cep_netns_id id;
	char path[1024];
	char table[CEP_NFT_TABLE_MAX];
	unsigned n;              /* table ordinal in the run */
	pid_t worker;            /* 0: none */
	int64_t worker_grace_ms; /* let the worker drain before SIGKILL */
} cep_net_fault;

/* Run-wide settings from the assignment (runner/main.c): whether a fault
 * may target the host's network namespace (policy.network.allowHostNetns,
 * Assignment.allow_host_netns), and the relay URL whose TCP port is the
 * runner's lifeline. Defaults: refused, no port. */
void runner_net_configure(bool allow_host_netns, const char *relay_url);
uint16_t runner_net_relay_port(void);
/* The runner's decision for a resolved namespace (the delegate's policy
 * decided first; this is the second line): the host's (pid 1's, or the
 * runner's own, cep_netns_is_host) only while allowed. CEP_OK or
 * PERMISSION_DENIED naming the key. */
int runner_net_target_allowed(const char *type, const cep_netns_id *id,
    const char *path, cep_err *err);
/* Whether the target of it resolves now to the host's or the runner's
 * own namespace (fault_net_qdisc.c: such a target takes the nftables
 * path, which exempts the lifeline; a root qdisc cannot). */
bool runner_net_target_is_host(const cep_exp_item *it);
/* Whether f's table must exempt the relay's TCP port (*port): f is in
 * the host's or the runner's own namespace and a port is known. */
bool runner_net_lifeline(const cep_net_fault *f, uint16_t *port);

/* describe for every network fault: resolves the target, picks the
 * table name, fills target text and the undo record. */
int runner_net_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err);

/* Opens the namespace described for it (same identity, or an error) and
 * fills f. */
int runner_net_open(const cep_exp_item *it, cep_net_fault *f, cep_err *err);

/* The typed spec of f's table (lib/node/nft.h) for it: table, armed
 * timeout (until the run's deadline), directions, cidrs and ports
 * parsed, the lifeline port where runner_net_lifeline says so; the caller
 * sets the action and its fields. */
int runner_net_spec(const cep_exp_item *it, const cep_net_fault *f,
    cep_nft_spec *s, cep_err *err);

/* Allocates *f and *s, opens it's namespace into *f (runner_net_open) and
 * fills *s (runner_net_spec). On failure nothing is left allocated. */
int runner_net_prepare(const cep_exp_item *it, cep_net_fault **f,
    cep_nft_spec **s, cep_err *err);

/* Deletes the table (confirmed), drains and kills the worker, closes. */
int runner_net_revert(cep_net_fault *f, cep_err *err);
void runner_net_free(cep_net_fault *f);
/* A fault's revert whose state is a cep_net_fault: both of the above. */
int runner_net_revert_free(void *state, cep_err *err);

/* Root qdiscs on every interface of the target namespace (netem for
 * latency, tbf for bandwidth): fault_net_qdisc.c. fits = plain egress
 * (no cidrs, no ports), the kernel has the kind, and optout_env is unset
 * (tests force the nftables path with it). describe records the choice
 * for the item; chosen reads it back in inject and mechanism_of. */
typedef int (*cep_net_qdisc_add_fn)(const cep_exp_item *it, int nsfd,
    int ifindex, uint16_t major, cep_err *err);
bool runner_net_qdisc_fits(const cep_exp_item *it, const char *kind,
    const char *optout_env);
bool runner_net_qdisc_chosen(const cep_exp_item *it);
int runner_net_qdisc_describe(const cep_exp_item *it, bool use,
    const char *kind, char *target, size_t tlen, json_t **undo, cep_err *err);
int runner_net_qdisc_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    const char *kind, cep_net_qdisc_add_fn add, void **state, cep_err *err);
int runner_net_qdisc_revert(void *state, cep_err *err);

/* ---- the NFQUEUE path (fault_net_queue.c) ----
 * The fault's table sends matching packets to queue CEP_NETQ_BASE + n%1000
 * (xtables NFQUEUE target, bypass); a worker process "cep-netq" forked
 * from the runner enters the namespace and issues the verdicts. */
#define CEP_NETQ_COMM "cep-netq"
#define CEP_NETQ_BASE 51200
/* Packets a worker injects itself (network-duplicate's copies) carry this
 * mark, and the fault's chain accepts them before its queue rule, so a
 * copy is never queued (and copied) again. */
#define CEP_NET_DUP_MARK 0x63657064u /* "cepd" */

struct nlmsghdr;
struct nlattr;

/* What a worker gets (a copy in the forked child). */
typedef struct cep_netq {
	int sock;       /* the queue's netlink socket */
	int raw4, raw6; /* raw injection sockets (marked), else -1 */
	int nsfd;
	uint16_t qnum;
	bool copy_packet; /* payloads to user space, else metadata only */
	bool raw;         /* open raw4/raw6 */
	const void *priv; /* the fault's own worker parameters */
} cep_netq;

typedef struct cep_netq_spec {
	bool copy_packet;
	bool raw; /* raw sockets + the CEP_NET_DUP_MARK skip rule */
	/* The worker's loop, in the namespace; allocates nothing (a forked
	 * child of a threaded process); never returns. */
	void (*body)(const cep_netq *q);
	const void *priv;
	int64_t grace_ms; /* revert: let the worker drain before SIGKILL */
} cep_netq_spec;

/* Table (runner_net_spec, action QUEUE), queue socket configured in the
 * namespace, worker, then the queue rule in each direction's chain; logs
 * them with what the worker does (what) and sets *state to the
 * cep_net_fault. On failure everything done is undone. */
int runner_netq_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    const cep_netq_spec *spec, const char *what, void **state, cep_err *err);

/* Worker side, async-signal-safe: */
int64_t runner_netq_now_ns(void);
uint64_t runner_netq_rand(void); /* xorshift, seeded per worker */
/* NF_ACCEPT; pkt != NULL replaces the packet with pkt[0..len). */
void runner_netq_accept(const cep_netq *q, uint32_t id, const void *pkt,
    size_t len);
/* Reads every queued message without blocking and hands each packet to
 * cb with its id and attributes (NFQA_MAX + 1 slots); other messages are
 * skipped. cb issues the packet's verdict. */
typedef void (*cep_netq_packet_fn)(const cep_netq *q, uint32_t id,
    struct nlattr *const *attr);
void runner_netq_drain(const cep_netq *q, cep_netq_packet_fn cb);

extern const cep_fault_ops runner_fault_net_loss;
extern const cep_fault_ops runner_fault_net_partition;
extern const cep_fault_ops runner_fault_net_bandwidth;
extern const cep_fault_ops runner_fault_net_latency;
extern const cep_fault_ops runner_fault_net_dns;
extern const cep_fault_ops runner_fault_net_corrupt; /* fault_net_mangle.c */
extern const cep_fault_ops runner_fault_net_duplicate;

#endif
