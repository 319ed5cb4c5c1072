/*
 * fault_net.h - what the network faults share: the target namespace, the
 * fault's nftables table (lib/nft.h), the filter rules, the revert.
 *
 * Every network fault is one table cep_<run>_<n> in the target namespace,
 * recorded as mechanism "nftables" with the namespace's identity, so the
 * delegate's undo finds it again even after the process that named the
 * target is gone. Backends: fault_net_nft.c (loss, partition, bandwidth:
 * rules only), fault_net_latency.c (NFQUEUE + a delay worker),
 * fault_net_dns.c (a redirect + a DNS responder worker).
 */
#ifndef CEP_FAULT_NET_H
#define CEP_FAULT_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fault.h"
#include "netns.h"
#include "nft.h"

#define CEP_NET_CMD_MAX 16384

typedef struct cep_net_fault {
	int nsfd;
	cep_netns_id id;
	char path[1024];
	char table[CEP_NFT_TABLE_MAX];
	unsigned n;               /* table ordinal in the run */
	pid_t worker;             /* 0: none */
	int64_t worker_grace_ms;  /* let the worker drain before SIGKILL */
} cep_net_fault;

/* describe for every network fault: resolves the target, picks the
 * table name, fills target text and the undo record. */
int cep_net_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err);

/* Opens the namespace described for it (same identity, or an error) and
 * fills f. */
int cep_net_open(const cep_exp_item *it, cep_net_fault *f, cep_err *err);

/* Appends to buf (at *off) the table with the armed set (timeout: until
 * the run's deadline) and, per direction, a chain whose rules skip the
 * traffic the filters exclude. hooks: "output"/"input" chains named "out"
 * and "in" (per the direction parameter). */
int cep_net_table_cmds(const cep_exp_item *it, const cep_net_fault *f,
    char *buf, size_t len, size_t *off, cep_err *err);
/* Only the table and its armed set. */
int cep_net_table_head(const cep_exp_item *it, const cep_net_fault *f,
    char *buf, size_t len, size_t *off, cep_err *err);
/* "add rule inet T <chain> meta mark & 0x0 == @armed <action>\n". */
int cep_net_rule(const cep_net_fault *f, const char *chain,
    const char *action, char *buf, size_t len, size_t *off, cep_err *err);
bool cep_net_dir_has(const cep_exp_item *it, const char *chain);

/* Deletes the table (confirmed), drains and kills the worker, closes. */
int cep_net_revert(cep_net_fault *f, cep_err *err);
void cep_net_free(cep_net_fault *f);

/* Root qdiscs on every interface of the target namespace (netem for
 * latency, tbf for bandwidth): fault_net_qdisc.c. fits = plain egress
 * (no cidrs, no ports), the kernel has the kind, and optout_env is unset
 * (tests force the nftables path with it). describe records the choice
 * for the item; chosen reads it back in inject and mechanism_of. */
typedef int (*cep_net_qdisc_add_fn)(const cep_exp_item *it, int nsfd,
    int ifindex, uint16_t major, cep_err *err);
bool cep_net_qdisc_fits(const cep_exp_item *it, const char *kind,
    const char *optout_env);
bool cep_net_qdisc_chosen(const cep_exp_item *it);
int cep_net_qdisc_describe(const cep_exp_item *it, bool use, const char *kind,
    char *target, size_t tlen, json_t **undo, cep_err *err);
int cep_net_qdisc_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    const char *kind, cep_net_qdisc_add_fn add, void **state, cep_err *err);
int cep_net_qdisc_revert(void *state, cep_err *err);

extern const cep_fault_ops cep_fault_net_loss;
extern const cep_fault_ops cep_fault_net_partition;
extern const cep_fault_ops cep_fault_net_bandwidth;
extern const cep_fault_ops cep_fault_net_latency;
extern const cep_fault_ops cep_fault_net_dns;

#endif
