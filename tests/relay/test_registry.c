/*
 * test_registry.c - the relay's registry and pipe table, without sockets:
 * SyncRuns replaces the set as a whole but keeps a kept run's commands;
 * finished ids are remembered (bounded); commands are deduplicated by seq,
 * bounded, and trimmed by what the runner has seen; bindings go with their
 * run.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "pipes.h"
#include "registry.h"

static char ids[8][24];
static Cep__V1__RunGrant grants[8];
static Cep__V1__RunGrant *gp[8];

static const char *rid(int i)
{
	snprintf(ids[i], sizeof(ids[i]), "r-%016x", 0xa0 + i);
	return ids[i];
}

/* SyncRuns with runs idx[0..n) active and fin[0..nf) finished. */
static int sync_set(cep_registry *reg, const int *idx, size_t n,
    const char **fin, size_t nf, size_t *nleft, size_t *added,
    cep_run_id **left_out)
{
	static char uris[8][64];
	for (size_t i = 0; i < n; i++) {
		cep__v1__run_grant__init(&grants[i]);
		grants[i].run_id = (char *)rid(idx[i]);
		snprintf(uris[i], sizeof(uris[i]), "cep://a/local/host/%s",
		    grants[i].run_id);
		grants[i].identity_uri = uris[i];
		grants[i].not_after_ms = 1;
		gp[i] = &grants[i];
	}
	Cep__V1__RunGrants g = CEP__V1__RUN_GRANTS__INIT;
	g.n_grants = n;
	g.grants = gp;
	g.n_finished = nf;
	g.finished = (char **)fin;
	cep_run_id *left = NULL;
	cep_err err = {0};
	int rc = relay_registry_sync(reg, &g, &left, nleft, added, &err);
	if (left_out != NULL)
		*left_out = left;
	else
		free(left);
	return rc;
}

static Cep__V1__Command cmd(uint64_t seq)
{
	Cep__V1__Command c = CEP__V1__COMMAND__INIT;
	c.seq = seq;
	c.kind = CEP__V1__COMMAND__KIND__ABORT;
	c.reason = "x";
	return c;
}

Test(registry, sync_replaces_set_and_keeps_commands)
{
	cep_registry *reg = NULL;
	cr_assert_eq(relay_registry_new(&reg, NULL), 0);
	size_t nleft, added;
	int a[] = {0, 1, 2};
	cr_assert_eq(sync_set(reg, a, 3, NULL, 0, &nleft, &added, NULL), 0);
	cr_assert_eq(added, 3);
	cr_assert_eq(nleft, 0);
	bool queued;
	Cep__V1__Command c = cmd(5);
	cr_assert_eq(relay_registry_add_command(reg, rid(1), &c, &queued, NULL),
	    0);
	cr_assert(queued);
	cr_assert_eq(relay_registry_add_command(reg, rid(1), &c, &queued, NULL),
	    0);
	cr_assert_not(queued, "same seq twice must be ignored");

	int b[] = {1, 3};
	cep_run_id *left = NULL;
	cr_assert_eq(sync_set(reg, b, 2, NULL, 0, &nleft, &added, &left), 0);
	cr_assert_eq(added, 1);
	cr_assert_eq(nleft, 2);
	cr_assert(
	    strcmp(left[0].s, rid(0)) == 0 || strcmp(left[1].s, rid(0)) == 0);
	free(left);
	cr_assert_null(relay_registry_find(reg, rid(0)));
	cr_assert(relay_registry_is_finished(reg, rid(0)),
	    "a run that left is remembered as finished");
	cep_relay_run *r1 = relay_registry_find(reg, rid(1));
	cr_assert_not_null(r1);
	Cep__V1__CommandBatch *bt = relay_registry_pending(r1, 0);
	cr_assert_not_null(bt, "the kept run lost its queued command");
	cr_assert_eq(bt->n_commands, 1);
	cr_assert_eq(bt->commands[0]->seq, 5);
	protobuf_c_message_free_unpacked(&bt->base, NULL);
	cr_assert_null(relay_registry_pending(r1, 5));
	relay_registry_trim(r1, 5);
	cr_assert_eq(r1->ncmds, 0);
	cr_assert_eq(relay_registry_count(reg), 2);
	relay_registry_free(reg);
}

Test(registry, bad_grants_change_nothing)
{
	cep_registry *reg = NULL;
	cr_assert_eq(relay_registry_new(&reg, NULL), 0);
	size_t nleft, added;
	int a[] = {0};
	cr_assert_eq(sync_set(reg, a, 1, NULL, 0, &nleft, &added, NULL), 0);
	const char *fin[] = {"../../etc"};
	cr_assert_eq(sync_set(reg, a, 1, fin, 1, &nleft, &added, NULL),
	    CEP_INVALID_ARGUMENT);
	grants[0].run_id = "not-a-run";
	Cep__V1__RunGrants g = CEP__V1__RUN_GRANTS__INIT;
	g.n_grants = 1;
	g.grants = gp;
	cep_run_id *left = NULL;
	cep_err err = {0};
	cr_assert_eq(relay_registry_sync(reg, &g, &left, &nleft, &added, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert(strstr(err.msg, "invalid run id"), "%s", err.msg);
	cr_assert_not_null(relay_registry_find(reg, rid(0)));
	relay_registry_free(reg);
}

/* A run granted twice in one SyncRuns is one run, and the first grant
 * counts; runs not granted any more leave (what the sorted lookup of
 * relay_registry_sync must keep doing). */
Test(registry, repeated_grant_first_counts)
{
	cep_registry *reg = NULL;
	cr_assert_eq(relay_registry_new(&reg, NULL), 0);
	size_t nleft, added;
	int a[] = {3, 1, 2};
	cr_assert_eq(sync_set(reg, a, 3, NULL, 0, &nleft, &added, NULL), 0);
	cr_assert_eq(added, 3);
	/* 2, 1 (not_after 5), 2 again (not_after 9), 4: 3 leaves */
	int b[] = {2, 1, 2, 4};
	for (size_t i = 0; i < 4; i++) {
		cep__v1__run_grant__init(&grants[i]);
		grants[i].run_id = (char *)rid(b[i]);
		grants[i].identity_uri = "cep://a/local/host/x";
		grants[i].not_after_ms = i == 2 ? 9 : 5;
		gp[i] = &grants[i];
	}
	Cep__V1__RunGrants g = CEP__V1__RUN_GRANTS__INIT;
	g.n_grants = 4;
	g.grants = gp;
	cep_run_id *left = NULL;
	cep_err err = {0};
	cr_assert_eq(relay_registry_sync(reg, &g, &left, &nleft, &added, &err),
	    0, "%s", err.msg);
	cr_assert_eq(relay_registry_count(reg), 3);
	cr_assert_eq(added, 1);
	cr_assert_eq(nleft, 1);
	cr_assert_str_eq(left[0].s, rid(3));
	free(left);
	cr_assert_eq(relay_registry_find(reg, rid(2))->not_after_ms, 5);
	cr_assert_not_null(relay_registry_find(reg, rid(1)));
	cr_assert_not_null(relay_registry_find(reg, rid(4)));
	cr_assert_null(relay_registry_find(reg, rid(3)));
	relay_registry_free(reg);
}

Test(registry, command_queue_bounded_and_ordered)
{
	cep_registry *reg = NULL;
	cr_assert_eq(relay_registry_new(&reg, NULL), 0);
	size_t nleft, added;
	int a[] = {0};
	cr_assert_eq(sync_set(reg, a, 1, NULL, 0, &nleft, &added, NULL), 0);
	bool queued;
	Cep__V1__Command c = cmd(0);
	cr_assert_eq(relay_registry_add_command(reg, rid(0), &c, &queued, NULL),
	    CEP_INVALID_ARGUMENT);
	for (uint64_t s = CEP_REGISTRY_MAX_CMDS; s >= 1; s--) {
		c = cmd(s);
		cr_assert_eq(relay_registry_add_command(reg, rid(0), &c,
		                 &queued, NULL),
		    0);
	}
	c = cmd(1000);
	cr_assert_eq(relay_registry_add_command(reg, rid(0), &c, &queued, NULL),
	    CEP_RESOURCE_EXHAUSTED);
	cep_relay_run *r = relay_registry_find(reg, rid(0));
	for (size_t i = 0; i < r->ncmds; i++)
		cr_assert_eq(r->cmds[i]->seq, i + 1, "queue not in seq order");
	Cep__V1__CommandBatch *bt = relay_registry_pending(r, 60);
	cr_assert_eq(bt->n_commands, CEP_REGISTRY_MAX_CMDS - 60);
	protobuf_c_message_free_unpacked(&bt->base, NULL);
	c = cmd(7);
	cr_assert_eq(relay_registry_add_command(reg, rid(5), &c, &queued, NULL),
	    CEP_NOT_FOUND);
	relay_registry_free(reg);
}

Test(registry, finished_ring_bounded)
{
	cep_registry *reg = NULL;
	cr_assert_eq(relay_registry_new(&reg, NULL), 0);
	static char names[CEP_REGISTRY_FINISHED + 1][24];
	const char *fin[1];
	size_t nleft, added;
	for (int i = 0; i <= CEP_REGISTRY_FINISHED; i++) {
		snprintf(names[i], sizeof(names[i]), "r-%016x", 0x10000 + i);
		fin[0] = names[i];
		cr_assert_eq(sync_set(reg, NULL, 0, fin, 1, &nleft, &added,
		                 NULL),
		    0);
	}
	cr_assert_not(relay_registry_is_finished(reg, names[0]),
	    "the oldest finished id should have been forgotten");
	cr_assert(relay_registry_is_finished(reg, names[1]));
	cr_assert(
	    relay_registry_is_finished(reg, names[CEP_REGISTRY_FINISHED]));
	relay_registry_free(reg);
}

Test(pipes, bind_unbind_remove)
{
	cep_pipes *t = NULL;
	cr_assert_eq(relay_pipes_new(&t, NULL), 0);
	cep_relay_pipe *p = relay_pipes_get(t, 7, true, "1.2.3.4:5");
	cep_relay_pipe *q = relay_pipes_get(t, 7 + 256, true, "1.2.3.4:6");
	cr_assert(p != NULL && q != NULL && p != q);
	relay_pipes_bind(t, p, "r-0000000000000001", 10);
	relay_pipes_bind(t, q, "r-0000000000000001", 10);
	relay_pipes_bind(t, q, "r-0000000000000001", 10);
	cr_assert_eq(relay_pipes_bound(t), 2);
	cr_assert_eq(relay_pipes_unbind_run(t, "r-0000000000000001"), 2);
	cr_assert_eq(relay_pipes_bound(t), 0);
	cr_assert_str_eq(p->revoked.s, "r-0000000000000001");
	relay_pipes_bind(t, p, "r-0000000000000002", 10);
	relay_pipes_remove(t, 7);
	cr_assert_eq(relay_pipes_bound(t), 0);
	cr_assert_null(relay_pipes_find(t, 7));
	cr_assert_null(relay_pipes_get(t, 7, true, "x"),
	    "a removed pipe must not come back through a late call");
	cr_assert_not_null(relay_pipes_find(t, 7 + 256));
	relay_pipes_free(t);
}
