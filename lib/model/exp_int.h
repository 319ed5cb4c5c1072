/*
 * exp_int.h - what exp.c (the experiment frame, items, accessors) and
 * exp_param.c (parameter kinds and messages) share. Not for other modules:
 * they read experiments through exp.h.
 */
#ifndef CEP_EXP_INT_H
#define CEP_EXP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exp.h"
#include "yamldoc.h"
#include "yamlget.h"

#define CEP_EXPV_LIST_CAP 256    /* STRLIST/STRMAP items when max is 0 */
#define CEP_EXPV_STRING_CAP 4096 /* string bytes when max is 0 */
/* Upper bound of durations that have no bound of their own. */
#define CEP_EXPV_DURATION_MAX (366LL * 24 * 3600 * 1000)

/* One parameter's value after validation and defaults. */
struct pval {
	const cep_exp_param_spec *ps;
	bool set;
	int64_t i;   /* INT, DURATION (ms), PERCENT */
	double d;    /* NUMBER */
	bool b;      /* BOOL */
	char *s;     /* STRING */
	size_t n;    /* STRLIST items / STRMAP pairs */
	char **keys; /* STRLIST items, STRMAP keys */
	char **vals; /* STRMAP values */
};

struct cep_exp_item {
	char *name, *type;
	int line;
	const cep_exp_type_spec *spec;
	size_t np;
	struct pval *pv;
};

struct cep_exp {
	char *source, *name, *target_kind, *connector, *ns;
	int64_t duration_ms, deadman_ms;
	size_t nlabels;
	char **lkeys, **lvals;
	size_t nfaults, nprobes;
	cep_exp_item *faults, *probes;
};

/* Validation state: where messages go. */
struct vctx {
	const cep_yaml_doc *doc;
	cep_exp_diags *diags;
	cep_err *err;
	size_t nerr;
	int64_t duration_ms; /* spec.duration, 0 until known */
	/* positions (line << 20 | col) of err and of each diag, so that the
	 * report reads top to bottom whatever order the checks ran in */
	int64_t err_pos;
	int64_t pos[sizeof(((cep_exp_diags *)0)->msgs) /
	    sizeof(((cep_exp_diags *)0)->msgs[0])];
};

/* The YAML of an experiment (or a ChaosEngine) into *doc; diags (if not
 * NULL) cleared, and on a syntax error holding it as the one message. */
int cep_exp_val_load(const char *yaml, size_t len, const char *fname,
    cep_yaml_doc **doc, cep_exp_diags *diags, cep_err *err);

/* One problem: "file:line:col: path: what". Keeps the earliest in err. */
void cep_exp_val_diag(struct vctx *v, const cep_yaml_node *n, const char *path,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Orders the kept messages by position. */
void cep_exp_val_sort_diags(struct vctx *v);
/* User text for a message: bounded, printable, one line. */
const char *cep_exp_val_shown(const char *s, char *buf, size_t len);
/* "a mapping", "a list", "a scalar", "nothing" */
const char *cep_exp_val_kind_word(const cep_yaml_node *n);
bool cep_exp_val_valid_name(const char *s);

/* The scalar text of n, or a message ("got a list, expected ...") and NULL. */
const char *cep_exp_val_want_string(struct vctx *v, const cep_yaml_node *n,
    const char *path, const char *expected);
/* "1m" rather than "1m0s" */
void cep_exp_val_short_duration(int64_t ms, char *buf, size_t len);
/* "a duration 100ms..24h such as 30s" */
void cep_exp_val_duration_range(int64_t min, int64_t max, char *buf,
    size_t len);
bool cep_exp_val_want_duration(struct vctx *v, const cep_yaml_node *n,
    const char *path, int64_t min, int64_t max, int64_t *out);

/* Parameters: "an integer 1..256" for messages; text -> value (defaults
 * use this too); a node -> value with messages. */
void cep_exp_val_describe(const cep_exp_param_spec *ps, char *buf, size_t len);
bool cep_exp_val_convert(const cep_exp_param_spec *ps, const char *s,
    bool quoted, struct pval *pv);
bool cep_exp_val_read_param(struct vctx *v, const cep_exp_param_spec *ps,
    const cep_yaml_node *n, const char *path, struct pval *pv);
bool cep_exp_val_map_param(struct vctx *v, const cep_exp_param_spec *ps,
    const cep_yaml_node *n, const char *path, struct pval *pv);
/* A zeroed array of n (at least 1) string pointers. */
char **cep_exp_val_strv_new(size_t n);

#endif
