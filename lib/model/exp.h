/*
 * exp.h - the experiment model: YAML (docs/experiments.md) in, a validated
 * read-only experiment out.
 *
 * Faults and probes are described by a schema table (exp_schema.c): each
 * type lists its parameters, their kinds (string, int, duration, percent,
 * list, string map), bounds and defaults. Validation is done once, here,
 * with positions; runners and the delegate then read parameters by name
 * and can rely on presence, kind and bounds. Adding a fault type = adding a
 * schema entry and a runner backend.
 */
#ifndef CEP_EXP_H
#define CEP_EXP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct cep_exp cep_exp;
typedef struct cep_exp_item cep_exp_item; /* one fault or one probe */

/* All problems found, not only the first: validate shows each with
 * file:line:col. */
typedef struct cep_exp_diags {
	size_t n;
	char msgs[32][CEP_ERR_MSG_MAX];
	size_t dropped; /* more than 32 */
} cep_exp_diags;

/* Parses and validates. On failure returns INVALID_ARGUMENT, err holds the
 * first problem and diags (if not NULL) all of them. */
int cep_exp_parse(const char *yaml, size_t len, const char *fname,
    cep_exp **out, cep_exp_diags *diags, cep_err *err);
void cep_exp_free(cep_exp *e);

const char *cep_exp_name(const cep_exp *e);        /* metadata.name */
const char *cep_exp_source(const cep_exp *e);      /* the YAML text */
const char *cep_exp_target_kind(const cep_exp *e); /* "host", "kubernetes" */
const char *cep_exp_connector(const cep_exp *e);   /* "local" for host */
const char *cep_exp_namespace(const cep_exp *e);   /* "" for host */
int64_t cep_exp_duration_ms(const cep_exp *e);     /* chaos duration */
int64_t cep_exp_deadman_ms(const cep_exp *e);      /* default 10s */

size_t cep_exp_nfaults(const cep_exp *e);
const cep_exp_item *cep_exp_fault(const cep_exp *e, size_t i);
size_t cep_exp_nprobes(const cep_exp *e);
const cep_exp_item *cep_exp_probe(const cep_exp *e, size_t i);

const char *cep_exp_item_name(const cep_exp_item *it);
const char *cep_exp_item_type(const cep_exp_item *it);
int cep_exp_item_line(const cep_exp_item *it);

/* Parameters, after validation and defaults. Names are the YAML keys
 * ("interval", "expectStatus"). Durations are ms, percents 0..100. */
bool cep_exp_has(const cep_exp_item *it, const char *key);
const char *cep_exp_str(const cep_exp_item *it, const char *key); /* or NULL */
int64_t cep_exp_int(const cep_exp_item *it, const char *key);     /* or 0 */
double cep_exp_num(const cep_exp_item *it, const char *key);      /* or 0 */
bool cep_exp_bool(const cep_exp_item *it, const char *key);
size_t cep_exp_list_len(const cep_exp_item *it, const char *key);
const char *cep_exp_list_at(const cep_exp_item *it, const char *key, size_t i);
/* string maps (labels): i-th key and value */
const char *cep_exp_map_key(const cep_exp_item *it, const char *key, size_t i);
const char *cep_exp_map_val(const cep_exp_item *it, const char *key, size_t i);

/* A node hog's nodeSelector (equality labels "key=value[,key=value...]",
 * what a Pod's spec.nodeSelector can say): is it well formed; next:
 * reads one pair from s into key and value, answers where the next pair
 * starts ("" at the end), NULL when the pair is malformed or too long. */
bool cep_exp_node_labels_ok(const char *s);
const char *cep_exp_node_label_next(const char *s, char *key, size_t klen,
    char *val, size_t vlen);

/* Probe modes. */
enum cep_probe_mode {
	CEP_PROBE_SOT,        /* start-of-test */
	CEP_PROBE_EOT,        /* end-of-test */
	CEP_PROBE_EDGE,       /* before and after chaos */
	CEP_PROBE_CONTINUOUS, /* whole run */
	CEP_PROBE_ONCHAOS,    /* while faults are active */
};
enum cep_probe_mode cep_exp_probe_mode(const cep_exp_item *probe);
const char *cep_exp_probe_mode_name(enum cep_probe_mode m);

/* Known types, for docs and `cepctl validate`. NULL-terminated. */
const char *const *cep_exp_fault_types(void);
const char *const *cep_exp_probe_types(void);

/* metadata.labels: i-th key and value (i < cep_exp_nlabels). */
size_t cep_exp_nlabels(const cep_exp *e);
const char *cep_exp_label_key(const cep_exp *e, size_t i);
const char *cep_exp_label_val(const cep_exp *e, size_t i);

/*
 * The schema (exp_schema.c). Public so that docs and `cepctl validate` can
 * list what a type takes; exp.c is its only interpreter.
 */
enum cep_param_kind {
	CEP_PARAM_STRING,
	CEP_PARAM_INT,
	CEP_PARAM_DURATION, /* "250ms", "2s", "1m30s" -> ms */
	CEP_PARAM_PERCENT,  /* 30 or "30%" -> 30 */
	CEP_PARAM_NUMBER,   /* integer or decimal -> double */
	CEP_PARAM_BOOL,
	CEP_PARAM_STRLIST,
	CEP_PARAM_STRMAP,
};

/* Extra checks on a string's shape. */
enum cep_param_format {
	CEP_FMT_ANY,
	CEP_FMT_HTTP_URL, /* http:// or https:// and a host */
	CEP_FMT_CGROUP,   /* /sys/fs/cgroup/... or relative to it, no ".." */
	CEP_FMT_NAME,     /* [a-z0-9]([-a-z0-9]*[a-z0-9])?, <= 63 */
	CEP_FMT_SUBDOMAIN, /* DNS subdomain: [a-z0-9]([-.a-z0-9]*[a-z0-9])?, <= 253 */
};

#define CEP_PARAM_REQUIRED 0x01u
/* Default = the experiment's duration; a value must not exceed it. */
#define CEP_PARAM_RUN_DURATION 0x02u
/* NUMBER: min is exclusive (weight > 0). */
#define CEP_PARAM_MIN_EXCLUSIVE 0x04u

typedef struct cep_exp_param_spec {
	const char *key; /* YAML key */
	enum cep_param_kind kind;
	unsigned flags;  /* CEP_PARAM_* */
	const char *def; /* default as YAML text, NULL = none */
	/* INT/PERCENT/NUMBER: value bounds; DURATION: ms; STRING: length
	 * in bytes; STRLIST/STRMAP: items. max 0 = the built-in cap. */
	int64_t min, max;
	const char *const *allowed; /* STRING: the values allowed, or NULL */
	enum cep_param_format format;
	/* Only allowed when another key has a value (body: method POST). */
	const char *when_key, *when_val;
	const char *doc; /* one line, for docs and validate */
} cep_exp_param_spec;

typedef struct cep_exp_type_spec {
	const char *type; /* "process-kill" */
	const char *doc;
	const cep_exp_param_spec *params; /* ends with key == NULL */
	/* Exactly one of these keys must be given (NULL-terminated), or NULL. */
	const char *const *one_of;
	/* The only spec.target.kind the type works on ("host",
	 * "kubernetes"), or NULL for any. */
	const char *target;
	/* Node-level fault (network, stress, disk): on a host target it acts
	 * on pid/netns/cgroup; on a kubernetes target it must name a pod
	 * (`pod`, optional `container`) and may not name host resources. */
	bool pod_target;
} cep_exp_type_spec;

/* Types by name; NULL if unknown. Probe types share the probe-common
 * parameters (cep_exp_probe_common) in addition to their own. */
const cep_exp_type_spec *cep_exp_fault_spec(const char *type);

/* exp_split.c: a child's experiment when the share of selector is split
 * across nodes: e's text (for a ChaosEngine, the native experiment it
 * converts to) with every fault a node-level one (pod_target) on
 * selector, each now taking `count` pods (percentage dropped), or
 * FAILED_PRECONDITION naming the first fault that is not; *out malloc'd. */
int cep_exp_split_spec(const cep_exp *e, const char *selector, uint32_t count,
    char **out, cep_err *err);
const cep_exp_type_spec *cep_exp_probe_spec(const char *type);
const cep_exp_param_spec *cep_exp_probe_common(void);

#endif
