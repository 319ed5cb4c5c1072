/*
 * test_kube_place.c - where a pod-target run's runner goes when label
 * selectors choose its pods (executor_kube_place.c): a node holding
 * every selector's share, at random among those; a fixed node kept when
 * it holds them; refusals name the selector and the count on each node;
 * a share no one node holds split across nodes (delegate_kx_place_split).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "executor_kube_int.h"

static kx_place P;

static void setup(void)
{
	delegate_kx_place_init(&P);
}
static void teardown(void)
{
	delegate_kx_place_free(&P);
}

TestSuite(kube_place, .init = setup, .fini = teardown);

/* Selector s wanting want pods, with n[i] Running matches on node-<i+1>. */
static void selector(const char *sel, size_t want, const size_t *n,
    size_t nodes)
{
	cep_err err = {0};
	size_t s = P.nsel++;
	P.sel[s] = sel;
	for (size_t i = 0; i < nodes; i++)
		for (size_t k = 0; k < n[i]; k++) {
			char name[16];
			snprintf(name, sizeof(name), "node-%zu", i + 1);
			cr_assert_eq(delegate_kx_place_add(&P, s, name, &err),
			    CEP_OK);
		}
	P.want[s] = want;
}

static int pick(char *node, uint32_t rnd, cep_err *err)
{
	return delegate_kx_place_pick(&P, node, 254, rnd, err);
}

Test(kube_place, only_the_node_holding_the_share)
{
	selector("app=web", 2, (size_t[]){1, 2, 0}, 3);
	cr_assert_eq(P.total[0], 3);
	for (uint32_t r = 0; r < 8; r++) {
		char node[254] = "";
		cep_err err = {0};
		cr_assert_eq(pick(node, r, &err), CEP_OK, "%s", err.msg);
		cr_assert_str_eq(node, "node-2");
	}
}

Test(kube_place, random_among_the_nodes_that_hold_it)
{
	selector("app=web", 1, (size_t[]){1, 1, 3}, 3);
	bool seen[3] = {false};
	for (uint32_t r = 0; r < 3; r++) {
		char node[254] = "";
		cep_err err = {0};
		cr_assert_eq(pick(node, r, &err), CEP_OK, "%s", err.msg);
		seen[node[5] - '1'] = true;
	}
	cr_assert(seen[0] && seen[1] && seen[2], "every node can be chosen");
}

Test(kube_place, every_selector_on_the_node)
{
	selector("app=web", 1, (size_t[]){1, 1}, 2);
	selector("app=db", 1, (size_t[]){0, 1}, 2);
	char node[254] = "";
	cep_err err = {0};
	cr_assert_eq(pick(node, 0, &err), CEP_OK, "%s", err.msg);
	cr_assert_str_eq(node, "node-2");
}

Test(kube_place, share_no_node_holds_is_refused_with_the_tally)
{
	selector("app=web", 2, (size_t[]){1, 1}, 2);
	char node[254] = "";
	cep_err err = {0};
	cr_assert_eq(pick(node, 0, &err), CEP_FAILED_PRECONDITION);
	cr_assert_str_eq(node, "", "nothing chosen");
	cr_assert(strstr(err.msg,
	              "selector app=web: 2 of its 2 Running pods "
	              "asked for, no one node holds them "
	              "(node-1: 1, node-2: 1)") != NULL,
	    "%s", err.msg);
}

Test(kube_place, selectors_apart_are_refused_together)
{
	selector("app=web", 1, (size_t[]){1, 0}, 2);
	selector("app=db", 1, (size_t[]){0, 1}, 2);
	char node[254] = "";
	cep_err err = {0};
	cr_assert_eq(pick(node, 0, &err), CEP_FAILED_PRECONDITION);
	cr_assert(strstr(err.msg, "together with the other selectors' pods") !=
	        NULL,
	    "%s", err.msg);
}

Test(kube_place, fixed_node_kept_or_refused)
{
	selector("app=web", 1, (size_t[]){1, 0}, 2);
	char node[254] = "node-1";
	cep_err err = {0};
	cr_assert_eq(pick(node, 0, &err), CEP_OK, "%s", err.msg);
	cr_assert_str_eq(node, "node-1");
	snprintf(node, sizeof(node), "node-2");
	cr_assert_eq(pick(node, 0, &err), CEP_FAILED_PRECONDITION);
	cr_assert_str_eq(node, "node-2");
	cr_assert(strstr(err.msg,
	              "1 of its 1 Running pods asked for, 0 on "
	              "node node-2 where the run's other targets "
	              "are") != NULL,
	    "%s", err.msg);
}

/* ------------------------------------------- a share split across nodes */

/* A small LCG: reproducible draws for the split's shuffle. */
static uint32_t lcg(void *arg)
{
	uint32_t *s = arg;
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static size_t allot_of(const cep_exec_split *sp, const char *node)
{
	for (size_t i = 0; i < sp->n; i++)
		if (strcmp(sp->node[i], node) == 0)
			return sp->count[i];
	return 0;
}

/* 3 of 4 pods spread 1+2+1: no node holds them, so pick refuses (the
 * executor then splits); every split sums to 3, never gives a node more
 * than it holds, names only nodes given a pod, and over many draws each
 * node is given pods and each pod-count a node can take occurs. */
Test(kube_place, split_sums_to_the_share_within_each_node)
{
	static const size_t n[] = {1, 2, 1};
	selector("app=web", 3, n, 3);
	char node[254] = "";
	cep_err err = {0};
	cr_assert_eq(pick(node, 0, &err), CEP_FAILED_PRECONDITION);
	uint32_t seed = 7;
	size_t seen[3][3] = {{0}};
	for (int round = 0; round < 400; round++) {
		cep_exec_split sp;
		cr_assert_eq(delegate_kx_place_split(&P, lcg, &seed, &sp, &err),
		    CEP_OK, "%s", err.msg);
		cr_assert_str_eq(sp.selector, "app=web");
		cr_assert_eq(sp.total, 3);
		size_t sum = 0;
		for (size_t i = 0; i < sp.n; i++) {
			cr_assert_gt(sp.count[i], 0, "a node given nothing");
			sum += sp.count[i];
		}
		cr_assert_eq(sum, 3);
		for (size_t i = 0; i < 3; i++) {
			char name[16];
			snprintf(name, sizeof(name), "node-%zu", i + 1);
			size_t a = allot_of(&sp, name);
			cr_assert_leq(a, n[i], "%s given %zu of its %zu", name,
			    a, n[i]);
			seen[i][a]++;
		}
	}
	/* node-2 takes 1 or 2; node-1 and node-3 0 or 1, each both ways */
	cr_assert(seen[0][0] && seen[0][1] && seen[2][0] && seen[2][1]);
	cr_assert(seen[1][1] && seen[1][2] && !seen[1][0],
	    "node-2 holds 2 of 4: at least one of any 3 is there");
}

/* Uniform among the pods, not among the nodes: 1 of 4 pods spread 1+3
 * lands on node-2 about 3 times in 4. */
Test(kube_place, split_is_uniform_among_pods)
{
	selector("app=web", 1, (size_t[]){1, 3}, 2);
	uint32_t seed = 1;
	size_t on2 = 0;
	for (int round = 0; round < 4000; round++) {
		cep_exec_split sp;
		cep_err err = {0};
		cr_assert_eq(delegate_kx_place_split(&P, lcg, &seed, &sp, &err),
		    CEP_OK);
		cr_assert_eq(sp.n, 1);
		on2 += strcmp(sp.node[0], "node-2") == 0;
	}
	cr_assert(on2 > 2800 && on2 < 3200, "node-2 chosen %zu of 4000", on2);
}

/* The whole match set: each node's allotment is all it holds. */
Test(kube_place, split_of_every_match_takes_each_node_whole)
{
	selector("app=web", 4, (size_t[]){2, 0, 2}, 3);
	uint32_t seed = 3;
	cep_exec_split sp;
	cep_err err = {0};
	cr_assert_eq(delegate_kx_place_split(&P, lcg, &seed, &sp, &err),
	    CEP_OK);
	cr_assert_eq(sp.n, 2, "node-2 has none: no child there");
	cr_assert_eq(allot_of(&sp, "node-1"), 2);
	cr_assert_eq(allot_of(&sp, "node-3"), 2);
}

/* One child per node, at most CEP_EXEC_MAX_SPLIT of them. */
Test(kube_place, split_over_too_many_nodes_is_refused)
{
	size_t n[CEP_EXEC_MAX_SPLIT + 1];
	for (size_t i = 0; i < CEP_EXEC_MAX_SPLIT + 1; i++)
		n[i] = 1;
	selector("app=web", CEP_EXEC_MAX_SPLIT + 1, n, CEP_EXEC_MAX_SPLIT + 1);
	uint32_t seed = 3;
	cep_exec_split sp;
	cep_err err = {0};
	cr_assert_eq(delegate_kx_place_split(&P, lcg, &seed, &sp, &err),
	    CEP_FAILED_PRECONDITION);
	cr_assert_eq(sp.n, 0);
	cr_assert(strstr(err.msg, "over more than 16 nodes") != NULL, "%s",
	    err.msg);
}

/* Several selectors are never split (pick's refusal stands). */
Test(kube_place, split_needs_one_selector)
{
	selector("app=web", 1, (size_t[]){1, 0}, 2);
	selector("app=db", 1, (size_t[]){0, 1}, 2);
	uint32_t seed = 3;
	cep_exec_split sp;
	cep_err err = {0};
	cr_assert_neq(delegate_kx_place_split(&P, lcg, &seed, &sp, &err),
	    CEP_OK);
	cr_assert_eq(sp.n, 0);
}
