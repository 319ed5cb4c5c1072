/*
 * cp_reply.c - a control-plane answer as the client reads it: a 200 must
 * be exactly the reply message; anything else is an HTTP status with,
 * when the plane wrote one, a CpStatus body whose message we quote. Kept
 * apart from the transport (cp.c) so that the fuzzer reaches it without
 * a network.
 */
#define _GNU_SOURCE
#include "cp_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cep.pb-c.h"
#include "http.h"

#define CP_PB_TYPE "application/x-protobuf"
#define CP_EXCERPT 120 /* bytes of a non-CpStatus error body we quote */

int cep_cp_http_code(long http)
{
	switch (http) {
	case 400: return CEP_INVALID_ARGUMENT;
	case 401: return CEP_UNAUTHENTICATED;
	case 403: return CEP_PERMISSION_DENIED;
	case 404: return CEP_NOT_FOUND;
	case 409: return CEP_ABORTED;
	case 413:
	case 429: return CEP_RESOURCE_EXHAUSTED;
	default: break;
	}
	/* 3xx: a redirect we do not follow means the plane is not where
	 * the configuration says; like a 5xx, the caller may retry later */
	if ((http >= 500 && http <= 599) || (http >= 300 && http <= 399))
		return CEP_UNAVAILABLE;
	return CEP_UNKNOWN;
}

/* "application/x-protobuf", any case, parameters (";...") ignored. */
static bool is_protobuf(const char *ctype)
{
	if (ctype == NULL)
		return false;
	size_t n = sizeof(CP_PB_TYPE) - 1;
	if (strncasecmp(ctype, CP_PB_TYPE, n) != 0)
		return false;
	const char *p = ctype + n;
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == '\0' || *p == ';';
}

/* Printable ASCII only: an excerpt of a body that may be anything (an
 * HTML page from a proxy, binary) must not garble a log line. */
static void excerpt(char *dst, size_t dlen, const uint8_t *src, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && i < CP_EXCERPT && o + 4 < dlen; i++)
		dst[o++] = src[i] >= 0x20 && src[i] < 0x7f ? (char)src[i] : '.';
	if (n > CP_EXCERPT && o + 4 < dlen) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	if (dlen > 0)
		dst[o] = '\0';
}

static int http_error(const char *method, const char *host, long http,
    const char *ctype, const uint8_t *body, size_t len, cep_err *err)
{
	int code = cep_cp_http_code(http);
	char text[300] = "";
	Cep__V1__CpStatus *st = NULL;
	if (len > 0 && is_protobuf(ctype))
		st = cep__v1__cp_status__unpack(NULL, len, body);
	if (st != NULL && st->message != NULL && st->message[0] != '\0') {
		cep_http_clean(text, sizeof(text), st->message,
		    strlen(st->message));
	} else if (len > 0) {
		char ex[CP_EXCERPT + 8];
		excerpt(ex, sizeof(ex), body, len);
		snprintf(text, sizeof(text), "(body: %s)", ex);
	}
	if (st != NULL)
		cep__v1__cp_status__free_unpacked(st, NULL);
	return cep_err_set(err, code, "control plane %s: %s: HTTP %ld%s%s",
	    host, method, http, text[0] ? ": " : "", text);
}

int cep_cp_reply_decode(const char *method, const char *host,
    const cep_cp_answer *a, const ProtobufCMessageDescriptor *rdesc,
    ProtobufCMessage **reply, cep_err *err)
{
	long http = a->http;
	const char *ctype = a->ctype;
	const uint8_t *body = a->body;
	size_t len = a->len;
	*reply = NULL;
	if (http != 200)
		return http_error(method, host, http, ctype, body, len, err);
	if (!is_protobuf(ctype)) {
		char ct[64];
		cep_http_clean(ct, sizeof(ct), ctype ? ctype : "none",
		    strlen(ctype ? ctype : "none"));
		return cep_err_set(err, CEP_DATA_LOSS,
		    "control plane %s: %s: "
		    "reply has Content-Type %s, expected " CP_PB_TYPE,
		    host, method, ct);
	}
	if (len > CEP_CP_MAX_REPLY)
		return cep_err_set(err, CEP_DATA_LOSS,
		    "control plane %s: %s: "
		    "reply larger than %u MiB",
		    host, method, CEP_CP_MAX_REPLY >> 20);
	if (rdesc == NULL)
		return CEP_OK; /* raw body wanted (the tunnel's Envelope) */
	/* protobuf-c reads len bytes: an empty body is a valid all-default
	 * message (proto3), which is right for e.g. an empty CpTasks */
	ProtobufCMessage *m = protobuf_c_message_unpack(rdesc, NULL, len,
	    len > 0 ? body : (const uint8_t *)"");
	if (m == NULL)
		return cep_err_set(err, CEP_DATA_LOSS,
		    "control plane %s: %s: "
		    "reply of %zu bytes is not a valid %s",
		    host, method, len, rdesc->name);
	*reply = m;
	return CEP_OK;
}
