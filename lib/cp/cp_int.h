/*
 * cp_int.h - what lib/cp/cp*.c share, and the internal entry points tests
 * and fuzzers call. Callers outside lib/ use cp.h only.
 */
#ifndef CEP_CP_INT_H
#define CEP_CP_INT_H

#include "cp.h"

/* HTTP status of an error reply -> cep code (the table in cp.h). */
int cep_cp_http_code(long http);

/* What the plane answered to one call, as received. */
typedef struct cep_cp_answer {
	long http;         /* the HTTP status */
	const char *ctype; /* Content-Type, NULL if none */
	const uint8_t *body;
	size_t len;
} cep_cp_answer;

/* The answer to one call, without curl -> the unpacked reply (200) or an
 * error naming method and host; with rdesc NULL a good 200 leaves *reply
 * NULL (the caller keeps the raw body: the tunnel). A body the transport
 * found incomplete or over the cap is reported by the caller, not here.
 * The caller scrubs the token from err->msg. */
int cep_cp_reply_decode(const char *method, const char *host,
    const cep_cp_answer *a, const ProtobufCMessageDescriptor *rdesc,
    ProtobufCMessage **reply, cep_err *err);

#endif
