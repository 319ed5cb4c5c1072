/*
 * fault_net_nft.c - the network faults that are nftables rules only:
 *   network-loss       numgen random mod 100 < percent -> drop
 *   network-partition  drop, or reject (TCP reset / ICMP admin-prohibited)
 *   network-bandwidth  a tbf shaper on every interface for plain egress
 *                      (fault_net_qdisc.c); with cidrs, ports or ingress,
 *                      a named limit object per direction: traffic over
 *                      the rate (plus burst) is dropped (a policer)
 * Each nftables fault is one table in the target namespace, created in one transaction
 * and deleted as the revert (fault_net.c).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault_net.h"
#include "params.h"
#include "tc.h"

/* Adds the fault's own objects and rules for one chain. */
typedef int (*rules_fn)(const cep_exp_item *it, const cep_net_fault *f,
    const char *chain, char *buf, size_t len, size_t *off, cep_err *err);

static int inject_rules(const cep_exp_item *it, const cep_fault_ctx *ctx,
    rules_fn fn, void **state, cep_err *err)
{
	cep_net_fault *f = calloc(1, sizeof(*f));
	char *buf = malloc(CEP_NET_CMD_MAX);
	if (f == NULL || buf == NULL) {
		free(f);
		free(buf);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "no memory");
	}
	size_t off = 0;
	buf[0] = '\0';
	int rc = cep_net_open(it, f, err);
	if (rc == CEP_OK)
		rc = cep_net_table_cmds(it, f, buf, CEP_NET_CMD_MAX, &off, err);
	static const char *const chains[] = {"out", "in"};
	for (int i = 0; rc == CEP_OK && i < 2; i++)
		if (cep_net_dir_has(it, chains[i]))
			rc = fn(it, f, chains[i], buf, CEP_NET_CMD_MAX, &off, err);
	if (rc == CEP_OK)
		rc = cep_nft_run(f->nsfd, buf, err);
	free(buf);
	if (rc != CEP_OK) {
		cep_net_free(f);
		return rc;
	}
	cep_runner_emit_log(ctx->sink, "%s: table %s in network namespace %s",
	    ctx->fault_id, f->table, f->path);
	*state = f;
	return CEP_OK;
}

static int net_revert(void *state, cep_err *err)
{
	cep_net_fault *f = state;
	int rc = cep_net_revert(f, err);
	cep_net_free(f);
	return rc;
}

/* ---- network-loss ---- */

static int loss_rules(const cep_exp_item *it, const cep_net_fault *f,
    const char *chain, char *buf, size_t len, size_t *off, cep_err *err)
{
	char act[64];
	int pct = (int)cep_runner_param_num(it, "percent", 0);
	if (pct >= 100)
		snprintf(act, sizeof(act), "drop");
	else
		snprintf(act, sizeof(act), "numgen random mod 100 < %d drop", pct);
	return cep_net_rule(f, chain, act, buf, len, off, err);
}

static int loss_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	return inject_rules(it, ctx, loss_rules, state, err);
}

const cep_fault_ops cep_fault_net_loss = {
	.type = "network-loss",
	.mechanism = "nftables",
	.describe = cep_net_describe,
	.inject = loss_inject,
	.revert = net_revert,
};

/* ---- network-partition ---- */

static int partition_rules(const cep_exp_item *it, const cep_net_fault *f,
    const char *chain, char *buf, size_t len, size_t *off, cep_err *err)
{
	const char *a = cep_runner_param_str(it, "action", "drop");
	if (strcmp(a, "reject") != 0)
		return cep_net_rule(f, chain, "drop", buf, len, off, err);
	int rc = cep_net_rule(f, chain, "meta l4proto tcp reject with tcp reset",
	    buf, len, off, err);
	if (rc == CEP_OK)
		rc = cep_net_rule(f, chain, "reject with icmpx type "
		    "admin-prohibited", buf, len, off, err);
	return rc;
}

static int partition_describe(const cep_exp_item *it, char *target,
    size_t tlen, json_t **undo, cep_err *err)
{
	if (cep_exp_list_len(it, "cidrs") == 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "network-partition: cidrs is required");
	return cep_net_describe(it, target, tlen, undo, err);
}

static int partition_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	return inject_rules(it, ctx, partition_rules, state, err);
}

const cep_fault_ops cep_fault_net_partition = {
	.type = "network-partition",
	.mechanism = "nftables",
	.describe = partition_describe,
	.inject = partition_inject,
	.revert = net_revert,
};

/* ---- network-bandwidth ---- */

static int bandwidth_rules(const cep_exp_item *it, const cep_net_fault *f,
    const char *chain, char *buf, size_t len, size_t *off, cep_err *err)
{
	long long bytes = (long long)cep_runner_param_int(it, "kbps", 8) * 125;
	long long burst = (long long)cep_runner_param_int(it, "burstKiB", 32) *
	    1024;
	size_t o = *off;
	int w = snprintf(buf + o, len - o, "add limit inet %s lim_%s { rate over "
	    "%lld bytes/second burst %lld bytes }\n", f->table, chain, bytes,
	    burst);
	if (w < 0 || (size_t)w >= len - o)
		return cep_err_set(err, CEP_INVALID_ARGUMENT, "too many rules");
	*off += (size_t)w;
	char act[64];
	snprintf(act, sizeof(act), "limit name \"lim_%s\" drop", chain);
	return cep_net_rule(f, chain, act, buf, len, off, err);
}

/* tbf shapes (queues, then drops past `limit`) where the nftables limit
 * can only police (drop over the rate): the queue is sized for 100 ms at
 * the rate plus the burst, as a shaper in front of a WAN link would be. */
static int tbf_add(const cep_exp_item *it, int nsfd, int ifindex,
    uint16_t major, cep_err *err)
{
	uint64_t rate = (uint64_t)cep_runner_param_int(it, "kbps", 8) * 125;
	uint64_t burst = (uint64_t)cep_runner_param_int(it, "burstKiB", 32) *
	    1024;
	uint64_t limit = rate / 10 + burst;
	return cep_tc_tbf_add(nsfd, ifindex, major, rate, (uint32_t)burst,
	    limit > UINT32_MAX ? UINT32_MAX : (uint32_t)limit, err);
}

static const char *bandwidth_mechanism(const cep_exp_item *it)
{
	return cep_net_qdisc_chosen(it) ? "tc-qdisc" : "nftables";
}

static int bandwidth_describe(const cep_exp_item *it, char *target,
    size_t tlen, json_t **undo, cep_err *err)
{
	return cep_net_qdisc_describe(it, cep_net_qdisc_fits(it, "tbf",
	    "CEP_NET_NO_TBF"), "tbf", target, tlen, undo, err);
}

/* state: the qdisc state (tbf) or a cep_net_fault (nftables policer),
 * told apart by this tag. */
typedef struct bw_state {
	bool tbf;
	void *impl;
} bw_state;

static int bandwidth_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	bw_state *bs = calloc(1, sizeof(*bs));
	if (bs == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "no memory");
	bs->tbf = cep_net_qdisc_chosen(it);
	int rc = bs->tbf ?
	    cep_net_qdisc_inject(it, ctx, "tbf", tbf_add, &bs->impl, err) :
	    inject_rules(it, ctx, bandwidth_rules, &bs->impl, err);
	if (rc != CEP_OK) {
		free(bs);
		return rc;
	}
	*state = bs;
	return CEP_OK;
}

static int bandwidth_revert(void *state, cep_err *err)
{
	bw_state *bs = state;
	int rc = bs->tbf ? cep_net_qdisc_revert(bs->impl, err) :
	    net_revert(bs->impl, err);
	free(bs);
	return rc;
}

const cep_fault_ops cep_fault_net_bandwidth = {
	.type = "network-bandwidth",
	.mechanism = "nftables",
	.mechanism_of = bandwidth_mechanism,
	.describe = bandwidth_describe,
	.inject = bandwidth_inject,
	.revert = bandwidth_revert,
};
