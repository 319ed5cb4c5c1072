/*
 * pipes.h - what the relay knows about each runner connection (nng pipe).
 *
 * nng 1.5 does not show the TLS peer certificate, so identity lives here:
 * a pipe gets a nonce from Challenge (single use, 30 s), and after a good
 * Prove it is bound to one run id. Later calls are authorised against that
 * binding. When the run leaves the registry the binding is dropped and the
 * run id kept as `revoked`, so the refusal can say why.
 *
 * Plain data: no locks, no I/O. The relay serialises access with its mutex.
 */
#ifndef CEP_RELAY_PIPES_H
#define CEP_RELAY_PIPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "run_id.h"

#define CEP_PIPES_NONCE_LEN 32
#define CEP_PIPES_NONCE_TTL_MS 30000

typedef struct cep_pipes cep_pipes;

typedef struct cep_relay_pipe {
	uint32_t id;
	bool verified; /* TLS client cert verified */
	char peer[64];
	uint8_t nonce[CEP_PIPES_NONCE_LEN];
	bool has_nonce;
	int64_t nonce_mono_ms; /* when it was issued */
	bool bound;
	cep_run_id run_id;    /* bound run */
	int64_t not_after_ms; /* identity expiry, unix ms */
	cep_run_id revoked;   /* run that left while bound */
	struct cep_relay_pipe *next;
} cep_relay_pipe;

int relay_pipes_new(cep_pipes **out, cep_err *err);
void relay_pipes_free(cep_pipes *t);

cep_relay_pipe *relay_pipes_find(cep_pipes *t, uint32_t id);
/* Finds or creates the entry. NULL when the pipe has already been removed
 * (a call processed after its connection closed) or out of memory. */
cep_relay_pipe *relay_pipes_get(cep_pipes *t, uint32_t id, bool verified,
    const char *peer);
void relay_pipes_remove(cep_pipes *t, uint32_t id);

/* Binds p to run_id (replacing the nonce-only state). */
void relay_pipes_bind(cep_pipes *t, cep_relay_pipe *p, const char *run_id,
    int64_t not_after_ms);
/* Unbinds every pipe bound to run_id; returns how many. */
size_t relay_pipes_unbind_run(cep_pipes *t, const char *run_id);
/* Pipes bound to a run: runners connected. */
uint32_t relay_pipes_bound(const cep_pipes *t);

#endif
