/*
 * tunnel.c - Runner calls through the control plane (tunnel.h): the
 * Envelope is rpc_wire.c's, the HTTPS is lib/cp/cp.c's (allowlist = the
 * plane's host, the proxy from the delegate, never the environment).
 */
#define _GNU_SOURCE
#include "tunnel.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp.h"
#include "rpc.h"
#include "util.h"

/* The plane holds the request until the relay answers or the envelope's
 * timeout passes; this much more is the round trip through it. */
#define TUNNEL_MARGIN_MS 3000

struct cep_runner_tunnel {
	cep_cp *cp;
	char session[33];
	_Atomic uint64_t next_id;
};

int runner_tunnel_new(cep_runner_tunnel **out, const cep_runner_tunnel_opts *o,
    cep_err *err)
{
	*out = NULL;
	cep_runner_tunnel *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	uint8_t rnd[16];
	int rc = cep_util_random(rnd, sizeof(rnd), err);
	for (size_t i = 0; rc == CEP_OK && i < sizeof(rnd); i++)
		snprintf(t->session + 2 * i, 3, "%02x", rnd[i]);
	cep_cp_opts co;
	cep_cp_opts_defaults(&co);
	if (rc == CEP_OK &&
	    (snprintf(co.url, sizeof(co.url), "%s", o->url) >=
	            (int)sizeof(co.url) ||
	        snprintf(co.ca_file, sizeof(co.ca_file), "%s",
	            o->ca_file ? o->ca_file : "") >= (int)sizeof(co.ca_file) ||
	        snprintf(co.proxy, sizeof(co.proxy), "%s",
	            o->proxy ? o->proxy : "") >= (int)sizeof(co.proxy)))
		rc = cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "tunnel: url, CA "
		    "file or proxy too long");
	co.cert_pem = o->cert_pem;
	co.key_pem = o->key_pem;
	if (rc == CEP_OK)
		rc = cep_cp_new(&co, &t->cp, err);
	if (rc != CEP_OK) {
		free(t);
		return cep_err_wrap(err, "control-plane tunnel");
	}
	atomic_store(&t->next_id, 1);
	*out = t;
	return CEP_OK;
}

int runner_tunnel_invoke(cep_runner_tunnel *t, const char *method,
    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rd,
    ProtobufCMessage **reply, int timeout_ms, bool *answered, cep_err *err)
{
	*answered = false;
	if (reply != NULL)
		*reply = NULL;
	uint64_t id = atomic_fetch_add(&t->next_id, 1);
	uint8_t *frame = NULL, *back = NULL;
	size_t len = 0, blen = 0;
	int rc = cep_rpc_request_pack(method, id, timeout_ms, req, &frame, &len,
	    err);
	if (rc != CEP_OK)
		return rc;
	cep_cp_tunnel_req treq = {.method = method,
	    .session = t->session,
	    .frame = frame,
	    .len = len,
	    .timeout_ms = timeout_ms + TUNNEL_MARGIN_MS};
	rc = cep_cp_tunnel(t->cp, &treq, &back, &blen, err);
	free(frame);
	/* the plane or the path to it failed, not the relay: to the caller
	 * that is "relay unreachable this way" (retried, and no dead-man
	 * credit), whatever the HTTP status said */
	if (rc != CEP_OK && rc != CEP_CANCELLED && rc != CEP_DEADLINE_EXCEEDED)
		rc = cep_err_set(err, CEP_UNAVAILABLE, "%s",
		    err != NULL ? err->msg : "control-plane tunnel failed");
	if (rc != CEP_OK)
		return rc;
	/* an Envelope came back: whatever its status, the relay sent it */
	*answered = true;
	rc = cep_rpc_reply_unpack(back, blen, id, method, rd, reply, err);
	free(back);
	if (rc == CEP_OK)
		cep_err_clear(err);
	return rc;
}

const char *runner_tunnel_host(const cep_runner_tunnel *t)
{
	return cep_cp_host(t->cp);
}

void runner_tunnel_cancel(cep_runner_tunnel *t)
{
	if (t != NULL)
		cep_cp_cancel(t->cp);
}

void runner_tunnel_free(cep_runner_tunnel *t)
{
	if (t == NULL)
		return;
	cep_cp_free(t->cp);
	free(t);
}
