/*
 * sdnotify.h - the systemd service protocol of a cep daemon (Type=notify):
 * READY=1, STATUS=<one line>, WATCHDOG=1, STOPPING=1.
 *
 * The watchdog pings come from a thread of this module, but only while the
 * daemon shows it is alive: the daemon gives a liveness counter (the tick
 * of its main loop, e.g. the delegate's monitor or the relay's ticker) and
 * a ping is sent only when that counter moved since the last ping. A daemon
 * whose loop hangs stops pinging, and systemd (WatchdogSec=) restarts it;
 * a blind timer would keep a hung daemon "healthy" forever.
 *
 * Outside systemd (no NOTIFY_SOCKET) every call is a cheap no-op and no
 * thread is started. Usable by every daemon (relay, delegate, signer,
 * launcher).
 */
#ifndef CEP_SDNOTIFY_H
#define CEP_SDNOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct cep_sd cep_sd;

typedef struct cep_sd_ops {
	/* Liveness counter of the loop that must not hang; must advance
	 * more often than every half watchdog interval. NULL: the module
	 * sends READY/STATUS but never pings (then do not set WatchdogSec). */
	uint64_t (*tick)(void *arg);
	/* One-line state for STATUS= (no newline), refreshed with each
	 * ping and at least every CEP_SD_STATUS_MS. NULL: no STATUS=. */
	void (*status)(void *arg, char *buf, size_t len);
	void *arg;
} cep_sd_ops;

/* How often STATUS= is refreshed when no watchdog asks for more. */
#define CEP_SD_STATUS_MS 10000

/* Sends READY=1 with the first STATUS= and, under systemd, starts the
 * thread that refreshes STATUS= and pings the watchdog at half of
 * WATCHDOG_USEC. Without NOTIFY_SOCKET *out is a handle that does nothing.
 * ops is copied. */
int cep_sdnotify_start(const cep_sd_ops *ops, cep_sd **out, cep_err *err);
/* Sends STOPPING=1 with status (NULL: "stopping"); the watchdog keeps
 * pinging while the daemon's loop still ticks during the graceful stop. */
void cep_sdnotify_stopping(cep_sd *sd, const char *status);
/* Stops the thread and frees. NULL-safe. */
void cep_sdnotify_free(cep_sd *sd);

/* The ping interval in microseconds: half of WATCHDOG_USEC for this
 * process, 0 when systemd asks for no watchdog. */
uint64_t cep_sdnotify_watchdog_interval_us(void);

#endif
