/* test_yaml.c - the YAML tree: positions, refusals, limits, messages. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yamldoc.h"

static cep_yaml_doc *parse_ok(const char *text)
{
	cep_yaml_doc *doc = NULL;
	cep_err err = {0};
	int rv = cep_yamldoc_parse(text, strlen(text), "t.yaml", &doc, &err);
	cr_assert_eq(rv, CEP_OK, "parse failed: %s", err.msg);
	cr_assert_not_null(doc);
	return doc;
}

/* Parses text expecting failure; returns the message (static). */
static const char *parse_fail(const char *text, size_t len)
{
	static cep_err err;
	cep_yaml_doc *doc = NULL;
	memset(&err, 0, sizeof(err));
	int rv = cep_yamldoc_parse(text, len, "t.yaml", &doc, &err);
	cr_assert_neq(rv, CEP_OK, "parse of %.40s succeeded", text);
	cr_assert_null(doc);
	cr_assert_eq(err.code, rv);
	return err.msg;
}

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "\"%s\" lacks \"%s\"", (s), (sub))

Test(yaml, positions_and_kinds)
{
	cep_yaml_doc *doc = parse_ok("a: 1\n"
	                             "b:\n"
	                             "  c: [x, \"y\"]\n"
	                             "  d: ~\n"
	                             "list:\n"
	                             "  - one\n"
	                             "  - k: v\n");
	const cep_yaml_node *r = cep_yamldoc_root(doc);
	cr_assert_eq(cep_yamldoc_kind(r), CEP_YAML_MAP);
	cr_assert_eq(cep_yamldoc_len(r), 3);
	const cep_yaml_node *a = cep_yamldoc_get(r, "a");
	cr_assert_str_eq(cep_yamldoc_scalar(a), "1");
	cr_assert_eq(cep_yamldoc_line(a), 1);
	cr_assert_eq(cep_yamldoc_col(a), 4);
	cr_assert(!cep_yamldoc_quoted(a));
	const cep_yaml_node *b = cep_yamldoc_get(r, "b");
	cr_assert_eq(cep_yamldoc_kind(b), CEP_YAML_MAP);
	cr_assert_eq(cep_yamldoc_line(b), 3);
	cr_assert_eq(cep_yamldoc_col(b), 3);
	const cep_yaml_node *c = cep_yamldoc_get(b, "c");
	cr_assert_eq(cep_yamldoc_kind(c), CEP_YAML_SEQ);
	cr_assert_eq(cep_yamldoc_len(c), 2);
	const cep_yaml_node *y = cep_yamldoc_at(c, 1);
	cr_assert_str_eq(cep_yamldoc_scalar(y), "y");
	cr_assert(cep_yamldoc_quoted(y));
	cr_assert_eq(cep_yamldoc_line(y), 3);
	cr_assert_eq(cep_yamldoc_col(y), 10);
	cr_assert_eq(cep_yamldoc_kind(cep_yamldoc_get(b, "d")), CEP_YAML_NULL);
	cr_assert_null(cep_yamldoc_scalar(cep_yamldoc_get(b, "d")));
	const cep_yaml_node *l = cep_yamldoc_get(r, "list");
	cr_assert_eq(cep_yamldoc_line(cep_yamldoc_at(l, 1)), 7);
	cr_assert_eq(cep_yamldoc_col(cep_yamldoc_at(l, 1)), 5);
	cr_assert_str_eq(cep_yamldoc_scalar(cep_yamldoc_key_at(r, 2)), "list");
	cr_assert_eq(cep_yamldoc_value_at(r, 2), l);
	cr_assert_null(cep_yamldoc_get(r, "missing"));
	cr_assert_null(cep_yamldoc_at(l, 2));
	cr_assert_null(cep_yamldoc_key_at(r, 3));
	cr_assert_str_eq(cep_yamldoc_fname(doc), "t.yaml");
	cep_yamldoc_free(doc);
}

Test(yaml, error_helper_has_position)
{
	cep_yaml_doc *doc = parse_ok("x:\n  y: zz\n");
	const cep_yaml_node *y =
	    cep_yamldoc_get(cep_yamldoc_get(cep_yamldoc_root(doc), "x"), "y");
	cep_err err = {0};
	cr_assert_eq(cep_yamldoc_error(&err, doc, y, "bad %s", "value"),
	    CEP_INVALID_ARGUMENT);
	cr_assert_str_eq(err.msg, "t.yaml:2:6: bad value");
	cep_yamldoc_free(doc);
}

Test(yaml, duplicate_key_reported_at_second)
{
	const char *msg = parse_fail("a: 1\nb:\n  x: 1\n  x: 2\n", 21);
	assert_contains(msg, "t.yaml:4:3: duplicate key 'x'");
	assert_contains(msg, "line 3");
	/* the earliest repeat wins when there are several */
	const char *t = "k: 1\nz: 1\nz: 2\nk: 2\n";
	msg = parse_fail(t, strlen(t));
	assert_contains(msg, "t.yaml:3:1: duplicate key 'z'");
}

Test(yaml, aliases_and_anchors_refused)
{
	const char *t = "a: &x 1\nb: *x\n";
	const char *msg = parse_fail(t, strlen(t));
	assert_contains(msg, "t.yaml:1:4:");
	assert_contains(msg, "aliases are not supported");
	t = "b: *x\n";
	msg = parse_fail(t, strlen(t));
	assert_contains(msg, "t.yaml:1:4: aliases are not supported");
}

Test(yaml, depth_bomb_refused)
{
	char buf[512];
	size_t n = 0;
	for (int i = 0; i < 100; i++)
		buf[n++] = '[';
	for (int i = 0; i < 100; i++)
		buf[n++] = ']';
	buf[n] = '\0';
	const char *msg = parse_fail(buf, n);
	assert_contains(msg, "t.yaml:1:65:");
	assert_contains(msg, "deeper than 64");
	/* 64 levels are fine */
	n = 0;
	for (int i = 0; i < 64; i++)
		buf[n++] = '[';
	for (int i = 0; i < 64; i++)
		buf[n++] = ']';
	buf[n] = '\0';
	cep_yamldoc_free(parse_ok(buf));
}

Test(yaml, node_bomb_refused)
{
	size_t count = 100001, len = 2 * count + 2;
	char *buf = malloc(len + 1);
	cr_assert_not_null(buf);
	buf[0] = '[';
	for (size_t i = 0; i < count; i++) {
		buf[1 + 2 * i] = '0';
		buf[2 + 2 * i] = i + 1 < count ? ',' : ']';
	}
	buf[len - 1] = '\n';
	buf[len] = '\0';
	const char *msg = parse_fail(buf, len);
	assert_contains(msg, "more than 100000 nodes");
	free(buf);
}

Test(yaml, too_large_refused)
{
	size_t len = CEP_YAML_MAX_BYTES + 1;
	char *buf = malloc(len);
	cr_assert_not_null(buf);
	memset(buf, '#', len);
	const char *msg = parse_fail(buf, len);
	assert_contains(msg, "t.yaml: document is 1048577 bytes");
	free(buf);
}

Test(yaml, syntax_error_has_line_and_col)
{
	const char *t = "a: 1\nb: c: d\n";
	const char *msg = parse_fail(t, strlen(t));
	assert_contains(msg, "t.yaml:2:5: mapping values are not allowed");
	t = "a:\n  - x\n  y: 1\n";
	msg = parse_fail(t, strlen(t));
	cr_assert(strncmp(msg, "t.yaml:3:", 9) == 0, "%s", msg);
	assert_contains(msg, "while parsing");
	t = "a: \"unterminated\n";
	msg = parse_fail(t, strlen(t));
	cr_assert(strncmp(msg, "t.yaml:", 7) == 0, "%s", msg);
}

Test(yaml, reader_error_has_position)
{
	const char t[] = "a: 1\nb: \x01\n";
	const char *msg = parse_fail(t, sizeof(t) - 1);
	assert_contains(msg, "t.yaml:2:4: control characters are not allowed");
}

Test(yaml, empty_documents_are_null)
{
	const char *texts[] = {"", "# only a comment\n", "~\n", "---\n",
	    "null"};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		cep_yaml_doc *doc = parse_ok(texts[i]);
		cr_assert_eq(cep_yamldoc_kind(cep_yamldoc_root(doc)),
		    CEP_YAML_NULL, "text %zu", i);
		cep_yamldoc_free(doc);
	}
	cep_yaml_doc *doc = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_yamldoc_parse(NULL, 0, NULL, &doc, &err), CEP_OK);
	cr_assert_eq(cep_yamldoc_kind(cep_yamldoc_root(doc)), CEP_YAML_NULL);
	cep_yamldoc_free(doc);
}

Test(yaml, multiple_documents_refused)
{
	const char *t = "a: 1\n---\nb: 2\n";
	const char *msg = parse_fail(t, strlen(t));
	assert_contains(msg,
	    "t.yaml:2:1: multiple documents are not supported");
}

Test(yaml, non_scalar_keys_refused)
{
	const char *t = "? [a, b]\n: 1\n";
	const char *msg = parse_fail(t, strlen(t));
	assert_contains(msg, "t.yaml:1:3: mapping keys must be scalars");
	t = "{{a: 1}: 2}";
	msg = parse_fail(t, strlen(t));
	assert_contains(msg, "mapping keys must be scalars");
}

Test(yaml, nul_in_scalar_refused)
{
	const char *t = "a: \"x\\0y\"\n";
	const char *msg = parse_fail(t, strlen(t));
	assert_contains(msg, "t.yaml:1:4: scalar contains a NUL");
}

Test(yaml, null_keys_stay_scalars)
{
	cep_yaml_doc *doc = parse_ok("null: 1\n\"\": 2\n");
	const cep_yaml_node *r = cep_yamldoc_root(doc);
	cr_assert_str_eq(cep_yamldoc_scalar(cep_yamldoc_get(r, "null")), "1");
	cr_assert_str_eq(cep_yamldoc_scalar(cep_yamldoc_get(r, "")), "2");
	cep_yamldoc_free(doc);
}

Test(yaml, accessors_tolerate_null)
{
	cr_assert_eq(cep_yamldoc_kind(NULL), CEP_YAML_NULL);
	cr_assert_eq(cep_yamldoc_len(NULL), 0);
	cr_assert_null(cep_yamldoc_get(NULL, "a"));
	cr_assert_null(cep_yamldoc_scalar(NULL));
	cep_yamldoc_free(NULL);
}
