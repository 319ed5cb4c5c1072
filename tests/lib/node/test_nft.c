/* test_nft.c - nftables fault tables (lib/node/nft.c) on their own, in a
 * scratch network namespace (root, as test_tc): names, a table made from
 * a spec and undone by its record, idempotent undo, the error of a rule
 * the kernel refuses, and a gone namespace counted clean. The spec's text
 * on its own (no root): test_nft_spec.c. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nft.h"

#define RUN_ID "r-0123456789abcdef"

static int run(const char *const *argv)
{
	pid_t c = fork();
	if (c == 0) {
		int dn = open("/dev/null", O_WRONLY);
		if (dn >= 0) {
			dup2(dn, 1);
			dup2(dn, 2);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st;
	waitpid(c, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define RUN(...) run((const char *const[]){__VA_ARGS__, NULL})

Test(nft, table_names)
{
	char name[CEP_NFT_TABLE_MAX];
	cep_err err = {0};
	cr_assert_eq(cep_nft_table_name(RUN_ID, 3, name, sizeof(name), &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_str_eq(name, "cep_0123456789abcdef_3");
	const char *bad[] = {"", "r-0123", "0123456789abcdef",
	    "r-0123456789abcdeg", "r-0123456789abcdef0",
	    "r-0123456789abcdef; flush ruleset"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_neq(cep_nft_table_name(bad[i], 0, name, sizeof(name),
		                  &err),
		    CEP_OK, "%s accepted", bad[i]);
}

Test(nft, table_made_and_undone_by_its_record)
{
	char ns[32], table[CEP_NFT_TABLE_MAX], path[128];
	snprintf(ns, sizeof(ns), "cep-nft-test-%d", (int)getpid());
	cr_assert_eq(RUN("ip", "netns", "add", ns), 0);
	cep_err err = {0};
	int fd = -1;
	cep_netns_id id;
	cr_assert_eq(cep_netns_open(0, ns, &fd, &id, path, sizeof(path), &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(cep_nft_table_name(RUN_ID, 1, table, sizeof(table), &err),
	    CEP_OK);
	cep_nft_spec s = {.armed_ms = 60000,
	    .dirs = CEP_NFT_OUT,
	    .action = CEP_NFT_DROP,
	    .percent = 100};
	snprintf(s.table, sizeof(s.table), "%s", table);
	int made = cep_nft_create(fd, &s, &err);
	bool exists = false;
	int seen = cep_nft_table_exists(fd, table, &exists, &err);
	/* the kernel's refusal, named: a queue rule in a chain that is not
	 * there */
	cep_err bad = {0};
	s.action = CEP_NFT_QUEUE;
	s.dirs = CEP_NFT_IN;
	int badrc = cep_nft_queue_rules(fd, &s, &bad);
	json_t *rec = cep_nft_undo_json(&id, path, table);
	char *undo = json_dumps(rec, JSON_COMPACT);
	json_decref(rec);
	int undone = cep_nft_undo(RUN_ID, undo, &err);
	bool after = true;
	int seen2 = cep_nft_table_exists(fd, table, &after, &err);
	int again = cep_nft_undo(RUN_ID, undo, &err);
	close(fd);
	RUN("ip", "netns", "del", ns);
	/* the namespace is gone, and every rule with it: clean */
	int gone = cep_nft_undo(RUN_ID, undo, &err);
	free(undo);
	cr_assert_eq(made, CEP_OK);
	cr_assert_eq(seen, CEP_OK);
	cr_assert(exists, "table %s not made", table);
	cr_assert_neq(badrc, CEP_OK);
	cr_assert_gt(strlen(bad.msg), 0);
	cr_assert_eq(undone, CEP_OK);
	cr_assert_eq(seen2, CEP_OK);
	cr_assert(!after, "table %s still there after its undo", table);
	cr_assert_eq(again, CEP_OK);
	cr_assert_eq(gone, CEP_OK);
}

Test(nft, undo_refuses_a_bad_record)
{
	cep_err err = {0};
	cr_assert_neq(cep_nft_undo(RUN_ID, "not json", &err), CEP_OK);
	cr_assert_neq(cep_nft_undo(RUN_ID, "{\"table\": \"x\"}", &err), CEP_OK);
}
