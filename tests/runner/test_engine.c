/*
 * test_engine.c - whole runs of the engine against the in-memory sink:
 * phases and their order, verdicts and scores, abort with hog workers
 * observed in /proc, and a refused fault record that must keep the fault
 * from ever being injected.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "rt.h"
#include "clock.h"

static rt_sink S;
static void setup(void)
{
	rt_sink_open(&S);
}
static void teardown(void)
{
	rt_sink_close(&S);
}
TestSuite(engine, .init = setup, .fini = teardown, .timeout = 60);

#define HEAD(dur)                                                         \
	"apiVersion: cep.io/v1\nkind: Experiment\nmetadata:\n  name: t\n" \
	"spec:\n  duration: " dur "\n"

static void run(const char *yaml, cep_runner_result *res)
{
	cep_exp *e = rt_parse(yaml);
	runner_engine_run(e, S.sink, res);
	cep_exp_free(e);
}

static Cep__V1__Event *ev(size_t i)
{
	return runner_memsink_event(S.mem, i);
}

/* Phases in order, as one string: "setup,steady-state,...". */
static void phases(char *out, size_t len)
{
	out[0] = '\0';
	for (size_t i = 0; i < runner_memsink_nevents(S.mem); i++) {
		if (ev(i)->type != CEP__V1__EVENT_TYPE__EVENT_PHASE)
			continue;
		size_t o = strlen(out);
		snprintf(out + o, len - o, "%s%s", o ? "," : "", ev(i)->phase);
	}
}

static Cep__V1__ProbeResult *final_of(const char *name)
{
	for (size_t i = 0; i < runner_memsink_nevents(S.mem); i++) {
		Cep__V1__Event *e = ev(i);
		if (e->type == CEP__V1__EVENT_TYPE__EVENT_PROBE &&
		    e->probe->final && strcmp(e->probe->name, name) == 0)
			return e->probe;
	}
	return NULL;
}

static int count_checks(const char *name)
{
	int n = 0;
	for (size_t i = 0; i < runner_memsink_nevents(S.mem); i++) {
		Cep__V1__Event *e = ev(i);
		n += e->type == CEP__V1__EVENT_TYPE__EVENT_PROBE &&
		    !e->probe->final && strcmp(e->probe->name, name) == 0;
	}
	return n;
}

static const Cep__V1__Verdict *last_verdict(void)
{
	size_t n = runner_memsink_nevents(S.mem);
	cr_assert_gt(n, 0);
	Cep__V1__Event *e = ev(n - 1);
	cr_assert_eq(e->type, CEP__V1__EVENT_TYPE__EVENT_VERDICT,
	    "last event is not the verdict");
	return e->verdict;
}

Test(engine, pass_with_phases_in_order_and_every_probe_mode)
{
	cep_runner_result res;
	run(HEAD(
	        "1s") "  faults:\n"
	              "    - {name: hog, type: cpu-hog, workers: 1, load: 10}\n"
	              "  probes:\n"
	              "    - {name: sot, type: cmd, mode: start-of-test, command: [\"true\"]}\n"
	              "    - {name: edge, type: cmd, mode: edge, command: [\"true\"]}\n"
	              "    - {name: cont, type: cmd, mode: continuous, interval: 200ms, "
	              "command: [\"true\"]}\n"
	              "    - {name: chaos, type: cmd, mode: on-chaos, interval: 200ms, "
	              "command: [\"true\"]}\n"
	              "    - {name: eot, type: cmd, mode: end-of-test, command: [\"true\"]}\n",
	    &res);
	char ph[256];
	phases(ph, sizeof(ph));
	cr_expect_str_eq(ph,
	    "setup,steady-state,chaos,revert,post-chaos,verdict");
	cr_expect_str_eq(res.verdict, "Pass", "%s", res.reason);
	cr_expect_float_eq(res.score, 100.0, 1e-9);
	const Cep__V1__Verdict *v = last_verdict();
	cr_expect_str_eq(v->verdict, "Pass");
	/* seq 1, 2, 3 ... without gaps */
	for (size_t i = 0; i < runner_memsink_nevents(S.mem); i++)
		cr_expect_eq(ev(i)->seq, i + 1);
	const char *names[] = {"sot", "edge", "cont", "chaos", "eot"};
	for (size_t i = 0; i < 5; i++) {
		Cep__V1__ProbeResult *f = final_of(names[i]);
		cr_assert_not_null(f, "no final result for %s", names[i]);
		cr_expect(f->ok, "%s: %s", names[i], f->detail);
	}
	cr_expect_eq(count_checks("edge"), 2);
	cr_expect_geq(count_checks("cont"), 3, "continuous ran %d times",
	    count_checks("cont"));
	cr_expect_geq(count_checks("chaos"), 2);
	cr_expect_eq(runner_memsink_nrecords(S.mem), 1);
	cr_expect_eq(runner_memsink_nreverted(S.mem), 1);
	int pids[4];
	cr_expect_eq(rt_children_named("cep-cpu-hog", pids, 4), 0);
}

Test(engine, failing_probe_gives_fail_and_weighted_score)
{
	cep_runner_result res;
	run(HEAD(
	        "200ms") "  probes:\n"
	                 "    - {name: good, type: cmd, mode: end-of-test, weight: 3, "
	                 "command: [\"true\"]}\n"
	                 "    - {name: bad, type: cmd, mode: start-of-test, weight: 1, "
	                 "command: [\"false\"]}\n",
	    &res);
	cr_expect_str_eq(res.verdict, "Fail");
	cr_expect_float_eq(res.score, 75.0, 1e-9);
	const Cep__V1__Verdict *v = last_verdict();
	cr_expect_str_eq(v->verdict, "Fail");
	cr_expect_float_eq(v->score, 75.0, 1e-9);
	cr_expect_not(final_of("bad")->ok);
	cr_expect(final_of("good")->ok);
}

Test(engine, no_probes_pass_with_full_score)
{
	cep_runner_result res;
	run(HEAD("100ms"), &res);
	cr_expect_str_eq(res.verdict, "Pass");
	cr_expect_float_eq(res.score, 100.0, 1e-9);
}

Test(engine, stop_on_failure_ends_chaos_early)
{
	cep_runner_result res;
	int64_t t0 = cep_clock_mono_ms();
	run(HEAD(
	        "20s") "  faults:\n"
	               "    - {name: hog, type: cpu-hog, workers: 1, load: 10}\n"
	               "  probes:\n"
	               "    - {name: guard, type: cmd, mode: on-chaos, interval: 100ms, "
	               "stopOnFailure: true, command: [\"false\"]}\n",
	    &res);
	cr_expect_lt(cep_clock_mono_ms() - t0, 5000, "chaos was not cut short");
	cr_expect_str_eq(res.verdict, "Fail");
	char ph[256];
	phases(ph, sizeof(ph));
	cr_expect_str_eq(ph,
	    "setup,steady-state,chaos,revert,post-chaos,verdict");
	int pids[4];
	cr_expect_eq(rt_children_named("cep-cpu-hog", pids, 4), 0);
}

/* Aborts once both hog workers run; measures abort -> /proc clean. */
typedef struct aborter {
	int64_t clean_ms;
	int seen;
} aborter;

static void *abort_when_hogging(void *arg)
{
	aborter *a = arg;
	int pids[8];
	int64_t give_up = cep_clock_mono_ms() + 10000;
	while ((a->seen = rt_children_named("cep-cpu-hog", pids, 8)) < 2 &&
	    cep_clock_mono_ms() < give_up)
		cep_clock_sleep_ms(10);
	cep_clock_sleep_ms(100);
	int64_t t0 = cep_clock_mono_ms();
	runner_ctl_abort(S.ctl, "aborted by operator");
	bool left = true;
	while (left && cep_clock_mono_ms() - t0 < 5000) {
		left = false;
		for (int i = 0; i < a->seen && i < 8; i++)
			left = left || rt_pid_exists(pids[i]);
		if (left)
			cep_clock_sleep_ms(5);
	}
	a->clean_ms = left ? -1 : cep_clock_mono_ms() - t0;
	return NULL;
}

Test(engine, abort_mid_chaos_kills_workers_within_a_second)
{
	aborter a = {0};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, abort_when_hogging, &a), 0);
	cep_runner_result res;
	run(HEAD(
	        "30s") "  faults:\n"
	               "    - {name: hog, type: cpu-hog, workers: 2, load: 10}\n"
	               "  probes:\n"
	               "    - {name: cont, type: cmd, mode: continuous, interval: 100ms, "
	               "command: [\"true\"]}\n",
	    &res);
	pthread_join(t, NULL);
	cr_assert_eq(a.seen, 2, "hog workers never appeared");
	cr_expect_geq(a.clean_ms, 0, "workers still there 5 s after abort");
	cr_expect_lt(a.clean_ms, 1000, "workers gone only after %lld ms",
	    (long long)a.clean_ms);
	cr_expect_str_eq(res.verdict, "Aborted");
	cr_expect_str_eq(res.reason, "aborted by operator");
	cr_expect_str_eq(last_verdict()->verdict, "Aborted");
	char ph[256];
	phases(ph, sizeof(ph));
	cr_expect_str_eq(ph, "setup,steady-state,chaos,revert,verdict");
}

Test(engine, deadline_aborts_the_run)
{
	runner_ctl_set_deadline(S.ctl, cep_clock_mono_ms() + 300);
	cep_runner_result res;
	int64_t t0 = cep_clock_mono_ms();
	run(HEAD(
	        "30s") "  faults:\n"
	               "    - {name: hog, type: cpu-hog, workers: 1, load: 10}\n",
	    &res);
	cr_expect_lt(cep_clock_mono_ms() - t0, 2000);
	cr_expect_str_eq(res.verdict, "Aborted");
	cr_expect_str_eq(res.reason, "deadline");
	int pids[4];
	cr_expect_eq(rt_children_named("cep-cpu-hog", pids, 4), 0);
}

/* Watches /proc for any hog worker during the run. */
static atomic_bool watching;
static atomic_int hogs_seen;

static void *watch_hogs(void *arg)
{
	(void)arg;
	int pids[8];
	while (atomic_load(&watching)) {
		if (rt_children_named("cep-cpu-hog", pids, 8) > 0)
			atomic_fetch_add(&hogs_seen, 1);
		cep_clock_sleep_ms(2);
	}
	return NULL;
}

Test(engine, unrecorded_fault_is_never_injected)
{
	runner_memsink_refuse_records(S.mem, true);
	atomic_store(&watching, true);
	atomic_store(&hogs_seen, 0);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, watch_hogs, NULL), 0);
	cep_runner_result res;
	run(HEAD(
	        "500ms") "  faults:\n"
	                 "    - {name: hog, type: cpu-hog, workers: 2, load: 10}\n"
	                 "  probes:\n"
	                 "    - {name: sot, type: cmd, mode: start-of-test, command: [\"true\"]}\n",
	    &res);
	atomic_store(&watching, false);
	pthread_join(t, NULL);
	cr_expect_eq(atomic_load(&hogs_seen), 0, "a hog worker appeared");
	cr_expect_str_eq(res.verdict, "Error");
	cr_expect(strstr(res.reason, "could not be recorded") != NULL, "%s",
	    res.reason);
	cr_expect_str_eq(last_verdict()->verdict, "Error");
	cr_expect_eq(runner_memsink_nrecords(S.mem), 0);
}

/* A fault with its own shorter duration is reverted when it ends, while
 * chaos goes on. */
static void *hog_lifetime(void *arg)
{
	int64_t *gone_after = arg;
	int pids[4];
	int64_t t0 = 0, until = cep_clock_mono_ms() + 10000;
	while (cep_clock_mono_ms() < until) {
		int n = rt_children_named("cep-cpu-hog", pids, 4);
		if (n > 0 && t0 == 0)
			t0 = cep_clock_mono_ms();
		if (n == 0 && t0 != 0) {
			*gone_after = cep_clock_mono_ms() - t0;
			return NULL;
		}
		cep_clock_sleep_ms(5);
	}
	return NULL;
}

Test(engine, fault_duration_shorter_than_chaos)
{
	int64_t gone_after = -1;
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, hog_lifetime, &gone_after), 0);
	cep_runner_result res;
	int64_t t0 = cep_clock_mono_ms();
	run(HEAD(
	        "1500ms") "  faults:\n"
	                  "    - {name: hog, type: cpu-hog, workers: 1, load: 10, "
	                  "duration: 300ms}\n",
	    &res);
	int64_t took = cep_clock_mono_ms() - t0;
	pthread_join(t, NULL);
	cr_expect_geq(gone_after, 250, "hog lived %lld ms",
	    (long long)gone_after);
	cr_expect_lt(gone_after, 1000, "hog lived %lld ms",
	    (long long)gone_after);
	cr_expect_geq(took, 1500, "chaos did not last its duration");
	cr_expect_str_eq(res.verdict, "Pass");
	/* reverted during chaos: the FAULT event comes before phase revert */
	size_t reverted_at = 0, revert_phase = 0;
	for (size_t i = 0; i < runner_memsink_nevents(S.mem); i++) {
		Cep__V1__Event *e = ev(i);
		if (e->type == CEP__V1__EVENT_TYPE__EVENT_FAULT &&
		    strcmp(e->fault->state, "reverted") == 0)
			reverted_at = i;
		if (e->type == CEP__V1__EVENT_TYPE__EVENT_PHASE &&
		    strcmp(e->phase, "revert") == 0)
			revert_phase = i;
	}
	cr_expect_gt(reverted_at, 0);
	cr_expect_lt(reverted_at, revert_phase);
	cr_expect_eq(runner_memsink_nreverted(S.mem), 1);
}
