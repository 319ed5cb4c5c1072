/*
 * bus_side.h - the cep side of the bus benchmarks (bench_rpc, and
 * bench_grpc which runs the same calls over gRPC beside it): the two calls,
 * a server that answers them and the test CA's certificates. Test code
 * (tests/bench/); usable from C++ (bench_grpc's driver).
 *
 *   Echo: cep.v1.Bench/Echo, ChallengeRequest{run_id} -> ChallengeReply
 *         {nonce: the first <= 16 bytes of run_id} (a unary call with a
 *         small reply);
 *   Push: cep.v1.Bench/Push, EventBatch of BBUS_BATCH Event (~87 bytes
 *         each, as a runner pushes to the relay) -> EventAck{acked_seq:
 *         the last event's seq}, which the caller checks.
 */
#ifndef BENCH_BUS_SIDE_H
#define BENCH_BUS_SIDE_H

#ifdef __cplusplus
extern "C" {
#endif

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define BBUS_BATCH 64
#define BBUS_RUN_ID "r-0123456789abcdef"
#define BBUS_EVENT_TEXT "probe http-ok: status 200 in 12ms (GET /healthz)  "

typedef struct cep_rpc_server cep_rpc_server;
typedef struct cep_rpc_client cep_rpc_client;
typedef struct cep_rpc_call cep_rpc_call;

/* PEM text of a fresh test CA (ECDSA P-256, lib/pki) made in dir, a server
 * certificate for DNS "localhost" and a client certificate it issued. */
typedef struct bbus_tls {
	char *ca, *srv_cert, *srv_key, *cli_cert, *cli_key;
} bbus_tls;
int bbus_tls_make(const char *dir, bbus_tls *t, cep_err *err);
void bbus_tls_free(bbus_tls *t); /* wipes the keys */

/* The Echo/Push server (2 handler workers), not listening yet. */
int bbus_server_new(cep_rpc_server **out, cep_err *err);

/* Push's handler: acks an EventBatch with its last seq (also the stand-in
 * delegate's RunnerEvents in bench_upstream). */
void bbus_ack_batch(cep_rpc_call *c, void *arg);

/* One Echo call with ChallengeRequest{run_id = payload}. */
int bbus_echo(cep_rpc_client *c, const char *payload, cep_err *err);

/* A pusher's batch: run BBUS_RUN_ID, seqs 1, 2, 3... */
typedef struct bbus_batch bbus_batch;
bbus_batch *bbus_batch_new(void);
void bbus_batch_free(bbus_batch *b);
/* Pushes the next BBUS_BATCH events, checks the ack; *bytes (may be NULL)
 * the request's packed size. */
int bbus_push(cep_rpc_client *c, bbus_batch *b, size_t *bytes, cep_err *err);

/* The value of "flag N" in argv (0 < N < 1000000), else def. */
int bbus_arg_int(int argc, char **argv, const char *flag, int def);

#ifdef __cplusplus
}
#endif

#endif
