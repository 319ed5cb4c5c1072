/*
 * litmus_int.h - what the ChaosEngine reader's files share: the native
 * experiment being built (litmus.c fills it, litmus_probe.c adds probes,
 * litmus_emit.c writes it as cep YAML). Not for other modules: they use
 * litmus.h.
 */
#ifndef CEP_LITMUS_INT_H
#define CEP_LITMUS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "exp_int.h"
#include "litmus.h"

#define LIT_MAX_PARAMS 16
#define LIT_MAX_ITEMS 8
#define LIT_MAX_LIST 64

/* One native parameter: a scalar (plain YAML: ints, durations, bools,
 * names) or a list of strings. */
struct lit_param {
	const char *key; /* a static schema key */
	char val[1024];
	size_t n; /* list items; 0 = scalar */
	char *items[LIT_MAX_LIST];
};

/* One native fault or probe. */
struct lit_item {
	char name[64];
	char type[32];
	size_t np;
	struct lit_param p[LIT_MAX_PARAMS];
};

/* The native experiment. */
struct lit_native {
	char name[64], connector[64], ns[64], duration[32];
	size_t nfaults, nprobes;
	struct lit_item faults[LIT_MAX_ITEMS];
	struct lit_item probes[LIT_MAX_ITEMS * 4];
};

/* The reading in progress: messages go through the experiment
 * validator's diagnostics, positioned in the ChaosEngine file. */
struct lit_ctx {
	struct vctx *v;
	struct lit_native *nat;
	const cep_yaml_node *appinfo;
	const char *appns, *applabel;
	bool health_default; /* spec.defaultHealthCheck, default true */
	bool failed_alloc;
};

/* Every key of map is in mapped or accepted (NULL: none), else refused
 * by name at path. */
void cep_litmus_keys(struct lit_ctx *c, const cep_yaml_node *map,
    const char *path, const char *const *mapped, const char *const *accepted);

/* One experiment of spec.experiments (litmus_exp.c). */
void cep_litmus_experiment(struct lit_ctx *c, const cep_yaml_node *exp,
    const char *path);

/* Adds a scalar parameter (printf) or a list item to an item. */
void cep_litmus_set(struct lit_ctx *c, struct lit_item *it, const char *key,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void cep_litmus_add_item(struct lit_ctx *c, struct lit_item *it,
    const char *key, const char *item);
/* A new native item (NULL when the list is full, with a message at n). */
struct lit_item *cep_litmus_new_fault(struct lit_ctx *c, const cep_yaml_node *n,
    const char *name, const char *type);
struct lit_item *cep_litmus_new_probe(struct lit_ctx *c, const cep_yaml_node *n,
    const char *name, const char *type);

/* The experiment's probes (spec.experiments[i].spec.probe). */
void cep_litmus_probes(struct lit_ctx *c, const cep_yaml_node *list,
    const char *path);

/* A non-negative whole number (Litmus writes '30' or 30). */
bool cep_litmus_uint(const char *s, long long max, long long *out);
/* Seconds (30) or a duration ("30s") -> a cep duration text. */
bool cep_litmus_seconds(const char *s, char *buf, size_t len);

/* Values (litmus_val.c): a tc rate ("1mbit", "100kbps") in kilobits per
 * second; a tc size ("32kb", "1mb") in KiB; TARGET_HOSTNAMES (a JSON
 * list in a string) into the names of it, messages at n. */
bool cep_litmus_tc_rate(const char *s, long long *kbps);
bool cep_litmus_tc_size(const char *s, long long *kib);
void cep_litmus_hostnames(struct lit_ctx *c, const cep_yaml_node *n,
    const char *s, struct lit_item *it);
/* Litmus's default application health check as a k8s probe
 * (litmus_probe.c): the target pods Running before and after chaos. */
void cep_litmus_health_probe(struct lit_ctx *c, const struct lit_item *fault);

/* Writes the native experiment as cep YAML (malloc'd, NUL-terminated). */
int cep_litmus_emit(const struct lit_native *nat, char **out, cep_err *err);
void cep_litmus_native_free(struct lit_native *nat);

#endif
