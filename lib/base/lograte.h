/*
 * lograte.h - lines about peers, bounded: at most burst lines per key (a
 * peer's address) per interval, so that a peer that makes a refusal a
 * millisecond makes a line or two, not one per refusal. What is held back
 * is counted and told with the key's next line. A fixed table of keys:
 * when it is full the least recent key is forgotten (its next line is
 * logged at once). Thread-safe.
 */
#ifndef CEP_LOGRATE_H
#define CEP_LOGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct cep_lograte cep_lograte;

/* interval_ms > 0, burst >= 1. */
int cep_lograte_new(cep_lograte **out, int interval_ms, int burst,
    cep_err *err);
/* True: log this line now; *held is the lines held back for key since
 * its last logged one (0 mostly). False: hold it back (counted). now_ms is
 * a monotonic clock (cep_clock_mono_ms). NULL l: always true, *held 0. */
bool cep_lograte_take(cep_lograte *l, const char *key, int64_t now_ms,
    uint64_t *held);
void cep_lograte_free(cep_lograte *l); /* NULL-safe */
/* The key of a peer: its address without the port ("1.2.3.4:5" ->
 * "1.2.3.4", "[::1]:5" -> "::1"); anything else as it is. */
void cep_lograte_peer_key(const char *peer, char *key, size_t len);

#endif
