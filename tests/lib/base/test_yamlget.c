/* test_yamlget.c - the typed getters: absent keys keep defaults, bad
 * values name file:line:col and the dotted path, unknown keys are found
 * one after the other. */
#include <criterion/criterion.h>
#include <string.h>

#include "yamlget.h"

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "\"%s\" lacks \"%s\"", (s), (sub))

static cep_yaml_doc *doc;
static cep_err err;
static cep_yamlget g;

static const cep_yaml_node *load(const char *text)
{
	memset(&err, 0, sizeof(err));
	cr_assert_eq(cep_yamldoc_parse(text, strlen(text), "t.yaml", &doc,
	                 &err),
	    CEP_OK, "%s", err.msg);
	cep_yamlget_init(&g, doc, &err);
	return cep_yamldoc_root(doc);
}

static void unload(void)
{
	cep_yamldoc_free(doc);
	doc = NULL;
}

static bool any(const char *s)
{
	return s[0] != '\0';
}

TestSuite(yamlget, .fini = unload);

Test(yamlget, absent_keys_keep_defaults)
{
	const cep_yaml_node *root = load("other: 1\n");
	int i = 7;
	int64_t d = 9;
	bool b = true;
	char s[8] = "def";
	cr_assert_eq(cep_yamlget_int(&g, root, "i", 0, 10, &i), CEP_OK);
	cr_assert_eq(cep_yamlget_duration(&g, root, "d", 0, 10, &d), CEP_OK);
	cr_assert_eq(cep_yamlget_bool(&g, root, "b", &b), CEP_OK);
	cr_assert_eq(cep_yamlget_string(&g, root, "s", any, "x", s, sizeof(s)),
	    CEP_OK);
	cr_assert(i == 7 && d == 9 && b && strcmp(s, "def") == 0);
}

Test(yamlget, values_and_refusals_in_a_section)
{
	static const char *const keys[] = {"n", "t", "on", "w", NULL};
	static const char *const words[] = {"a", "b", NULL};
	const cep_yaml_node *root = load(
	    "sec:\n  n: 5\n  t: 2m\n  on: false\n  w: b\n");
	const cep_yaml_node *s;
	cr_assert_eq(cep_yamlget_section(&g, root, "sec", keys, &s), CEP_OK);
	int n = 0;
	int64_t t = 0;
	bool on = true;
	char w[4] = "";
	cr_assert_eq(cep_yamlget_int(&g, s, "n", 1, 9, &n), CEP_OK);
	cr_assert_eq(cep_yamlget_duration(&g, s, "t", 0, 3600000, &t), CEP_OK);
	cr_assert_eq(cep_yamlget_bool(&g, s, "on", &on), CEP_OK);
	cr_assert_eq(cep_yamlget_enum(&g, s, "w", words, "a or b", w,
	                 sizeof(w)),
	    CEP_OK);
	cr_assert(n == 5 && t == 120000 && !on && strcmp(w, "b") == 0);
	cr_assert_eq(cep_yamlget_int(&g, s, "n", 6, 9, &n),
	    CEP_INVALID_ARGUMENT);
	assert_contains(err.msg,
	    "t.yaml:2:6: sec.n: out of range, expected "
	    "an integer 6..9");
	cr_assert_eq(cep_yamlget_enum(&g, s, "n", words, "a or b", w,
	                 sizeof(w)),
	    CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "sec.n: not valid, expected a or b");
	cr_assert_eq(cep_yamlget_bool(&g, s, "t", &on), CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "t.yaml:3:6: sec.t: not a boolean");
}

Test(yamlget, unknown_keys)
{
	static const char *const keys[] = {"a", "b", NULL};
	const cep_yaml_node *root = load("a: 1\nx: 2\nb: 3\ny: 4\n");
	size_t i = 0;
	const cep_yaml_node *k = cep_yamlget_unknown(root, keys, &i);
	cr_assert_str_eq(cep_yamldoc_scalar(k), "x");
	k = cep_yamlget_unknown(root, keys, &i);
	cr_assert_str_eq(cep_yamldoc_scalar(k), "y");
	cr_assert_null(cep_yamlget_unknown(root, keys, &i));
	cr_assert_eq(cep_yamlget_keys(&g, root, keys), CEP_INVALID_ARGUMENT);
	cr_assert_str_eq(err.msg,
	    "t.yaml:2:1: unknown key 'x' in the top "
	    "level (expected one of: a, b)");
}

Test(yamlget, string_lists)
{
	const struct cep_yamlget_list spec = {2, any, "bad item", "names"};
	const cep_yaml_node *root = load("l: [p, q]\nn: ~\nbad: [p, \"\"]\n"
	                                 "long: [a, b, c]\n");
	const cep_yaml_node *list;
	cr_assert_eq(cep_yamlget_strings(&g, root, "l", &spec, &list), CEP_OK);
	cr_assert_eq(cep_yamldoc_len(list), 2);
	cr_assert_eq(cep_yamlget_strings(&g, root, "n", &spec, &list), CEP_OK);
	cr_assert_null(list);
	cr_assert_eq(cep_yamlget_strings(&g, root, "bad", &spec, &list),
	    CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "t.yaml:3:10: bad: bad item, expected names");
	cr_assert_eq(cep_yamlget_strings(&g, root, "long", &spec, &list),
	    CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "long: not a list or too long");
}

Test(yamlget, join_truncates)
{
	static const char *const l[] = {"alpha", "beta", NULL};
	char buf[9];
	cep_yamlget_join(buf, sizeof(buf), l);
	cr_assert_str_eq(buf, "alpha, b");
	cr_assert(cep_yamlget_in_list("beta", l));
	cr_assert(!cep_yamlget_in_list("gamma", l));
}
