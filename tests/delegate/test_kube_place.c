/*
 * test_kube_place.c - where a pod-target run's runner goes when label
 * selectors choose its pods (executor_kube_place.c): a node holding
 * every selector's share, at random among those; a fixed node kept when
 * it holds them; refusals name the selector and the count on each node.
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
