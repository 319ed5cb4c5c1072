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
#include <stdlib.h>
#include <string.h>

#include "fault_net.h"
#include "params.h"
#include "tc.h"

/* Fills the action of the fault's spec from its parameters. */
typedef void (*action_fn)(const cep_exp_item *it, cep_nft_spec *s);

static int inject_rules(const cep_exp_item *it, const cep_fault_ctx *ctx,
    action_fn fn, void **state, cep_err *err)
{
	cep_net_fault *f;
	cep_nft_spec *s;
	int rc = runner_net_prepare(it, &f, &s, err);
	if (rc != CEP_OK)
		return rc;
	fn(it, s);
	rc = cep_nft_create(f->nsfd, s, err);
	free(s);
	if (rc != CEP_OK) {
		runner_net_free(f);
		return rc;
	}
	runner_emit_log(ctx->sink, "%s: table %s in network namespace %s",
	    ctx->fault_id, f->table, f->path);
	*state = f;
	return CEP_OK;
}

/* ---- network-loss ---- */

static void loss_action(const cep_exp_item *it, cep_nft_spec *s)
{
	double pct = runner_param_num(it, "percent", 0);
	s->action = CEP_NFT_DROP;
	/* out of 1..100 (the schema's range): refused by the spec check */
	s->percent = pct < 0 ? 0 : pct > 100 ? 101 : (unsigned)pct;
}

static int loss_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	return inject_rules(it, ctx, loss_action, state, err);
}

const cep_fault_ops runner_fault_net_loss = {
    .type = "network-loss",
    .mechanism = "nftables",
    .describe = runner_net_describe,
    .inject = loss_inject,
    .revert = runner_net_revert_free,
};

/* ---- network-partition ---- */

static void partition_action(const cep_exp_item *it, cep_nft_spec *s)
{
	const char *a = runner_param_str(it, "action", "drop");
	s->action = strcmp(a, "reject") == 0 ? CEP_NFT_REJECT : CEP_NFT_DROP;
	s->percent = 100;
}

static int partition_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	if (cep_exp_list_len(it, "cidrs") == 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "network-partition: cidrs is required");
	return runner_net_describe(it, target, tlen, undo, err);
}

static int partition_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	return inject_rules(it, ctx, partition_action, state, err);
}

const cep_fault_ops runner_fault_net_partition = {
    .type = "network-partition",
    .mechanism = "nftables",
    .describe = partition_describe,
    .inject = partition_inject,
    .revert = runner_net_revert_free,
};

/* ---- network-bandwidth ---- */

/* A named limit object per direction: over the rate (plus burst) is
 * dropped. */
static void bandwidth_action(const cep_exp_item *it, cep_nft_spec *s)
{
	s->action = CEP_NFT_POLICE;
	s->rate = (uint64_t)runner_param_int(it, "kbps", 8) * 125;
	s->burst = (uint64_t)runner_param_int(it, "burstKiB", 32) * 1024;
}

/* tbf shapes (queues, then drops past `limit`) where the nftables limit
 * can only police (drop over the rate): the queue is sized for 100 ms at
 * the rate plus the burst, as a shaper in front of a WAN link would be. */
static int tbf_add(const cep_exp_item *it, int nsfd, int ifindex,
    uint16_t major, cep_err *err)
{
	uint64_t rate = (uint64_t)runner_param_int(it, "kbps", 8) * 125;
	uint64_t burst = (uint64_t)runner_param_int(it, "burstKiB", 32) * 1024;
	uint64_t limit = rate / 10 + burst;
	return cep_tc_tbf_add(nsfd, ifindex, major, rate, (uint32_t)burst,
	    limit > UINT32_MAX ? UINT32_MAX : (uint32_t)limit, err);
}

static const char *bandwidth_mechanism(const cep_exp_item *it)
{
	return runner_net_qdisc_chosen(it) ? "tc-qdisc" : "nftables";
}

static int bandwidth_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	return runner_net_qdisc_describe(it,
	    runner_net_qdisc_fits(it, "tbf", "CEP_NET_NO_TBF"), "tbf", target,
	    tlen, undo, err);
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
	bs->tbf = runner_net_qdisc_chosen(it);
	int rc = bs->tbf ?
	    runner_net_qdisc_inject(it, ctx, "tbf", tbf_add, &bs->impl, err) :
	    inject_rules(it, ctx, bandwidth_action, &bs->impl, err);
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
	int rc = bs->tbf ? runner_net_qdisc_revert(bs->impl, err) :
	                   runner_net_revert_free(bs->impl, err);
	free(bs);
	return rc;
}

const cep_fault_ops runner_fault_net_bandwidth = {
    .type = "network-bandwidth",
    .mechanism = "nftables",
    .mechanism_of = bandwidth_mechanism,
    .describe = bandwidth_describe,
    .inject = bandwidth_inject,
    .revert = bandwidth_revert,
};
