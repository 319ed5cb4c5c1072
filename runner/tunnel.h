/*
 * tunnel.h - the runner's fallback transport: Runner calls through the
 * control plane over HTTPS, when the relay cannot be reached (the
 * "existing proxy" mode, docs/runner.md "Tunnel").
 *
 * Each call is one Envelope (the same bytes as over nng) POSTed to
 * <url>/v1/tunnel/<method> through the site proxy, with the run's identity
 * as the TLS client certificate; the plane hands it to the appliance's
 * relay and returns the relay's reply Envelope. One session id (random,
 * per tunnel) names this runner's virtual pipe at the relay, so Challenge
 * and Prove bind it like a connection. Above this, nothing changes:
 * session.c chooses the path per call.
 */
#ifndef CEP_RUNNER_TUNNEL_H
#define CEP_RUNNER_TUNNEL_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "err.h"

typedef struct cep_runner_tunnel cep_runner_tunnel;

typedef struct cep_runner_tunnel_opts {
	const char *url;      /* https://plane[:port][/prefix] */
	const char *ca_file;  /* the plane's CA; NULL/"" = system CAs */
	const char *proxy;    /* http://proxy:port; NULL/"" = direct */
	const char *cert_pem; /* the run's identity: must outlive t */
	const char *key_pem;
} cep_runner_tunnel_opts;

int runner_tunnel_new(cep_runner_tunnel **out, const cep_runner_tunnel_opts *o,
    cep_err *err);
/* As cep_rpc_invoke. *answered: the status came from the relay (an
 * Envelope came back), not from the plane or the path to it - only such
 * answers feed the dead-man. */
int runner_tunnel_invoke(cep_runner_tunnel *t, const char *method,
    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rd,
    ProtobufCMessage **reply, int timeout_ms, bool *answered, cep_err *err);
/* "127.0.0.1:8443" for logs. */
const char *runner_tunnel_host(const cep_runner_tunnel *t);
/* Calls in flight (a long-poll) end now, later ones fail. */
void runner_tunnel_cancel(cep_runner_tunnel *t);
void runner_tunnel_free(cep_runner_tunnel *t); /* NULL-safe */

#endif
