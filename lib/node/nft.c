/*
 * nft.c - fault tables in a namespace's nftables ruleset (see nft.h):
 * libnftables for rules nft can express (their text is nft_spec.c's),
 * libnftnl + libmnl for the
 * xtables NFQUEUE rule and for the existence check, the "nftables" undo.
 * Every netlink socket is opened on a thread inside the target namespace
 * (cep_netns_run), because a socket belongs to the namespace it was
 * created in.
 */
#define _GNU_SOURCE
#include "nft.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/xt_NFQUEUE.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "run_id.h"

/* MNL_SOCKET_BUFFER_SIZE is sysconf-based (a VLA); one page is plenty
 * for these few messages. */
#define NL_BUF 8192

int cep_nft_table_name(const char *run_id, unsigned n, char *buf, size_t len,
    cep_err *err)
{
	if (!cep_run_id_valid(run_id))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "nftables table name: bad run id");
	int w = snprintf(buf, len, "cep_%s_%u", run_id + 2, n);
	if (w < 0 || (size_t)w >= len)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "nftables table name too long");
	return CEP_OK;
}

/* ---- libnftables ---- */

typedef struct cmd_job {
	const char *cmds;
} cmd_job;

static int run_cmds(void *arg, cep_err *err)
{
	cmd_job *j = arg;
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (ctx == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "nftables: no context");
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	int rc = CEP_OK;
	if (nft_run_cmd_from_buffer(ctx, j->cmds) != 0) {
		const char *e = nft_ctx_get_error_buffer(ctx);
		char one[300];
		snprintf(one, sizeof(one), "%s", e ? e : "failed");
		one[strcspn(one, "\n")] = '\0';
		rc = cep_err_set(err, CEP_FAILED_PRECONDITION, "nftables: %s",
		    one);
	}
	nft_ctx_free(ctx);
	return rc;
}

/* Runs nft commands (native syntax, written in this module only) inside
 * the namespace as one transaction. */
static int nft_run(int nsfd, const char *cmds, cep_err *err)
{
	cmd_job j = {.cmds = cmds};
	return cep_netns_run(nsfd, run_cmds, &j, err);
}

int cep_nft_create(int nsfd, const cep_nft_spec *s, cep_err *err)
{
	char *buf = malloc(CEP_NFT_SCRIPT_MAX);
	if (buf == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "no memory");
	int rc = cep_nft_spec_script(s, buf, CEP_NFT_SCRIPT_MAX, err);
	if (rc == CEP_OK)
		rc = nft_run(nsfd, buf, err);
	free(buf);
	return rc;
}

/* ---- libnftnl + libmnl ---- */

/* Sends buf and reads answers until the ack of last_seq (or an error). */
static int mnl_talk(struct mnl_socket *nl, const void *buf, size_t len,
    uint32_t last_seq, mnl_cb_t cb, void *data, const char *what, cep_err *err)
{
	if (mnl_socket_sendto(nl, buf, len) < 0)
		return cep_err_errno(err, errno, what);
	char rbuf[NL_BUF];
	unsigned portid = mnl_socket_get_portid(nl);
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, rbuf, sizeof(rbuf));
		if (n < 0)
			return cep_err_errno(err, errno, what);
		int r = mnl_cb_run(rbuf, (size_t)n, 0, portid, cb, data);
		if (r < 0)
			return cep_err_errno(err, errno, what);
		if (r == MNL_CB_STOP)
			return CEP_OK;
		/* an ack (error 0) for the last message ends the exchange */
		struct nlmsghdr *h = (struct nlmsghdr *)rbuf;
		if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == last_seq)
			return CEP_OK;
	}
}

static struct mnl_socket *nl_open(cep_err *err)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER,
	    SOCK_CLOEXEC);
	if (nl == NULL) {
		cep_err_errno(err, errno, "netfilter netlink socket");
		return NULL;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		cep_err_errno(err, errno,
		    "binding the netfilter netlink socket");
		mnl_socket_close(nl);
		return NULL;
	}
	return nl;
}

typedef struct nfq_job {
	const char *table, *chain;
	uint16_t qnum;
} nfq_job;

static int add_expr(struct nftnl_rule *r, struct nftnl_expr *e)
{
	if (e == NULL)
		return -1;
	nftnl_rule_add_expr(r, e);
	return 0;
}

/* meta mark -> reg1; reg1 &= 0; lookup reg1 in @armed; NFQUEUE target. */
static struct nftnl_rule *nfq_rule(const nfq_job *j)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	if (r == NULL)
		return NULL;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, j->table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, j->chain);
	struct nftnl_expr *meta = nftnl_expr_alloc("meta");
	struct nftnl_expr *bw = nftnl_expr_alloc("bitwise");
	struct nftnl_expr *lk = nftnl_expr_alloc("lookup");
	struct nftnl_expr *tg = nftnl_expr_alloc("target");
	struct xt_NFQ_info_v3 *info = calloc(1, sizeof(*info));
	if (!meta || !bw || !lk || !tg || !info) {
		nftnl_expr_free(meta);
		nftnl_expr_free(bw);
		nftnl_expr_free(lk);
		nftnl_expr_free(tg);
		free(info);
		nftnl_rule_free(r);
		return NULL;
	}
	uint32_t zero = 0;
	nftnl_expr_set_u32(meta, NFTNL_EXPR_META_KEY, NFT_META_MARK);
	nftnl_expr_set_u32(meta, NFTNL_EXPR_META_DREG, NFT_REG_1);
	nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_LEN, sizeof(uint32_t));
	nftnl_expr_set(bw, NFTNL_EXPR_BITWISE_MASK, &zero, sizeof(zero));
	nftnl_expr_set(bw, NFTNL_EXPR_BITWISE_XOR, &zero, sizeof(zero));
	nftnl_expr_set_u32(lk, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_str(lk, NFTNL_EXPR_LOOKUP_SET, CEP_NFT_ARMED_SET);
	info->queuenum = j->qnum;
	info->queues_total = 1;
	info->flags = NFQ_FLAG_BYPASS;
	nftnl_expr_set_str(tg, NFTNL_EXPR_TG_NAME, "NFQUEUE");
	nftnl_expr_set_u32(tg, NFTNL_EXPR_TG_REV, 3);
	/* libnftnl takes ownership of info */
	nftnl_expr_set(tg, NFTNL_EXPR_TG_INFO, info, sizeof(*info));
	add_expr(r, meta);
	add_expr(r, bw);
	add_expr(r, lk);
	add_expr(r, tg);
	return r;
}

static int nfq_add(void *arg, cep_err *err)
{
	nfq_job *j = arg;
	struct nftnl_rule *r = nfq_rule(j);
	if (r == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "nftables: no memory for the NFQUEUE rule");
	struct mnl_socket *nl = nl_open(err);
	if (nl == NULL) {
		nftnl_rule_free(r);
		return err ? err->code : CEP_INTERNAL;
	}
	char *buf = calloc(1, NL_BUF);
	int rc = CEP_RESOURCE_EXHAUSTED;
	if (buf != NULL) {
		uint32_t seq = (uint32_t)cep_clock_mono_ms();
		struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(buf, NL_BUF);
		nftnl_batch_begin(mnl_nlmsg_batch_current(b), seq++);
		mnl_nlmsg_batch_next(b);
		uint32_t rseq = seq;
		struct nlmsghdr *h =
		    nftnl_rule_nlmsg_build_hdr(mnl_nlmsg_batch_current(b),
		        NFT_MSG_NEWRULE, NFPROTO_INET,
		        NLM_F_APPEND | NLM_F_CREATE | NLM_F_ACK, seq++);
		nftnl_rule_nlmsg_build_payload(h, r);
		mnl_nlmsg_batch_next(b);
		nftnl_batch_end(mnl_nlmsg_batch_current(b), seq++);
		mnl_nlmsg_batch_next(b);
		rc = mnl_talk(nl, mnl_nlmsg_batch_head(b),
		    mnl_nlmsg_batch_size(b), rseq, NULL, NULL,
		    "nftables: adding the NFQUEUE rule", err);
		mnl_nlmsg_batch_stop(b);
	} else {
		cep_err_set(err, rc, "nftables: no memory");
	}
	free(buf);
	mnl_socket_close(nl);
	nftnl_rule_free(r);
	return rc;
}

int cep_nft_queue_rules(int nsfd, const cep_nft_spec *s, cep_err *err)
{
	int rc = cep_nft_spec_check(s, err);
	if (rc == CEP_OK && s->action != CEP_NFT_QUEUE)
		rc = cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "nftables: queue rules for a spec whose action is not QUEUE");
	static const char *const chains[] = {"out", "in"};
	static const unsigned dirs[] = {CEP_NFT_OUT, CEP_NFT_IN};
	for (int i = 0; rc == CEP_OK && i < 2; i++) {
		if (!(s->dirs & dirs[i]))
			continue;
		nfq_job j = {.table = s->table,
		    .chain = chains[i],
		    .qnum = s->qnum};
		rc = cep_netns_run(nsfd, nfq_add, &j, err);
	}
	return rc;
}

typedef struct exists_job {
	const char *table;
	bool exists;
} exists_job;

static int table_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	((exists_job *)data)->exists = true;
	return MNL_CB_OK;
}

static int table_get(void *arg, cep_err *err)
{
	exists_job *j = arg;
	struct nftnl_table *t = nftnl_table_alloc();
	if (t == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "no memory");
	struct mnl_socket *nl = nl_open(err);
	if (nl == NULL) {
		nftnl_table_free(t);
		return err ? err->code : CEP_INTERNAL;
	}
	char buf[NL_BUF];
	uint32_t seq = (uint32_t)cep_clock_mono_ms();
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, j->table);
	struct nlmsghdr *h = nftnl_table_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE,
	    NFPROTO_INET, NLM_F_ACK, seq);
	nftnl_table_nlmsg_build_payload(h, t);
	nftnl_table_free(t);
	j->exists = false;
	cep_err e2 = {0};
	int rc = mnl_talk(nl, buf, h->nlmsg_len, seq, table_cb, j,
	    "nftables: looking up a table", &e2);
	mnl_socket_close(nl);
	if (rc != CEP_OK && errno == ENOENT) {
		j->exists = false;
		return CEP_OK;
	}
	if (rc != CEP_OK && err != NULL)
		*err = e2;
	return rc;
}

int cep_nft_table_exists(int nsfd, const char *table, bool *exists,
    cep_err *err)
{
	exists_job j = {.table = table};
	int rc = cep_netns_run(nsfd, table_get, &j, err);
	*exists = j.exists;
	return rc;
}

bool cep_nft_table_name_ok(const char *t)
{
	if (t == NULL || strncmp(t, "cep_", 4) != 0 ||
	    strnlen(t, CEP_NFT_TABLE_MAX) >= CEP_NFT_TABLE_MAX)
		return false;
	for (const char *p = t; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		        *p == '_'))
			return false;
	return true;
}

int cep_nft_delete_table(int nsfd, const char *table, cep_err *err)
{
	if (!cep_nft_table_name_ok(table))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "nftables: \"%.64s\" is not a cep table name", table);
	bool exists = true;
	int rc = cep_nft_table_exists(nsfd, table, &exists, err);
	if (rc != CEP_OK || !exists)
		return rc;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "delete table inet %s\n", table);
	cep_err derr = {0};
	int drc = nft_run(nsfd, cmd, &derr);
	rc = cep_nft_table_exists(nsfd, table, &exists, err);
	if (rc != CEP_OK)
		return rc;
	if (exists)
		return cep_err_set(err, CEP_INTERNAL,
		    "nftables table %s still present after delete%s%s", table,
		    drc != CEP_OK ? ": " : "", drc != CEP_OK ? derr.msg : "");
	return CEP_OK;
}

json_t *cep_nft_undo_json(const cep_netns_id *id, const char *path,
    const char *table)
{
	return json_pack("{s:I, s:I, s:s, s:s}", "netns_dev",
	    (json_int_t)id->dev, "netns_inode", (json_int_t)id->ino,
	    "netns_path", path ? path : "", "table", table);
}

int cep_nft_undo(const char *run_id, const char *undo_json, cep_err *err)
{
	(void)run_id;
	json_error_t je;
	json_t *u = json_loads(undo_json ? undo_json : "", 0, &je);
	json_int_t dev = 0, ino = 0;
	const char *path = "", *table = NULL;
	if (u == NULL ||
	    json_unpack(u, "{s:I, s:I, s?s, s:s}", "netns_dev", &dev,
	        "netns_inode", &ino, "netns_path", &path, "table",
	        &table) != 0 ||
	    ino <= 0) {
		json_decref(u);
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "nftables undo: record lacks netns_dev/netns_inode/table");
	}
	cep_netns_id id = {.dev = (uint64_t)dev, .ino = (uint64_t)ino};
	int fd = -1;
	cep_err ferr = {0};
	int rc = cep_netns_find(&id, path, &fd, &ferr);
	if (rc == CEP_NOT_FOUND) {
		json_decref(u);
		return CEP_OK; /* the namespace and its rules are gone */
	}
	if (rc == CEP_OK) {
		rc = cep_nft_delete_table(fd, table, err);
		close(fd);
	} else if (err != NULL) {
		*err = ferr;
	}
	json_decref(u);
	return rc;
}
