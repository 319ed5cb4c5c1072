/*
 * bench_relay.c - the real cep-relay and cep-delegate under N simulated
 * runners. Prints figures; never fails on speed (docs/performance.md).
 *
 *   bench_relay [-n runners] [-d seconds] [--down ms] [--redial ms]
 *               [--watchdog ms] [--storm-only] [--small] [--keep]
 *
 * A scratch home is made with `cepctl init` (binaries beside this one,
 * or $CEP_BIN_DIR), cep-relay and cep-delegate are started in it, and N
 * host runs are submitted through the admin socket. The delegate mints
 * each run's identity with the home's CA and grants it to the relay as for
 * any run; the "runner" it launches (CEP_RUNNER_BIN) is this program in a
 * stand-in mode that only reports its identity folder and sleeps. This
 * process then plays the N runners: its own mTLS session per runner (one
 * nng dialer each), Challenge + Prove with the run's key, then
 * PushEvents, WatchCommands and the reverted event over the relay.
 *
 * Phases: connect+prove; saturation through the relay and direct;
 * latency at 10k events/s through the relay and direct; reconnect storm
 * (kill -9 of the relay, restart) with the journal accounting; abort
 * fan-out (--storm-only: connect, storm and abort alone; --down: the
 * relay is restarted that many ms after the kill, default 0; --redial:
 * a runner not proven again that long after the kill makes a new client,
 * as lib/rpc's watchdog now does itself; --watchdog: the clients'
 * watchdog_ms, default lib/rpc's, or 30 ms per runner above 480). "Direct" is Delegate/RunnerEvents on <run>/delegate.sock, the
 * ipc socket the relay itself forwards to: the same calls without the
 * relay (and without TLS, which only the relay's side has).
 *
 * --small: N=20, 1 s phases: what ctest runs. It fails (exit 1) only when
 * a runner cannot prove, an event is lost or a phase cannot complete,
 * never on speed.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cep.pb-c.h"
#include "log.h"
#include "pki.h"
#include "relay_app.h"
#include "clock.h"
#include "files.h"

#define BATCH 64
#define RATE 10000.0 /* events/s of the latency phase */
/* A call's timeout: 10 s, or the clients' watchdog when longer (a call
 * that times out on a connection that never answered replaces it, as the
 * watchdog does: with hundreds of handshakes queued at the relay a
 * Challenge waits longer than 10 s). */
#define CALL_MS (B.watchdog_ms > 10000 ? B.watchdog_ms : 10000)
/* What a phase may take: 120 s, or 250 ms per runner above 480 (at
 * N = 1,000 on 2 loaded cores all N handshakes alone take about 100 s). */
#define BUDGET_US(n) ((n) > 480 ? (int64_t)(n)*250000 : 120000000LL)
#define PROVE_BUDGET_US BUDGET_US(B.n)
#define STORM_BUDGET_US BUDGET_US(B.n)
#define ABORT_BUDGET_US (BUDGET_US(B.n) / 2)
#define WATCHDOG_MS_PER_RUNNER 30 /* the clients' default above 480 */

typedef struct sim {
	char run_id[32];
	char *ca, *cert, *key;
	uint8_t *der;
	size_t der_len;
	cep_rpc_client *rc;
	uint64_t next, acked;     /* next seq to send; highest acked */
	uint64_t retried;         /* events sent again after a failed call */
	int64_t proven_us, ok_us; /* last proof, last acked push */
	int64_t *lat;             /* the phase's latencies, us */
	size_t nlat, cap;
	uint64_t cmd_seq;
	int64_t reverted_us;
	int failed;   /* could not complete a phase */
	bool out;     /* never proven: left out of the later phases */
	int redialed; /* clients made again (--redial) */
} sim;

static struct {
	bapp app;
	sim *s;
	int n, secs;
	int active;  /* runners proven in the connect phase */
	int down_ms; /* the relay stays dead this long */
	long fds0;   /* the relay's fds before any runner */
	atomic_int stop;
	atomic_int parked;
	int64_t t0, until;
	_Atomic int64_t kill_us; /* the storm's kill -9 */
	int redial_ms;           /* --redial: a new client after this long */
	int watchdog_ms;         /* --watchdog: the clients' (0 = lib/rpc's) */
	double interval_us;
	bool direct;
	int bad;
} B;

/* ------------------------------------------------------------- runner */

static int load_identity(sim *s, const char *dir, cep_err *err)
{
	char path[4200];
	size_t len;
	const char *names[3] = {"ca.crt", "runner.crt", "runner.key"};
	char **outs[3] = {&s->ca, &s->cert, &s->key};
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		int rv = cep_files_read(path, 65536, outs[i], &len, err);
		if (rv != CEP_OK)
			return rv;
	}
	return cep_pki_cert_der(s->cert, &s->der, &s->der_len, err);
}

static int prove(sim *s, cep_err *err)
{
	Cep__V1__ChallengeRequest cq = CEP__V1__CHALLENGE_REQUEST__INIT;
	cq.run_id = s->run_id;
	Cep__V1__ChallengeReply *ch = NULL;
	int rv = cep_rpc_invoke(s->rc, "cep.v1.Runner/Challenge", &cq.base,
	    &cep__v1__challenge_reply__descriptor, (ProtobufCMessage **)&ch,
	    CALL_MS, err);
	if (rv != CEP_OK)
		return rv;
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	rv = cep_pki_sign_proof(s->key, ch->nonce.data, ch->nonce.len, &sig,
	    &sig_len, err);
	cep__v1__challenge_reply__free_unpacked(ch, NULL);
	if (rv != CEP_OK)
		return rv;
	Cep__V1__ProveRequest pq = CEP__V1__PROVE_REQUEST__INIT;
	pq.run_id = s->run_id;
	pq.cert_der.data = s->der;
	pq.cert_der.len = s->der_len;
	pq.signature.data = sig;
	pq.signature.len = sig_len;
	rv = cep_rpc_invoke(s->rc, "cep.v1.Runner/Prove", &pq.base, NULL, NULL,
	    CALL_MS, err);
	free(sig);
	if (rv == CEP_OK)
		s->proven_us = bapp_now_us();
	return rv;
}

/* Proves until it works or the budget runs out, as a runner retries. */
static int prove_retry(sim *s, int64_t until, cep_err *err)
{
	for (int attempt = 0;; attempt++) {
		int rv = prove(s, err);
		if (rv == CEP_OK || bapp_now_us() >= until)
			return rv;
		cep_clock_sleep_ms(cep_rpc_backoff_ms(attempt, 100, 2000));
	}
}

/* One batch of n events from s->next: the latency in *us, the code. */
static int push_once(sim *s, size_t n, bool reverted, bool direct, int64_t *us,
    cep_err *err)
{
	static char text[] = "probe http-ok: status 200 in 12ms (GET /healthz)";
	Cep__V1__Event ev[BATCH], *evp[BATCH];
	Cep__V1__FaultState fs = CEP__V1__FAULT_STATE__INIT;
	fs.fault_id = "bench";
	fs.type = "none";
	fs.state = "reverted";
	for (size_t i = 0; i < n; i++) {
		cep__v1__event__init(&ev[i]);
		ev[i].run_id = s->run_id;
		ev[i].seq = s->next + i;
		ev[i].time_ms = cep_clock_now_ms();
		ev[i].type = reverted ? CEP__V1__EVENT_TYPE__EVENT_FAULT :
		                        CEP__V1__EVENT_TYPE__EVENT_LOG;
		ev[i].text = text;
		ev[i].fault = reverted ? &fs : NULL;
		evp[i] = &ev[i];
	}
	Cep__V1__EventBatch b = CEP__V1__EVENT_BATCH__INIT;
	b.run_id = s->run_id;
	b.events = evp;
	b.n_events = n;
	Cep__V1__EventAck *ack = NULL;
	int64_t t0 = bapp_now_us();
	int rv = cep_rpc_invoke(direct ? B.app.dlg : s->rc,
	    direct ? "cep.v1.Delegate/RunnerEvents" :
	             "cep.v1.Runner/PushEvents",
	    &b.base, &cep__v1__event_ack__descriptor, (ProtobufCMessage **)&ack,
	    CALL_MS, err);
	*us = bapp_now_us() - t0;
	if (rv != CEP_OK)
		return rv;
	if (ack->acked_seq > s->acked)
		s->acked = ack->acked_seq;
	cep__v1__event_ack__free_unpacked(ack, NULL);
	if (s->acked < s->next + n - 1)
		return cep_err_set(err, CEP_INTERNAL,
		    "run %s: acked %llu, "
		    "sent up to %llu",
		    s->run_id, (unsigned long long)s->acked,
		    (unsigned long long)(s->next + n - 1));
	s->next += n;
	s->ok_us = bapp_now_us();
	return CEP_OK;
}

/* --redial: a runner not proven again redial_ms after the kill gets a
 * new client (what a client-side watchdog in lib/rpc would do). The old
 * one is left open: closing a stuck one hangs. */
static void maybe_redial(sim *s)
{
	int64_t k = atomic_load(&B.kill_us);
	if (B.redial_ms == 0 || k == 0 || s->proven_us > k ||
	    bapp_now_us() - k < (int64_t)B.redial_ms * 1000)
		return;
	cep_err err = {0};
	cep_rpc_client *c = NULL;
	cep_rpc_tls tls = {.cert_pem = s->cert,
	    .key_pem = s->key,
	    .ca_pem = s->ca,
	    .server_name = "localhost"};
	cep_rpc_client_opts o = {.watchdog_ms = B.watchdog_ms};
	if (cep_rpc_client_new_opts(&c, B.app.url, &tls, &o, &err) == CEP_OK) {
		s->rc = c;
		s->redialed++;
	}
}

/* A batch until it is acked (re-proving on UNAUTHENTICATED, as a runner
 * does) or the bench stops; the latency of the call that worked. */
static int push(sim *s, size_t n, bool reverted, bool direct, int64_t *us)
{
	cep_err err = {0};
	for (int attempt = 0;; attempt++) {
		int rv = push_once(s, n, reverted, direct, us, &err);
		if (rv == CEP_OK)
			return CEP_OK;
		if (atomic_load(&B.stop) && attempt > 0)
			return rv;
		s->retried += n;
		if (!s->redialed)
			maybe_redial(s);
		if (rv == CEP_UNAUTHENTICATED)
			(void)prove(s, &err);
		else
			cep_clock_sleep_ms(
			    cep_rpc_backoff_ms(attempt, 50, 1000));
		if (attempt > 200) {
			fprintf(stderr, "bench_relay: %s: push: %s\n",
			    s->run_id, err.msg);
			return rv;
		}
	}
}

static void note_lat(sim *s, int64_t us)
{
	if (s->nlat == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		int64_t *n = realloc(s->lat, cap * sizeof(*n));
		if (n == NULL)
			return;
		s->lat = n;
		s->cap = cap;
	}
	s->lat[s->nlat++] = us;
}

/* ------------------------------------------------------------- phases */

static void *ph_connect(void *arg)
{
	sim *s = arg;
	cep_err err = {0};
	cep_rpc_tls tls = {.cert_pem = s->cert,
	    .key_pem = s->key,
	    .ca_pem = s->ca,
	    .server_name = "localhost"};
	cep_rpc_client_opts o = {.watchdog_ms = B.watchdog_ms};
	if (cep_rpc_client_new_opts(&s->rc, B.app.url, &tls, &o, &err) !=
	        CEP_OK ||
	    prove_retry(s, B.t0 + PROVE_BUDGET_US, &err) != CEP_OK) {
		fprintf(stderr, "bench_relay: %s: %s\n", s->run_id, err.msg);
		s->failed = 1;
	}
	return NULL;
}

static void *ph_saturate(void *arg)
{
	sim *s = arg;
	int64_t us;
	while (bapp_now_us() < B.until)
		if (push(s, BATCH, false, B.direct, &us) != CEP_OK) {
			s->failed = 1;
			break;
		}
	return NULL;
}

/* Pushes at B.interval_us, runners spread evenly over the interval. */
static void *ph_paced(void *arg)
{
	sim *s = arg;
	int64_t next = B.t0 +
	    (int64_t)(B.interval_us * (double)(s - B.s) / B.n),
	        us;
	while (next < B.until) {
		int64_t now = bapp_now_us();
		if (next > now)
			usleep((useconds_t)(next - now));
		if (push(s, BATCH, false, B.direct, &us) != CEP_OK) {
			s->failed = 1;
			break;
		}
		note_lat(s, us);
		next += (int64_t)B.interval_us;
	}
	return NULL;
}

static void *ph_storm(void *arg)
{
	sim *s = arg;
	int64_t us;
	while (!atomic_load(&B.stop)) {
		if (push(s, BATCH, false, false, &us) != CEP_OK &&
		    !atomic_load(&B.stop))
			s->failed = 1;
		cep_clock_sleep_ms(200);
	}
	return NULL;
}

/* Long-polls for the abort; answers it with a reverted event. */
static void *ph_abort(void *arg)
{
	sim *s = arg;
	cep_err err = {0};
	int64_t us, until = bapp_now_us() + ABORT_BUDGET_US;
	atomic_fetch_add(&B.parked, 1);
	while (bapp_now_us() < until) {
		Cep__V1__WatchRequest rq = CEP__V1__WATCH_REQUEST__INIT;
		rq.run_id = s->run_id;
		rq.after_seq = s->cmd_seq;
		Cep__V1__CommandBatch *cb = NULL;
		int rv = cep_rpc_invoke(s->rc, "cep.v1.Runner/WatchCommands",
		    &rq.base, &cep__v1__command_batch__descriptor,
		    (ProtobufCMessage **)&cb, 15000, &err);
		if (rv == CEP_UNAUTHENTICATED)
			(void)prove(s, &err);
		if (rv != CEP_OK)
			continue;
		bool abort = false;
		for (size_t i = 0; i < cb->n_commands; i++) {
			if (cb->commands[i]->seq > s->cmd_seq)
				s->cmd_seq = cb->commands[i]->seq;
			abort |= cb->commands[i]->kind ==
			    CEP__V1__COMMAND__KIND__ABORT;
		}
		cep__v1__command_batch__free_unpacked(cb, NULL);
		if (!abort)
			continue;
		if (push(s, 1, true, false, &us) == CEP_OK)
			s->reverted_us = bapp_now_us();
		return NULL;
	}
	s->failed = 1;
	return NULL;
}

static void run_phase(void *(*fn)(void *))
{
	pthread_t *th = calloc((size_t)(unsigned)B.n, sizeof(*th));
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 256 * 1024);
	for (int i = 0; i < B.n; i++)
		if (!B.s[i].out &&
		    pthread_create(&th[i], &at, fn, &B.s[i]) != 0) {
			fprintf(stderr,
			    "bench_relay: no thread for runner %d\n", i);
			exit(2);
		}
	pthread_attr_destroy(&at);
	for (int i = 0; i < B.n; i++)
		if (!B.s[i].out)
			pthread_join(th[i], NULL);
	free(th);
}

/* --------------------------------------------------------- reporting */

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* p50/p99 of the values v[0..n) (sorted in place), in ms. */
static void pct(int64_t *v, size_t n, double *p50, double *p99)
{
	*p50 = *p99 = 0;
	if (n == 0)
		return;
	qsort(v, n, sizeof(*v), cmp64);
	*p50 = (double)v[n / 2] / 1000.0;
	*p99 = (double)v[(n * 99) / 100] / 1000.0;
}

static int phase_failures(const char *phase)
{
	int f = 0;
	for (int i = 0; i < B.n; i++) {
		f += B.s[i].failed;
		B.s[i].failed = 0;
	}
	if (f) {
		printf("  %s: %d runner(s) could not complete the phase\n",
		    phase, f);
		B.bad = 1;
	}
	return f;
}

static uint64_t acked_total(void)
{
	uint64_t t = 0;
	for (int i = 0; i < B.n; i++)
		t += B.s[i].acked;
	return t;
}

/* ------------------------------------------------------------ phases */

static void connect_all(void)
{
	bproc before, after;
	bproc_read(B.app.relay, &before);
	B.fds0 = before.fds;
	B.t0 = bapp_now_us();
	run_phase(ph_connect);
	int64_t last = 0;
	int64_t *t = calloc((size_t)(unsigned)B.n, sizeof(*t));
	for (int i = 0; i < B.n; i++) {
		t[i] = B.s[i].proven_us - B.t0;
		if (t[i] > last)
			last = t[i];
	}
	double p50, p99;
	pct(t, (size_t)B.n, &p50, &p99);
	free(t);
	cep_clock_sleep_ms(500); /* the relay's buffers settle */
	bproc_read(B.app.relay, &after);
	uint64_t wd = 0;
	for (int i = 0; i < B.n; i++)
		wd += cep_rpc_client_redials(B.s[i].rc);
	printf("connect  N=%d  all proven in %.2f s (p50 %.0f ms, p99 %.0f "
	       "ms); watchdog redials %llu\n",
	    B.n, (double)last / 1e6, p50, p99, (unsigned long long)wd);
	printf("relay    RSS %ld -> %ld KiB = %.1f KiB per runner;  fds %ld "
	       "-> %ld;  threads %ld -> %ld\n",
	    before.rss_kib, after.rss_kib,
	    (double)(after.rss_kib - before.rss_kib) / B.n, before.fds,
	    after.fds, before.threads, after.threads);
	B.active = B.n;
	for (int i = 0; i < B.n; i++)
		if (B.s[i].failed) {
			B.s[i].out = true;
			B.active--;
		}
	if (phase_failures("connect") && B.active > 0)
		printf("  connect: the other phases run with the %d proven\n",
		    B.active);
}

static double saturate(bool direct)
{
	bproc r0, r1, d0, d1;
	bproc_read(B.app.relay, &r0);
	bproc_read(B.app.delegate, &d0);
	uint64_t e0 = acked_total();
	B.direct = direct;
	B.t0 = bapp_now_us();
	B.until = B.t0 + (int64_t)B.secs * 1000000;
	run_phase(ph_saturate);
	double s = (double)(bapp_now_us() - B.t0) / 1e6;
	bproc_read(B.app.relay, &r1);
	bproc_read(B.app.delegate, &d1);
	double ev = (double)(acked_total() - e0), rate = ev / s;
	printf("%-8s saturation  %d pushers x %d-event batches  %.0f events/s "
	       "journalled;  CPU s per 10k events: relay %.3f, delegate %.3f\n",
	    direct ? "direct" : "relay", B.n, BATCH, rate,
	    ev > 0 ? (r1.cpu_s - r0.cpu_s) * 1e4 / ev : 0,
	    ev > 0 ? (d1.cpu_s - d0.cpu_s) * 1e4 / ev : 0);
	phase_failures("saturation");
	return rate;
}

static void paced(bool direct, double *p50, double *p99)
{
	for (int i = 0; i < B.n; i++)
		B.s[i].nlat = 0;
	B.direct = direct;
	B.interval_us = (double)B.active * BATCH / RATE * 1e6;
	int secs = B.secs < 2 * B.interval_us / 1e6 ?
	    (int)(2 * B.interval_us / 1e6) + 1 :
	    B.secs;
	B.t0 = bapp_now_us() + 100000;
	B.until = B.t0 + (int64_t)secs * 1000000;
	run_phase(ph_paced);
	size_t n = 0;
	for (int i = 0; i < B.n; i++)
		n += B.s[i].nlat;
	int64_t *all = calloc(n + 1, sizeof(*all));
	size_t k = 0;
	for (int i = 0; i < B.n; i++)
		for (size_t j = 0; j < B.s[i].nlat; j++)
			all[k++] = B.s[i].lat[j];
	pct(all, n, p50, p99);
	free(all);
	printf("%-8s latency at %.0f events/s  push -> journal ack  n=%zu  "
	       "p50 %.2f ms  p99 %.2f ms\n",
	    direct ? "direct" : "relay", RATE, n, *p50, *p99);
	phase_failures("latency");
}

static void journal_accounting(const char *when)
{
	uint64_t lost = 0, dups = 0, events = 0, retried = 0;
	for (int i = 0; i < B.n; i++) {
		uint64_t l, d, e;
		cep_err err = {0};
		if (bapp_journal_check(&B.app, B.s[i].run_id, B.s[i].acked, &l,
		        &d, &e, &err) != CEP_OK) {
			printf("  journal of %s: %s\n", B.s[i].run_id, err.msg);
			B.bad = 1;
			continue;
		}
		lost += l;
		dups += d;
		events += e;
		retried += B.s[i].retried;
	}
	printf(
	    "journal  %s: %llu events acked, %llu journalled; lost %llu, "
	    "duplicates in the journal %llu; events sent again after a failed "
	    "call %llu\n",
	    when, (unsigned long long)acked_total(), (unsigned long long)events,
	    (unsigned long long)lost, (unsigned long long)dups,
	    (unsigned long long)retried);
	if (lost || dups)
		B.bad = 1;
}

typedef struct storm_arg {
	int64_t kill_us;
} storm_arg;

static void *storm_driver(void *arg)
{
	storm_arg *a = arg;
	cep_err err = {0};
	cep_clock_sleep_ms(1000);
	a->kill_us = bapp_now_us();
	atomic_store(&B.kill_us, a->kill_us);
	bapp_kill9_relay(&B.app);
	cep_clock_sleep_ms(B.down_ms);
	if (bapp_start_relay(&B.app, &err) != CEP_OK) {
		fprintf(stderr, "bench_relay: restart: %s\n", err.msg);
		B.bad = 1;
	}
	/* all re-proven and pushing again, or the budget */
	for (;;) {
		int back = 0;
		for (int i = 0; i < B.n; i++)
			back += B.s[i].proven_us > a->kill_us &&
			    B.s[i].ok_us > B.s[i].proven_us;
		if (back == B.active ||
		    bapp_now_us() - a->kill_us > STORM_BUDGET_US)
			break;
		cep_clock_sleep_ms(10);
	}
	atomic_store(&B.stop, 1);
	return NULL;
}

static void storm(void)
{
	storm_arg a = {0};
	pthread_t th;
	atomic_store(&B.stop, 0);
	pthread_create(&th, NULL, storm_driver, &a);
	run_phase(ph_storm);
	pthread_join(th, NULL);
	atomic_store(&B.stop, 0);
	int64_t last = 0;
	int back = 0;
	for (int i = 0; i < B.n; i++)
		if (B.s[i].proven_us > a.kill_us) {
			back++;
			if (B.s[i].proven_us - a.kill_us > last)
				last = B.s[i].proven_us - a.kill_us;
		}
	int redialed = 0;
	uint64_t wd = 0;
	for (int i = 0; i < B.n; i++) {
		redialed += B.s[i].redialed;
		wd += cep_rpc_client_redials(B.s[i].rc);
	}
	printf("storm    kill -9 + restart %d ms later of the relay under %d "
	       "runners: %d proven again, the last %.2f s after the kill; "
	       "watchdog redials %llu (since the start)%s",
	    B.down_ms, B.n, back, (double)last / 1e6, (unsigned long long)wd,
	    B.redial_ms ? "" : "\n");
	if (B.redial_ms)
		printf(" (%d new clients made after %d ms)\n", redialed,
		    B.redial_ms);
	if (back != B.active) {
		bproc rp;
		bproc_read(B.app.relay, &rp);
		printf(
		    "  storm: %d runner(s) not back; the relay holds %ld fds "
		    "(%d runners + %ld of its own before)\n",
		    B.active - back, rp.fds, back, B.fds0);
		B.bad = 1;
	}
	phase_failures("storm");
	journal_accounting("after the storm");
}

static void abort_fanout(void)
{
	cep_err err = {0};
	atomic_store(&B.parked, 0);
	pthread_t *th = calloc((size_t)(unsigned)B.n, sizeof(*th));
	for (int i = 0; i < B.n; i++)
		if (!B.s[i].out)
			pthread_create(&th[i], NULL, ph_abort, &B.s[i]);
	while (atomic_load(&B.parked) < B.active)
		cep_clock_sleep_ms(10);
	cep_clock_sleep_ms(1000); /* the long-polls reach the relay */
	int64_t t0 = bapp_now_us();
	if (bapp_abort_all(&B.app, &err) != CEP_OK) {
		printf("  abort: %s\n", err.msg);
		B.bad = 1;
	}
	for (int i = 0; i < B.n; i++)
		if (!B.s[i].out)
			pthread_join(th[i], NULL);
	free(th);
	int64_t *t = calloc((size_t)(unsigned)B.n, sizeof(*t));
	size_t k = 0;
	for (int i = 0; i < B.n; i++)
		if (B.s[i].reverted_us > 0)
			t[k++] = B.s[i].reverted_us - t0;
	double p50, p99;
	pct(t, k, &p50, &p99);
	free(t);
	printf("abort    all %d runs at once (ABORT_ALL): %zu reverted events "
	       "journalled; abort -> reverted p50 %.1f ms  p99 %.1f ms\n",
	    B.n, k, p50, p99);
	phase_failures("abort");
}

/* ------------------------------------------------------------- setup */

static void submit_all(void)
{
	cep_err err = {0};
	int64_t t0 = bapp_now_us();
	for (int i = 0; i < B.n; i++)
		if (bapp_submit(&B.app, B.s[i].run_id, sizeof(B.s[i].run_id),
		        &err) != CEP_OK) {
			fprintf(stderr, "bench_relay: submit %d: %s\n", i,
			    err.msg);
			bapp_stop(&B.app, 1);
			exit(2);
		}
	for (int i = 0; i < B.n; i++) {
		char dir[4096];
		sim *s = &B.s[i];
		s->next = 1;
		if (bapp_identity_dir(&B.app, s->run_id, dir, sizeof(dir),
		        120000, &err) != CEP_OK ||
		    load_identity(s, dir, &err) != CEP_OK) {
			fprintf(stderr, "bench_relay: %s\n", err.msg);
			bapp_stop(&B.app, 1);
			exit(2);
		}
	}
	printf("setup    %d host runs submitted and their identities minted "
	       "and granted by the delegate in %.2f s\n",
	    B.n, (double)(bapp_now_us() - t0) / 1e6);
}

static int arg_int(int argc, char **argv, const char *flag, int def)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], flag) == 0) {
			char *end;
			long v = strtol(argv[i + 1], &end, 10);
			if (*end == '\0' && v > 0 && v <= 10000)
				return (int)v;
		}
	return def;
}

static bool has_flag(int argc, char **argv, const char *flag)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], flag) == 0)
			return true;
	return false;
}

static void bindir(char *buf, size_t len)
{
	const char *env = getenv("CEP_BIN_DIR");
	if (env != NULL) {
		snprintf(buf, len, "%s", env);
		return;
	}
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
}

/* N runners are N sockets here and in the relay (which inherits it):
 * the soft limit (often 1024) up to the hard one. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void cleanup(void)
{
	for (int i = 0; i < B.n; i++) {
		cep_rpc_client_free(B.s[i].rc);
		free(B.s[i].ca);
		free(B.s[i].cert);
		cep_pki_free_secret(B.s[i].key);
		free(B.s[i].der);
		free(B.s[i].lat);
	}
	free(B.s);
}

int main(int argc, char **argv)
{
	bapp_stub_main(argc, argv);
	bool small = has_flag(argc, argv, "--small");
	B.n = arg_int(argc, argv, "-n", small ? 20 : 100);
	B.secs = arg_int(argc, argv, "-d", small ? 1 : 5);
	B.down_ms = arg_int(argc, argv, "--down", 0);
	B.redial_ms = arg_int(argc, argv, "--redial", 0);
	/* Above 480 runners lib/rpc's 5 s watchdog abandons sockets still in
	 * the queue of handshakes, the relay redoes them, and at N = 1,000
	 * the connect phase collapsed (9,016 redials, 564 never proven in
	 * 250 s; docs/performance.md, "Profiling"): 30 ms per runner. */
	B.watchdog_ms = arg_int(argc, argv, "--watchdog",
	    B.n > 480 ? B.n * WATCHDOG_MS_PER_RUNNER : 0);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	cep_log_init("bench");
	cep_log_set_level(CEP_LOG_WARN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	char bin[2048];
	bindir(bin, sizeof(bin));
	cep_err err = {0};
	if (bapp_init(&B.app, bin, B.n + 10, &err) != CEP_OK ||
	    bapp_start_all(&B.app, &err) != CEP_OK) {
		fprintf(stderr, "bench_relay: %s\n", err.msg);
		bapp_stop(&B.app, 1);
		return 2;
	}
	printf("bench_relay: N=%d runners, %d s phases, clients' watchdog %s%d "
	       "ms, home %s\n",
	    B.n, B.secs, B.watchdog_ms ? "" : "lib/rpc's ",
	    B.watchdog_ms ? B.watchdog_ms : 5000, B.app.home);
	B.s = calloc((size_t)(unsigned)B.n, sizeof(*B.s));
	submit_all();
	connect_all();
	/* runners that never proved are out; the rest go on (and a failure
	 * still ends the run with exit 1) */
	if (B.active > 0 && !has_flag(argc, argv, "--storm-only")) {
		double relay = saturate(false), direct = saturate(true);
		printf("ratio    relay/direct throughput %.2f\n",
		    direct > 0 ? relay / direct : 0);
		double r50, r99, d50, d99;
		paced(false, &r50, &r99);
		paced(true, &d50, &d99);
		printf("added    by the relay at %.0f events/s: p50 %+.2f ms  "
		       "p99 %+.2f ms\n",
		    RATE, r50 - d50, r99 - d99);
	}
	if (B.active > 0) {
		storm();
		abort_fanout();
		journal_accounting("at the end");
	}
	bool keep = has_flag(argc, argv, "--keep") || B.bad;
	if (keep)
		printf("home kept: %s\n", B.app.home);
	/* The runners' clients are closed while the relay still answers: a
	 * dialer redialing a relay that is gone (or one stuck since the
	 * storm, docs/performance.md) hangs nng_close; kept, they are left
	 * to the exit. */
	if (!keep)
		cleanup();
	bapp_stop(&B.app, keep);
	printf("bench_relay: %s\n", B.bad ? "FAILED (see above)" : "done");
	return B.bad ? 1 : 0;
}
