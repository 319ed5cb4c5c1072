/*
 * relay.h - cep-relay, the hub between runners and the delegate.
 *
 * A relay listens for runners (tls+tcp, mutual TLS, cfg->relay_listen) and
 * for the delegate (ipc <run>/relay.sock), and is a client of the delegate
 * (<run>/delegate.sock). It authenticates every runner by proof of
 * possession, authorises every call against the active-run registry the
 * delegate syncs, forwards events and fault records to the delegate, and
 * holds commands for the runners' long-polls. See docs/relay.md.
 *
 * main.c only parses arguments and waits for a signal; everything else is
 * here, so tests run a whole relay in-process.
 */
#ifndef CEP_RELAY_H
#define CEP_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

typedef struct cep_relay cep_relay;

/* Loads paths->pki/ca.crt, relay.crt and relay.key (refused when the key
 * is readable by group or others), starts both listeners and the delegate
 * client. Returns with everything listening. */
int relay_new(const cep_paths *paths, const cep_config *cfg, cep_relay **out,
    cep_err *err);
/* Answers every parked call, stops the listeners, frees. NULL-safe. */
void relay_free(cep_relay *r);
/* The runner port actually bound (useful with port 0). */
int relay_port(cep_relay *r);
/* The relay's Prometheus registry (docs/metrics.md), for main.c to serve
 * with cep_metrics_start; owned by the relay. */
struct cep_metrics *relay_metrics(cep_relay *r);
/* Liveness for the systemd watchdog (lib/base/sdnotify.h): advances with each
 * turn of the relay's ticker loop, at least once a second. */
uint64_t relay_ticks(cep_relay *r);
/* One line for systemd's STATUS=: runners connected, spool bytes. */
void relay_describe(cep_relay *r, char *buf, size_t len);

#endif
