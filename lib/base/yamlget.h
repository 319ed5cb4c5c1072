/*
 * yamlget.h - typed getters over a yamldoc tree: the one loader of the
 * settings files (cep.yaml in lib/conf, connectors.d/NAME.yaml in
 * lib/kube) and the unknown-key check the experiment validator shares.
 *
 * A getter reads one key of a mapping. An absent key leaves *out as it is
 * (the caller's default); a bad value ends the load with
 * "file:line:col: <path>.<key>: <what>, expected <expected>", where path is
 * the dotted path of the mapping being read ("policy.targets"). The first
 * problem wins: settings files are short and a daemon must not start on a
 * half-read policy. (Experiments report every problem; they use only
 * cep_yamlget_unknown, _join and _in_list.)
 */
#ifndef CEP_YAMLGET_H
#define CEP_YAMLGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "yamldoc.h"

/* A load in progress; on the caller's stack. */
typedef struct cep_yamlget {
	const cep_yaml_doc *doc;
	cep_err *err;
	char path[96]; /* "policy.targets"; "" = the top level */
} cep_yamlget;

void cep_yamlget_init(cep_yamlget *g, const cep_yaml_doc *doc, cep_err *err);
/* Back to an outer mapping after a section: "" or "policy". */
void cep_yamlget_set_path(cep_yamlget *g, const char *path);

/* "<path>.<key>: <what>, expected <expected>" at n's position. */
int cep_yamlget_bad(cep_yamlget *g, const cep_yaml_node *n, const char *key,
    const char *what, const char *expected);
/* The first key of map not in keys: "unknown key 'x' in <path> (expected
 * one of: a, b)". */
int cep_yamlget_keys(cep_yamlget *g, const cep_yaml_node *map,
    const char *const *keys);
/* A section: absent or null leaves *out NULL (defaults), else a mapping
 * of only keys; g->path grows by ".key". */
int cep_yamlget_section(cep_yamlget *g, const cep_yaml_node *parent,
    const char *key, const char *const *keys, const cep_yaml_node **out);
/* The scalar text of n, or NULL with "not a scalar". */
const char *cep_yamlget_scalar(cep_yamlget *g, const cep_yaml_node *n,
    const char *key, const char *expected);

/* Getters: an absent key is CEP_OK with *dst / *out unchanged. */
int cep_yamlget_string(cep_yamlget *g, const cep_yaml_node *map,
    const char *key, bool (*ok)(const char *), const char *expected, char *dst,
    size_t dlen);
/* One of words (NULL-terminated). */
int cep_yamlget_enum(cep_yamlget *g, const cep_yaml_node *map, const char *key,
    const char *const *words, const char *expected, char *dst, size_t dlen);
/* An unquoted decimal integer min..max. */
int cep_yamlget_int(cep_yamlget *g, const cep_yaml_node *map, const char *key,
    long min, long max, int *out);
/* A duration such as 30s, in ms, min..max. */
int cep_yamlget_duration(cep_yamlget *g, const cep_yaml_node *map,
    const char *key, int64_t min, int64_t max, int64_t *out);
/* true or false, unquoted (cep_yamldoc_bool). */
int cep_yamlget_bool(cep_yamlget *g, const cep_yaml_node *map, const char *key,
    bool *out);

/* A list of at most max scalars, each checked by item_ok (non-NULL) and
 * refused as "<bad>" otherwise. *list is the checked sequence, NULL when
 * the key is absent or null; the caller copies the items where it wants
 * them (rows, JSON, a joined string). */
struct cep_yamlget_list {
	size_t max;
	bool (*item_ok)(const char *);
	const char *bad; /* "bad pattern" */
	const char *expected;
};
int cep_yamlget_strings(cep_yamlget *g, const cep_yaml_node *map,
    const char *key, const struct cep_yamlget_list *spec,
    const cep_yaml_node **list);

/* Unknown keys, for loaders that report more than the first: the next
 * key of map at index >= *i that is not in keys (NULL-terminated), with
 * *i just past it; NULL when there is none. */
const cep_yaml_node *cep_yamlget_unknown(const cep_yaml_node *map,
    const char *const *keys, size_t *i);
/* "a, b, c" (truncated to len). */
void cep_yamlget_join(char *buf, size_t len, const char *const *list);
bool cep_yamlget_in_list(const char *s, const char *const *list);

#endif
