/*
 * test_fetch.c - lib/http's plain request pieces (fetch.c, and the body
 * cap of http.c in both of its modes). A request answered end to end is
 * tested through the runner's probes (tests/runner/test_probes.c).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "testutil.h"

Test(http_fetch, escape_keeps_only_unreserved_characters)
{
	char *q = cep_http_escape("up{job=\"a b\"} > 0.5~_-/é");
	cr_assert_not_null(q);
	cr_expect_str_eq(q,
	    "up%7Bjob%3D%22a%20b%22%7D%20%3E%200.5~_-%2F%C3%A9");
	free(q);
	q = cep_http_escape("");
	cr_expect_str_eq(q, "");
	free(q);
}

Test(http_fetch, body_past_max_aborts_unless_truncating)
{
	char chunk[10];
	memset(chunk, 'x', sizeof(chunk));
	cep_http_resp stop = {.max = 15};
	cr_expect_eq(cep_http_on_body(chunk, 1, 10, &stop), 10);
	cr_expect_eq(cep_http_on_body(chunk, 1, 10, &stop), 0);
	cr_expect(stop.over);
	cr_expect_eq(stop.len, 10);
	free(stop.buf);

	cep_http_resp keep = {.max = 15, .truncate = true};
	cr_expect_eq(cep_http_on_body(chunk, 1, 10, &keep), 10);
	cr_expect_eq(cep_http_on_body(chunk, 1, 10, &keep), 10);
	cr_expect_eq(cep_http_on_body(chunk, 1, 10, &keep), 10);
	cr_expect_not(keep.over);
	cr_expect_eq(keep.len, 15);
	cr_expect_eq(strlen(keep.buf), 15);
	free(keep.buf);
}

Test(http_fetch, refused_connection_is_an_error_with_curls_reason)
{
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/",
	    cep_test_free_port());
	const cep_http_fetch_opts o = {.url = url,
	    .timeout_ms = 2000,
	    .max = 1024};
	cep_http_reply r;
	cr_expect_eq(cep_http_fetch(&o, &r), CEP_UNAVAILABLE);
	cr_expect_eq(r.status, 0);
	cr_expect(strstr(r.error, "onnect") != NULL, "%s", r.error);
	cr_expect_not_null(r.body.buf);
	cep_http_reply_free(&r);
}

Test(http_fetch, only_http_and_https)
{
	const cep_http_fetch_opts o = {.url = "file:///etc/passwd",
	    .timeout_ms = 2000,
	    .max = 1 << 20};
	cep_http_reply r;
	cr_expect_eq(cep_http_fetch(&o, &r), CEP_UNAVAILABLE);
	cr_expect_eq(r.body.len, 0);
	cep_http_reply_free(&r);
}
