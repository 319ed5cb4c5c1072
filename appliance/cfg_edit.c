/*
 * cfg_edit.c - cep.yaml as cepctl writes it (cfg_edit.h): the libyaml
 * emission helpers, and `cepctl init`'s settings added to an existing
 * file as text, so the operator's comments and layout survive.
 *
 * Keys are added, and changed only when asked (--replace-config-keys):
 * a section the file lacks is appended as a new block at the end (after
 * the package's commented-out `#controlPlane:` example, the common case);
 * a key a section lacks goes in as a line right below the section's own
 * key, with the indentation of the section's first key; a replaced value
 * is swapped in place on its line. Positions come from lib/yamldoc, so
 * anything unusual (a flow mapping, an empty section, a value over several
 * lines) is refused with its position rather than guessed at, and the
 * result is checked twice before it is written: it must load with the
 * daemons' loader to the wanted values, and its tree must be the old tree
 * plus exactly the added keys, with only the replaced values different.
 */
#define _GNU_SOURCE
#include "cfg_edit.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "yamldoc.h"

/* --- emission through libyaml ------------------------------------------ */
int cepctl_emit(yaml_emitter_t *em, yaml_event_t *ev)
{
	return yaml_emitter_emit(em, ev) ? 0 : -1;
}

int cepctl_emit_scalar(yaml_emitter_t *em, const char *s)
{
	yaml_event_t ev;
	/* "" must stay a string (metrics off), not become a null */
	yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s,
	    (int)strlen(s), 1, 1,
	    s[0] == '\0' ? YAML_DOUBLE_QUOTED_SCALAR_STYLE :
	                   YAML_ANY_SCALAR_STYLE);
	return cepctl_emit(em, &ev);
}

int cepctl_emit_kv(yaml_emitter_t *em, const char *k, const char *v)
{
	return cepctl_emit_scalar(em, k) || cepctl_emit_scalar(em, v);
}

int cepctl_emit_map_start(yaml_emitter_t *em, bool flow)
{
	yaml_event_t ev;
	yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
	    flow ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE);
	return cepctl_emit(em, &ev);
}

int cepctl_emit_map_end(yaml_emitter_t *em)
{
	yaml_event_t ev;
	yaml_mapping_end_event_initialize(&ev);
	return cepctl_emit(em, &ev);
}

/* --- the settings ------------------------------------------------------- */
static const struct setting {
	const char *section; /* NULL: a top-level key */
	const char *key, *flag;
	size_t off; /* its value in cep_config, as loaded */
} settings[CEPCTL_SET_N] = {
    {NULL, "appliance", "--appliance", offsetof(cep_config, appliance)},
    {"relay", "listen", "--relay-listen", offsetof(cep_config, relay_listen)},
    {"relay", "advertise", "--relay-advertise",
        offsetof(cep_config, relay_advertise)},
    {"relay", "metrics", "--relay-metrics",
        offsetof(cep_config, relay_metrics)},
    {"delegate", "metrics", "--delegate-metrics",
        offsetof(cep_config, delegate_metrics)},
    {"controlPlane", "url", "--control-plane", offsetof(cep_config, cp.url)},
    {"controlPlane", "caFile", "--control-plane-ca",
        offsetof(cep_config, cp.ca_file)},
    {"controlPlane", "tokenFile", "--control-plane-token",
        offsetof(cep_config, cp.token_file)},
    {"controlPlane", "proxy", "--control-plane-proxy",
        offsetof(cep_config, cp.proxy)},
};
static const char *const sections[] = {"relay", "delegate", "controlPlane"};
#define N_SECTIONS (sizeof(sections) / sizeof(sections[0]))

struct cepctl_cfg_edit {
	char path[CEP_PATH_MAX + 16];
	char *text; /* the edited file */
	size_t len;
	char added[512], changed[512];
};

/* What a plan works on: the old file, parsed and loaded. */
struct plan {
	const cep_paths *p;
	const char *path, *text;
	size_t len;
	cep_yaml_doc *doc;
	cep_config old;
	const char *const *want;
	bool replace; /* --replace-config-keys */
	bool add[CEPCTL_SET_N], repl[CEPCTL_SET_N];
	size_t rs[CEPCTL_SET_N], re[CEPCTL_SET_N]; /* the replaced bytes */
	size_t n_add, n_repl, n_new_sections;
	cep_err *err;
};

static const char *loaded(const cep_config *c, int i)
{
	return (const char *)c + settings[i].off;
}

static bool same_section(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The value of key in map (NULL if absent), *k its key node. */
static const cep_yaml_node *find_pair(const cep_yaml_node *map, const char *key,
    const cep_yaml_node **k)
{
	*k = NULL;
	if (cep_yamldoc_kind(map) != CEP_YAML_MAP)
		return NULL;
	for (size_t i = 0; i < cep_yamldoc_len(map); i++) {
		const char *s = cep_yamldoc_scalar(cep_yamldoc_key_at(map, i));
		if (s != NULL && strcmp(s, key) == 0) {
			*k = cep_yamldoc_key_at(map, i);
			return cep_yamldoc_value_at(map, i);
		}
	}
	return NULL;
}

/* The section's map, NULL if the file has no such section. */
static const cep_yaml_node *section_map(const struct plan *pl,
    const char *section, const cep_yaml_node **sk)
{
	const cep_yaml_node *root = cep_yamldoc_root(pl->doc);
	if (section == NULL) {
		*sk = NULL;
		return root;
	}
	return find_pair(root, section, sk);
}

/* Byte offset of the start of 1-based line n (len if past the end). */
static size_t line_start(const char *t, size_t len, int n)
{
	size_t off = 0;
	for (int l = 1; l < n && off < len; off++)
		if (t[off] == '\n')
			l++;
	return off;
}

/* End of a quoted scalar that starts at t[off] (a quote), just past its
 * closing quote; 0 if the line le ends first. */
static size_t quoted_end(const char *t, size_t off, size_t le)
{
	char q = t[off];
	for (size_t e = off + 1; e < le; e++) {
		if (q == '"' && t[e] == '\\')
			e++; /* an escape: the next byte is not a quote */
		else if (q == '\'' && t[e] == q && e + 1 < le && t[e + 1] == q)
			e++; /* '' is a quote inside '...' */
		else if (t[e] == q)
			return e + 1;
	}
	return 0;
}

/*
 * The bytes [*s, *e) of v in the old text, for --replace-config-keys: a
 * scalar on its key's line, quoted (to its closing quote) or plain (to a
 * comment or the end of the line, and then exactly its text). Anything
 * else (several lines, a flow mapping) is left to the operator.
 */
static bool value_span(const struct plan *pl, const cep_yaml_node *k,
    const cep_yaml_node *v, size_t *s, size_t *e)
{
	const char *t = pl->text, *text = cep_yamldoc_scalar(v);
	if (text == NULL || cep_yamldoc_line(v) != cep_yamldoc_line(k))
		return false;
	size_t ls = line_start(t, pl->len, cep_yamldoc_line(v)), le = ls;
	while (le < pl->len && t[le] != '\n' && t[le] != '\r')
		le++;
	size_t off = ls + (size_t)cep_yamldoc_col(v) - 1, end = off;
	if (off >= le)
		return false;
	if (t[off] == '\'' || t[off] == '"') {
		end = quoted_end(t, off, le);
	} else {
		while (end < le &&
		    !(end > off && t[end] == '#' &&
		        (t[end - 1] == ' ' || t[end - 1] == '\t')))
			end++;
		while (end > off && (t[end - 1] == ' ' || t[end - 1] == '\t'))
			end--;
		if (end - off != strlen(text) ||
		    memcmp(t + off, text, end - off) != 0)
			end = 0;
	}
	*s = off;
	*e = end;
	return end > off;
}

/* Setting i against the file: to add, already so, or refused. */
static int check_one(struct plan *pl, int i)
{
	const struct setting *s = &settings[i];
	const cep_yaml_node *sk, *k;
	const cep_yaml_node *map = section_map(pl, s->section, &sk);
	if (sk != NULL && cep_yamldoc_kind(map) != CEP_YAML_MAP)
		return cep_yamldoc_error(pl->err, pl->doc, sk,
		    "%s has no keys, "
		    "so cepctl init cannot add %s (%s) to it: add it under "
		    "%s by hand, or delete the empty %s",
		    s->section, s->key, s->flag, s->section, s->section);
	const cep_yaml_node *v = find_pair(map, s->key, &k);
	if (k == NULL) {
		pl->add[i] = true;
		pl->n_add++;
		return CEP_OK;
	}
	if (strcmp(loaded(&pl->old, i), pl->want[i]) == 0)
		return CEP_OK;
	const char *was = cep_yamldoc_scalar(v);
	if (!pl->replace)
		return cep_yamldoc_error(pl->err, pl->doc, k,
		    "%s%s%s is \"%s\" "
		    "here, not \"%s\" as %s asks; cepctl init does not change "
		    "a setting of an existing cep.yaml unless told to: edit "
		    "that line, or run init again with --replace-config-keys",
		    s->section ? s->section : "", s->section ? "." : "", s->key,
		    was ? was : "", pl->want[i], s->flag);
	if (!value_span(pl, k, v, &pl->rs[i], &pl->re[i]))
		return cep_yamldoc_error(pl->err, pl->doc, v,
		    "%s%s%s: not a "
		    "one-line value that --replace-config-keys can replace; "
		    "edit it by hand",
		    s->section ? s->section : "", s->section ? "." : "",
		    s->key);
	pl->repl[i] = true;
	pl->n_repl++;
	return CEP_OK;
}

/* Whether the node is the first thing on its line, after spaces only:
 * a block mapping's key, where a line with its indentation can go. */
static bool starts_line(const struct plan *pl, const cep_yaml_node *n)
{
	size_t off = line_start(pl->text, pl->len, cep_yamldoc_line(n));
	int col = cep_yamldoc_col(n);
	if (col < 1 || off + (size_t)col - 1 > pl->len)
		return false;
	for (int c = 0; c < col - 1; c++)
		if (pl->text[off + (size_t)c] != ' ')
			return false;
	return true;
}

/* Where the keys added to an existing section go: on the line after
 * "section:", with the indentation of its first key; refused for anything
 * but a block mapping. */
static int insert_point(const struct plan *pl, const char *section, int *line,
    int *indent)
{
	const cep_yaml_node *sk;
	const cep_yaml_node *map = section_map(pl, section, &sk);
	const cep_yaml_node *first = cep_yamldoc_key_at(map, 0);
	bool block = first != NULL && starts_line(pl, first) &&
	    (sk == NULL || cep_yamldoc_line(first) > cep_yamldoc_line(sk));
	if (!block)
		return cep_yamldoc_error(pl->err, pl->doc, sk ? sk : map,
		    "%s is not a block mapping (one key a line) that cepctl "
		    "init can add keys to: add them by hand",
		    section ? section : "the file");
	/* right below "section:", before the comment of its first key */
	*line = section != NULL ? cep_yamldoc_line(sk) + 1 : 0;
	*indent = cep_yamldoc_col(first) - 1;
	return CEP_OK;
}

/* --- the added text ------------------------------------------------------ */
static int emit_pairs(yaml_emitter_t *em, const struct plan *pl,
    const char *section)
{
	for (int i = 0; i < CEPCTL_SET_N; i++)
		if (pl->add[i] && same_section(settings[i].section, section) &&
		    cepctl_emit_kv(em, settings[i].key, pl->want[i]))
			return -1;
	return 0;
}

static bool has_adds(const struct plan *pl, const char *section)
{
	for (int i = 0; i < CEPCTL_SET_N; i++)
		if (pl->add[i] && same_section(settings[i].section, section))
			return true;
	return false;
}

static bool section_exists(const struct plan *pl, const char *section)
{
	const cep_yaml_node *sk;
	(void)section_map(pl, section, &sk);
	return sk != NULL;
}

/* A stream of one document, a block mapping: its start and end. */
static int emit_open(yaml_emitter_t *em)
{
	yaml_event_t ev;
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	if (cepctl_emit(em, &ev))
		return -1;
	yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
	return cepctl_emit(em, &ev) || cepctl_emit_map_start(em, false);
}

static int emit_close(yaml_emitter_t *em)
{
	yaml_event_t ev;
	yaml_document_end_event_initialize(&ev, 1);
	if (cepctl_emit_map_end(em) || cepctl_emit(em, &ev))
		return -1;
	yaml_stream_end_event_initialize(&ev);
	return cepctl_emit(em, &ev);
}

static void emitter_to(yaml_emitter_t *em, FILE *mem)
{
	yaml_emitter_initialize(em);
	yaml_emitter_set_output_file(em, mem);
	yaml_emitter_set_width(em, -1); /* no folding of long values */
	yaml_emitter_set_unicode(em, 1);
}

/* The pairs added to an existing section, or (tail) the block appended
 * at the end: added top-level keys, then each new section. */
static int emit_block(yaml_emitter_t *em, const struct plan *pl,
    const char *section, bool tail)
{
	if (emit_open(em) || emit_pairs(em, pl, tail ? NULL : section))
		return -1;
	for (size_t s = 0; tail && s < N_SECTIONS; s++) {
		if (section_exists(pl, sections[s]) ||
		    !has_adds(pl, sections[s]))
			continue;
		if (cepctl_emit_scalar(em, sections[s]) ||
		    cepctl_emit_map_start(em, false) ||
		    emit_pairs(em, pl, sections[s]) || cepctl_emit_map_end(em))
			return -1;
	}
	return emit_close(em);
}

/* v as libyaml writes it after "key: " (quoted if it must be), on one
 * line; NULL if it would not be. */
static char *emit_value(const char *key, const char *v)
{
	char *buf = NULL;
	size_t len = 0, kl = strlen(key);
	FILE *mem = open_memstream(&buf, &len);
	if (mem == NULL)
		return NULL;
	yaml_emitter_t em;
	emitter_to(&em, mem);
	int bad = emit_open(&em) || cepctl_emit_kv(&em, key, v) ||
	    emit_close(&em);
	yaml_emitter_delete(&em);
	fclose(mem);
	if (bad || len < kl + 3 || strncmp(buf, key, kl) != 0 ||
	    buf[kl] != ':' || buf[kl + 1] != ' ' || buf[len - 1] != '\n' ||
	    memchr(buf + kl + 2, '\n', len - kl - 3) != NULL) {
		free(buf);
		return NULL;
	}
	memmove(buf, buf + kl + 2, len - kl - 3);
	buf[len - kl - 3] = '\0';
	return buf;
}

/* The old text with the replaced values, in order of their offsets. */
static int apply_replacements(const struct plan *pl, char **out, size_t *olen)
{
	FILE *f = open_memstream(out, olen);
	if (f == NULL)
		return -1;
	int bad = 0;
	size_t off = 0;
	for (;;) {
		int next = -1;
		for (int i = 0; i < CEPCTL_SET_N; i++)
			if (pl->repl[i] && pl->rs[i] >= off &&
			    (next < 0 || pl->rs[i] < pl->rs[next]))
				next = i;
		if (next < 0 || bad)
			break;
		char *v = emit_value(settings[next].key, pl->want[next]);
		bad = v == NULL;
		fwrite(pl->text + off, 1, pl->rs[next] - off, f);
		fputs(v ? v : "", f);
		free(v);
		off = pl->re[next];
	}
	fwrite(pl->text + off, 1, pl->len - off, f);
	return fclose(f) != 0 || bad ? -1 : 0;
}

/* emit_block's text into out, every line indented by indent spaces. */
static int put_block(const struct plan *pl, const char *section, bool tail,
    int indent, FILE *out)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	if (mem == NULL)
		return -1;
	yaml_emitter_t em;
	emitter_to(&em, mem);
	int bad = emit_block(&em, pl, section, tail);
	yaml_emitter_delete(&em);
	fclose(mem);
	bool bol = true;
	for (size_t i = 0; !bad && i < len; i++) {
		if (bol && buf[i] != '\n')
			fprintf(out, "%*s", indent, "");
		fputc(buf[i], out);
		bol = buf[i] == '\n';
	}
	free(buf);
	return bad;
}

/* Where each existing section's new keys go (line 0: none). */
typedef struct inserts {
	int line[N_SECTIONS], indent[N_SECTIONS];
	int root_indent;
} inserts;

static int plan_inserts(struct plan *pl, inserts *ins)
{
	memset(ins, 0, sizeof(*ins));
	int rv = CEP_OK, line;
	for (size_t s = 0; rv == CEP_OK && s < N_SECTIONS; s++) {
		if (!has_adds(pl, sections[s]))
			continue;
		if (section_exists(pl, sections[s]))
			rv = insert_point(pl, sections[s], &ins->line[s],
			    &ins->indent[s]);
		else
			pl->n_new_sections++;
	}
	bool tail = has_adds(pl, NULL) || pl->n_new_sections > 0;
	if (rv == CEP_OK && tail &&
	    cep_yamldoc_kind(cep_yamldoc_root(pl->doc)) == CEP_YAML_MAP)
		rv = insert_point(pl, NULL, &line, &ins->root_indent);
	return rv;
}

/* text (the old one with any replacements: the same lines) with the
 * insertions and the tail, into a new buffer. */
static int build_text(const struct plan *pl, const char *text, size_t len,
    const inserts *ins, char **out, size_t *olen)
{
	FILE *f = open_memstream(out, olen);
	if (f == NULL)
		return -1;
	int bad = 0, line = 1;
	for (size_t off = 0; !bad && off <= len; line++) {
		for (size_t s = 0; !bad && s < N_SECTIONS; s++)
			if (ins->line[s] == line)
				bad = put_block(pl, sections[s], false,
				    ins->indent[s], f);
		if (off == len)
			break;
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - text) - off + 1 : len - off;
		fwrite(text + off, 1, n, f);
		off += n;
	}
	if (len > 0 && text[len - 1] != '\n')
		fputc('\n', f);
	if (!bad && (has_adds(pl, NULL) || pl->n_new_sections > 0))
		bad = put_block(pl, NULL, true, ins->root_indent, f);
	return fclose(f) != 0 || bad ? -1 : 0;
}

/* --- the checks of the result -------------------------------------------- */
static size_t count_nodes(const cep_yaml_node *n)
{
	size_t c = 1;
	enum cep_yaml_kind k = cep_yamldoc_kind(n);
	for (size_t i = 0; k == CEP_YAML_SEQ && i < cep_yamldoc_len(n); i++)
		c += count_nodes(cep_yamldoc_at(n, i));
	for (size_t i = 0; k == CEP_YAML_MAP && i < cep_yamldoc_len(n); i++)
		c += 1 + count_nodes(cep_yamldoc_value_at(n, i));
	return c;
}

static bool replaced(const struct plan *pl, const char *section,
    const char *key)
{
	for (int i = 0; i < CEPCTL_SET_N; i++)
		if (pl->repl[i] && same_section(settings[i].section, section) &&
		    strcmp(settings[i].key, key) == 0)
			return true;
	return false;
}

/* Whether b holds all of a, unchanged (b may have more map keys), but
 * for the replaced values: a at depth 0 is the root, at 1 a section. */
static bool contains(const struct plan *pl, const cep_yaml_node *a,
    const cep_yaml_node *b, int depth, const char *section)
{
	enum cep_yaml_kind k = cep_yamldoc_kind(a);
	if (k != cep_yamldoc_kind(b))
		return false;
	if (k == CEP_YAML_SCALAR)
		return strcmp(cep_yamldoc_scalar(a), cep_yamldoc_scalar(b)) ==
		    0 &&
		    cep_yamldoc_quoted(a) == cep_yamldoc_quoted(b);
	if (k == CEP_YAML_SEQ && cep_yamldoc_len(a) != cep_yamldoc_len(b))
		return false;
	for (size_t i = 0; k == CEP_YAML_SEQ && i < cep_yamldoc_len(a); i++)
		if (!contains(pl, cep_yamldoc_at(a, i), cep_yamldoc_at(b, i), 2,
		        NULL))
			return false;
	for (size_t i = 0; k == CEP_YAML_MAP && i < cep_yamldoc_len(a); i++) {
		const cep_yaml_node *bk;
		const char *key = cep_yamldoc_scalar(cep_yamldoc_key_at(a, i));
		const cep_yaml_node *bv = find_pair(b, key, &bk);
		if (bk == NULL)
			return false;
		if (depth <= 1 && replaced(pl, section, key))
			continue; /* its new value: checked as loaded */
		if (!contains(pl, cep_yamldoc_value_at(a, i), bv, depth + 1,
		        depth == 0 ? key : NULL))
			return false;
	}
	return true;
}

/* The new text loads (with the daemons' loader) to the wanted values,
 * and its tree is the old one plus exactly the added keys. */
static int verify(const struct plan *pl, const char *text, size_t len)
{
	cep_config nc;
	cep_err *err = pl->err;
	if (cep_config_load_text(pl->p, text, len, pl->path, &nc, err) !=
	    CEP_OK)
		return cep_err_wrap(err,
		    "not written: %s with the added keys "
		    "would not load",
		    pl->path);
	for (int i = 0; i < CEPCTL_SET_N; i++)
		if (pl->want[i] != NULL &&
		    strcmp(loaded(&nc, i), pl->want[i]) != 0)
			return cep_err_set(err, CEP_INTERNAL,
			    "not written: "
			    "%s edited would not set %s as %s asks; set it "
			    "by hand",
			    pl->path, settings[i].key, settings[i].flag);
	cep_yaml_doc *doc = NULL;
	int rv = cep_yamldoc_parse(text, len, pl->path, &doc, err);
	if (rv != CEP_OK)
		return rv;
	const cep_yaml_node *a = cep_yamldoc_root(pl->doc);
	const cep_yaml_node *b = cep_yamldoc_root(doc);
	bool same = (cep_yamldoc_kind(a) == CEP_YAML_NULL ||
	                contains(pl, a, b, 0, NULL)) &&
	    count_nodes(b) ==
	        count_nodes(a) + 2 * (pl->n_add + pl->n_new_sections);
	cep_yamldoc_free(doc);
	return same ?
	    CEP_OK :
	    cep_err_set(err, CEP_INTERNAL,
	        "not written: "
	        "the edit would change more of %s than the keys; set them by "
	        "hand",
	        pl->path);
}

/* --- plan and commit ------------------------------------------------------ */
static void list_keys(const bool *which, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (int i = 0; i < CEPCTL_SET_N && off < len; i++) {
		if (!which[i])
			continue;
		int w = snprintf(buf + off, len - off, "%s%s%s%s",
		    off ? ", " : "",
		    settings[i].section ? settings[i].section : "",
		    settings[i].section ? "." : "", settings[i].key);
		off += w > 0 ? (size_t)w : 0;
	}
}

static int plan_edit(struct plan *pl, cepctl_cfg_edit *e)
{
	int rv = cep_config_load_text(pl->p, pl->text, pl->len, pl->path,
	    &pl->old, pl->err);
	if (rv != CEP_OK)
		return cep_err_wrap(pl->err,
		    "cepctl init changes no setting "
		    "in a cep.yaml that does not load; fix it first");
	if ((rv = cep_yamldoc_parse(pl->text, pl->len, pl->path, &pl->doc,
	         pl->err)) != CEP_OK)
		return rv;
	for (int i = 0; rv == CEP_OK && i < CEPCTL_SET_N; i++)
		if (pl->want[i] != NULL)
			rv = check_one(pl, i);
	if (rv != CEP_OK || pl->n_add + pl->n_repl == 0)
		return rv;
	inserts ins;
	char *mid = NULL;
	size_t mlen = 0;
	if ((rv = plan_inserts(pl, &ins)) != CEP_OK)
		return rv;
	if (apply_replacements(pl, &mid, &mlen) != 0 ||
	    build_text(pl, mid, mlen, &ins, &e->text, &e->len) != 0)
		rv = cep_err_set(pl->err, CEP_INTERNAL, "editing %s", pl->path);
	free(mid);
	if (rv == CEP_OK && (rv = verify(pl, e->text, e->len)) == CEP_OK) {
		list_keys(pl->add, e->added, sizeof(e->added));
		list_keys(pl->repl, e->changed, sizeof(e->changed));
	}
	return rv;
}

int cepctl_cfg_edit_plan(const cep_paths *p,
    const char *const want[CEPCTL_SET_N], bool replace, cepctl_cfg_edit **out,
    cep_err *err)
{
	*out = NULL;
	cepctl_cfg_edit *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	char *old = NULL;
	struct plan pl = {.p = p,
	    .path = e->path,
	    .want = want,
	    .replace = replace,
	    .err = err};
	int rv = cep_files_path(e->path, sizeof(e->path), err, "%s/cep.yaml",
	    p->config);
	if (rv == CEP_OK)
		rv = cep_files_read(e->path, CEP_YAML_MAX_BYTES, &old, &pl.len,
		    err);
	pl.text = old;
	if (rv == CEP_OK)
		rv = plan_edit(&pl, e);
	cep_yamldoc_free(pl.doc);
	free(old);
	if (rv != CEP_OK)
		cepctl_cfg_edit_free(e);
	else
		*out = e;
	return rv;
}

const char *cepctl_cfg_edit_added(const cepctl_cfg_edit *e)
{
	return e->added;
}

const char *cepctl_cfg_edit_changed(const cepctl_cfg_edit *e)
{
	return e->changed;
}

/* text into a new file beside path, mode and owner of st. */
static int write_temp(const char *tmp, int fd, const cepctl_cfg_edit *e,
    const struct stat *st, cep_err *err)
{
	size_t off = 0;
	while (off < e->len) {
		ssize_t w = write(fd, e->text + off, e->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return cep_err_errno(err, w < 0 ? errno : EIO, tmp);
		off += (size_t)w;
	}
	if (fchmod(fd, st->st_mode & 07777) != 0 ||
	    fchown(fd, st->st_uid, st->st_gid) != 0 || fsync(fd) != 0)
		return cep_err_errno(err, errno, tmp);
	return CEP_OK;
}

int cepctl_cfg_edit_commit(cepctl_cfg_edit *e, cep_err *err)
{
	if (e->added[0] == '\0' && e->changed[0] == '\0')
		return CEP_OK;
	struct stat st;
	char tmp[CEP_PATH_MAX + 32];
	if (stat(e->path, &st) != 0)
		return cep_err_errno(err, errno, e->path);
	snprintf(tmp, sizeof(tmp), "%s.cepctl-XXXXXX", e->path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return cep_err_errno(err, errno, tmp);
	int rv = write_temp(tmp, fd, e, &st, err);
	if (close(fd) != 0 && rv == CEP_OK)
		rv = cep_err_errno(err, errno, tmp);
	if (rv == CEP_OK && rename(tmp, e->path) != 0)
		rv = cep_err_errno(err, errno, e->path);
	if (rv != CEP_OK)
		unlink(tmp);
	return rv;
}

void cepctl_cfg_edit_free(cepctl_cfg_edit *e)
{
	if (e == NULL)
		return;
	free(e->text);
	free(e);
}
