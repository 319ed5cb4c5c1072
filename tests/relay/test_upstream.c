/*
 * test_upstream.c - the relay with a control plane that cannot be reached:
 * acknowledged batches wait in the spool, and once it is full runners are
 * held back (RESOURCE_EXHAUSTED, nothing reaches the delegate), counted
 * and logged once - never a silent drop. Delivery once the plane is back
 * is tests/e2e/test_controlplane.py's. Harness: relay_harness.c.
 */
#define _GNU_SOURCE
#include "relay_harness.c"

#include <string.h>

#include "metrics.h"
#include "clock.h"

#define SPOOL_MAX (96 * 1024) /* room while the spool holds < 32 KiB */
#define TEXT_LEN 1500 /* 16 events: ~24 KiB; the fake delegate acks seq < 64 */

static void unreachable_plane(cep_config *cfg)
{
	/* a port nobody listens on: every upload fails at once */
	snprintf(cfg->cp.url, sizeof(cfg->cp.url), "https://127.0.0.1:%d",
	    cep_test_free_port());
	cfg->cp.timeout_ms = 1000;
	cfg->cp.poll_wait_ms = 500;
	cfg->cp.spool_max_bytes = SPOOL_MAX;
}

static void setup_up(void)
{
	setup_with(unreachable_plane);
}

TestSuite(upstream, .init = setup_up, .fini = teardown, .timeout = 60);

/* n events of TEXT_LEN bytes, seq first.., pushed for rn's run. */
static int push_big(runner *rn, uint64_t first, size_t n, cep_err *err)
{
	static char text[TEXT_LEN + 1];
	memset(text, 'x', TEXT_LEN);
	Cep__V1__Event ev[64], *evp[64];
	for (size_t i = 0; i < n; i++) {
		cep__v1__event__init(&ev[i]);
		ev[i].run_id = rn->run_id;
		ev[i].seq = first + i;
		ev[i].time_ms = cep_clock_now_ms();
		ev[i].type = CEP__V1__EVENT_TYPE__EVENT_LOG;
		ev[i].text = text;
		evp[i] = &ev[i];
	}
	Cep__V1__EventBatch b = CEP__V1__EVENT_BATCH__INIT;
	b.run_id = rn->run_id;
	b.n_events = n;
	b.events = evp;
	return rcall(rn, "PushEvents", &b.base, &cep__v1__event_ack__descriptor,
	    NULL, err);
}

static double metric(const char *name)
{
	char *text = NULL;
	size_t len = 0;
	cep_err err = {0};
	cr_assert_eq(cep_metrics_render(relay_metrics(E.relay), &text, &len,
	                 &err),
	    0, "%s", err.msg);
	char key[128];
	snprintf(key, sizeof(key), "\n%s ", name);
	const char *p = strstr(text, key);
	double v = p ? strtod(p + strlen(key), NULL) : -1;
	free(text);
	return v;
}

Test(upstream, full_spool_holds_runners_back_counted_and_logged_once)
{
	runner *rn = runner_new(1, E.ca, 0, 0);
	grant(rn);
	sync_grants();
	runner_connect(rn);
	cep_err err = {0};
	cr_assert_eq(runner_prove(rn, false, &err), 0, "%s", err.msg);
	uint64_t seq = 1;
	int rc = CEP_OK, accepted = 0;
	/* ~24 KiB a batch: the second fills the spool past its room */
	for (int i = 0; i < 3 && rc == CEP_OK; i++) {
		rc = push_big(rn, seq, 16, &err);
		if (rc == CEP_OK) {
			seq += 16;
			accepted++;
		}
	}
	cr_assert_eq(rc, CEP_RESOURCE_EXHAUSTED, "never held back: %d %s", rc,
	    err.msg);
	cr_assert(strstr(err.msg, "spool is full") != NULL, "%s", err.msg);
	cr_assert_eq(accepted, 2, "the spool took %d batches", accepted);
	/* the refused batch never reached the delegate: it has exactly the
	 * accepted events, which wait in the spool */
	pthread_mutex_lock(&E.fd.mu);
	uint64_t at_delegate = E.fd.events;
	pthread_mutex_unlock(&E.fd.mu);
	cr_assert_eq(at_delegate, (uint64_t)accepted * 16);
	cr_assert_gt(metric("cep_relay_spool_bytes"), 0);
	cr_assert_eq(metric("cep_relay_upstream_events_total"), 0);
	/* still full: refused again, counted each time, logged once */
	cr_assert_eq(push_big(rn, seq, 16, &err), CEP_RESOURCE_EXHAUSTED);
	cr_assert_geq(metric("cep_relay_spool_full_total"), 2);
	cr_assert_eq(log_lines("spool full", "runners are held back", NULL), 1);
	cr_assert_geq(log_lines("kept in the spool", NULL, NULL), 1,
	    "the uploader did not say why events wait");
}
