/*
 * test_relay_load.c - 200 runners at once through one relay: each proves
 * its identity and pushes 20 events in batches; the fake delegate must see
 * every (run, seq), and no more duplicates than the runners' own retries
 * can explain. Harness: relay_harness.c.
 */
#define _GNU_SOURCE
#include "relay_harness.c"

#include <string.h>

#include "clock.h"

TestSuite(relay_load, .init = setup, .fini = teardown, .timeout = 120);

#define MANY 200
#define MANY_THREADS 8
#define MANY_EVENTS 20
#define MANY_BATCH 5

typedef struct many_arg {
	runner **rn; /* this thread's runners */
	size_t n;
	uint64_t retried_events;
	int failures;
	char err[CEP_ERR_MSG_MAX + 64];
} many_arg;

/* Retries what a real runner retries: transport trouble, with backoff.
 * A retried push may reach the delegate twice; that is the runner's
 * doing and counted here, so the relay's own duplicates stand out. */
static int with_retry(many_arg *m, runner *rn, uint64_t first)
{
	cep_err err = {0};
	for (int attempt = 0; attempt < 6; attempt++) {
		int rc = first == 0 ? runner_prove(rn, false, &err) :
		                      push(rn, rn->run_id, rn->run_id, first,
		                          MANY_BATCH, NULL, &err);
		if (rc == 0)
			return 0;
		if (rc == CEP_UNAUTHENTICATED && first > 0) {
			/* reconnected on a new pipe: prove again, then resend
			 * (this push never reached the delegate) */
			runner_prove(rn, false, &err);
			continue;
		}
		if (!cep_rpc_retryable(rc))
			break;
		if (first > 0)
			m->retried_events += MANY_BATCH;
		cep_clock_sleep_ms(cep_rpc_backoff_ms(attempt, 20, 500));
	}
	snprintf(m->err, sizeof(m->err), "%s: %s", rn->run_id, err.msg);
	return -1;
}

static void *many_thread(void *p)
{
	many_arg *m = p;
	for (size_t i = 0; i < m->n; i++)
		runner_connect(m->rn[i]);
	for (size_t i = 0; i < m->n && m->failures == 0; i++)
		m->failures += with_retry(m, m->rn[i], 0) != 0;
	/* batch by batch across all runners: all 200 pipes stay busy */
	for (uint64_t first = 1; first <= MANY_EVENTS && m->failures == 0;
	     first += MANY_BATCH)
		for (size_t i = 0; i < m->n && m->failures == 0; i++)
			m->failures += with_retry(m, m->rn[i], first) != 0;
	return NULL;
}

Test(relay_load, two_hundred_runners)
{
	static runner *rn[MANY];
	static many_arg args[MANY_THREADS];
	for (unsigned i = 0; i < MANY; i++) {
		rn[i] = runner_new(i + 20, E.ca, 0, 0);
		grant(rn[i]);
	}
	sync_grants();
	int64_t t0 = cep_clock_mono_ms();
	pthread_t t[MANY_THREADS];
	size_t per = MANY / MANY_THREADS;
	for (int k = 0; k < MANY_THREADS; k++) {
		args[k] = (many_arg){.rn = &rn[(size_t)k * per], .n = per};
		pthread_create(&t[k], NULL, many_thread, &args[k]);
	}
	uint64_t retried = 0;
	for (int k = 0; k < MANY_THREADS; k++) {
		pthread_join(t[k], NULL);
		cr_assert_eq(args[k].failures, 0, "%s", args[k].err);
		retried += args[k].retried_events;
	}
	int64_t took = cep_clock_mono_ms() - t0;

	Cep__V1__RelayStats *st = stats();
	cr_assert_eq(st->runners_connected, MANY);
	cr_assert_eq(st->refused, 0);
	cr_assert_geq(st->events_in, (uint64_t)MANY * MANY_EVENTS);
	protobuf_c_message_free_unpacked(&st->base, NULL);

	pthread_mutex_lock(&E.fd.mu);
	for (unsigned i = 0; i < MANY; i++) {
		int ri = run_index(rn[i]->run_id);
		for (unsigned s = 1; s <= MANY_EVENTS; s++)
			cr_assert_geq(E.fd.seen[ri][s], 1,
			    "%s seq %u never arrived", rn[i]->run_id, s);
		cr_assert_eq(E.fd.acked[ri], MANY_EVENTS);
	}
	cr_assert_leq(E.fd.dupes, retried,
	    "%" PRIu64 " duplicates but the runners retried only %" PRIu64
	    " events: the relay duplicated",
	    E.fd.dupes, retried);
	cr_assert_eq(E.fd.events, (uint64_t)MANY * MANY_EVENTS + E.fd.dupes);
	cr_assert_eq(E.fd.connected, MANY);
	pthread_mutex_unlock(&E.fd.mu);
	cr_log_info("200 runners: %" PRId64 " ms, %" PRIu64 " events retried",
	    took, retried);
}
