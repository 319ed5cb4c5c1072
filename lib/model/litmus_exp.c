/*
 * litmus_exp.c - one Litmus experiment (spec.experiments[0]) and its env
 * variables -> one native fault, as a table: each supported experiment
 * names its cep fault type, its TOTAL_CHAOS_DURATION default, the
 * variables it honours and a map function that applies Litmus's
 * defaults. Experiments cep has no mechanism for, and variables it cannot
 * honour, are refused with their reason (docs/litmus.md keeps the same
 * lists).
 */
#define _GNU_SOURCE
#include "litmus_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIT_MAX_ENV 64

/* The env list of an experiment, by name. */
struct lit_env {
	size_t n;
	const cep_yaml_node *name[LIT_MAX_ENV], *val[LIT_MAX_ENV];
	const char *names[LIT_MAX_ENV], *vals[LIT_MAX_ENV]; /* NULL: empty */
	const cep_yaml_node *exp; /* the experiment, for messages */
};

typedef void (
    *lit_map_fn)(struct lit_ctx *, struct lit_env *, struct lit_item *);

struct lit_exp {
	const char *name, *type;
	long long duration;      /* TOTAL_CHAOS_DURATION default, seconds */
	bool pod;                /* a pod's container: TARGET_PODS & co */
	const char *const *vars; /* its own variables */
	lit_map_fn map;
};

/* ---- env ---- */

static const char *env_get(struct lit_env *e, const char *name,
    const cep_yaml_node **node)
{
	for (size_t i = 0; i < e->n; i++) {
		if (strcmp(e->names[i], name) != 0)
			continue;
		if (node != NULL)
			*node = e->val[i] != NULL ? e->val[i] : e->name[i];
		return e->vals[i];
	}
	if (node != NULL)
		*node = e->exp;
	return NULL;
}

static void env_diag(struct lit_ctx *c, const cep_yaml_node *n, const char *var,
    const char *what)
{
	char path[80];
	snprintf(path, sizeof(path), "env %s", var);
	cep_exp_val_diag(c->v, n, path, "%s", what);
}

/* A whole number min..max, or def when absent; false with a message. */
static bool env_uint(struct lit_ctx *c, struct lit_env *e, const char *var,
    long long def, long long min, long long max, long long *out)
{
	const cep_yaml_node *n;
	const char *s = env_get(e, var, &n);
	char msg[200], b[80];
	if (s == NULL) {
		*out = def;
		return true;
	}
	if (cep_litmus_uint(s, max, out) && *out >= min)
		return true;
	snprintf(msg, sizeof(msg),
	    "\"%s\" is not supported, expected a "
	    "whole number %lld..%lld",
	    cep_exp_val_shown(s, b, sizeof(b)), min, max);
	env_diag(c, n, var, msg);
	return false;
}

/* One of words, or def when absent. */
static const char *env_word(struct lit_ctx *c, struct lit_env *e,
    const char *var, const char *def, const char *const *words)
{
	const cep_yaml_node *n;
	const char *s = env_get(e, var, &n);
	char msg[200], b[80], exp[96];
	if (s == NULL)
		return def;
	if (cep_yamlget_in_list(s, words))
		return s;
	cep_yamlget_join(exp, sizeof(exp), words);
	snprintf(msg, sizeof(msg),
	    "\"%s\" is not supported, expected one of: "
	    "%s",
	    cep_exp_val_shown(s, b, sizeof(b)), exp);
	env_diag(c, n, var, msg);
	return NULL;
}

static void env_refuse(struct lit_ctx *c, struct lit_env *e, const char *var,
    const char *why)
{
	const cep_yaml_node *n;
	if (env_get(e, var, &n) != NULL)
		env_diag(c, n, var, why);
}

/* The next comma-separated item of *cur, spaces trimmed; false at the
 * end. Longer items are cut to len - 1 bytes (and then refused by the
 * caller's shape check). */
static bool next_item(const char **cur, char *buf, size_t len)
{
	const char *p = *cur;
	while (*p == ',' || *p == ' ')
		p++;
	if (*p == '\0')
		return false;
	const char *end = strchr(p, ',');
	size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
	*cur = p + n;
	while (n > 0 && p[n - 1] == ' ')
		n--;
	if (n >= len)
		n = len - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return true;
}

/* Comma-separated items (TARGET_PODS, DESTINATION_IPS) into a list
 * parameter of it (when not NULL); returns the count, SIZE_MAX when an
 * item is too long to be an address or a name (never cut short). */
static size_t env_list(struct lit_ctx *c, const char *s, struct lit_item *it,
    const char *key)
{
	size_t count = 0;
	char buf[256];
	while (next_item(&s, buf, sizeof(buf))) {
		if (strlen(buf) >= sizeof(buf) - 1)
			return SIZE_MAX;
		if (it != NULL && count < LIT_MAX_LIST)
			cep_litmus_add_item(c, it, key, buf);
		count++;
	}
	return count;
}

/* ---- targets ---- */

static bool valid_pod(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		        s[i] == '.'))
			return false;
	return true;
}

/* Pods chosen from spec.appinfo.applabel: PODS_AFFECTED_PERC is the
 * share, 0 (or empty) Litmus's "one pod". All chosen pods are faulted
 * together, which is Litmus's parallel; serial is refused when more than
 * one pod may be chosen. */
static void label_share(struct lit_ctx *c, struct lit_env *e,
    struct lit_item *it)
{
	static const char *const seq[] = {"parallel", "serial", NULL};
	const cep_yaml_node *n;
	long long pct = 0;
	if (c->applabel != NULL)
		cep_litmus_set(c, it, "labelSelector", "%s", c->applabel);
	if (env_uint(c, e, "PODS_AFFECTED_PERC", 0, 0, 100, &pct)) {
		if (pct == 0)
			cep_litmus_set(c, it, "count", "1");
		else
			cep_litmus_set(c, it, "percentage", "%lld", pct);
	}
	const char *s = env_word(c, e, "SEQUENCE", "parallel", seq);
	if (s != NULL && strcmp(s, "serial") == 0 && pct != 0) {
		(void)env_get(e, "SEQUENCE", &n);
		env_diag(c, n, "SEQUENCE",
		    "serial is not supported with "
		    "PODS_AFFECTED_PERC: cep faults the chosen pods together");
	}
}

/* cep's node-level faults act on one container of one named pod, or of
 * the pods a label selector chooses at injection (all on one node). */
static void pod_target(struct lit_ctx *c, struct lit_env *e,
    struct lit_item *it)
{
	static const char *const seq[] = {"parallel", "serial", NULL};
	const cep_yaml_node *n;
	const char *pods = env_get(e, "TARGET_PODS", &n);
	char name[256];
	if (pods == NULL && c->applabel == NULL) {
		cep_exp_val_diag(c->v, c->appinfo ? c->appinfo : e->exp,
		    "spec.appinfo.applabel",
		    "%s needs the pods' label selector or TARGET_PODS naming "
		    "one pod",
		    it->name);
	} else if (pods == NULL) {
		label_share(c, e, it);
	} else if (env_list(c, pods, NULL, NULL) != 1 ||
	    !next_item(&pods, name, sizeof(name)) || !valid_pod(name)) {
		env_diag(c, n, "TARGET_PODS",
		    "expected one pod name: several are not "
		    "supported (cep chooses a share among the pods of a label "
		    "selector, not among names: use spec.appinfo.applabel)");
	} else {
		/* one named pod: any share of one pod is that pod */
		long long pct;
		cep_litmus_set(c, it, "pod", "%s", name);
		(void)env_uint(c, e, "PODS_AFFECTED_PERC", 0, 0, 100, &pct);
		(void)env_word(c, e, "SEQUENCE", "parallel", seq);
	}
	const char *ctr = env_get(e, "TARGET_CONTAINER", &n);
	if (ctr != NULL && !cep_exp_val_valid_name(ctr))
		env_diag(c, n, "TARGET_CONTAINER", "expected a container name");
	else if (ctr != NULL)
		cep_litmus_set(c, it, "container", "%s", ctr);
}

/* ---- the experiments ---- */

static const char *const v_pod_delete[] = {"CHAOS_INTERVAL", "FORCE",
    "PODS_AFFECTED_PERC", "SEQUENCE", "TARGET_PODS", "RANDOMNESS", NULL};

static void map_pod_delete(struct lit_ctx *c, struct lit_env *e,
    struct lit_item *it)
{
	static const char *const bools[] = {"true", "false", NULL};
	if (c->applabel == NULL)
		cep_exp_val_diag(c->v, c->appinfo ? c->appinfo : e->exp,
		    "spec.appinfo.applabel",
		    "pod-delete needs the pods' "
		    "label selector: cep's pod-delete selects by label");
	env_refuse(c, e, "TARGET_PODS",
	    "not supported for pod-delete: cep "
	    "deletes pods chosen by spec.appinfo.applabel, not by name");
	env_refuse(c, e, "RANDOMNESS",
	    "not supported: cep's rounds come "
	    "every CHAOS_INTERVAL");
	long long every;
	label_share(c, e, it);
	if (env_uint(c, e, "CHAOS_INTERVAL", 5, 1, 24 * 3600, &every))
		cep_litmus_set(c, it, "interval", "%llds", every);
	const char *force = env_word(c, e, "FORCE", "true", bools);
	if (force != NULL)
		cep_litmus_set(c, it, "force", "%s", force);
}

static const char *const v_cpu[] = {"CPU_CORES", "CPU_LOAD", NULL};

static void map_cpu(struct lit_ctx *c, struct lit_env *e, struct lit_item *it)
{
	long long cores, load;
	pod_target(c, e, it);
	if (env_uint(c, e, "CPU_CORES", 1, 1, 256, &cores))
		cep_litmus_set(c, it, "workers", "%lld", cores);
	if (env_uint(c, e, "CPU_LOAD", 100, 1, 100, &load))
		cep_litmus_set(c, it, "load", "%lld", load);
}

static const char *const v_memory[] = {"MEMORY_CONSUMPTION",
    "NUMBER_OF_WORKERS", NULL};

static void map_memory(struct lit_ctx *c, struct lit_env *e,
    struct lit_item *it)
{
	long long mib, workers;
	pod_target(c, e, it);
	if (env_uint(c, e, "MEMORY_CONSUMPTION", 500, 1, 65536, &mib))
		cep_litmus_set(c, it, "mib", "%lld", mib);
	/* cep's memory-hog is one worker holding MEMORY_CONSUMPTION */
	(void)env_uint(c, e, "NUMBER_OF_WORKERS", 1, 1, 1, &workers);
}

static const char *const v_io[] = {"FILESYSTEM_UTILIZATION_BYTES",
    "FILESYSTEM_UTILIZATION_PERCENTAGE", "NUMBER_OF_WORKERS",
    "VOLUME_MOUNT_PATH", NULL};

/* A size variable where Litmus's default is a share cep cannot honour:
 * the share variable is refused, the size is required. */
static bool size_not_share(struct lit_ctx *c, struct lit_env *e,
    const char *size_var, const char *share_var, const char *why, long long max,
    long long *out)
{
	const cep_yaml_node *n;
	char msg[400];
	snprintf(msg, sizeof(msg), "not supported: %s, expected %s", why,
	    size_var);
	env_refuse(c, e, share_var, msg);
	if (env_get(e, size_var, &n) != NULL)
		return env_uint(c, e, size_var, 1, 1, max, out);
	if (env_get(e, share_var, NULL) == NULL) {
		snprintf(msg, sizeof(msg),
		    "missing, so Litmus would use its "
		    "default %s: %s",
		    share_var, why);
		env_diag(c, n, size_var, msg);
	}
	return false;
}

/* The writers of pod-io-stress and node-io-stress: how much, how many. */
static void io_size(struct lit_ctx *c, struct lit_env *e, struct lit_item *it)
{
	long long gb, workers;
	if (size_not_share(c, e, "FILESYSTEM_UTILIZATION_BYTES",
	        "FILESYSTEM_UTILIZATION_PERCENTAGE",
	        "cep's io-stress writes files of a size (GB), not a share of "
	        "the filesystem",
	        4, &gb))
		cep_litmus_set(c, it, "fileMiB", "%lld", gb * 1024);
	if (env_uint(c, e, "NUMBER_OF_WORKERS", 4, 1, 64, &workers))
		cep_litmus_set(c, it, "workers", "%lld", workers);
}

static void map_io(struct lit_ctx *c, struct lit_env *e, struct lit_item *it)
{
	const cep_yaml_node *n;
	pod_target(c, e, it);
	io_size(c, e, it);
	const char *path = env_get(e, "VOLUME_MOUNT_PATH", &n);
	if (path != NULL && path[0] != '/')
		env_diag(c, n, "VOLUME_MOUNT_PATH",
		    "expected an absolute path");
	else if (path != NULL)
		cep_litmus_set(c, it, "path", "%s", path);
}

static const char *const v_disk[] = {"FILL_PERCENTAGE",
    "EPHEMERAL_STORAGE_MEBIBYTES", "DATA_BLOCK_SIZE", "CONTAINER_PATH", NULL};

static void map_disk(struct lit_ctx *c, struct lit_env *e, struct lit_item *it)
{
	long long mib;
	pod_target(c, e, it);
	cep_litmus_set(c, it, "path", "/");
	if (size_not_share(c, e, "EPHEMERAL_STORAGE_MEBIBYTES",
	        "FILL_PERCENTAGE",
	        "cep fills by size, not to a share of the container's "
	        "ephemeral-storage limit",
	        16777216, &mib))
		cep_litmus_set(c, it, "mib", "%lld", mib);
}

/* Network faults: eth0 is the pod's interface; cep acts on the pod's
 * namespace, which holds that one (and lo, which faults leave alone). */
static void net_common(struct lit_ctx *c, struct lit_env *e,
    struct lit_item *it, bool ips)
{
	static const char *const ifaces[] = {"eth0", NULL};
	const cep_yaml_node *n;
	pod_target(c, e, it);
	(void)env_word(c, e, "NETWORK_INTERFACE", "eth0", ifaces);
	const char *dst = env_get(e, "DESTINATION_IPS", &n);
	if (!ips || dst == NULL)
		return;
	if (strchr(dst, '|') != NULL || env_list(c, dst, NULL, NULL) > 64)
		env_diag(c, n, "DESTINATION_IPS",
		    "expected at most 64 "
		    "comma-separated addresses or CIDRs (no |port)");
	else
		(void)env_list(c, dst, it, "cidrs");
}

static const char *const v_latency[] = {"NETWORK_LATENCY", "JITTER",
    "DESTINATION_IPS", "NETWORK_INTERFACE", NULL};

static void map_latency(struct lit_ctx *c, struct lit_env *e,
    struct lit_item *it)
{
	long long ms, jitter;
	net_common(c, e, it, true);
	if (env_uint(c, e, "NETWORK_LATENCY", 2000, 1, 10000, &ms))
		cep_litmus_set(c, it, "delay", "%lldms", ms);
	if (env_uint(c, e, "JITTER", 0, 0, 10000, &jitter))
		cep_litmus_set(c, it, "jitter", "%lldms", jitter);
}

static void map_percent(struct lit_ctx *c, struct lit_env *e,
    struct lit_item *it, const char *var)
{
	long long pct;
	net_common(c, e, it, true);
	if (env_uint(c, e, var, 100, 1, 100, &pct))
		cep_litmus_set(c, it, "percent", "%lld", pct);
}

static const char *const v_loss[] = {"NETWORK_PACKET_LOSS_PERCENTAGE",
    "DESTINATION_IPS", "NETWORK_INTERFACE", NULL};
static void map_loss(struct lit_ctx *c, struct lit_env *e, struct lit_item *it)
{
	map_percent(c, e, it, "NETWORK_PACKET_LOSS_PERCENTAGE");
}

static const char *const v_corrupt[] = {"NETWORK_PACKET_CORRUPTION_PERCENTAGE",
    "DESTINATION_IPS", "NETWORK_INTERFACE", NULL};
static void map_corrupt(struct lit_ctx *c, struct lit_env *e,
    struct lit_item *it)
{
	map_percent(c, e, it, "NETWORK_PACKET_CORRUPTION_PERCENTAGE");
}

static const char *const v_dup[] = {"NETWORK_PACKET_DUPLICATION_PERCENTAGE",
    "DESTINATION_IPS", "NETWORK_INTERFACE", NULL};
static void map_dup(struct lit_ctx *c, struct lit_env *e, struct lit_item *it)
{
	map_percent(c, e, it, "NETWORK_PACKET_DUPLICATION_PERCENTAGE");
}

static const char *const v_partition[] = {"DESTINATION_IPS", "POLICY_TYPES",
    NULL};
static void map_partition(struct lit_ctx *c, struct lit_env *e,
    struct lit_item *it)
{
	static const char *const types[] = {"all", "ingress", "egress", NULL};
	const cep_yaml_node *n;
	net_common(c, e, it, true);
	if (env_get(e, "DESTINATION_IPS", &n) == NULL)
		env_diag(c, n, "DESTINATION_IPS",
		    "missing: cep partitions a "
		    "pod from addresses, expected DESTINATION_IPS");
	const char *t = env_word(c, e, "POLICY_TYPES", "all", types);
	if (t != NULL)
		cep_litmus_set(c, it, "direction", "%s",
		    strcmp(t, "all") == 0 ? "both" : t);
}

static const char *const v_rate[] = {"NETWORK_BANDWIDTH", "BURST", "LIMIT",
    "DESTINATION_IPS", "NETWORK_INTERFACE", NULL};
static void map_rate(struct lit_ctx *c, struct lit_env *e, struct lit_item *it)
{
	const cep_yaml_node *n;
	long long kbps, kib;
	net_common(c, e, it, true);
	const char *bw = env_get(e, "NETWORK_BANDWIDTH", &n);
	if (!cep_litmus_tc_rate(bw != NULL ? bw : "1mbit", &kbps) || kbps < 8 ||
	    kbps > 100000000)
		env_diag(c, n, "NETWORK_BANDWIDTH",
		    "expected a tc rate 8kbit.."
		    "100gbit such as 1mbit, 500kbit or 100kbps");
	else
		cep_litmus_set(c, it, "kbps", "%lld", kbps);
	const char *burst = env_get(e, "BURST", &n);
	if (!cep_litmus_tc_size(burst != NULL ? burst : "32kb", &kib) ||
	    kib < 1 || kib > 1048576)
		env_diag(c, n, "BURST",
		    "expected a tc size 1kb..1gb such as "
		    "32kb");
	else
		cep_litmus_set(c, it, "burstKiB", "%lld", kib);
}

static const char *const v_dns[] = {"TARGET_HOSTNAMES", "MATCH_SCHEME", NULL};
static void map_dns(struct lit_ctx *c, struct lit_env *e, struct lit_item *it)
{
	static const char *const schemes[] = {"exact", NULL};
	const cep_yaml_node *n;
	net_common(c, e, it, false);
	(void)env_word(c, e, "MATCH_SCHEME", "exact", schemes);
	const char *names = env_get(e, "TARGET_HOSTNAMES", &n);
	if (names == NULL) {
		env_diag(c, n, "TARGET_HOSTNAMES",
		    "missing: Litmus's default "
		    "(every name) is not supported, expected a list of the "
		    "names that fail such as '[\"db.shop.svc\"]'");
		return;
	}
	cep_litmus_hostnames(c, n, names, it);
}

/* ---- node experiments through the API (node-taint, node-drain) ---- */

/* TARGET_NODE (one node), else NODE_LABEL: Litmus then acts on one of
 * the matching nodes, cep on the first by name (count 1). */
static void node_target(struct lit_ctx *c, struct lit_env *e,
    struct lit_item *it)
{
	const cep_yaml_node *n;
	const char *node = env_get(e, "TARGET_NODE", &n);
	const char *label = env_get(e, "NODE_LABEL", NULL);
	char msg[200];
	if (node != NULL && valid_pod(node)) {
		cep_litmus_set(c, it, "node", "%s", node);
	} else if (node != NULL) {
		env_diag(c, n, "TARGET_NODE", "expected one node name");
	} else if (label != NULL) {
		cep_litmus_set(c, it, "nodeSelector", "%s", label);
		cep_litmus_set(c, it, "count", "1");
	} else {
		snprintf(msg, sizeof(msg),
		    "%s needs TARGET_NODE or NODE_LABEL: cep "
		    "does not pick the node of an application pod",
		    it->name);
		env_diag(c, n, "TARGET_NODE", msg);
	}
}

static bool taint_chars(const char *s, size_t len, bool slash)
{
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= 'A' && s[i] <= 'Z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		        s[i] == '.' || s[i] == '_' || (slash && s[i] == '/')))
			return false;
	return true;
}

/* "key[=value][:effect]", Litmus's defaults value node-taint and effect
 * NoExecute; false when it is not one taint. */
static bool parse_taint(const char *s, struct lit_ctx *c, struct lit_item *it)
{
	static const char *const effects[] = {"NoSchedule", "PreferNoSchedule",
	    "NoExecute", NULL};
	const char *colon = strchr(s, ':');
	size_t lab = colon != NULL ? (size_t)(colon - s) : strlen(s);
	const char *eq = memchr(s, '=', lab);
	size_t klen = eq != NULL ? (size_t)(eq - s) : lab;
	const char *val = eq != NULL ? eq + 1 : "node-taint";
	size_t vlen = eq != NULL ? lab - klen - 1 : strlen(val);
	const char *eff = colon != NULL ? colon + 1 : "NoExecute";
	if (klen == 0 || klen > 316 || vlen > 63 ||
	    !taint_chars(s, klen, true) || !taint_chars(val, vlen, false) ||
	    !cep_yamlget_in_list(eff, effects))
		return false;
	cep_litmus_set(c, it, "key", "%.*s", (int)klen, s);
	cep_litmus_set(c, it, "value", "%.*s", (int)vlen, val);
	cep_litmus_set(c, it, "effect", "%s", eff);
	return true;
}

/* TAINTS is what Litmus reads; its documentation also writes
 * TAINT_LABEL: either, not both. */
static const char *const v_taint[] = {"TARGET_NODE", "NODE_LABEL", "TAINTS",
    "TAINT_LABEL", NULL};
static void map_taint(struct lit_ctx *c, struct lit_env *e, struct lit_item *it)
{
	const cep_yaml_node *n, *n2;
	node_target(c, e, it);
	const char *t = env_get(e, "TAINTS", &n);
	const char *t2 = env_get(e, "TAINT_LABEL", &n2);
	const char *var = t != NULL ? "TAINTS" : "TAINT_LABEL";
	if (t != NULL && t2 != NULL) {
		env_diag(c, n2, "TAINT_LABEL", "not with TAINTS: one taint");
		return;
	}
	if (t == NULL && t2 == NULL) {
		env_diag(c, n, "TAINTS",
		    "missing: expected the taint as "
		    "key=value:effect");
		return;
	}
	if (!parse_taint(t != NULL ? t : t2, c, it))
		env_diag(c, t != NULL ? n : n2, var,
		    "expected one taint key=value:effect (effect "
		    "NoSchedule, PreferNoSchedule or NoExecute)");
}

/* pod-autoscaler: the Deployments of applabel at REPLICA_COUNT. */
static const char *const v_autoscale[] = {"REPLICA_COUNT", NULL};
static void map_autoscale(struct lit_ctx *c, struct lit_env *e,
    struct lit_item *it)
{
	const char *kind = cep_yamldoc_scalar(
	    cep_yamldoc_get(c->appinfo, "appkind"));
	const cep_yaml_node *n;
	long long count;
	if (kind != NULL && strcmp(kind, "deployment") != 0)
		cep_exp_val_diag(c->v, cep_yamldoc_get(c->appinfo, "appkind"),
		    "spec.appinfo.appkind",
		    "pod-autoscaler scales Deployments in cep, not %s", kind);
	if (c->applabel == NULL)
		cep_exp_val_diag(c->v, c->appinfo ? c->appinfo : e->exp,
		    "spec.appinfo.applabel",
		    "pod-autoscaler needs the "
		    "Deployments' label selector");
	else
		cep_litmus_set(c, it, "labelSelector", "%s", c->applabel);
	if (env_get(e, "REPLICA_COUNT", &n) == NULL)
		env_diag(c, n, "REPLICA_COUNT",
		    "missing: expected the replicas "
		    "during the chaos, 0..1000");
	else if (env_uint(c, e, "REPLICA_COUNT", 0, 0, 1000, &count))
		cep_litmus_set(c, it, "replicas", "%lld", count);
}

static const char *const v_drain[] = {"TARGET_NODE", "NODE_LABEL", NULL};
static void map_drain(struct lit_ctx *c, struct lit_env *e, struct lit_item *it)
{
	node_target(c, e, it);
}

/* ---- container-kill: the container's processes signalled in rounds,
 * the kubelet restarts it ---- */

static const char *const v_ck[] = {"CHAOS_INTERVAL", "SIGNAL", NULL};

static void map_container_kill(struct lit_ctx *c, struct lit_env *e,
    struct lit_item *it)
{
	static const char *const sigs[] = {"SIGKILL", "SIGTERM", "SIGINT",
	    "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGSTOP", "SIGCONT",
	    NULL};
	long long every;
	pod_target(c, e, it);
	if (env_uint(c, e, "CHAOS_INTERVAL", 10, 1, 24 * 3600, &every))
		cep_litmus_set(c, it, "interval", "%llds", every);
	const char *sig = env_word(c, e, "SIGNAL", "SIGKILL", sigs);
	if (sig != NULL)
		cep_litmus_set(c, it, "signal", "%s", sig);
}

/* ---- node hogs: the runner on the node, workers in a cgroup of the
 * node's own (docs/kubernetes.md, "Node targets") ---- */

static const char *const v_node[] = {"TARGET_NODES", "NODE_LABEL",
    "NODES_AFFECTED_PERC", "SEQUENCE", NULL};

/* TARGET_NODES (one name) -> node; else NODE_LABEL -> nodeSelector: the
 * runner is scheduled onto one of the labelled nodes (the scheduler's
 * choice where Litmus's is random), so NODES_AFFECTED_PERC must leave
 * Litmus's one node too (0, its default). Writes the node named into
 * name ("" with a label) for a second fault on the same node. */
static bool hog_node(struct lit_ctx *c, struct lit_env *e, struct lit_item *it,
    char *name, size_t len)
{
	static const char *const seq[] = {"parallel", "serial", NULL};
	const cep_yaml_node *n, *ln, *pn;
	const char *nodes = env_get(e, "TARGET_NODES", &n);
	const char *label = env_get(e, "NODE_LABEL", &ln);
	bool ok = false;
	long long pct;
	name[0] = '\0';
	bool pct_ok = env_uint(c, e, "NODES_AFFECTED_PERC", 0, 0, 100, &pct);
	if (nodes != NULL && nodes[0] == '\0')
		nodes = NULL; /* Litmus's "": not given */
	if (label != NULL && label[0] == '\0')
		label = NULL;
	if (nodes != NULL && label != NULL)
		env_diag(c, ln, "NODE_LABEL",
		    "given with TARGET_NODES, expected one of them (Litmus "
		    "would use TARGET_NODES and ignore it)");
	else if (nodes == NULL && label == NULL)
		env_diag(c, n, "TARGET_NODES",
		    "missing: expected one node name, or NODE_LABEL "
		    "(Litmus would pick any node; cep needs the blast radius "
		    "named)");
	else if (nodes != NULL &&
	    (env_list(c, nodes, NULL, NULL) != 1 ||
	        !next_item(&nodes, name, len) || !valid_pod(name)))
		env_diag(c, n, "TARGET_NODES",
		    "expected exactly one node name: "
		    "one runner runs on one node");
	else if (nodes != NULL) {
		cep_litmus_set(c, it, "node", "%s", name);
		ok = true;
	} else if (!cep_exp_node_labels_ok(label)) {
		env_diag(c, ln, "NODE_LABEL",
		    "expected key=value[,key=value...]: the runner is placed "
		    "by the scheduler's nodeSelector, which matches equal "
		    "labels only");
	} else if (pct_ok && pct > 0) {
		(void)env_get(e, "NODES_AFFECTED_PERC", &pn);
		env_diag(c, pn, "NODES_AFFECTED_PERC",
		    "with NODE_LABEL: a share of the labelled nodes is not "
		    "supported (one runner runs on one node), expected 0 (one "
		    "node, Litmus's default)");
	} else {
		cep_litmus_set(c, it, "nodeSelector", "%s", label);
		ok = true;
	}
	/* one named node: any share of one node is that node, either order */
	(void)env_word(c, e, "SEQUENCE", "parallel", seq);
	return ok;
}

static const char *const v_node_cpu[] = {"NODE_CPU_CORE", "CPU_LOAD", NULL};

static void map_node_cpu(struct lit_ctx *c, struct lit_env *e,
    struct lit_item *it)
{
	long long cores, load;
	char node[256];
	(void)hog_node(c, e, it, node, sizeof(node));
	/* Litmus's 0 (every core) is refused by the bounds: cep counts */
	if (env_uint(c, e, "NODE_CPU_CORE", 2, 1, 256, &cores))
		cep_litmus_set(c, it, "workers", "%lld", cores);
	if (env_uint(c, e, "CPU_LOAD", 100, 1, 100, &load))
		cep_litmus_set(c, it, "load", "%lld", load);
}

static const char *const v_node_memory[] = {"MEMORY_CONSUMPTION_PERCENTAGE",
    "MEMORY_CONSUMPTION_MEBIBYTES", "NUMBER_OF_WORKERS", NULL};

static void map_node_memory(struct lit_ctx *c, struct lit_env *e,
    struct lit_item *it)
{
	long long mib, workers;
	char node[256];
	(void)hog_node(c, e, it, node, sizeof(node));
	if (size_not_share(c, e, "MEMORY_CONSUMPTION_MEBIBYTES",
	        "MEMORY_CONSUMPTION_PERCENTAGE",
	        "cep's memory-hog holds a size (MiB), not a share of the "
	        "node's memory",
	        65536, &mib))
		cep_litmus_set(c, it, "mib", "%lld", mib);
	(void)env_uint(c, e, "NUMBER_OF_WORKERS", 1, 1, 1, &workers);
}

static const char *const v_node_io[] = {"FILESYSTEM_UTILIZATION_BYTES",
    "FILESYSTEM_UTILIZATION_PERCENTAGE", "NUMBER_OF_WORKERS", "CPU", NULL};

/* Litmus's stress-ng also burns CPU cores (CPU, default 1): a cpu-hog
 * on the same node, beside the writers. */
static void map_node_io(struct lit_ctx *c, struct lit_env *e,
    struct lit_item *it)
{
	long long cpu;
	char node[256];
	bool placed = hog_node(c, e, it, node, sizeof(node));
	io_size(c, e, it);
	if (!env_uint(c, e, "CPU", 1, 0, 256, &cpu) || cpu == 0 || !placed)
		return;
	struct lit_item *hog = cep_litmus_new_fault(c, e->exp,
	    "node-io-stress-cpu", "cpu-hog");
	if (hog == NULL)
		return;
	if (node[0] != '\0')
		cep_litmus_set(c, hog, "node", "%s", node);
	else
		cep_litmus_set(c, hog, "nodeSelector", "%s",
		    env_get(e, "NODE_LABEL", NULL));
	cep_litmus_set(c, hog, "workers", "%lld", cpu);
}

static const struct lit_exp experiments[] = {
    {"pod-delete", "pod-delete", 15, false, v_pod_delete, map_pod_delete},
    {"pod-cpu-hog", "cpu-hog", 60, true, v_cpu, map_cpu},
    {"pod-memory-hog", "memory-hog", 60, true, v_memory, map_memory},
    {"pod-io-stress", "io-stress", 120, true, v_io, map_io},
    {"disk-fill", "disk-fill", 60, true, v_disk, map_disk},
    {"pod-network-latency", "network-latency", 60, true, v_latency,
        map_latency},
    {"pod-network-loss", "network-loss", 60, true, v_loss, map_loss},
    {"pod-network-corruption", "network-corrupt", 60, true, v_corrupt,
        map_corrupt},
    {"pod-network-duplication", "network-duplicate", 60, true, v_dup, map_dup},
    {"pod-network-partition", "network-partition", 60, true, v_partition,
        map_partition},
    {"pod-network-rate-limit", "network-bandwidth", 60, true, v_rate, map_rate},
    {"pod-dns-error", "dns-error", 60, true, v_dns, map_dns},
    {"node-taint", "node-taint", 60, false, v_taint, map_taint},
    {"node-drain", "node-drain", 60, false, v_drain, map_drain},
    {"pod-autoscaler", "deployment-scale", 60, false, v_autoscale,
        map_autoscale},
    {"container-kill", "container-kill", 20, true, v_ck, map_container_kill},
    {"node-cpu-hog", "cpu-hog", 60, false, v_node_cpu, map_node_cpu},
    {"node-memory-hog", "memory-hog", 120, false, v_node_memory,
        map_node_memory},
    {"node-io-stress", "io-stress", 120, false, v_node_io, map_node_io},
};
#define NEXP (sizeof(experiments) / sizeof(experiments[0]))

static const char *const supported_names[] = {"pod-delete", "pod-cpu-hog",
    "pod-memory-hog", "pod-io-stress", "disk-fill", "pod-network-latency",
    "pod-network-loss", "pod-network-corruption", "pod-network-duplication",
    "pod-network-partition", "pod-network-rate-limit", "pod-dns-error",
    "node-taint", "node-drain", "pod-autoscaler", "container-kill",
    "node-cpu-hog", "node-memory-hog", "node-io-stress", NULL};
_Static_assert(sizeof(supported_names) / sizeof(supported_names[0]) == NEXP + 1,
    "supported names");

/* Experiments whose mechanism cep does not have, with why. */
static const struct {
	const char *name, *why;
} refused[] = {
    {"pod-dns-spoof", "cep's dns-error fails names, it answers none"},
    {"kubelet-service-kill", "cep stops no node service"},
    {"node-restart", "cep restarts no node"},
};
#define NREFUSED (sizeof(refused) / sizeof(refused[0]))

static const char *const refused_names[] = {"pod-dns-spoof",
    "kubelet-service-kill", "node-restart", NULL};
_Static_assert(sizeof(refused_names) / sizeof(refused_names[0]) == NREFUSED + 1,
    "refused names");

const char *const *cep_litmus_supported(void)
{
	return supported_names;
}

const char *const *cep_litmus_refused(void)
{
	return refused_names;
}

/* Every experiment: duration, ramp time, the health check. */
static const char *const v_common[] = {"TOTAL_CHAOS_DURATION", "RAMP_TIME",
    "DEFAULT_APP_HEALTH_CHECK", NULL};
/* Pod faults: which pod and container. */
static const char *const v_pod[] = {"TARGET_PODS", "TARGET_CONTAINER",
    "PODS_AFFECTED_PERC", "SEQUENCE", NULL};
/* How Litmus reaches a node or names its own objects: cep finds the
 * container runtime itself and needs no helper image. */
static const char *const v_litmus_only[] = {"LIB", "LIB_IMAGE",
    "CONTAINER_RUNTIME", "SOCKET_PATH", "TC_IMAGE", "STRESS_IMAGE",
    "CHAOS_KILL_COMMAND", "INSTANCE_ID", "SET_HELPER_DATA",
    "TERMINATION_GRACE_PERIOD_SECONDS", NULL};

static void check_vars(struct lit_ctx *c, struct lit_env *e,
    const struct lit_exp *x)
{
	static const char *const runtimes[] = {"containerd", "crio", "docker",
	    NULL};
	char msg[200];
	for (size_t i = 0; i < e->n; i++) {
		const char *s = e->names[i];
		if (cep_yamlget_in_list(s, v_common) ||
		    cep_yamlget_in_list(s, v_litmus_only) ||
		    cep_yamlget_in_list(s, x->vars) ||
		    (x->pod && cep_yamlget_in_list(s, v_pod)) ||
		    (!x->pod && strncmp(x->name, "node-", 5) == 0 &&
		        cep_yamlget_in_list(s, v_node)))
			continue;
		snprintf(msg, sizeof(msg),
		    "not a variable cep can honour for "
		    "%s: refused rather than ignored (docs/litmus.md)",
		    x->name);
		env_diag(c, e->name[i], s, msg);
	}
	(void)env_word(c, e, "CONTAINER_RUNTIME", "containerd", runtimes);
}

/* TOTAL_CHAOS_DURATION, RAMP_TIME, DEFAULT_APP_HEALTH_CHECK. */
static void map_common(struct lit_ctx *c, struct lit_env *e,
    const struct lit_exp *x, struct lit_item *it)
{
	static const char *const bools[] = {"true", "false", NULL};
	long long secs;
	if (env_uint(c, e, "TOTAL_CHAOS_DURATION", x->duration, 1,
	        366LL * 24 * 3600, &secs))
		snprintf(c->nat->duration, sizeof(c->nat->duration), "%llds",
		    secs);
	/* cep has no wait around the chaos phase: a ramp would be dropped */
	const cep_yaml_node *n;
	const char *ramp = env_get(e, "RAMP_TIME", &n);
	char msg[200], b[80];
	if (ramp != NULL && strcmp(ramp, "0") != 0) {
		snprintf(msg, sizeof(msg),
		    "\"%s\" is not supported: cep waits "
		    "no ramp time before and after the chaos phase, expected 0",
		    cep_exp_val_shown(ramp, b, sizeof(b)));
		env_diag(c, n, "RAMP_TIME", msg);
	}
	const char *hc = env_word(c, e, "DEFAULT_APP_HEALTH_CHECK",
	    c->health_default ? "true" : "false", bools);
	if (hc != NULL && strcmp(hc, "true") == 0)
		cep_litmus_health_probe(c, it);
}

static bool read_env(struct lit_ctx *c, const cep_yaml_node *list,
    const char *path, struct lit_env *e)
{
	static const char *const keys[] = {"name", "value", NULL};
	if (list == NULL || cep_yamldoc_kind(list) == CEP_YAML_NULL)
		return true;
	if (cep_yamldoc_kind(list) != CEP_YAML_SEQ ||
	    cep_yamldoc_len(list) > LIT_MAX_ENV) {
		cep_exp_val_diag(c->v, list, path,
		    "expected a list of at most "
		    "%d {name, value} items",
		    LIT_MAX_ENV);
		return false;
	}
	for (size_t i = 0; i < cep_yamldoc_len(list); i++) {
		const cep_yaml_node *it = cep_yamldoc_at(list, i);
		const cep_yaml_node *nn = cep_yamldoc_get(it, "name");
		const cep_yaml_node *vn = cep_yamldoc_get(it, "value");
		const char *name = cep_yamldoc_scalar(nn);
		size_t k = 0;
		const cep_yaml_node *bad = cep_yamlget_unknown(it, keys, &k);
		if (cep_yamldoc_kind(it) != CEP_YAML_MAP || name == NULL ||
		    bad != NULL ||
		    (vn != NULL && cep_yamldoc_kind(vn) != CEP_YAML_SCALAR &&
		        cep_yamldoc_kind(vn) != CEP_YAML_NULL)) {
			cep_exp_val_diag(c->v, bad ? bad : it, path,
			    "expected {name, value} with a scalar value "
			    "(valueFrom is not supported)");
			continue;
		}
		for (size_t j = 0; j < e->n; j++)
			if (strcmp(e->names[j], name) == 0)
				env_diag(c, nn, name, "given twice");
		const char *val = cep_yamldoc_scalar(vn);
		e->name[e->n] = nn;
		e->val[e->n] = vn;
		e->names[e->n] = name;
		e->vals[e->n++] = val != NULL && *val != '\0' ? val : NULL;
	}
	return true;
}

static const struct lit_exp *find_exp(struct lit_ctx *c,
    const cep_yaml_node *nn, const char *name)
{
	char b[80];
	for (size_t i = 0; name != NULL && i < NEXP; i++)
		if (strcmp(experiments[i].name, name) == 0)
			return &experiments[i];
	for (size_t i = 0; name != NULL && i < NREFUSED; i++)
		if (strcmp(refused[i].name, name) == 0) {
			cep_exp_val_diag(c->v, nn, "name",
			    "experiment %s is not "
			    "supported: %s",
			    name, refused[i].why);
			return NULL;
		}
	cep_exp_val_diag(c->v, nn, "name",
	    "experiment \"%s\" is not one cep "
	    "runs (docs/litmus.md lists them)",
	    cep_exp_val_shown(name ? name : "", b, sizeof(b)));
	return NULL;
}

/* spec.experiments[0].spec.components */
static void read_components(struct lit_ctx *c, const cep_yaml_node *comp,
    const char *path, struct lit_env *e)
{
	static const char *const mapped[] = {"env", NULL};
	/* how Litmus schedules its experiment pod */
	static const char *const accepted[] = {"experimentImage",
	    "experimentAnnotations", "nodeSelector", "resources", "tolerations",
	    "securityContext", NULL};
	char p[160];
	cep_litmus_keys(c, comp, path, mapped, accepted);
	snprintf(p, sizeof(p), "%s.env", path);
	(void)read_env(c, cep_yamldoc_get(comp, "env"), p, e);
}

/* The experiment's spec: its variables mapped onto it, then probes. */
static void read_exp_spec(struct lit_ctx *c, const struct lit_exp *x,
    const cep_yaml_node *spec, const char *path, struct lit_item *it,
    struct lit_env *e)
{
	static const char *const keys[] = {"components", "probe", NULL};
	char p[160];
	cep_litmus_keys(c, spec, path, keys, NULL);
	snprintf(p, sizeof(p), "%s.components", path);
	read_components(c, cep_yamldoc_get(spec, "components"), p, e);
	check_vars(c, e, x);
	x->map(c, e, it);
	map_common(c, e, x, it);
	snprintf(p, sizeof(p), "%s.probe", path);
	cep_litmus_probes(c, cep_yamldoc_get(spec, "probe"), p);
}

void cep_litmus_experiment(struct lit_ctx *c, const cep_yaml_node *exp,
    const char *path)
{
	static const char *const keys[] = {"name", "spec", NULL};
	char p[160];
	cep_litmus_keys(c, exp, path, keys, NULL);
	const cep_yaml_node *nn = cep_yamldoc_get(exp, "name");
	const struct lit_exp *x = find_exp(c, nn ? nn : exp,
	    cep_yamldoc_scalar(nn));
	if (x == NULL)
		return;
	struct lit_env *e = calloc(1, sizeof(*e));
	struct lit_item *it = cep_litmus_new_fault(c, exp, x->name, x->type);
	if (e == NULL || it == NULL) {
		c->failed_alloc = e == NULL;
		free(e);
		return;
	}
	e->exp = nn;
	snprintf(p, sizeof(p), "%s.spec", path);
	read_exp_spec(c, x, cep_yamldoc_get(exp, "spec"), p, it, e);
	free(e);
}
