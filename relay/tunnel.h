/*
 * tunnel.h - the relay's end of the runners' control-plane tunnel
 * (docs/relay.md, "Tunnel"): runners that cannot reach the relay call the
 * plane over HTTPS; the plane queues those calls, and this module takes
 * them with the TunnelPoll long-poll, runs each through the Runner
 * service exactly as if it had come over a connection, and returns the
 * reply Envelope with TunnelReply.
 *
 * Each (run id, session) the plane names is one *virtual pipe*: an id
 * with CEP_RPC_VIRTUAL_PIPE set, so Challenge/Prove bind it and every
 * later call is authorised against that binding as on a real pipe. A
 * session idle for SESSION_IDLE_MS is dropped (gone() is called, like a
 * closed connection).
 */
#ifndef CEP_RELAY_TUNNEL_H
#define CEP_RELAY_TUNNEL_H

#include "config.h"
#include "err.h"
#include "rpc.h"

typedef struct cep_tunnel cep_tunnel;

/* A virtual pipe is gone (idle session): forget it like a closed one. */
typedef void (*cep_tunnel_gone_fn)(cep_pipe_id pipe, void *arg);

/* NULL *out (and CEP_OK) without a control plane. runners: the server
 * whose Runner handlers run the calls. */
int relay_tunnel_start(const cep_config *cfg, cep_rpc_server *runners,
    cep_tunnel_gone_fn gone, void *arg, cep_tunnel **out, cep_err *err);
/* Stops polling and sending; replies produced later are dropped (the
 * plane answers its runner 504). Call before freeing the server. */
void relay_tunnel_stop(cep_tunnel *t);
/* After the server is freed (its last replies land in t). NULL-safe. */
void relay_tunnel_free(cep_tunnel *t);

#endif
