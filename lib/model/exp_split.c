/*
 * exp_split.c - a child's experiment when a label selector's share is
 * split across nodes (docs/kubernetes.md, "Pods by label selector"): the
 * parent's text with every node-level fault on the selector taking
 * exactly `count` pods (its count or percentage replaced), the rest kept.
 *
 * The document is rewritten through libyaml's document tree, never by
 * editing text, so comments are lost but nothing is guessed. Only runs
 * whose faults are all node-level faults on that one selector are split:
 * any other fault (pod-delete on the same pods, a named pod, a node hog)
 * would act once per child, which is not what the parent asked for.
 */
#define _GNU_SOURCE
#include "exp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "yamldoc.h"

/* The value of key in mapping node idx, 0 if absent; *pair its pair. */
static int map_get(yaml_document_t *doc, int idx, const char *key,
    yaml_node_pair_t **pair)
{
	yaml_node_t *m = yaml_document_get_node(doc, idx);
	if (m == NULL || m->type != YAML_MAPPING_NODE)
		return 0;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
	     p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		if (k != NULL && k->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)k->data.scalar.value, key) == 0) {
			if (pair != NULL)
				*pair = p;
			return p->value;
		}
	}
	return 0;
}

static const char *scalar(yaml_document_t *doc, int idx)
{
	yaml_node_t *n = yaml_document_get_node(doc, idx);
	return n != NULL && n->type == YAML_SCALAR_NODE ?
	    (const char *)n->data.scalar.value :
	    NULL;
}

static void drop_pair(yaml_document_t *doc, int map, const char *key)
{
	yaml_node_pair_t *p = NULL;
	if (map_get(doc, map, key, &p) == 0)
		return;
	yaml_node_t *m = yaml_document_get_node(doc, map);
	memmove(p, p + 1,
	    (size_t)(m->data.mapping.pairs.top - p - 1) * sizeof(*p));
	m->data.mapping.pairs.top--;
}

/* Fault f (a mapping): count = cnt, no percentage. Node pointers are not
 * kept across adding nodes (the document's node array may move). */
static int set_count(yaml_document_t *doc, int f, const char *cnt)
{
	drop_pair(doc, f, "percentage");
	int v = yaml_document_add_scalar(doc, NULL, (yaml_char_t *)cnt, -1,
	    YAML_PLAIN_SCALAR_STYLE);
	if (v == 0)
		return CEP_RESOURCE_EXHAUSTED;
	yaml_node_pair_t *p = NULL;
	if (map_get(doc, f, "count", &p) != 0) {
		p->value = v;
		return CEP_OK;
	}
	int k = yaml_document_add_scalar(doc, NULL, (yaml_char_t *)"count", -1,
	    YAML_PLAIN_SCALAR_STYLE);
	return k != 0 && yaml_document_append_mapping_pair(doc, f, k, v) ?
	    CEP_OK :
	    CEP_RESOURCE_EXHAUSTED;
}

static int rewrite(yaml_document_t *doc, const char *selector, uint32_t count,
    cep_err *err)
{
	int root = yaml_document_get_root_node(doc) ? 1 : 0;
	int faults = map_get(doc, map_get(doc, root, "spec", NULL), "faults",
	    NULL);
	yaml_node_t *seq = yaml_document_get_node(doc, faults);
	if (seq == NULL || seq->type != YAML_SEQUENCE_NODE)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "spec.faults is not a list");
	char cnt[16];
	snprintf(cnt, sizeof(cnt), "%u", count);
	size_t n = (size_t)(seq->data.sequence.items.top -
	    seq->data.sequence.items.start);
	for (size_t i = 0; i < n; i++) {
		seq = yaml_document_get_node(doc, faults);
		int f = seq->data.sequence.items.start[i];
		const char *name = scalar(doc, map_get(doc, f, "name", NULL));
		const char *type = scalar(doc, map_get(doc, f, "type", NULL));
		const char *sel = scalar(doc,
		    map_get(doc, f, "labelSelector", NULL));
		const cep_exp_type_spec *ts = type ? cep_exp_fault_spec(type) :
		                                     NULL;
		if (sel == NULL || strcmp(sel, selector) != 0 || ts == NULL ||
		    !ts->pod_target)
			return cep_err_set(err, CEP_FAILED_PRECONDITION,
			    "fault %.64s (%.32s) is not a node-level fault on "
			    "selector %.300s: a run split across nodes holds "
			    "only those, expected one experiment for the rest",
			    name ? name : "?", type ? type : "?", selector);
		if (set_count(doc, f, cnt) != CEP_OK)
			return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
			    "out of memory");
	}
	return CEP_OK;
}

int cep_exp_split_spec(const cep_exp *e, const char *selector, uint32_t count,
    char **out, cep_err *err)
{
	*out = NULL;
	/* the parsed experiment's text: a ChaosEngine's is already the
	 * native experiment it converts to */
	const char *yaml = cep_exp_source(e);
	size_t len = strlen(yaml);
	if (len > CEP_YAML_MAX_BYTES)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "experiment over 1 MiB");
	yaml_parser_t p;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&p))
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
	bool loaded = yaml_parser_load(&p, &doc) != 0;
	yaml_parser_delete(&p);
	if (!loaded)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "the experiment does not parse");
	int rv = rewrite(&doc, selector, count, err);
	if (rv != CEP_OK) {
		yaml_document_delete(&doc);
		return rv;
	}
	yaml_emitter_t em;
	char *buf = NULL;
	size_t blen = 0;
	FILE *f = open_memstream(&buf, &blen);
	if (f == NULL || !yaml_emitter_initialize(&em)) {
		if (f != NULL)
			fclose(f);
		free(buf);
		yaml_document_delete(&doc);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	}
	yaml_emitter_set_output_file(&em, f);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, 1 << 20);
	/* dump takes the document (deleted, even on failure) */
	bool ok = yaml_emitter_open(&em) != 0;
	if (ok)
		ok = yaml_emitter_dump(&em, &doc) && yaml_emitter_close(&em) &&
		    yaml_emitter_flush(&em);
	else
		yaml_document_delete(&doc);
	yaml_emitter_delete(&em);
	ok = fclose(f) == 0 && ok;
	if (!ok || buf == NULL || blen > CEP_YAML_MAX_BYTES) {
		free(buf);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "cannot write the child's experiment");
	}
	*out = buf;
	return CEP_OK;
}
