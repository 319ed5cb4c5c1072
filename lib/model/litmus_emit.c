/*
 * litmus_emit.c - the native experiment built from a ChaosEngine, written
 * as cep YAML with libyaml's emitter (the same library that reads it):
 * what `cepctl convert` prints and what cep_exp_parse then validates.
 */
#define _GNU_SOURCE
#include "litmus_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static bool styled(yaml_emitter_t *em, const char *s, yaml_scalar_style_t st)
{
	yaml_event_t ev;
	return yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s,
	           (int)strlen(s), 1, 1, st) &&
	    yaml_emitter_emit(em, &ev);
}

static bool scalar(yaml_emitter_t *em, const char *s)
{
	return styled(em, s, YAML_ANY_SCALAR_STYLE);
}

/* A string value that plain YAML would read as something else (null, a
 * boolean, a number) is quoted; ints, durations and bools stay plain, as
 * the experiment format wants them. */
static bool string_value(yaml_emitter_t *em, const char *s)
{
	static const char *const words[] = {"", "~", "null", "Null", "NULL",
	    "true", "True", "TRUE", "false", "False", "FALSE", NULL};
	bool special = cep_yamlget_in_list(s, words) ||
	    strchr("0123456789-+.", s[0]) != NULL;
	return styled(em, s,
	    special ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
}

static enum cep_param_kind kind_in(const cep_exp_param_spec *ps,
    const char *key)
{
	for (; ps != NULL && ps->key != NULL; ps++)
		if (strcmp(ps->key, key) == 0)
			return ps->kind;
	return CEP_PARAM_INT; /* not a string: written plain */
}

static enum cep_param_kind kind_of(const struct lit_item *it, const char *key,
    bool probe)
{
	const cep_exp_type_spec *ts = probe ? cep_exp_probe_spec(it->type) :
	                                      cep_exp_fault_spec(it->type);
	enum cep_param_kind k = kind_in(ts ? ts->params : NULL, key);
	if (probe && k == CEP_PARAM_INT)
		k = kind_in(cep_exp_probe_common(), key);
	return k;
}

static bool kv(yaml_emitter_t *em, const char *k, const char *v)
{
	return scalar(em, k) && scalar(em, v);
}

static bool start(yaml_emitter_t *em, bool map)
{
	yaml_event_t ev;
	int ok = map ? yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
	                   YAML_BLOCK_MAPPING_STYLE) :
	               yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
	                   YAML_BLOCK_SEQUENCE_STYLE);
	return ok && yaml_emitter_emit(em, &ev);
}

static bool end(yaml_emitter_t *em, bool map)
{
	yaml_event_t ev;
	int ok = map ? yaml_mapping_end_event_initialize(&ev) :
	               yaml_sequence_end_event_initialize(&ev);
	return ok && yaml_emitter_emit(em, &ev);
}

static bool item(yaml_emitter_t *em, const struct lit_item *it, bool probe)
{
	bool ok = start(em, true) && kv(em, "name", it->name) &&
	    kv(em, "type", it->type);
	for (size_t i = 0; ok && i < it->np; i++) {
		const struct lit_param *p = &it->p[i];
		bool str = kind_of(it, p->key, probe) == CEP_PARAM_STRING;
		if (p->n == 0) {
			ok = scalar(em, p->key) &&
			    (str ? string_value(em, p->val) :
			           scalar(em, p->val));
			continue;
		}
		ok = scalar(em, p->key) && start(em, false);
		for (size_t j = 0; ok && j < p->n; j++)
			ok = string_value(em, p->items[j]);
		ok = ok && end(em, false);
	}
	return ok && end(em, true);
}

static bool items(yaml_emitter_t *em, const char *key,
    const struct lit_item *its, size_t n)
{
	if (n == 0)
		return true;
	bool ok = scalar(em, key) && start(em, false);
	for (size_t i = 0; ok && i < n; i++)
		ok = item(em, &its[i], strcmp(key, "probes") == 0);
	return ok && end(em, false);
}

static bool document(yaml_emitter_t *em, const struct lit_native *nat)
{
	yaml_event_t ev;
	bool ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
	    yaml_emitter_emit(em, &ev) &&
	    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
	    yaml_emitter_emit(em, &ev);
	ok = ok && start(em, true) && kv(em, "apiVersion", "cep.io/v1") &&
	    kv(em, "kind", "Experiment") && scalar(em, "metadata") &&
	    start(em, true) && kv(em, "name", nat->name) && end(em, true);
	ok = ok && scalar(em, "spec") && start(em, true) &&
	    scalar(em, "target") && start(em, true) &&
	    kv(em, "kind", "kubernetes") &&
	    kv(em, "connector", nat->connector) &&
	    kv(em, "namespace", nat->ns) && end(em, true) &&
	    kv(em, "duration", nat->duration) &&
	    items(em, "faults", nat->faults, nat->nfaults) &&
	    items(em, "probes", nat->probes, nat->nprobes) && end(em, true) &&
	    end(em, true);
	return ok && yaml_document_end_event_initialize(&ev, 1) &&
	    yaml_emitter_emit(em, &ev) &&
	    yaml_stream_end_event_initialize(&ev) &&
	    yaml_emitter_emit(em, &ev) && yaml_emitter_flush(em);
}

/* libyaml writes into a memory stream: the text is small (a few items)
 * and still held to the size of any experiment. */
int cep_litmus_emit(const struct lit_native *nat, char **out, cep_err *err)
{
	yaml_emitter_t em;
	char *buf = NULL;
	size_t len = 0;
	*out = NULL;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL || !yaml_emitter_initialize(&em)) {
		if (f != NULL)
			fclose(f);
		free(buf);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory while writing the experiment");
	}
	yaml_emitter_set_output_file(&em, f);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, 1 << 20); /* no folded long values */
	bool ok = document(&em, nat);
	yaml_emitter_delete(&em);
	ok = fclose(f) == 0 && ok;
	if (!ok || buf == NULL || len > CEP_YAML_MAX_BYTES) {
		free(buf);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "cannot write the converted experiment (out of memory, or "
		    "over 1 MiB)");
	}
	*out = buf;
	return CEP_OK;
}
