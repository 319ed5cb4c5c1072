/*
 * yamldoc.h - a read-only document tree over libyaml, with positions.
 *
 * Loads one YAML document into maps, sequences and scalars, each carrying
 * the line and column where it starts, so every later check can say
 * "file:line:col: expected a duration such as 30s". Anchors/aliases and
 * documents over CEP_YAML_MAX_BYTES, deeper than 64 levels or with more than
 * 100000 nodes are refused: inputs come from operators and control planes,
 * and a parser must not be a way to exhaust the appliance.
 */
#ifndef CEP_YAML_H
#define CEP_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define CEP_YAML_MAX_BYTES (1u * 1024u * 1024u)

typedef struct cep_yaml_doc cep_yaml_doc;
typedef struct cep_yaml_node cep_yaml_node;

enum cep_yaml_kind {
	CEP_YAML_SCALAR,
	CEP_YAML_MAP,
	CEP_YAML_SEQ,
	CEP_YAML_NULL
};

/* fname is used in messages only. Errors: "exp.yaml:3:7: mapping values
 * are not allowed in this context". An empty document (or comments only)
 * parses to a root of kind CEP_YAML_NULL: callers say "empty document".
 * Plain ~, null and empty values are CEP_YAML_NULL; map keys are always
 * CEP_YAML_SCALAR. Scalars never contain NUL bytes. */
int cep_yamldoc_parse(const char *text, size_t len, const char *fname,
    cep_yaml_doc **out, cep_err *err);
void cep_yamldoc_free(cep_yaml_doc *doc);
const cep_yaml_node *cep_yamldoc_root(const cep_yaml_doc *doc);
const char *cep_yamldoc_fname(const cep_yaml_doc *doc);

enum cep_yaml_kind cep_yamldoc_kind(const cep_yaml_node *n);
/* Accessors accept NULL (kind NULL, length 0, position 0). */
int cep_yamldoc_line(const cep_yaml_node *n); /* 1-based */
int cep_yamldoc_col(const cep_yaml_node *n);  /* 1-based */
/* Scalar text (NUL-terminated), NULL if n is not a scalar. */
const char *cep_yamldoc_scalar(const cep_yaml_node *n);
/* Was the scalar quoted? ("1" vs 1). */
bool cep_yamldoc_quoted(const cep_yaml_node *n);
/* A plain (unquoted) true or false, YAML 1.2 core: "yes" and "on" are
 * refused rather than guessed. false if n is anything else. */
bool cep_yamldoc_bool(const cep_yaml_node *n, bool *out);

/* Maps and sequences. */
size_t cep_yamldoc_len(const cep_yaml_node *n);
const cep_yaml_node *cep_yamldoc_at(const cep_yaml_node *seq, size_t i);
/* i-th pair of a map: key node and value node. */
const cep_yaml_node *cep_yamldoc_key_at(const cep_yaml_node *map, size_t i);
const cep_yaml_node *cep_yamldoc_value_at(const cep_yaml_node *map, size_t i);
/* Value for a scalar key, NULL if absent. Duplicate keys are a parse error. */
const cep_yaml_node *cep_yamldoc_get(const cep_yaml_node *map, const char *key);

/* "file:line:col: " + message, with code INVALID_ARGUMENT. */
int cep_yamldoc_error(cep_err *err, const cep_yaml_doc *doc,
    const cep_yaml_node *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
