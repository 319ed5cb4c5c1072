/*
 * tunnel_int.h - the tunnel's insides that tests and fuzzers drive
 * (tests/fuzz/fuzz_tunnel_calls.c): a tunnel with no threads and no
 * control plane, one TunnelPoll answer taken as the poller takes it, and
 * the replies the sender would post. The relay uses tunnel.h only.
 */
#ifndef CEP_RELAY_TUNNEL_INT_H
#define CEP_RELAY_TUNNEL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cep.pb-c.h"
#include "tunnel.h"

/* Live (run id, session) pairs, each one virtual pipe. */
#define SESSION_MAX 1024
/* Replies waiting for the sender; one more is dropped (the plane answers
 * its runner 504). */
#define REPLY_QUEUE_MAX 4096

/* A tunnel that polls nothing and sends nothing (no control plane): free
 * it with relay_tunnel_free. NULL when out of memory. */
cep_tunnel *relay_tunnel_alloc(const char *appliance, cep_rpc_server *runners,
    cep_tunnel_gone_fn gone, void *arg);
/* The calls of one TunnelPoll answer, each checked and dispatched to the
 * Runner server on its session's virtual pipe; each gets one reply. */
void relay_tunnel_take_calls(cep_tunnel *t,
    const Cep__V1__CpTunnelCalls *calls);
/* The oldest queued reply (the caller frees *buf); false when none. */
bool relay_tunnel_reply_pop(cep_tunnel *t, uint64_t *id, uint8_t **buf,
    size_t *len);
/* Sessions (virtual pipes) now known. */
size_t relay_tunnel_sessions(cep_tunnel *t);

#endif
