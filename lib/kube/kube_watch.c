/*
 * kube_watch.c - list (all pages merged) and list-then-watch.
 *
 * A watch is a loop of streams. Each stream asks for events after the
 * last resourceVersion seen (events and bookmarks advance it), so a
 * dropped connection resumes where it stopped. When the server says that
 * version is too old (a 410 answer, or an ERROR event carrying an Expired
 * Status) the objects are listed again: current ones are delivered as
 * ADDED, and objects known before but gone now as DELETED, so the
 * caller's view converges as an informer's does. Streams run on the multi
 * interface so that the stop flag and the deadline are looked at every
 * 200 ms even when the stream is silent.
 */
#define _GNU_SOURCE
#include "kube_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "clock.h"

#define QUERY_MAX (16 * 1024)
#define WATCH_POLL_MS 200
#define WATCH_STREAM_MAX_S 300
#define WATCH_ERRBODY_MAX (64 * 1024)

static void what_list(char *buf, size_t len, const char *verb,
    const cep_kube_res *r, const char *ns)
{
	bool nsd = r->namespaced && ns != NULL && ns[0] != '\0';
	snprintf(buf, len, "%s %s%s%s", verb, r->plural, nsd ? " " : "",
	    nsd ? ns : "");
}

static int selectors(char *q, const cep_kube_list_opts *o, cep_err *err)
{
	if (o == NULL)
		return CEP_OK;
	if (o->label_selector && o->label_selector[0] &&
	    cep_kube_query_add(q, QUERY_MAX, "labelSelector", o->label_selector,
	        err) != CEP_OK)
		return err->code;
	if (o->field_selector && o->field_selector[0] &&
	    cep_kube_query_add(q, QUERY_MAX, "fieldSelector", o->field_selector,
	        err) != CEP_OK)
		return err->code;
	return CEP_OK;
}

/* Items of a list carry no kind/apiVersion; watch events do. Adding them
 * lets one callback treat both alike. */
void cep_kube_list_append_items(json_t *all, json_t *page,
    const cep_kube_res *r)
{
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(page, "items"), i, it)
	{
		if (!json_is_object(it))
			continue;
		if (json_object_get(it, "kind") == NULL)
			json_object_set_new(it, "kind", json_string(r->kind));
		if (json_object_get(it, "apiVersion") == NULL)
			json_object_set_new(it, "apiVersion",
			    json_string(r->gv));
		json_array_append(all, it);
	}
}

/* One page: GET with selectors, limit and continue. */
static int list_page(cep_kube *k, const char *path, const char *what,
    const cep_kube_list_opts *o, const char *cont, json_t **page, cep_err *err)
{
	char *q = calloc(1, QUERY_MAX);
	if (q == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	char lim[32];
	int rc = selectors(q, o, err);
	if (rc == CEP_OK && o != NULL && o->limit > 0) {
		snprintf(lim, sizeof(lim), "%lld", (long long)o->limit);
		rc = cep_kube_query_add(q, QUERY_MAX, "limit", lim, err);
	}
	if (rc == CEP_OK && cont != NULL && cont[0] != '\0')
		rc = cep_kube_query_add(q, QUERY_MAX, "continue", cont, err);
	if (rc == CEP_OK)
		rc = cep_kube_request(k,
		    &(cep_kube_req){.method = "GET",
		        .path = path,
		        .query = q,
		        .what = what},
		    NULL, page, err);
	free(q);
	return rc;
}

int cep_kube_list(cep_kube *k, const cep_kube_res *r, const char *ns,
    const cep_kube_list_opts *o, json_t **items, char *rv, size_t rvlen,
    cep_err *err)
{
	char path[KUBE_PATH_MAX], what[400];
	*items = NULL;
	int rc = cep_kube_path(r, ns, NULL, NULL, path, sizeof(path), err);
	if (rc != CEP_OK)
		return rc;
	what_list(what, sizeof(what), "list", r, ns);
	json_t *all = json_array();
	char *cont = NULL;
	bool restarted = false;
	for (;;) {
		json_t *page = NULL;
		rc = list_page(k, path, what, o, cont, &page, err);
		if (rc == CEP_OUT_OF_RANGE && cont != NULL && !restarted) {
			/* the continue token expired: start over, once */
			restarted = true;
			json_array_clear(all);
			free(cont);
			cont = NULL;
			continue;
		}
		if (rc != CEP_OK)
			break;
		cep_kube_list_append_items(all, page, r);
		json_t *md = json_object_get(page, "metadata");
		const char *v = json_string_value(
		    json_object_get(md, "resourceVersion"));
		if (rv != NULL && rvlen > 0)
			snprintf(rv, rvlen, "%s", v ? v : "");
		const char *c = json_string_value(
		    json_object_get(md, "continue"));
		free(cont);
		cont = c && c[0] ? strdup(c) : NULL;
		json_decref(page);
		if (cont == NULL)
			break;
	}
	free(cont);
	if (rc != CEP_OK) {
		json_decref(all);
		return rc;
	}
	*items = all;
	return CEP_OK;
}

/* ---- watch ---------------------------------------------------------------- */

int cep_kube_watch_event_parse(const char *line, size_t len, json_t **ev,
    const char **type, json_t **obj, cep_err *err)
{
	json_error_t je;
	*ev = json_loadb(line, len, 0, &je);
	if (*ev == NULL) {
		/* jansson quotes the offending byte: the server's, to logs */
		char why[sizeof(je.text)];
		cep_http_clean(why, sizeof(why), je.text, strlen(je.text));
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "watch event is not JSON: %s (column %d)", why, je.column);
	}
	*type = json_string_value(json_object_get(*ev, "type"));
	*obj = json_object_get(*ev, "object");
	if (*type == NULL || !json_is_object(*obj)) {
		json_decref(*ev);
		*ev = NULL;
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "watch event without a type or an object");
	}
	return CEP_OK;
}

static void obj_key(json_t *obj, char *key, size_t len)
{
	json_t *md = json_object_get(obj, "metadata");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *nm = json_string_value(json_object_get(md, "name"));
	snprintf(key, len, "%s/%s", ns ? ns : "", nm ? nm : "");
}

static void obj_rv(struct watch *w, json_t *obj)
{
	const char *v = json_string_value(
	    json_object_get(json_object_get(obj, "metadata"),
	        "resourceVersion"));
	if (v != NULL && v[0] != '\0')
		snprintf(w->rv, sizeof(w->rv), "%s", v);
}

/* Delivers one event and keeps the known set; false to stop. */
static bool deliver(struct watch *w, const char *type, json_t *obj)
{
	char key[600];
	obj_key(obj, key, sizeof(key));
	if (strcmp(type, "DELETED") == 0)
		json_object_del(w->known, key);
	else
		json_object_set(w->known, key, obj);
	if (w->fn(w->arg, type, obj) != 0) {
		w->stop_fn = true;
		return false;
	}
	return true;
}

/* List, deliver ADDED for what is there and DELETED for what went away
 * while we were not watching. */
static int relist(struct watch *w, cep_err *err)
{
	json_t *items = NULL;
	int rc = cep_kube_list(w->k, w->r, w->ns, w->o, &items, w->rv,
	    sizeof(w->rv), err);
	if (rc != CEP_OK)
		return rc;
	json_t *old = w->known;
	w->known = json_object();
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it)
	{
		char key[600];
		obj_key(it, key, sizeof(key));
		json_object_del(old, key);
	}
	const char *key;
	json_t *gone;
	json_object_foreach(old, key, gone)
	{
		if (!deliver(w, "DELETED", gone))
			break;
	}
	json_decref(old);
	json_array_foreach(items, i, it)
	{
		if (w->stop_fn || !deliver(w, "ADDED", it))
			break;
	}
	json_decref(items);
	return CEP_OK;
}

/* Status of an ERROR event: 410/Expired -> relist, else abort with it. */
static void on_error_event(struct watch *w, json_t *st)
{
	long code = (long)json_integer_value(json_object_get(st, "code"));
	const char *reason = json_string_value(json_object_get(st, "reason"));
	if (code == 410 ||
	    (reason &&
	        (strcmp(reason, "Expired") == 0 ||
	            strcmp(reason, "Gone") == 0))) {
		w->relist = true;
		return;
	}
	char text[CEP_ERR_MSG_MAX];
	cep_kube_status_text(code, st, text, sizeof(text));
	cep_err_set(&w->serr, cep_kube_status_code(code, reason), "%s: %s",
	    w->what, text);
	cep_kube_scrub(w->k, w->serr.msg, sizeof(w->serr.msg));
	w->failed = true;
}

/* One line of the stream; false aborts the stream. */
static bool on_line(struct watch *w, const char *line, size_t len)
{
	json_t *ev, *obj;
	const char *type;
	if (len == 0)
		return true;
	if (cep_kube_watch_event_parse(line, len, &ev, &type, &obj, &w->serr) !=
	    CEP_OK) {
		cep_err_wrap(&w->serr, "%s", w->what);
		w->failed = true;
		return false;
	}
	bool go = true;
	w->events++;
	if (strcmp(type, "BOOKMARK") == 0) {
		obj_rv(w, obj);
	} else if (strcmp(type, "ERROR") == 0) {
		on_error_event(w, obj);
		go = false;
	} else if (strcmp(type, "ADDED") == 0 ||
	    strcmp(type, "MODIFIED") == 0 || strcmp(type, "DELETED") == 0) {
		obj_rv(w, obj);
		go = deliver(w, type, obj);
	}
	json_decref(ev);
	return go;
}

size_t cep_kube_watch_on_stream(char *p, size_t sz, size_t n, void *arg)
{
	struct watch *w = arg;
	size_t add = sz * n;
	if (w->http != 200) {
		/* an error answer: keep (a bounded part of) it for the message */
		size_t take = add;
		if (take > WATCH_ERRBODY_MAX - w->elen)
			take = WATCH_ERRBODY_MAX - w->elen;
		char *b = realloc(w->ebody, w->elen + take + 1);
		if (b == NULL)
			return 0;
		memcpy(b + w->elen, p, take);
		w->ebody = b;
		w->elen += take;
		return add;
	}
	for (size_t i = 0; i < add; i++) {
		if (p[i] == '\n') {
			if (!on_line(w, w->line ? w->line : "", w->len))
				return 0;
			w->len = 0;
			continue;
		}
		if (w->len + 1 >= KUBE_MAX_WATCH_LINE) {
			cep_err_set(&w->serr, CEP_RESOURCE_EXHAUSTED,
			    "%s: a watch event larger than %u MiB", w->what,
			    KUBE_MAX_WATCH_LINE >> 20);
			w->failed = true;
			return 0;
		}
		if (w->len + 2 > w->cap) {
			size_t cap = w->cap ? w->cap * 2 : 8192;
			char *b = realloc(w->line, cap);
			if (b == NULL)
				return 0;
			w->line = b;
			w->cap = cap;
		}
		w->line[w->len++] = p[i];
	}
	return add;
}

static size_t on_stream_hdr(char *p, size_t sz, size_t n, void *arg)
{
	struct watch *w = arg;
	if (sz * n > 9 && strncmp(p, "HTTP/", 5) == 0) {
		const char *sp = memchr(p, ' ', sz * n);
		w->http = sp ? strtol(sp + 1, NULL, 10) : 0;
	}
	return sz * n;
}

struct limits {
	int64_t deadline;
	const atomic_bool *stop;
	int64_t timeout_ms; /* the whole watch, for messages */
};

static bool stopped(const struct limits *l)
{
	return l->stop != NULL && atomic_load(l->stop);
}

static int stream_url(struct watch *w, const struct limits *l, char *url,
    size_t ulen, cep_err *err)
{
	char path[KUBE_PATH_MAX], ts[32];
	int rc = cep_kube_path(w->r, w->ns, NULL, NULL, path, sizeof(path),
	    err);
	char *q = calloc(1, QUERY_MAX);
	if (q == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	int64_t s = (l->deadline - cep_clock_mono_ms()) / 1000 + 1;
	snprintf(ts, sizeof(ts), "%lld",
	    (long long)(s < WATCH_STREAM_MAX_S ? s : WATCH_STREAM_MAX_S));
	if (rc == CEP_OK)
		rc = cep_kube_query_add(q, QUERY_MAX, "watch", "1", err);
	if (rc == CEP_OK && w->rv[0] != '\0')
		rc = cep_kube_query_add(q, QUERY_MAX, "resourceVersion", w->rv,
		    err);
	if (rc == CEP_OK)
		rc = cep_kube_query_add(q, QUERY_MAX, "allowWatchBookmarks",
		    "true", err);
	if (rc == CEP_OK)
		rc = cep_kube_query_add(q, QUERY_MAX, "timeoutSeconds", ts,
		    err);
	if (rc == CEP_OK)
		rc = selectors(q, w->o, err);
	if (rc == CEP_OK)
		rc = cep_kube_url(w->k, path, q, url, ulen, err);
	free(q);
	return rc;
}

/* One watch stream. CEP_OK when it ended in a way that allows going on
 * (server closed, 410 -> w->relist, fn stopped -> w->stop_fn); *retry
 * says whether a failure is worth another try. */
static int stream(struct watch *w, const struct limits *l, bool *retry,
    cep_err *err)
{
	char url[KUBE_PATH_MAX + QUERY_MAX + 1100];
	*retry = false;
	if (stream_url(w, l, url, sizeof(url), err) != CEP_OK)
		return err->code;
	cep_http_client *hc = cep_kube_client(w->k, err);
	char *tok = hc != NULL ? cep_kube_bearer(w->k, err) : NULL;
	if (tok == NULL)
		return err->code;
	const char *hdrs[3];
	char host[300];
	cep_kube_headers(w->k, hdrs, host);
	w->len = w->elen = 0;
	w->http = 0;
	w->events = 0;
	w->failed = false;
	/* a peer that vanished without a FIN: no byte for
	 * low_speed_time_s ends it */
	cep_http_request rq = {.url = url,
	    .headers = hdrs,
	    .bearer = tok,
	    .connect_timeout_ms = atomic_load(&w->k->timeout_ms),
	    .on_data = cep_kube_watch_on_stream,
	    .on_header = on_stream_hdr,
	    .arg = w,
	    .low_speed_time_s = (long)WATCH_STREAM_MAX_S + 30,
	    .deadline_ms = l->deadline,
	    .stop = l->stop};
	cep_http_result res;
	int cc = cep_http_client_do(hc, &rq, &res);
	cep_kube_bearer_free(tok);
	if (cc == CEP_HTTP_NO_HANDLE)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "curl_easy_init failed");
	if (cc == CEP_HTTP_STOPPED)
		return cep_err_set(err, CEP_CANCELLED, "%s: cancelled",
		    w->what);
	if (cc == CEP_HTTP_DEADLINE)
		return cep_err_set(err, CEP_DEADLINE_EXCEEDED,
		    "%s: ended after its deadline of %lld ms", w->what,
		    (long long)l->timeout_ms);
	if (w->stop_fn || w->relist)
		return CEP_OK;
	if (w->failed) {
		*err = w->serr;
		*retry = err->code == CEP_UNAVAILABLE ||
		    err->code == CEP_RESOURCE_EXHAUSTED;
		return err->code;
	}
	if (w->http != 200 && w->http != 0) {
		int rc = cep_kube_http_err(w->k, err, w->http, w->ebody,
		    w->elen, w->what);
		if (rc == CEP_OUT_OF_RANGE) {
			w->relist = true;
			return CEP_OK;
		}
		*retry = rc == CEP_UNAVAILABLE || rc == CEP_RESOURCE_EXHAUSTED;
		return rc;
	}
	if (cc != 0) {
		*retry = true;
		return cep_http_curl_err(err, cc, w->what, res.error,
		    atomic_load(&w->k->timeout_ms));
	}
	return CEP_OK;
}

/* Sleeps ms in slices, watching the stop flag and the deadline. */
static int pause_ms(const struct limits *l, int64_t ms, const char *what,
    cep_err *err)
{
	int64_t end = cep_clock_mono_ms() + ms;
	for (;;) {
		if (stopped(l))
			return cep_err_set(err, CEP_CANCELLED, "%s: cancelled",
			    what);
		int64_t now = cep_clock_mono_ms();
		if (now >= l->deadline)
			return cep_err_set(err, CEP_DEADLINE_EXCEEDED,
			    "%s: ended after its deadline of %lld ms", what,
			    (long long)l->timeout_ms);
		if (now >= end)
			return CEP_OK;
		int64_t s = end - now;
		cep_clock_sleep_ms(s < WATCH_POLL_MS ? s : WATCH_POLL_MS);
	}
}

static int watch_loop(struct watch *w, const struct limits *l, cep_err *err)
{
	int fails = 0, rc = relist(w, err);
	int64_t t0;
	while (rc == CEP_OK && !w->stop_fn) {
		bool retry = false;
		if (w->relist) {
			w->relist = false;
			cep_log_debug(NULL,
			    "kube: %s: resourceVersion expired, "
			    "listing again",
			    w->what);
			if ((rc = relist(w, err)) != CEP_OK)
				break;
			continue;
		}
		t0 = cep_clock_mono_ms();
		rc = stream(w, l, &retry, err);
		if (rc == CEP_CANCELLED || rc == CEP_DEADLINE_EXCEEDED)
			break;
		if (w->events > 0)
			fails = 0;
		if (rc != CEP_OK &&
		    (!retry || ++fails >= atomic_load(&w->k->attempts)))
			break;
		/* a stream that ends at once, again and again, must not spin */
		int64_t wait = rc != CEP_OK ? cep_kube_backoff_ms(fails - 1) :
		    (w->events == 0 && cep_clock_mono_ms() - t0 < 1000) ?
		                              cep_kube_backoff_ms(0) :
		                              0;
		if (rc != CEP_OK)
			cep_log_debug(NULL, "kube: %s: %s; resuming in %lld ms",
			    w->what, err->msg, (long long)wait);
		rc = pause_ms(l, wait, w->what, err);
	}
	return rc;
}

int cep_kube_watch(cep_kube *k, const cep_kube_watch_spec *ws, cep_err *err)
{
	char what[400], path[KUBE_PATH_MAX];
	cep_err scratch;
	if (err == NULL)
		err = &scratch;
	int rc = cep_kube_path(ws->res, ws->ns, NULL, NULL, path, sizeof(path),
	    err);
	if (rc != CEP_OK)
		return rc;
	if (ws->fn == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "watch: no callback");
	what_list(what, sizeof(what), "watch", ws->res, ws->ns);
	struct watch w = {.k = k,
	    .r = ws->res,
	    .ns = ws->ns,
	    .o = ws->list,
	    .fn = ws->fn,
	    .arg = ws->arg,
	    .what = what,
	    .known = json_object()};
	struct limits l = {.deadline = cep_clock_mono_ms() + ws->timeout_ms,
	    .stop = ws->stop,
	    .timeout_ms = ws->timeout_ms};
	rc = watch_loop(&w, &l, err);
	json_decref(w.known);
	free(w.line);
	free(w.ebody);
	return w.stop_fn && rc == CEP_OK ? CEP_OK : rc;
}
