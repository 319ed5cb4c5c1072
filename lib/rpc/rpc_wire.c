/*
 * rpc_wire.c - the RPC wire format: one Envelope (proto/cep.proto) per nng
 * message. Packing bodies and envelopes with their size limits, and the
 * server's frame decoder - a pure function, so the fuzzer drives exactly
 * what a hostile peer reaches. Only generated protobuf-c code touches bytes;
 * the one deep copy of a message (cep_rpc_msg_dup) is pack + unpack too.
 */
#define _GNU_SOURCE
#include "rpc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Method names come from the peer: printable ASCII only, bounded, before
 * they reach an error text or a log line. */
static void sanitize(char *dst, size_t len, const char *src)
{
	size_t i = 0;
	for (; src[i] != '\0' && i + 1 < len; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[i] = '\0';
}

const cep_rpc_method cep_rpc_ping_method = {CEP_RPC_PING_METHOD, NULL, NULL};

/* protobuf-c takes a field number 0 whose tag is written in more bytes than
 * needed (0x81 0x00) and keeps it as an unknown field, but refuses the same
 * field in its shortest form, which is the form it writes back. A message
 * holding one would be accepted, journalled or spooled, and then not read
 * back: the record and the journal after it would be lost to a replay. Such
 * a message is malformed here, at any depth. */
bool cep_rpc_msg_wellformed(const ProtobufCMessage *m)
{
	if (m == NULL)
		return true;
	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return false;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(
			    const size_t *)(base + f->quantifier_offset);
			ProtobufCMessage *const *v = *(
			    ProtobufCMessage *const *const *)(base + f->offset);
			for (size_t j = 0; j < n; j++)
				if (!cep_rpc_msg_wellformed(v[j]))
					return false;
			continue;
		}
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
			continue; /* another member of the oneof is set */
		if (!cep_rpc_msg_wellformed(
		        *(ProtobufCMessage *const *)(base + f->offset)))
			return false;
	}
	return true;
}

/* unpack, refusing what cep_rpc_msg_wellformed refuses */
static ProtobufCMessage *unpack_checked(const ProtobufCMessageDescriptor *d,
    size_t len, const uint8_t *buf)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, buf);
	if (m != NULL && !cep_rpc_msg_wellformed(m)) {
		protobuf_c_message_free_unpacked(m, NULL);
		m = NULL;
	}
	return m;
}

void cep_rpc_decode_frame(const cep_rpc_method *table, size_t n,
    const uint8_t *buf, size_t len, cep_rpc_frame *out)
{
	memset(out, 0, sizeof(*out));
	if (len > CEP_RPC_MAX_MSG) {
		out->code = CEP_RESOURCE_EXHAUSTED;
		snprintf(out->error, sizeof(out->error),
		    "message of %zu bytes exceeds the limit of %u bytes", len,
		    CEP_RPC_MAX_MSG);
		return;
	}
	Cep__V1__Envelope *env = cep__v1__envelope__unpack(NULL, len, buf);
	if (env == NULL) {
		out->code = CEP_INVALID_ARGUMENT;
		snprintf(out->error, sizeof(out->error), "malformed envelope");
		return;
	}
	out->call_id = env->call_id;
	out->timeout_ms = env->timeout_ms;
	char name[128];
	sanitize(name, sizeof(name), env->method ? env->method : "");
	if (env->method != NULL &&
	    strcmp(env->method, CEP_RPC_PING_METHOD) == 0) {
		out->method = &cep_rpc_ping_method; /* answered by the server */
		cep__v1__envelope__free_unpacked(env, NULL);
		return;
	}
	for (size_t i = 0; i < n && out->method == NULL; i++)
		if (strcmp(table[i].name, env->method ? env->method : "") == 0)
			out->method = &table[i];
	if (out->method == NULL) {
		out->code = CEP_UNIMPLEMENTED;
		snprintf(out->error, sizeof(out->error), "unknown method %s",
		    name);
	} else {
		out->body = unpack_checked(out->method->req, env->body.len,
		    env->body.data);
		if (out->body == NULL) {
			out->code = CEP_INVALID_ARGUMENT;
			snprintf(out->error, sizeof(out->error),
			    "malformed %s request", name);
		}
	}
	cep__v1__envelope__free_unpacked(env, NULL);
}

void cep_rpc_frame_clear(cep_rpc_frame *f)
{
	if (f->body != NULL)
		protobuf_c_message_free_unpacked(f->body, NULL);
	f->body = NULL;
}

int cep_rpc_pack_body(const ProtobufCMessage *msg, ProtobufCBinaryData *body,
    const char *what, cep_err *err)
{
	body->data = NULL;
	body->len = 0;
	if (msg == NULL)
		return CEP_OK;
	size_t n = protobuf_c_message_get_packed_size(msg);
	if (n > CEP_RPC_MAX_MSG)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "%s of %zu bytes exceeds the limit of %u bytes", what, n,
		    CEP_RPC_MAX_MSG);
	if ((body->data = malloc(n ? n : 1)) == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory for %s of %zu bytes", what, n);
	body->len = protobuf_c_message_pack(msg, body->data);
	return CEP_OK;
}

int cep_rpc_envelope_msg(nng_msg **out, const Cep__V1__Envelope *env,
    cep_err *err)
{
	size_t n = cep__v1__envelope__get_packed_size(env);
	if (n > CEP_RPC_MAX_MSG)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "message of %zu bytes exceeds the limit of %u bytes", n,
		    CEP_RPC_MAX_MSG);
	nng_msg *m;
	int rv = nng_msg_alloc(&m, n);
	if (rv != 0)
		return cep_rpc_err_nng(err, rv, "allocating a message");
	cep__v1__envelope__pack(env, nng_msg_body(m));
	*out = m;
	return CEP_OK;
}

int cep_rpc_envelope_bytes(const Cep__V1__Envelope *env, uint8_t **out,
    size_t *len, cep_err *err)
{
	size_t n = cep__v1__envelope__get_packed_size(env);
	*out = NULL;
	*len = 0;
	if (n > CEP_RPC_MAX_MSG)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "message of %zu bytes exceeds the limit of %u bytes", n,
		    CEP_RPC_MAX_MSG);
	if ((*out = malloc(n ? n : 1)) == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory for a message of %zu bytes", n);
	*len = cep__v1__envelope__pack(env, *out);
	return CEP_OK;
}

int cep_rpc_request_pack(const char *method, uint64_t call_id, int timeout_ms,
    const ProtobufCMessage *req, uint8_t **out, size_t *len, cep_err *err)
{
	Cep__V1__Envelope env = CEP__V1__ENVELOPE__INIT;
	env.method = (char *)method;
	env.call_id = call_id;
	env.timeout_ms = timeout_ms > 0 ? (uint32_t)timeout_ms : 0;
	int code = cep_rpc_pack_body(req, &env.body, "request", err);
	if (code == CEP_OK)
		code = cep_rpc_envelope_bytes(&env, out, len, err);
	free(env.body.data);
	return code == CEP_OK ? CEP_OK : cep_err_wrap(err, "%s", method);
}

int cep_rpc_reply_unpack(const uint8_t *buf, size_t len, uint64_t call_id,
    const char *method, const ProtobufCMessageDescriptor *reply_desc,
    ProtobufCMessage **reply, cep_err *err)
{
	Cep__V1__Envelope *env = len <= CEP_RPC_MAX_MSG ?
	    cep__v1__envelope__unpack(NULL, len, buf) :
	    NULL;
	if (env == NULL)
		return cep_err_set(err, CEP_INTERNAL,
		    "%s: malformed reply envelope", method);
	int code = CEP_OK;
	if (env->call_id != call_id) {
		code = cep_err_set(err, CEP_INTERNAL,
		    "%s: reply for call %llu, expected %llu", method,
		    (unsigned long long)env->call_id,
		    (unsigned long long)call_id);
	} else if (env->code != CEP_OK) {
		int sc = env->code > 0 && env->code <= CEP_UNAUTHENTICATED ?
		    env->code :
		    CEP_UNKNOWN;
		code = cep_err_set(err, sc, "%s", env->error ? env->error : "");
		/* the peer's text (or a forged one, through the tunnel) goes
		 * to logs and terminals: no control characters */
		for (char *c = err != NULL ? err->msg : NULL; c && *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = ' ';
	} else if (reply_desc != NULL && reply != NULL) {
		*reply = unpack_checked(reply_desc, env->body.len,
		    env->body.data);
		if (*reply == NULL)
			code = cep_err_set(err, CEP_INTERNAL,
			    "%s: malformed %s reply", method, reply_desc->name);
	}
	cep__v1__envelope__free_unpacked(env, NULL);
	return code;
}

ProtobufCMessage *cep_rpc_msg_dup(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len > 0 ? len : 1);
	if (buf == NULL)
		return NULL;
	protobuf_c_message_pack(m, buf);
	ProtobufCMessage *copy = protobuf_c_message_unpack(m->descriptor, NULL,
	    len, buf);
	free(buf);
	return copy;
}
