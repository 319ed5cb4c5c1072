/*
 * executor_kube_place.c - the node a pod-target run's runner goes to
 * (docs/kubernetes.md, "Pods by label selector").
 *
 * A node-level fault works inside its pods' namespaces and cgroups, so
 * its runner must run on their node, and one runner runs on one node.
 * Named pods and node targets fix the node; they must agree. A label
 * selector leaves the choice open: its share (count, or percentage of
 * every Running match, cep_podtarget_quota) may be taken on any node
 * that holds that many matches, so the runner goes to one such node,
 * chosen at random like Litmus chooses its pods, and chooses the pods
 * there at injection (runner/pod_select.c).
 *
 * A share no single node holds (and no named pod or node target fixes
 * the node) is split instead: the pods are chosen here as Litmus chooses
 * them, uniformly among every Running match on every node, and counted
 * per node (delegate_kx_place_split); the run then becomes a parent of one
 * child run per node, each an ordinary run whose runner chooses its
 * node's count there (runs_split.c). Only a run with one selector is
 * split: with several, the children would need each selector's pods on
 * the same nodes, which is refused as before, with the count on each
 * node.
 */
#define _GNU_SOURCE
#include "executor_kube_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "clock.h"
#include "podtarget.h"

struct kx_place_node {
	char name[254];
	size_t n[CEP_EXEC_MAX_PODS];
};

void delegate_kx_place_init(kx_place *p)
{
	memset(p, 0, sizeof(*p));
}

void delegate_kx_place_free(kx_place *p)
{
	free(p->nodes);
	p->nodes = NULL;
	p->nnodes = 0;
}

int delegate_kx_place_add(kx_place *p, size_t sel, const char *node,
    cep_err *err)
{
	size_t i = 0;
	while (i < p->nnodes && strcmp(p->nodes[i].name, node) != 0)
		i++;
	if (i == p->nnodes) {
		struct kx_place_node *nn = realloc(p->nodes,
		    (p->nnodes + 1) * sizeof(*nn));
		if (nn == NULL)
			return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
			    "out of memory");
		p->nodes = nn;
		memset(&nn[i], 0, sizeof(nn[i]));
		snprintf(nn[i].name, sizeof(nn[i].name), "%s", node);
		p->nnodes++;
	}
	p->nodes[i].n[sel]++;
	p->total[sel]++;
	return CEP_OK;
}

/* "node-1: 1, node-2: 3" for selector sel, into buf. */
static void tally_text(const kx_place *p, size_t sel, char *buf, size_t len)
{
	buf[0] = '\0';
	for (size_t i = 0, l = 0; i < p->nnodes && l + 1 < len; i++) {
		snprintf(buf + l, len - l, "%s%.100s: %zu", i ? ", " : "",
		    p->nodes[i].name, p->nodes[i].n[sel]);
		l = strlen(buf);
	}
}

static bool holds_all(const kx_place *p, size_t i)
{
	for (size_t s = 0; s < p->nsel; s++)
		if (p->nodes[i].n[s] < p->want[s])
			return false;
	return true;
}

static size_t most_on_one(const kx_place *p, size_t sel)
{
	size_t most = 0;
	for (size_t i = 0; i < p->nnodes; i++)
		if (p->nodes[i].n[sel] > most)
			most = p->nodes[i].n[sel];
	return most;
}

static size_t count_on(const kx_place *p, const char *node, size_t sel)
{
	for (size_t i = 0; i < p->nnodes; i++)
		if (strcmp(p->nodes[i].name, node) == 0)
			return p->nodes[i].n[sel];
	return 0;
}

int delegate_kx_place_pick(const kx_place *p, char *node, size_t len,
    uint32_t rnd, cep_err *err)
{
	char tally[512];
	if (node[0] != '\0') { /* fixed by a named pod or a node target */
		for (size_t s = 0; s < p->nsel; s++) {
			size_t here = count_on(p, node, s);
			if (here >= p->want[s])
				continue;
			tally_text(p, s, tally, sizeof(tally));
			return cep_err_set(err, CEP_FAILED_PRECONDITION,
			    "selector %.300s: %zu of its %zu Running pods "
			    "asked for, %zu on node %s where the run's other "
			    "targets are (%s): one runner works on one node",
			    p->sel[s], p->want[s], p->total[s], here, node,
			    tally);
		}
		return CEP_OK;
	}
	size_t ok = 0;
	for (size_t i = 0; i < p->nnodes; i++)
		ok += holds_all(p, i);
	if (ok == 0) {
		/* name the first selector no node holds alone, else say it
		 * is the combination that no node holds */
		size_t s = 0;
		while (s < p->nsel && most_on_one(p, s) >= p->want[s])
			s++;
		bool together = s == p->nsel;
		if (together)
			s = 0;
		tally_text(p, s, tally, sizeof(tally));
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "selector %.300s: %zu of its %zu Running pods asked for, "
		    "no one node holds them%s (%s): one runner works on one "
		    "node, expected a count or percentage one node holds",
		    p->sel[s], p->want[s], p->total[s],
		    together ? " together with the other selectors' pods" : "",
		    tally);
	}
	size_t k = rnd % ok;
	for (size_t i = 0; i < p->nnodes; i++) {
		if (!holds_all(p, i))
			continue;
		if (k-- == 0) {
			snprintf(node, len, "%s", p->nodes[i].name);
			break;
		}
	}
	return CEP_OK;
}

int delegate_kx_place_split(const kx_place *p, kx_rand_fn rnd, void *arg,
    cep_exec_split *out, cep_err *err)
{
	memset(out, 0, sizeof(*out));
	if (p->nsel != 1 || p->want[0] == 0 || p->want[0] > p->total[0])
		return cep_err_set(err, CEP_INTERNAL,
		    "a split needs one selector and a share of its matches");
	/* one slot per match, naming its node: a partial Fisher-Yates
	 * shuffle takes want of them, each equally likely */
	size_t total = p->total[0], want = p->want[0];
	size_t *slot = calloc(total, sizeof(*slot));
	size_t *got = calloc(p->nnodes, sizeof(*got));
	if (slot == NULL || got == NULL) {
		free(slot);
		free(got);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	}
	for (size_t i = 0, k = 0; i < p->nnodes; i++)
		for (size_t j = 0; j < p->nodes[i].n[0]; j++)
			slot[k++] = i;
	for (size_t k = 0; k < want; k++) {
		size_t r = k + rnd(arg) % (total - k), t = slot[k];
		slot[k] = slot[r];
		slot[r] = t;
		got[slot[k]]++;
	}
	free(slot);
	int rv = CEP_OK;
	for (size_t i = 0; i < p->nnodes && rv == CEP_OK; i++) {
		if (got[i] == 0)
			continue;
		if (out->n == CEP_EXEC_MAX_SPLIT) {
			rv = cep_err_set(err, CEP_FAILED_PRECONDITION,
			    "selector %.300s: %zu pods chosen over more than %d "
			    "nodes, expected at most %d (one child run each)",
			    p->sel[0], want, CEP_EXEC_MAX_SPLIT,
			    CEP_EXEC_MAX_SPLIT);
			break;
		}
		snprintf(out->node[out->n], sizeof(out->node[0]), "%s",
		    p->nodes[i].name);
		out->count[out->n++] = (uint32_t)got[i];
	}
	free(got);
	snprintf(out->selector, sizeof(out->selector), "%s", p->sel[0]);
	out->total = want;
	if (rv != CEP_OK)
		out->n = 0;
	return rv;
}

/* ------------------------------------------------ the run's pod targets */

static uint32_t sys_random(void *arg)
{
	(void)arg;
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (uint32_t)cep_clock_mono_ms();
	return r;
}

/* One named target's node into kr->node: all on one node. */
static int same_node(krun *kr, const char *what, const char *node, cep_err *err)
{
	if (kr->node[0] != '\0' && strcmp(kr->node, node) != 0)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "pod targets "
		    "on two nodes (%s, %.200s on %s): one runner runs on one "
		    "node, expected one experiment per node",
		    kr->node, what, node);
	snprintf(kr->node, sizeof(kr->node), "%s", node);
	return CEP_OK;
}

/* A label selector's Running matches, counted per node into p as
 * selector number sel. Each must be usable as a target (scheduled, its
 * container running): the runner may choose any of them. */
static int tally_selector(krun *kr, cep_kube *k, size_t i, kx_place *p,
    cep_err *err)
{
	const char *sel = kr->pods.selector[i], *ctr = kr->pods.container[i];
	cep_kube_list_opts o = {.label_selector = sel};
	json_t *items = NULL, *obj;
	size_t j;
	size_t s = p->nsel++;
	p->sel[s] = sel;
	int rv = cep_kube_list(k, &cep_kube_pods, kr->ns, &o, &items, NULL, 0,
	    err);
	json_array_foreach(items, j, obj)
	{
		const char *phase = delegate_kx_obj_str(obj, "status", "phase");
		cep_podtarget t;
		if (rv != CEP_OK || phase == NULL ||
		    strcmp(phase, "Running") != 0 ||
		    json_object_get(json_object_get(obj, "metadata"),
		        "deletionTimestamp") != NULL)
			continue;
		rv = cep_podtarget_read(obj, ctr[0] ? ctr : NULL, &t, err);
		if (rv == CEP_OK)
			rv = delegate_kx_place_add(p, s, t.node, err);
	}
	json_decref(items);
	p->want[s] = cep_podtarget_quota(kr->pods.count[i], kr->pods.percent[i],
	    p->total[s]);
	if (rv == CEP_OK && p->total[s] == 0)
		rv = cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "no Running pod matches");
	return rv == CEP_OK ?
	    CEP_OK :
	    cep_err_wrap(err, "pod target %s selector %.300s", kr->ns, sel);
}

static int resolve_named(krun *kr, cep_kube *k, size_t i, cep_err *err)
{
	const char *name = kr->pods.pod[i], *ctr = kr->pods.container[i];
	json_t *obj = NULL;
	cep_podtarget t;
	int rv = cep_kube_get(k, &cep_kube_pods, kr->ns, name, &obj, err);
	if (rv == CEP_OK)
		rv = cep_podtarget_read(obj, ctr[0] ? ctr : NULL, &t, err);
	json_decref(obj);
	if (rv == CEP_OK)
		rv = same_node(kr, name, t.node, err);
	return rv == CEP_OK ?
	    CEP_OK :
	    cep_err_wrap(err, "pod target %s/%s", kr->ns, name);
}

int delegate_kx_resolve_node(krun *kr, cep_kube *k, cep_err *err)
{
	/* a node target names the node itself */
	snprintf(kr->node, sizeof(kr->node), "%s", kr->pods.node);
	int rv = CEP_OK;
	for (size_t i = 0; i < kr->pods.n && rv == CEP_OK; i++)
		if (kr->pods.pod[i][0] != '\0')
			rv = resolve_named(kr, k, i, err);
	kx_place p;
	delegate_kx_place_init(&p);
	for (size_t i = 0; i < kr->pods.n && rv == CEP_OK; i++)
		if (kr->pods.pod[i][0] == '\0')
			rv = tally_selector(kr, k, i, &p, err);
	bool fixed = kr->node[0] != '\0';
	if (rv == CEP_OK && p.nsel > 0) {
		rv = delegate_kx_place_pick(&p, kr->node, sizeof(kr->node),
		    sys_random(NULL), err);
		/* one selector no one node holds, nothing fixing the node:
		 * split across nodes rather than refuse */
		if (rv == CEP_FAILED_PRECONDITION && !fixed && p.nsel == 1) {
			*err = (cep_err){0};
			rv = delegate_kx_place_split(&p, sys_random, NULL,
			    &kr->split, err);
		}
		if (rv != CEP_OK)
			rv = cep_err_wrap(err, "pod target %s", kr->ns);
	}
	delegate_kx_place_free(&p);
	return rv;
}
