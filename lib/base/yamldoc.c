/*
 * yamldoc.c - a small read-only tree over libyaml's event parser.
 *
 * libyaml does the tokenizing and parsing; this file only stacks the events
 * into nodes that remember where they started. It also enforces what the
 * appliance refuses to accept from operators and control planes: anchors
 * and aliases (billion-laughs style expansion and hidden sharing), more
 * than one document, duplicate or non-scalar map keys, scalars containing
 * NUL, and documents too large, too deep or with too many nodes.
 * Nothing here knows about experiments or configuration.
 */
#define _GNU_SOURCE
#include "yamldoc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YAML_MAX_DEPTH 64
#define YAML_MAX_NODES 100000

struct cep_yaml_node {
	enum cep_yaml_kind kind;
	int line, col;
	bool quoted;
	char *text;    /* scalars only */
	size_t n, cap; /* maps: 2 * pairs (key, value, key, ...) */
	cep_yaml_node **kids;
};

struct cep_yaml_doc {
	char *fname;
	cep_yaml_node *root;
};

/* Parser state: the stack of open maps and sequences. */
struct builder {
	cep_yaml_doc *doc;
	const char *text;
	size_t len;
	cep_yaml_node *stack[YAML_MAX_DEPTH + 1];
	int depth;
	size_t nodes;
	bool have_doc;
	cep_err *err;
};

static void node_free(cep_yaml_node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n->text);
	free(n);
}

void cep_yamldoc_free(cep_yaml_doc *doc)
{
	if (doc == NULL)
		return;
	node_free(doc->root);
	free(doc->fname);
	free(doc);
}

static int fail_at(struct builder *b, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(struct builder *b, int line, int col, const char *fmt, ...)
{
	char msg[CEP_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cep_err_set(b->err, CEP_INVALID_ARGUMENT, "%s:%d:%d: %s",
	    b->doc->fname, line, col, msg);
}

/* libyaml reader errors carry a byte offset, not a mark. */
static void offset_pos(const char *text, size_t len, size_t off, int *line,
    int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)text[i] & 0xC0) != 0x80) {
			(*col)++;
		}
	}
}

static int libyaml_error(struct builder *b, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "invalid YAML";
	int line, col;
	if (p->error == YAML_READER_ERROR) {
		offset_pos(b->text, b->len, p->problem_offset, &line, &col);
		return fail_at(b, line, col, "%s", problem);
	}
	if (p->error == YAML_MEMORY_ERROR)
		return cep_err_set(b->err, CEP_RESOURCE_EXHAUSTED,
		    "%s: out of memory while parsing YAML", b->doc->fname);
	line = (int)p->problem_mark.line + 1;
	col = (int)p->problem_mark.column + 1;
	if (p->context == NULL)
		return fail_at(b, line, col, "%s", problem);
	return fail_at(b, line, col, "%s %s (started at line %d, column %d)",
	    problem, p->context, (int)p->context_mark.line + 1,
	    (int)p->context_mark.column + 1);
}

static int add_child(struct builder *b, cep_yaml_node *parent,
    cep_yaml_node *kid)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 4;
		cep_yaml_node **k = realloc(parent->kids, cap * sizeof(*k));
		if (k == NULL) {
			node_free(kid);
			return cep_err_set(b->err, CEP_RESOURCE_EXHAUSTED,
			    "%s: out of memory", b->doc->fname);
		}
		parent->kids = k;
		parent->cap = cap;
	}
	parent->kids[parent->n++] = kid;
	return CEP_OK;
}

/* Plain (unquoted, untagged) scalars that YAML's core schema reads as null. */
static bool is_null_scalar(const yaml_event_t *ev)
{
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
	    ev->data.scalar.tag != NULL)
		return false;
	const char *v = (const char *)ev->data.scalar.value;
	return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	    strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static cep_yaml_node *node_from_event(struct builder *b, const yaml_event_t *ev)
{
	cep_yaml_node *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return NULL;
	n->line = (int)ev->start_mark.line + 1;
	n->col = (int)ev->start_mark.column + 1;
	if (ev->type == YAML_MAPPING_START_EVENT) {
		n->kind = CEP_YAML_MAP;
	} else if (ev->type == YAML_SEQUENCE_START_EVENT) {
		n->kind = CEP_YAML_SEQ;
	} else {
		bool key = b->depth > 0 &&
		    b->stack[b->depth - 1]->kind == CEP_YAML_MAP &&
		    b->stack[b->depth - 1]->n % 2 == 0;
		/* keys stay scalars: "null: x" names the key "null" */
		n->kind = !key && is_null_scalar(ev) ? CEP_YAML_NULL :
		                                       CEP_YAML_SCALAR;
		n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
		n->text = strndup((const char *)ev->data.scalar.value,
		    ev->data.scalar.length);
		if (n->text == NULL) {
			free(n);
			return NULL;
		}
	}
	return n;
}

/* Checked before a node is attached: anchors, key kinds, limits. */
static int check_new_node(struct builder *b, const yaml_event_t *ev)
{
	int line = (int)ev->start_mark.line + 1;
	int col = (int)ev->start_mark.column + 1;
	const yaml_char_t *anchor = NULL;
	if (ev->type == YAML_SCALAR_EVENT)
		anchor = ev->data.scalar.anchor;
	else if (ev->type == YAML_MAPPING_START_EVENT)
		anchor = ev->data.mapping_start.anchor;
	else
		anchor = ev->data.sequence_start.anchor;
	if (anchor != NULL)
		return fail_at(b, line, col,
		    "anchors and aliases are not supported");
	if (++b->nodes > YAML_MAX_NODES)
		return fail_at(b, line, col, "document has more than %d nodes",
		    YAML_MAX_NODES);
	if (b->depth > 0 && ev->type != YAML_SCALAR_EVENT) {
		const cep_yaml_node *top = b->stack[b->depth - 1];
		if (top->kind == CEP_YAML_MAP && top->n % 2 == 0)
			return fail_at(b, line, col,
			    "mapping keys must be scalars");
	}
	if (ev->type == YAML_SCALAR_EVENT &&
	    memchr(ev->data.scalar.value, '\0', ev->data.scalar.length) != NULL)
		return fail_at(b, line, col, "scalar contains a NUL character");
	if (ev->type != YAML_SCALAR_EVENT && b->depth >= YAML_MAX_DEPTH)
		return fail_at(b, line, col,
		    "document nests deeper than %d levels", YAML_MAX_DEPTH);
	return CEP_OK;
}

static int add_node(struct builder *b, const yaml_event_t *ev)
{
	int rv = check_new_node(b, ev);
	if (rv != CEP_OK)
		return rv;
	cep_yaml_node *n = node_from_event(b, ev);
	if (n == NULL)
		return cep_err_set(b->err, CEP_RESOURCE_EXHAUSTED,
		    "%s: out of memory", b->doc->fname);
	if (b->depth == 0) {
		b->doc->root = n;
	} else if ((rv = add_child(b, b->stack[b->depth - 1], n)) != CEP_OK) {
		return rv;
	}
	if (n->kind == CEP_YAML_MAP || n->kind == CEP_YAML_SEQ)
		b->stack[b->depth++] = n;
	return CEP_OK;
}

static int cmp_key(const void *a, const void *b)
{
	const cep_yaml_node *x = *(const cep_yaml_node *const *)a;
	const cep_yaml_node *y = *(const cep_yaml_node *const *)b;
	int c = strcmp(x->text, y->text);
	if (c != 0)
		return c;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->col < y->col ? -1 : (x->col > y->col);
}

/* Sorting keeps this O(n log n) for large maps; the error names the
 * earliest key in the document that repeats an earlier one. */
static int check_dup_keys(struct builder *b, const cep_yaml_node *map)
{
	size_t np = map->n / 2;
	if (np < 2)
		return CEP_OK;
	const cep_yaml_node **keys = malloc(np * sizeof(*keys));
	if (keys == NULL)
		return cep_err_set(b->err, CEP_RESOURCE_EXHAUSTED,
		    "%s: out of memory", b->doc->fname);
	for (size_t i = 0; i < np; i++)
		keys[i] = map->kids[2 * i];
	qsort(keys, np, sizeof(*keys), cmp_key);
	const cep_yaml_node *dup = NULL, *first = NULL;
	for (size_t i = 1; i < np; i++) {
		if (strcmp(keys[i - 1]->text, keys[i]->text) != 0)
			continue;
		/* the earliest repeat is always a group's second occurrence,
		 * so keys[i - 1] is then that group's first */
		if (dup == NULL || keys[i]->line < dup->line ||
		    (keys[i]->line == dup->line && keys[i]->col < dup->col)) {
			dup = keys[i];
			first = keys[i - 1];
		}
	}
	int rv = CEP_OK;
	if (dup != NULL)
		rv = fail_at(b, dup->line, dup->col,
		    "duplicate key '%s' (first given at line %d)", dup->text,
		    first->line);
	free(keys);
	return rv;
}

static int end_container(struct builder *b)
{
	if (b->depth == 0)
		return fail_at(b, 1, 1, "unbalanced YAML events");
	cep_yaml_node *n = b->stack[--b->depth];
	if (n->kind == CEP_YAML_MAP)
		return check_dup_keys(b, n);
	return CEP_OK;
}

/* One event; *done when the stream ends. */
static int on_event(struct builder *b, const yaml_event_t *ev, bool *done)
{
	int line = (int)ev->start_mark.line + 1;
	int col = (int)ev->start_mark.column + 1;
	switch (ev->type) {
	case YAML_STREAM_END_EVENT: *done = true; return CEP_OK;
	case YAML_DOCUMENT_START_EVENT:
		if (b->have_doc)
			return fail_at(b, line, col,
			    "multiple documents are not supported");
		b->have_doc = true;
		return CEP_OK;
	case YAML_ALIAS_EVENT:
		return fail_at(b, line, col, "aliases are not supported");
	case YAML_SCALAR_EVENT:
	case YAML_MAPPING_START_EVENT:
	case YAML_SEQUENCE_START_EVENT: return add_node(b, ev);
	case YAML_MAPPING_END_EVENT:
	case YAML_SEQUENCE_END_EVENT: return end_container(b);
	default: return CEP_OK;
	}
}

static int run_parser(struct builder *b)
{
	yaml_parser_t p;
	if (!yaml_parser_initialize(&p))
		return cep_err_set(b->err, CEP_RESOURCE_EXHAUSTED,
		    "%s: out of memory", b->doc->fname);
	yaml_parser_set_input_string(&p, (const unsigned char *)b->text,
	    b->len);
	int rv = CEP_OK;
	bool done = false;
	while (rv == CEP_OK && !done) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p, &ev)) {
			rv = libyaml_error(b, &p);
			break;
		}
		rv = on_event(b, &ev, &done);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return rv;
}

int cep_yamldoc_parse(const char *text, size_t len, const char *fname,
    cep_yaml_doc **out, cep_err *err)
{
	*out = NULL;
	if (fname == NULL)
		fname = "<input>";
	if (len > CEP_YAML_MAX_BYTES)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s: document is %zu bytes, more than the limit of %u",
		    fname, len, CEP_YAML_MAX_BYTES);
	cep_yaml_doc *doc = calloc(1, sizeof(*doc));
	if (doc == NULL || (doc->fname = strdup(fname)) == NULL) {
		free(doc);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	}
	struct builder b = {.doc = doc,
	    .text = text ? text : "",
	    .len = text ? len : 0,
	    .err = err};
	int rv = run_parser(&b);
	if (rv == CEP_OK && doc->root == NULL) {
		/* empty stream or comments only: a null root, callers decide */
		doc->root = calloc(1, sizeof(*doc->root));
		if (doc->root == NULL)
			rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
			    "out of memory");
		else
			*doc->root = (cep_yaml_node){.kind = CEP_YAML_NULL,
			    .line = 1,
			    .col = 1};
	}
	if (rv != CEP_OK) {
		cep_yamldoc_free(doc);
		return rv;
	}
	*out = doc;
	return CEP_OK;
}

const cep_yaml_node *cep_yamldoc_root(const cep_yaml_doc *doc)
{
	return doc ? doc->root : NULL;
}

const char *cep_yamldoc_fname(const cep_yaml_doc *doc)
{
	return doc ? doc->fname : "<input>";
}

enum cep_yaml_kind cep_yamldoc_kind(const cep_yaml_node *n)
{
	return n ? n->kind : CEP_YAML_NULL;
}

int cep_yamldoc_line(const cep_yaml_node *n)
{
	return n ? n->line : 0;
}

int cep_yamldoc_col(const cep_yaml_node *n)
{
	return n ? n->col : 0;
}

const char *cep_yamldoc_scalar(const cep_yaml_node *n)
{
	return n && n->kind == CEP_YAML_SCALAR ? n->text : NULL;
}

bool cep_yamldoc_quoted(const cep_yaml_node *n)
{
	return n ? n->quoted : false;
}

bool cep_yamldoc_bool(const cep_yaml_node *n, bool *out)
{
	const char *s = cep_yamldoc_scalar(n);
	if (s == NULL || cep_yamldoc_quoted(n) ||
	    (strcmp(s, "true") != 0 && strcmp(s, "false") != 0))
		return false;
	*out = strcmp(s, "true") == 0;
	return true;
}

size_t cep_yamldoc_len(const cep_yaml_node *n)
{
	if (n == NULL)
		return 0;
	if (n->kind == CEP_YAML_MAP)
		return n->n / 2;
	if (n->kind == CEP_YAML_SEQ)
		return n->n;
	return 0;
}

const cep_yaml_node *cep_yamldoc_at(const cep_yaml_node *seq, size_t i)
{
	if (seq == NULL || seq->kind != CEP_YAML_SEQ || i >= seq->n)
		return NULL;
	return seq->kids[i];
}

const cep_yaml_node *cep_yamldoc_key_at(const cep_yaml_node *map, size_t i)
{
	if (map == NULL || map->kind != CEP_YAML_MAP || i >= map->n / 2)
		return NULL;
	return map->kids[2 * i];
}

const cep_yaml_node *cep_yamldoc_value_at(const cep_yaml_node *map, size_t i)
{
	if (map == NULL || map->kind != CEP_YAML_MAP || i >= map->n / 2)
		return NULL;
	return map->kids[2 * i + 1];
}

const cep_yaml_node *cep_yamldoc_get(const cep_yaml_node *map, const char *key)
{
	if (map == NULL || map->kind != CEP_YAML_MAP || key == NULL)
		return NULL;
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		if (strcmp(map->kids[i]->text, key) == 0)
			return map->kids[i + 1];
	}
	return NULL;
}

int cep_yamldoc_error(cep_err *err, const cep_yaml_doc *doc,
    const cep_yaml_node *n, const char *fmt, ...)
{
	char msg[CEP_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT, "%s: %s",
		    cep_yamldoc_fname(doc), msg);
	return cep_err_set(err, CEP_INVALID_ARGUMENT, "%s:%d:%d: %s",
	    cep_yamldoc_fname(doc), n->line, n->col, msg);
}
