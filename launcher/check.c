/*
 * check.c - every field of a Launcher request, checked before anything
 * is written or started. The delegate is the only peer, but it parses
 * hostile input all day: the launcher takes nothing on trust from it.
 */
#define _GNU_SOURCE
#include "launcher_int.h"

#include <jansson.h>
#include <string.h>

#include "caps.h"
#include "clock.h"
#include "run_id.h"

#define MAX_RECORDS 64

/* Printable ASCII, no space, not starting with '-' (never a flag). */
static bool plain(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);
	if (n > max || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static bool url_ok(const char *s, const char *const *schemes, bool empty_ok)
{
	if (s == NULL || s[0] == '\0')
		return empty_ok;
	if (!plain(s, CEP_LAUNCHER_MAX_URL))
		return false;
	for (size_t i = 0; schemes[i] != NULL; i++) {
		size_t l = strlen(schemes[i]);
		if (strncmp(s, schemes[i], l) == 0 && s[l] != '\0')
			return true;
	}
	return false;
}

static bool pem_ok(const char *s, bool empty_ok)
{
	if (s == NULL || s[0] == '\0')
		return empty_ok;
	return strnlen(s, CEP_LAUNCHER_MAX_PEM + 1) <= CEP_LAUNCHER_MAX_PEM &&
	    strncmp(s, "-----BEGIN ", 11) == 0;
}

static bool host_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	return n == 0 ||
	    (n <= 253 && s[0] != '-' &&
	        strspn(s,
	            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") ==
	            n);
}

static int check_urls(const Cep__V1__LaunchRequest *r, cep_err *err)
{
	static const char *const relay[] = {"tls+tcp://", NULL};
	static const char *const cp[] = {"https://", NULL};
	static const char *const proxy[] = {"http://", "https://", NULL};
	if (!url_ok(r->relay_url, relay, false))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "relay_url: a "
		    "tls+tcp:// URL of at most %d printable characters",
		    CEP_LAUNCHER_MAX_URL);
	if (!host_ok(r->server_name))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "server_name: a "
		    "host name of at most 253 characters");
	if (!url_ok(r->cp_url, cp, true))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "cp_url: empty or "
		    "an https:// URL");
	if (!url_ok(r->cp_proxy, proxy, true))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "cp_proxy: empty "
		    "or an http(s):// URL");
	if ((r->cp_url == NULL || r->cp_url[0] == '\0') &&
	    ((r->cp_proxy != NULL && r->cp_proxy[0] != '\0') ||
	        (r->cp_ca_pem != NULL && r->cp_ca_pem[0] != '\0')))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "cp_proxy and "
		    "cp_ca_pem need a cp_url");
	return CEP_OK;
}

static int check_identity(const Cep__V1__LaunchRequest *r, cep_err *err)
{
	if (!pem_ok(r->ca_pem, false) || !pem_ok(r->cert_pem, false) ||
	    !pem_ok(r->key_pem, false))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "ca_pem, cert_pem "
		    "and key_pem: PEM text of at most %d bytes each",
		    CEP_LAUNCHER_MAX_PEM);
	if (!pem_ok(r->cp_ca_pem, true))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "cp_ca_pem: empty "
		    "or PEM text of at most %d bytes",
		    CEP_LAUNCHER_MAX_PEM);
	return CEP_OK;
}

int launcher_check_launch(const Cep__V1__LaunchRequest *r, unsigned *caps,
    cep_err *err)
{
	*caps = 0;
	if (r->run_id == NULL || !cep_run_id_valid(r->run_id))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "run_id: not a run "
		    "id");
	if (r->n_fault_types > CEP_LAUNCHER_MAX_FAULTS)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "fault_types: more "
		    "than %d",
		    CEP_LAUNCHER_MAX_FAULTS);
	cep_err e = {0};
	if (cep_caps_union((const char *const *)r->fault_types,
	        r->n_fault_types, CEP_CAPS_HOST, caps, &e) != CEP_OK)
		return cep_err_set(err, CEP_PERMISSION_DENIED,
		    "fault_types: %s", e.msg);
	int64_t now = cep_clock_now_ms();
	if (r->deadline_ms <= now || r->deadline_ms > now + 7 * 86400000LL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "deadline_ms: not "
		    "within the next 7 days");
	int rv = check_urls(r, err);
	return rv == CEP_OK ? check_identity(r, err) : rv;
}

static int check_record(json_t *rec, size_t i, const char *run_id,
    unsigned *caps, cep_err *err)
{
	static const char *const fields[] = {"run_id", "fault_id", "type",
	    "target", "mechanism", "undo", NULL};
	if (!json_is_object(rec))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "records_json[%zu]: "
		    "not an object",
		    i);
	for (size_t f = 0; fields[f] != NULL; f++)
		if (!json_is_string(json_object_get(rec, fields[f])))
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "records_json[%zu]: %s is not a string", i,
			    fields[f]);
	if (strcmp(json_string_value(json_object_get(rec, "run_id")), run_id) !=
	    0)
		return cep_err_set(err, CEP_PERMISSION_DENIED,
		    "records_json[%zu]: "
		    "a record of another run",
		    i);
	unsigned c;
	int rv = cep_caps_for_mechanism(json_string_value(
	                                    json_object_get(rec, "mechanism")),
	    &c, err);
	if (rv != CEP_OK)
		return cep_err_wrap(err, "records_json[%zu]", i);
	*caps |= c;
	return CEP_OK;
}

int launcher_check_cleanup(const Cep__V1__LauncherCleanup *r, unsigned *caps,
    cep_err *err)
{
	*caps = 0;
	if (r->run_id == NULL || !cep_run_id_valid(r->run_id))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "run_id: not a run "
		    "id");
	const char *js = r->records_json != NULL ? r->records_json : "";
	size_t len = strnlen(js, CEP_LAUNCHER_MAX_RECS + 1);
	json_t *recs = len <= CEP_LAUNCHER_MAX_RECS ?
	    json_loadb(js, len, JSON_REJECT_DUPLICATES, NULL) :
	    NULL;
	int rv = CEP_OK;
	if (!json_is_array(recs) || json_array_size(recs) > MAX_RECORDS)
		rv = cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "records_json: a JSON "
		    "array of at most %d fault records, %d bytes",
		    MAX_RECORDS, CEP_LAUNCHER_MAX_RECS);
	for (size_t i = 0; rv == CEP_OK && i < json_array_size(recs); i++)
		rv = check_record(json_array_get(recs, i), i, r->run_id, caps,
		    err);
	json_decref(recs);
	if (rv != CEP_OK)
		*caps = 0;
	return rv;
}

/* Bytes that are a C string: no NUL inside, at most max. */
static bool text_ok(const ProtobufCBinaryData *b, size_t max)
{
	return b->len <= max &&
	    (b->len == 0 || memchr(b->data, '\0', b->len) == NULL);
}

static bool netns_name_ok(const ProtobufCBinaryData *b)
{
	const char *s = (const char *)b->data;
	if (b->len == 0 || s[0] == '/')
		return b->len > 0;
	return b->len <= 255 && memchr(s, '/', b->len) == NULL &&
	    !(b->len == 1 && s[0] == '.') &&
	    !(b->len == 2 && s[0] == '.' && s[1] == '.');
}

int launcher_check_inspect(const Cep__V1__LauncherInspect *q, cep_err *err)
{
	if (q->pid < 0 || q->pid > CEP_LAUNCHER_MAX_PID)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "pid: %d out of "
		    "range (0 = none, 1..%d)",
		    (int)q->pid, CEP_LAUNCHER_MAX_PID);
	const ProtobufCBinaryData *ns = &q->netns_name, *path = &q->path;
	if (!text_ok(ns, CEP_LAUNCHER_MAX_PATH))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "netns_name: "
		    "%zu bytes or a NUL (at most %d bytes of text)",
		    ns->len, CEP_LAUNCHER_MAX_PATH);
	if (ns->len > 0 && (!q->netns || q->pid != 0))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "netns_name: only "
		    "with netns and without a pid");
	if (q->netns && q->pid == 0 && !netns_name_ok(ns))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "netns_name: give a "
		    "name under /run/netns (no '/') or an absolute path");
	if (!text_ok(path, CEP_LAUNCHER_MAX_PATH))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "path: %zu bytes or "
		    "a NUL (at most %d bytes of text)",
		    path->len, CEP_LAUNCHER_MAX_PATH);
	if (path->len > 0 && path->data[0] != '/')
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "path: not "
		    "absolute");
	return CEP_OK;
}
