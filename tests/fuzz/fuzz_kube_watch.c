/* fuzz_kube_watch.c - libFuzzer target: a Kubernetes watch stream as the
 * client reads it (lib/kube/kube_watch.c): the bytes split into lines,
 * each line decoded as a watch event, events delivered and the set of
 * known objects kept. The first byte is the size of the pieces the
 * transport hands over (0: all at once), the second picks the HTTP status
 * and after how many events the callback stops the watch; the rest is
 * the stream. Invariants: the same bytes in any pieces give the same
 * events and the same end state; only ADDED/MODIFIED/DELETED with an
 * object are delivered, never more events than lines; the known set is
 * what the delivered events leave; an error answer's body is kept up to
 * its cap and delivers nothing; a failure names the watch and has no
 * control characters (it reaches logs). */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube_int.h"

#define ERRBODY_MAX (64 * 1024) /* WATCH_ERRBODY_MAX in kube_watch.c */
#define WHAT "watch pods shop"

static void trap_unless(int ok)
{
	if (!ok)
		__builtin_trap();
}

/* What one pass saw: the events as text, the callback's own view. */
typedef struct seen {
	char *log;
	size_t len;
	int delivered, stop_after;
	json_t *model; /* "ns/name" -> object, from the events */
} seen;

static void log_add(seen *s, const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = realloc(s->log, s->len + la + lb + 2);
	trap_unless(p != NULL);
	memcpy(p + s->len, a, la + 1);
	memcpy(p + s->len + la + 1, b, lb + 1);
	s->log = p;
	s->len += la + lb + 2;
}

static int on_event(void *arg, const char *type, json_t *obj)
{
	seen *s = arg;
	trap_unless(strcmp(type, "ADDED") == 0 ||
	    strcmp(type, "MODIFIED") == 0 || strcmp(type, "DELETED") == 0);
	trap_unless(json_is_object(obj));
	char *txt = json_dumps(obj,
	    JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	trap_unless(txt != NULL);
	log_add(s, type, txt);
	free(txt);
	json_t *md = json_object_get(obj, "metadata");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *nm = json_string_value(json_object_get(md, "name"));
	char key[600];
	snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", nm ? nm : "");
	if (strcmp(type, "DELETED") == 0)
		json_object_del(s->model, key);
	else
		json_object_set(s->model, key, obj);
	return ++s->delivered == s->stop_after;
}

/* One pass over the stream in pieces of chunk bytes (0: one piece). */
static void pass(cep_kube *k, long http, const char *p, size_t n, size_t chunk,
    struct watch *w, seen *s)
{
	*w = (struct watch){.k = k,
	    .r = &cep_kube_pods,
	    .ns = "shop",
	    .fn = on_event,
	    .arg = s,
	    .what = WHAT,
	    .known = json_object(),
	    .http = http};
	size_t off = 0;
	do {
		size_t take = chunk == 0 || n - off < chunk ? n - off : chunk;
		/* curl's contract: the piece is the callback's to scribble on */
		char *piece = malloc(take ? take : 1);
		trap_unless(piece != NULL);
		memcpy(piece, p + off, take);
		size_t rc = cep_kube_watch_on_stream(piece, 1, take, w);
		free(piece);
		off += take;
		if (rc != take) {
			trap_unless(rc == 0);
			break;
		}
	} while (off < n);
}

static void check_one(const struct watch *w, const seen *s, long http,
    const char *p, size_t n)
{
	size_t lines = 0;
	for (size_t i = 0; i < n; i++)
		lines += p[i] == '\n';
	trap_unless(w->events >= 0 && (size_t)w->events <= lines);
	trap_unless(s->delivered <= w->events);
	if (http != 200) {
		trap_unless(s->delivered == 0 && w->events == 0);
		trap_unless(w->elen == (n < ERRBODY_MAX ? n : ERRBODY_MAX));
		trap_unless(n == 0 || memcmp(w->ebody, p, w->elen) == 0);
	}
	trap_unless(json_equal(w->known, s->model));
	if (w->failed) {
		trap_unless(w->serr.code != CEP_OK);
		trap_unless(
		    strncmp(w->serr.msg, WHAT ": ", strlen(WHAT) + 2) == 0);
		for (const char *c = w->serr.msg; *c; c++)
			trap_unless((unsigned char)*c >= 0x20 && *c != 0x7f);
	}
	trap_unless(strlen(w->rv) < sizeof(w->rv));
}

static void done(struct watch *w, seen *s)
{
	json_decref(w->known);
	free(w->line);
	free(w->ebody);
	json_decref(s->model);
	free(s->log);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static cep_kube *k;
	if (k == NULL)
		k = cep_kube_alloc();
	if (size < 2 || k == NULL)
		return 0;
	size_t chunk = data[0];
	long http = data[1] >= 0xf0 ? (data[1] & 1 ? 410 : 500) : 200;
	int stop_after = data[1] & 0x0f; /* 0: never stops */
	const char *p = (const char *)data + 2;
	size_t n = size - 2;

	struct watch whole, pieces;
	seen a = {.stop_after = stop_after, .model = json_object()};
	seen b = {.stop_after = stop_after, .model = json_object()};
	pass(k, http, p, n, 0, &whole, &a);
	pass(k, http, p, n, chunk, &pieces, &b);
	check_one(&whole, &a, http, p, n);
	check_one(&pieces, &b, http, p, n);
	trap_unless(
	    a.len == b.len && (a.len == 0 || memcmp(a.log, b.log, a.len) == 0));
	trap_unless(whole.events == pieces.events &&
	    whole.failed == pieces.failed && whole.relist == pieces.relist &&
	    whole.stop_fn == pieces.stop_fn &&
	    whole.serr.code == pieces.serr.code &&
	    strcmp(whole.serr.msg, pieces.serr.msg) == 0 &&
	    strcmp(whole.rv, pieces.rv) == 0 &&
	    json_equal(whole.known, pieces.known));
	done(&whole, &a);
	done(&pieces, &b);
	return 0;
}
