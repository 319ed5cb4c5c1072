/*
 * yamlget.c - typed getters of the settings files (yamlget.h). What each
 * file's values mean (URLs, globs, quantities) stays with the file's
 * module; here only the shape: scalars, integers, durations, booleans,
 * lists, sections and their known keys, and the one message format.
 */
#define _GNU_SOURCE
#include "yamlget.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

void cep_yamlget_init(cep_yamlget *g, const cep_yaml_doc *doc, cep_err *err)
{
	memset(g, 0, sizeof(*g));
	g->doc = doc;
	g->err = err;
}

void cep_yamlget_set_path(cep_yamlget *g, const char *path)
{
	snprintf(g->path, sizeof(g->path), "%s", path);
}

int cep_yamlget_bad(cep_yamlget *g, const cep_yaml_node *n, const char *key,
    const char *what, const char *expected)
{
	return cep_yamldoc_error(g->err, g->doc, n, "%s%s%s: %s, expected %s",
	    g->path, g->path[0] ? "." : "", key, what, expected);
}

bool cep_yamlget_in_list(const char *s, const char *const *list)
{
	if (s == NULL) /* not a scalar (a mapping used as a key): in no list */
		return false;
	for (size_t i = 0; list[i] != NULL; i++) {
		if (strcmp(s, list[i]) == 0)
			return true;
	}
	return false;
}

void cep_yamlget_join(char *buf, size_t len, const char *const *list)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; list[i] != NULL && off < len; i++) {
		int w = snprintf(buf + off, len - off, "%s%s", i ? ", " : "",
		    list[i]);
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

const cep_yaml_node *cep_yamlget_unknown(const cep_yaml_node *map,
    const char *const *keys, size_t *i)
{
	for (; *i < cep_yamldoc_len(map); (*i)++) {
		const cep_yaml_node *k = cep_yamldoc_key_at(map, *i);
		const char *ks = cep_yamldoc_scalar(k);
		if (ks != NULL && !cep_yamlget_in_list(ks, keys)) {
			(*i)++;
			return k;
		}
	}
	return NULL;
}

int cep_yamlget_keys(cep_yamlget *g, const cep_yaml_node *map,
    const char *const *keys)
{
	size_t i = 0;
	const cep_yaml_node *k = cep_yamlget_unknown(map, keys, &i);
	if (k == NULL)
		return CEP_OK;
	char list[384];
	cep_yamlget_join(list, sizeof(list), keys);
	return cep_yamldoc_error(g->err, g->doc, k,
	    "unknown key '%.64s' in %s (expected one of: %s)",
	    cep_yamldoc_scalar(k), g->path[0] ? g->path : "the top level",
	    list);
}

int cep_yamlget_section(cep_yamlget *g, const cep_yaml_node *parent,
    const char *key, const char *const *keys, const cep_yaml_node **out)
{
	*out = cep_yamldoc_get(parent, key);
	if (*out == NULL || cep_yamldoc_kind(*out) == CEP_YAML_NULL) {
		*out = NULL;
		return CEP_OK;
	}
	if (cep_yamldoc_kind(*out) != CEP_YAML_MAP)
		return cep_yamlget_bad(g, *out, key, "not a mapping",
		    "a mapping");
	/* keys are the loaders' constants: too deep is a bug of ours */
	size_t pl = strlen(g->path), kl = strlen(key);
	if (pl + 1 + kl >= sizeof(g->path))
		return cep_err_set(g->err, CEP_INTERNAL, "yaml path too deep");
	if (pl > 0)
		g->path[pl++] = '.';
	memcpy(g->path + pl, key, kl + 1);
	return cep_yamlget_keys(g, *out, keys);
}

const char *cep_yamlget_scalar(cep_yamlget *g, const cep_yaml_node *n,
    const char *key, const char *expected)
{
	const char *s = cep_yamldoc_scalar(n);
	if (s == NULL)
		cep_yamlget_bad(g, n, key, "not a scalar", expected);
	return s;
}

static int failed(const cep_yamlget *g)
{
	return g->err ? g->err->code : CEP_INVALID_ARGUMENT;
}

int cep_yamlget_string(cep_yamlget *g, const cep_yaml_node *map,
    const char *key, bool (*ok)(const char *), const char *expected, char *dst,
    size_t dlen)
{
	const cep_yaml_node *n = cep_yamldoc_get(map, key);
	if (n == NULL)
		return CEP_OK;
	const char *s = cep_yamlget_scalar(g, n, key, expected);
	if (s == NULL)
		return failed(g);
	if (strlen(s) >= dlen || !ok(s))
		return cep_yamlget_bad(g, n, key, "not valid", expected);
	snprintf(dst, dlen, "%s", s);
	return CEP_OK;
}

int cep_yamlget_enum(cep_yamlget *g, const cep_yaml_node *map, const char *key,
    const char *const *words, const char *expected, char *dst, size_t dlen)
{
	const cep_yaml_node *n = cep_yamldoc_get(map, key);
	if (n == NULL)
		return CEP_OK;
	const char *s = cep_yamldoc_scalar(n);
	if (s == NULL || !cep_yamlget_in_list(s, words) || strlen(s) >= dlen)
		return cep_yamlget_bad(g, n, key, "not valid", expected);
	snprintf(dst, dlen, "%s", s);
	return CEP_OK;
}

int cep_yamlget_int(cep_yamlget *g, const cep_yaml_node *map, const char *key,
    long min, long max, int *out)
{
	const cep_yaml_node *n = cep_yamldoc_get(map, key);
	if (n == NULL)
		return CEP_OK;
	char exp[64];
	snprintf(exp, sizeof(exp), "an integer %ld..%ld", min, max);
	const char *s = cep_yamldoc_scalar(n);
	char *end = NULL;
	errno = 0;
	long v = s && !cep_yamldoc_quoted(n) && s[0] ? strtol(s, &end, 10) : 0;
	if (s == NULL || cep_yamldoc_quoted(n) || s[0] == '\0' || errno != 0 ||
	    *end != '\0')
		return cep_yamlget_bad(g, n, key, "not an integer", exp);
	if (v < min || v > max)
		return cep_yamlget_bad(g, n, key, "out of range", exp);
	*out = (int)v;
	return CEP_OK;
}

int cep_yamlget_duration(cep_yamlget *g, const cep_yaml_node *map,
    const char *key, int64_t min, int64_t max, int64_t *out)
{
	const cep_yaml_node *n = cep_yamldoc_get(map, key);
	if (n == NULL)
		return CEP_OK;
	char lo[32], hi[32], exp[96];
	cep_clock_format_duration(min, lo, sizeof(lo));
	cep_clock_format_duration(max, hi, sizeof(hi));
	snprintf(exp, sizeof(exp), "a duration %s..%s such as 30s", lo, hi);
	const char *s = cep_yamlget_scalar(g, n, key, exp);
	int64_t v = 0;
	if (s == NULL)
		return failed(g);
	if (!cep_clock_parse_duration_ms(s, &v))
		return cep_yamlget_bad(g, n, key, "not a duration", exp);
	if (v < min || v > max)
		return cep_yamlget_bad(g, n, key, "out of range", exp);
	*out = v;
	return CEP_OK;
}

int cep_yamlget_bool(cep_yamlget *g, const cep_yaml_node *map, const char *key,
    bool *out)
{
	const cep_yaml_node *n = cep_yamldoc_get(map, key);
	if (n == NULL)
		return CEP_OK;
	if (!cep_yamldoc_bool(n, out))
		return cep_yamlget_bad(g, n, key, "not a boolean",
		    "true or false");
	return CEP_OK;
}

int cep_yamlget_strings(cep_yamlget *g, const cep_yaml_node *map,
    const char *key, const struct cep_yamlget_list *spec,
    const cep_yaml_node **list)
{
	*list = cep_yamldoc_get(map, key);
	if (*list == NULL || cep_yamldoc_kind(*list) == CEP_YAML_NULL) {
		*list = NULL;
		return CEP_OK;
	}
	if (cep_yamldoc_kind(*list) != CEP_YAML_SEQ ||
	    cep_yamldoc_len(*list) > spec->max)
		return cep_yamlget_bad(g, *list, key, "not a list or too long",
		    spec->expected);
	for (size_t i = 0; i < cep_yamldoc_len(*list); i++) {
		const cep_yaml_node *it = cep_yamldoc_at(*list, i);
		const char *s = cep_yamldoc_scalar(it);
		if (s == NULL || !spec->item_ok(s))
			return cep_yamlget_bad(g, it, key, spec->bad,
			    spec->expected);
	}
	return CEP_OK;
}
