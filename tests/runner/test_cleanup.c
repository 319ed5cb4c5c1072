/* test_cleanup.c - the runner's cleanup mode: each record undone through
 * lib/undo/undo.c and reported; records of another run, unknown mechanisms
 * and malformed input reported as failed, never crashing. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

#define RUN "r-0123456789abcdef"

static json_t *report(const char *recs, int *status)
{
	char *out = runner_cleanup_json(RUN, recs, strlen(recs), status);
	cr_assert_not_null(out);
	json_t *j = json_loads(out, 0, NULL);
	cr_assert_not_null(j, "%s", out);
	free(out);
	return j;
}

Test(cleanup, undone_and_failed_reported)
{
	int st;
	json_t *r =
	    report("[{\"run_id\": \"" RUN "\", \"fault_id\": \"f1\", "
	           "\"mechanism\": \"signal\", \"undo\": \"{}\"},"
	           "{\"run_id\": \"r-ffffffffffffffff\", \"fault_id\": \"f2\", "
	           "\"mechanism\": \"signal\", \"undo\": \"{}\"},"
	           "{\"run_id\": \"" RUN "\", \"fault_id\": \"f3\", "
	           "\"mechanism\": \"teleport\", \"undo\": \"{}\"}, 7]",
	        &st);
	cr_assert_eq(st, 1);
	json_t *u = json_object_get(r, "undone"),
	       *f = json_object_get(r, "failed");
	cr_assert_eq(json_array_size(u), 1);
	cr_assert_str_eq(json_string_value(json_array_get(u, 0)), "f1");
	cr_assert(strstr(json_string_value(json_object_get(f, "f2")),
	              "this cleanup is for " RUN) != NULL);
	cr_assert(strstr(json_string_value(json_object_get(f, "f3")),
	              "no undo for mechanism \"teleport\"") != NULL);
	cr_assert_str_eq(json_string_value(json_object_get(f, "?")),
	    "not a fault record");
	json_decref(r);
}

Test(cleanup, all_undone_is_status_0)
{
	int st;
	json_t *r =
	    report("[{\"run_id\": \"" RUN "\", \"fault_id\": \"f1\", "
	           "\"mechanism\": \"child-process\", \"undo\": \"{}\"}]",
	        &st);
	cr_assert_eq(st, 0);
	cr_assert_eq(json_object_size(json_object_get(r, "failed")), 0);
	json_decref(r);
	r = report("[]", &st);
	cr_assert_eq(st, 0);
	json_decref(r);
}

Test(cleanup, bad_input)
{
	static const char *const bad[] = {"", "{}", "nope", "[", "\"x\"", NULL};
	for (size_t i = 0; bad[i] != NULL; i++) {
		int st;
		json_t *r = report(bad[i], &st);
		cr_assert_eq(st, 2, "%s", bad[i]);
		cr_assert_eq(json_array_size(json_object_get(r, "undone")), 0);
		json_decref(r);
	}
	/* long errors are cut to fit the 4 KiB termination message */
	char *big = malloc(200000);
	size_t o = 0;
	o += (size_t)snprintf(big + o, 200000 - o, "[");
	for (int i = 0; i < 300; i++)
		o += (size_t)snprintf(big + o, 200000 - o,
		    "%s{\"run_id\": \"x\", "
		    "\"fault_id\": \"f%d\"}",
		    i ? "," : "", i);
	snprintf(big + o, 200000 - o, "]");
	int st;
	char *out = runner_cleanup_json(RUN, big, strlen(big), &st);
	cr_assert_lt(strlen(out), 4096);
	cr_assert_eq(st, 1);
	free(out);
	free(big);
}
