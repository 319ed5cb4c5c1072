/*
 * exp_param.c - how the schema's parameter kinds are read: text to value,
 * bounds, allowed values and shapes (URL, cgroup path), lists and string
 * maps - and the diagnostics every check reports through ("file:line:col:
 * path: what was wrong, expected what"). The experiment's frame and the
 * item rules are in exp.c; the table itself in exp_schema.c.
 */
#define _GNU_SOURCE
#include "exp_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

#define LIST_CAP CEP_EXPV_LIST_CAP
#define STRING_CAP CEP_EXPV_STRING_CAP

/* ---- messages ---- */

int cep_exp_val_load(const char *yaml, size_t len, const char *fname,
    cep_yaml_doc **doc, cep_exp_diags *diags, cep_err *err)
{
	if (diags != NULL)
		memset(diags, 0, sizeof(*diags));
	cep_err yerr = {0};
	if (cep_yamldoc_parse(yaml, len, fname, doc, &yerr) == CEP_OK)
		return CEP_OK;
	if (diags != NULL) {
		memcpy(diags->msgs[0], yerr.msg, sizeof(yerr.msg));
		diags->n = 1;
	}
	return cep_err_set(err, yerr.code, "%s", yerr.msg);
}

void cep_exp_val_diag(struct vctx *v, const cep_yaml_node *n, const char *path,
    const char *fmt, ...)
{
	char what[CEP_ERR_MSG_MAX - 64], msg[CEP_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	const char *sep = path[0] != '\0' ? ": " : "";
	/* long file names or paths may cut the tail of a message: fine */
	int w = snprintf(msg, sizeof(msg), "%.128s:%d:%d: %.160s%s",
	    cep_yamldoc_fname(v->doc), cep_yamldoc_line(n), cep_yamldoc_col(n),
	    path, sep);
	if (w < 0)
		w = 0;
	size_t off = (size_t)w < sizeof(msg) ? (size_t)w : sizeof(msg) - 1;
	size_t wl = strnlen(what, sizeof(msg) - 1 - off);
	memcpy(msg + off, what, wl);
	msg[off + wl] = '\0';
	int64_t pos = (int64_t)cep_yamldoc_line(n) << 20 | cep_yamldoc_col(n);
	if (v->nerr++ == 0 || pos < v->err_pos) {
		cep_err_set(v->err, CEP_INVALID_ARGUMENT, "%s", msg);
		v->err_pos = pos;
	}
	if (v->diags == NULL)
		return;
	if (v->diags->n < sizeof(v->pos) / sizeof(v->pos[0])) {
		v->pos[v->diags->n] = pos;
		memcpy(v->diags->msgs[v->diags->n++], msg, sizeof(msg));
	} else {
		v->diags->dropped++;
	}
}

/* Stable insertion sort of the kept messages by position. */
void cep_exp_val_sort_diags(struct vctx *v)
{
	char tmp[CEP_ERR_MSG_MAX];
	for (size_t i = 1; v->diags != NULL && i < v->diags->n; i++) {
		int64_t p = v->pos[i];
		size_t j = i;
		memcpy(tmp, v->diags->msgs[i], sizeof(tmp));
		for (; j > 0 && v->pos[j - 1] > p; j--) {
			v->pos[j] = v->pos[j - 1];
			memcpy(v->diags->msgs[j], v->diags->msgs[j - 1],
			    sizeof(tmp));
		}
		v->pos[j] = p;
		memcpy(v->diags->msgs[j], tmp, sizeof(tmp));
	}
}

/* User text in a message: bounded, one line, printable. */
const char *cep_exp_val_shown(const char *s, char *buf, size_t len)
{
	size_t i = 0;
	for (; s[i] != '\0' && i + 4 < len; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (s[i] != '\0' && len >= 4)
		memcpy(&buf[i - (i >= 3 ? 3 : i)], "...", 3);
	buf[i] = '\0';
	return buf;
}

const char *cep_exp_val_kind_word(const cep_yaml_node *n)
{
	switch (cep_yamldoc_kind(n)) {
	case CEP_YAML_MAP: return "a mapping";
	case CEP_YAML_SEQ: return "a list";
	case CEP_YAML_NULL: return "nothing";
	default: return "a scalar";
	}
}

/* ---- small checks ---- */

bool cep_exp_val_valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		        c == '-'))
			return false;
	}
	return true;
}

/* Kubernetes object names (pods): DNS subdomains, RFC 1123. */
static bool valid_subdomain(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253 ||
	    strspn(s,
	        "abcdefghijklmnopqrstuvwxyz"
	        "0123456789-.") != n)
		return false;
	for (const char *l = s; *l != '\0';) {
		size_t k = strcspn(l, ".");
		if (k == 0 || k > 63 || l[0] == '-' || l[k - 1] == '-')
			return false;
		l += k;
		if (*l == '.' && *++l == '\0')
			return false;
	}
	return true;
}

/* A label's name or value part: [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?,
 * at most 63 (a value may be empty). */
static bool label_part(const char *s, size_t n, bool empty_ok)
{
	if (n == 0)
		return empty_ok;
	if (n > 63 || !isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

const char *cep_exp_node_label_next(const char *s, char *key, size_t klen,
    char *val, size_t vlen)
{
	if (s == NULL || *s == '\0')
		return NULL;
	size_t n = strcspn(s, ",");
	const char *eq = memchr(s, '=', n);
	if (eq == NULL)
		return NULL;
	size_t kn = (size_t)(eq - s), vn = n - kn - 1;
	const char *slash = memchr(s, '/', kn);
	const char *name = slash ? slash + 1 : s;
	size_t nn = kn - (size_t)(name - s);
	char prefix[254];
	if (slash != NULL) {
		size_t pn = (size_t)(slash - s);
		if (pn == 0 || pn >= sizeof(prefix))
			return NULL;
		memcpy(prefix, s, pn);
		prefix[pn] = '\0';
		if (!valid_subdomain(prefix))
			return NULL;
	}
	if (!label_part(name, nn, false) || !label_part(eq + 1, vn, true) ||
	    memchr(eq + 1, '=', vn) != NULL || kn >= klen || vn >= vlen)
		return NULL;
	memcpy(key, s, kn);
	key[kn] = '\0';
	memcpy(val, eq + 1, vn);
	val[vn] = '\0';
	s += n;
	return *s == ',' && *++s == '\0' ? NULL : s;
}

bool cep_exp_node_labels_ok(const char *s)
{
	char k[320], v[64];
	size_t n = s != NULL ? strlen(s) : 0;
	if (n == 0 || s[n - 1] == ',')
		return false;
	while (*s != '\0') {
		s = cep_exp_node_label_next(s, k, sizeof(k), v, sizeof(v));
		if (s == NULL)
			return false;
	}
	return true;
}

/* A scalar string, or a message and NULL. */
const char *cep_exp_val_want_string(struct vctx *v, const cep_yaml_node *n,
    const char *path, const char *expected)
{
	const char *s = cep_yamldoc_scalar(n);
	if (s == NULL)
		cep_exp_val_diag(v, n, path, "got %s, expected %s",
		    cep_exp_val_kind_word(n), expected);
	return s;
}

static bool parse_i64(const char *s, int64_t *out)
{
	if (s[0] == '\0' || s[0] == ' ')
		return false;
	char *end = NULL;
	errno = 0;
	long long x = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return false;
	*out = x;
	return true;
}

static bool parse_duration(const char *s, int64_t *out)
{
	if (strcmp(s, "0") == 0) {
		*out = 0;
		return true;
	}
	return cep_clock_parse_duration_ms(s, out);
}

/* "1m" rather than "1m0s"; "8784h0m0s" as no upper bound at all. */
void cep_exp_val_short_duration(int64_t ms, char *buf, size_t len)
{
	cep_clock_format_duration(ms, buf, len);
	size_t n = strlen(buf);
	if (n > 2 && strcmp(buf + n - 2, "0s") == 0 && buf[n - 3] == 'm')
		buf[n -= 2] = '\0';
	if (n > 2 && strcmp(buf + n - 2, "0m") == 0 && buf[n - 3] == 'h')
		buf[n -= 2] = '\0';
}

void cep_exp_val_duration_range(int64_t min, int64_t max, char *buf, size_t len)
{
	char lo[32], hi[32];
	cep_exp_val_short_duration(min, lo, sizeof(lo));
	cep_exp_val_short_duration(max, hi, sizeof(hi));
	if (max >= CEP_EXPV_DURATION_MAX)
		snprintf(buf, len, "a duration of at least %s such as 30s", lo);
	else
		snprintf(buf, len, "a duration %s..%s such as 30s", lo, hi);
}

/* A duration value with its own bounds: spec.duration, deadman. */
bool cep_exp_val_want_duration(struct vctx *v, const cep_yaml_node *n,
    const char *path, int64_t min, int64_t max, int64_t *out)
{
	char exp[96], b[80];
	cep_exp_val_duration_range(min, max, exp, sizeof(exp));
	const char *s = cep_exp_val_want_string(v, n, path, exp);
	if (s == NULL)
		return false;
	if (!parse_duration(s, out)) {
		cep_exp_val_diag(v, n, path,
		    "\"%s\" is not a duration, expected %s",
		    cep_exp_val_shown(s, b, sizeof(b)), exp);
		return false;
	}
	if (*out < min || *out > max) {
		cep_exp_val_diag(v, n, path, "%s is out of range, expected %s",
		    cep_exp_val_shown(s, b, sizeof(b)), exp);
		return false;
	}
	return true;
}

/* ---- parameters (the schema's kinds) ---- */

static int64_t cap_of(const cep_exp_param_spec *ps)
{
	if (ps->max > 0)
		return ps->max;
	return ps->kind == CEP_PARAM_STRING ? STRING_CAP : LIST_CAP;
}

/* "an integer 1..256", "a duration 100ms..24h", ... for messages. */
void cep_exp_val_describe(const cep_exp_param_spec *ps, char *buf, size_t len)
{
	char list[256];
	switch (ps->kind) {
	case CEP_PARAM_INT:
		snprintf(buf, len, "an integer %lld..%lld", (long long)ps->min,
		    (long long)ps->max);
		return;
	case CEP_PARAM_DURATION:
		cep_exp_val_duration_range(ps->min, ps->max, buf, len);
		return;
	case CEP_PARAM_PERCENT:
		snprintf(buf, len,
		    "a percentage %lld..%lld such as 30 or \"30%%\"",
		    (long long)ps->min, (long long)ps->max);
		return;
	case CEP_PARAM_NUMBER:
		snprintf(buf, len, "a number %s %lld and <= %lld",
		    (ps->flags & CEP_PARAM_MIN_EXCLUSIVE) ? ">" : ">=",
		    (long long)ps->min, (long long)ps->max);
		return;
	case CEP_PARAM_BOOL: snprintf(buf, len, "true or false"); return;
	case CEP_PARAM_STRLIST:
		snprintf(buf, len, "a list of %lld..%lld non-empty strings",
		    (long long)(ps->min > 0 ? ps->min : 0),
		    (long long)cap_of(ps));
		return;
	case CEP_PARAM_STRMAP:
		snprintf(buf, len, "a mapping of strings to strings");
		return;
	case CEP_PARAM_STRING: break;
	}
	if (ps->allowed != NULL) {
		cep_yamlget_join(list, sizeof(list), ps->allowed);
		snprintf(buf, len, "one of: %s", list);
	} else if (ps->format == CEP_FMT_HTTP_URL) {
		snprintf(buf, len, "an http:// or https:// URL");
	} else if (ps->format == CEP_FMT_CGROUP) {
		snprintf(buf, len,
		    "a cgroup path such as /sys/fs/cgroup/system.slice"
		    "/nginx.service or system.slice/nginx.service");
	} else if (ps->format == CEP_FMT_SUBDOMAIN) {
		snprintf(buf, len,
		    "a Kubernetes object name (lower-case "
		    "letters, digits, '-' and '.', at most 253)");
	} else if (ps->format == CEP_FMT_NAME) {
		snprintf(buf, len,
		    "a DNS label (lower-case letters, digits "
		    "and '-', at most 63)");
	} else {
		snprintf(buf, len, "a string of %lld..%lld bytes",
		    (long long)ps->min, (long long)cap_of(ps));
	}
}

static bool valid_url(const char *s)
{
	const char *rest = NULL;
	if (strncmp(s, "http://", 7) == 0)
		rest = s + 7;
	else if (strncmp(s, "https://", 8) == 0)
		rest = s + 8;
	if (rest == NULL || rest[0] == '\0' || rest[0] == '/')
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return false;
	}
	return true;
}

/* cgroup v2 paths: below /sys/fs/cgroup, never out of it. */
static bool valid_cgroup(const char *s)
{
	static const char root[] = "/sys/fs/cgroup";
	if (s[0] == '/') {
		size_t rl = sizeof(root) - 1;
		if (strncmp(s, root, rl) != 0 ||
		    (s[rl] != '\0' && s[rl] != '/'))
			return false;
	}
	for (const char *p = s; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
		bool start = p == s || p[-1] == '/';
		if (start && p[0] == '.' && p[1] == '.' &&
		    (p[2] == '/' || p[2] == '\0'))
			return false;
	}
	return true;
}

/* Scalar text -> value; false if the text is not of the kind. */
bool cep_exp_val_convert(const cep_exp_param_spec *ps, const char *s,
    bool quoted, struct pval *pv)
{
	char tmp[32];
	size_t n = strlen(s);
	char *end = NULL;
	switch (ps->kind) {
	case CEP_PARAM_INT: return !quoted && parse_i64(s, &pv->i);
	case CEP_PARAM_DURATION: return parse_duration(s, &pv->i);
	case CEP_PARAM_PERCENT:
		if (n == 0 || n >= sizeof(tmp))
			return false;
		memcpy(tmp, s, n + 1);
		if (tmp[n - 1] == '%')
			tmp[n - 1] = '\0';
		return parse_i64(tmp, &pv->i);
	case CEP_PARAM_NUMBER:
		if (quoted || n == 0)
			return false;
		errno = 0;
		pv->d = strtod(s, &end);
		return errno == 0 && *end == '\0' && isfinite(pv->d);
	case CEP_PARAM_BOOL:
		pv->b = strcmp(s, "true") == 0 || strcmp(s, "True") == 0 ||
		    strcmp(s, "TRUE") == 0;
		return !quoted &&
		    (pv->b || strcmp(s, "false") == 0 ||
		        strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0);
	default: return (pv->s = strdup(s)) != NULL;
	}
}

/* Bounds, allowed values and shape of a converted value. */
static bool in_bounds(const cep_exp_param_spec *ps, const struct pval *pv)
{
	size_t n;
	switch (ps->kind) {
	case CEP_PARAM_INT:
	case CEP_PARAM_DURATION:
	case CEP_PARAM_PERCENT: return pv->i >= ps->min && pv->i <= ps->max;
	case CEP_PARAM_NUMBER:
		if (ps->flags & CEP_PARAM_MIN_EXCLUSIVE)
			return pv->d > (double)ps->min &&
			    pv->d <= (double)ps->max;
		return pv->d >= (double)ps->min && pv->d <= (double)ps->max;
	case CEP_PARAM_STRING:
		n = strlen(pv->s);
		if ((int64_t)n < ps->min || (int64_t)n > cap_of(ps))
			return false;
		if (ps->allowed != NULL &&
		    !cep_yamlget_in_list(pv->s, ps->allowed))
			return false;
		if (ps->format == CEP_FMT_HTTP_URL)
			return valid_url(pv->s);
		if (ps->format == CEP_FMT_CGROUP)
			return valid_cgroup(pv->s);
		if (ps->format == CEP_FMT_NAME)
			return cep_exp_val_valid_name(pv->s);
		if (ps->format == CEP_FMT_SUBDOMAIN)
			return valid_subdomain(pv->s);
		return true;
	default: return true;
	}
}

static const char *kind_noun(enum cep_param_kind k)
{
	switch (k) {
	case CEP_PARAM_INT: return "an integer";
	case CEP_PARAM_DURATION: return "a duration";
	case CEP_PARAM_PERCENT: return "a percentage";
	case CEP_PARAM_NUMBER: return "a number";
	case CEP_PARAM_BOOL: return "a boolean";
	default: return "a string";
	}
}

static bool scalar_param(struct vctx *v, const cep_exp_param_spec *ps,
    const cep_yaml_node *n, const char *path, struct pval *pv)
{
	char exp[320], b[80];
	cep_exp_val_describe(ps, exp, sizeof(exp));
	const char *s = cep_exp_val_want_string(v, n, path, exp);
	if (s == NULL)
		return false;
	if (!cep_exp_val_convert(ps, s, cep_yamldoc_quoted(n), pv)) {
		cep_exp_val_diag(v, n, path, "%s%s%s is not %s, expected %s",
		    cep_yamldoc_quoted(n) ? "\"" : "",
		    cep_exp_val_shown(s, b, sizeof(b)),
		    cep_yamldoc_quoted(n) ? "\"" : "", kind_noun(ps->kind),
		    exp);
		return false;
	}
	if (!in_bounds(ps, pv)) {
		cep_exp_val_shown(s, b, sizeof(b));
		if (ps->kind != CEP_PARAM_STRING)
			cep_exp_val_diag(v, n, path,
			    "%s is out of range, expected %s", b, exp);
		else if (ps->allowed != NULL)
			cep_exp_val_diag(v, n, path,
			    "\"%s\" is not a known value, expected %s", b, exp);
		else if ((int64_t)strlen(s) < ps->min ||
		    (int64_t)strlen(s) > cap_of(ps))
			cep_exp_val_diag(v, n, path,
			    "a string of %zu bytes, expected %s", strlen(s),
			    exp);
		else
			cep_exp_val_diag(v, n, path,
			    "\"%s\" is not valid, expected %s", b, exp);
		return false;
	}
	return true;
}

char **cep_exp_val_strv_new(size_t n)
{
	return calloc(n ? n : 1, sizeof(char *));
}

static bool list_param(struct vctx *v, const cep_exp_param_spec *ps,
    const cep_yaml_node *n, const char *path, struct pval *pv)
{
	char exp[128], p[160];
	cep_exp_val_describe(ps, exp, sizeof(exp));
	size_t len = cep_yamldoc_len(n);
	if (cep_yamldoc_kind(n) != CEP_YAML_SEQ) {
		cep_exp_val_diag(v, n, path, "got %s, expected %s",
		    cep_exp_val_kind_word(n), exp);
		return false;
	}
	if ((int64_t)len < ps->min || (int64_t)len > cap_of(ps)) {
		cep_exp_val_diag(v, n, path,
		    "got a list of %zu items, expected %s", len, exp);
		return false;
	}
	if ((pv->keys = cep_exp_val_strv_new(len)) == NULL)
		return false;
	bool ok = true;
	for (size_t i = 0; i < len; i++) {
		const cep_yaml_node *it = cep_yamldoc_at(n, i);
		snprintf(p, sizeof(p), "%s[%zu]", path, i);
		const char *s = cep_exp_val_want_string(v, it, p,
		    "a non-empty string");
		if (s != NULL && (s[0] == '\0' || strlen(s) > STRING_CAP)) {
			cep_exp_val_diag(v, it, p,
			    "empty or over-long item, expected a "
			    "non-empty string of at most %d bytes",
			    STRING_CAP);
			s = NULL;
		}
		if (s == NULL || (pv->keys[pv->n++] = strdup(s)) == NULL)
			ok = false;
	}
	return ok;
}

bool cep_exp_val_map_param(struct vctx *v, const cep_exp_param_spec *ps,
    const cep_yaml_node *n, const char *path, struct pval *pv)
{
	char p[160];
	size_t len = cep_yamldoc_len(n);
	if (cep_yamldoc_kind(n) != CEP_YAML_MAP || (int64_t)len > cap_of(ps)) {
		cep_exp_val_diag(v, n, path,
		    "got %s%s, expected a mapping of at most %lld "
		    "strings to strings",
		    cep_exp_val_kind_word(n),
		    cep_yamldoc_kind(n) == CEP_YAML_MAP ?
		        " with too many items" :
		        "",
		    (long long)cap_of(ps));
		return false;
	}
	if ((pv->keys = cep_exp_val_strv_new(len)) == NULL ||
	    (pv->vals = cep_exp_val_strv_new(len)) == NULL)
		return false;
	bool ok = true;
	for (size_t i = 0; i < len; i++) {
		const char *k = cep_yamldoc_scalar(cep_yamldoc_key_at(n, i));
		char b[80];
		snprintf(p, sizeof(p), "%s.%s", path,
		    cep_exp_val_shown(k, b, sizeof(b)));
		const char *s = cep_exp_val_want_string(v,
		    cep_yamldoc_value_at(n, i), p, "a string");
		if (s == NULL || strlen(s) > STRING_CAP) {
			ok = false;
			continue;
		}
		size_t j = pv->n++;
		pv->keys[j] = strdup(k);
		pv->vals[j] = strdup(s);
		if (pv->keys[j] == NULL || pv->vals[j] == NULL)
			ok = false;
	}
	return ok;
}

bool cep_exp_val_read_param(struct vctx *v, const cep_exp_param_spec *ps,
    const cep_yaml_node *n, const char *path, struct pval *pv)
{
	if (ps->kind == CEP_PARAM_STRLIST)
		return list_param(v, ps, n, path, pv);
	if (ps->kind == CEP_PARAM_STRMAP)
		return cep_exp_val_map_param(v, ps, n, path, pv);
	return scalar_param(v, ps, n, path, pv);
}
