/*
 * test_session.c - the real cep-runner binary against a fake relay run by
 * the test: real TLS with identities from lib/pki, the real RPC layer. The
 * fake is strict where the relay is: every call before Prove, and the
 * first PushEvents after it, is refused UNAUTHENTICATED (the runner must
 * prove again), and events are journaled only as seq == last + 1.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "pki.h"
#include "rpc.h"
#include "rt.h"
#include "testutil.h"
#include "clock.h"
#include "files.h"
#include "util.h"

#define RUN_ID "r-00112233aabbccdd"

typedef struct relay {
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	uint8_t nonce[32];
	bool proven, refused_first_push, stopping, abort;
	int proves, records, reverted;
	int64_t full_until; /* PushEvents refused as on a full disk till then */
	int full_refusals;
	const char *spec;
	uint32_t deadman_ms;
	Cep__V1__Event *ev[512];
	size_t nev;
} relay;

static relay R;
static char *dir, *ca_pem;
static cep_rpc_server *srv;
static int port;

/* --------------------------------------------------------- the fake */

static bool bound(cep_rpc_call *c)
{
	pthread_mutex_lock(&R.mtx);
	bool ok = R.proven;
	pthread_mutex_unlock(&R.mtx);
	if (!ok)
		cep_rpc_call_fail(c, CEP_UNAUTHENTICATED,
		    "pipe not bound to a run");
	return ok;
}

static void h_challenge(cep_rpc_call *c, void *arg)
{
	(void)arg;
	Cep__V1__ChallengeReply rep = CEP__V1__CHALLENGE_REPLY__INIT;
	pthread_mutex_lock(&R.mtx);
	cep_util_random(R.nonce, sizeof(R.nonce), NULL);
	rep.nonce.data = R.nonce;
	rep.nonce.len = sizeof(R.nonce);
	cep_rpc_call_reply(c, &rep.base);
	pthread_mutex_unlock(&R.mtx);
}

static void h_prove(cep_rpc_call *c, void *arg)
{
	(void)arg;
	const Cep__V1__ProveRequest *req = (const Cep__V1__ProveRequest *)
	    cep_rpc_call_request(c);
	cep_pki_identity id;
	cep_err err = {0};
	if (cep_pki_verify_der(ca_pem, req->cert_der.data, req->cert_der.len,
	        cep_clock_now_ms(), &id, &err) != CEP_OK ||
	    strcmp(id.run_id.s, RUN_ID) != 0 ||
	    strcmp(req->run_id, RUN_ID) != 0 ||
	    cep_pki_check_proof(req->cert_der.data, req->cert_der.len, R.nonce,
	        sizeof(R.nonce), req->signature.data, req->signature.len,
	        &err) != CEP_OK) {
		cep_rpc_call_fail(c, CEP_UNAUTHENTICATED, "proof refused: %s",
		    err.msg);
		return;
	}
	pthread_mutex_lock(&R.mtx);
	R.proven = true;
	R.proves++;
	pthread_mutex_unlock(&R.mtx);
	Cep__V1__ProveReply rep = CEP__V1__PROVE_REPLY__INIT;
	rep.run_id = RUN_ID;
	cep_rpc_call_reply(c, &rep.base);
}

static void h_assignment(cep_rpc_call *c, void *arg)
{
	(void)arg;
	if (!bound(c))
		return;
	Cep__V1__Assignment a = CEP__V1__ASSIGNMENT__INIT;
	a.run_id = RUN_ID;
	a.spec_yaml = (char *)R.spec;
	a.spec_name = "test.yaml";
	a.deadline_ms = cep_clock_now_ms() + 60000;
	a.deadman_ms = R.deadman_ms;
	cep_rpc_call_reply(c, &a.base);
}

static void h_push(cep_rpc_call *c, void *arg)
{
	(void)arg;
	if (!bound(c))
		return;
	const Cep__V1__EventBatch *b = (const Cep__V1__EventBatch *)
	    cep_rpc_call_request(c);
	pthread_mutex_lock(&R.mtx);
	if (!R.refused_first_push) {
		/* as after a relay restart: the pipe forgot its run */
		R.refused_first_push = true;
		R.proven = false;
		pthread_mutex_unlock(&R.mtx);
		cep_rpc_call_fail(c, CEP_UNAUTHENTICATED, "pipe not bound");
		return;
	}
	if (cep_clock_mono_ms() < R.full_until) {
		R.full_refusals++;
		pthread_mutex_unlock(&R.mtx);
		cep_rpc_call_fail(c, CEP_RESOURCE_EXHAUSTED,
		    "journal: No space left on device");
		return;
	}
	for (size_t i = 0; i < b->n_events; i++) {
		if (b->events[i]->seq != R.nev + 1 || R.nev == 512)
			continue;
		size_t len = cep__v1__event__get_packed_size(b->events[i]);
		uint8_t *buf = malloc(len + 1);
		cep__v1__event__pack(b->events[i], buf);
		R.ev[R.nev++] = cep__v1__event__unpack(NULL, len, buf);
		free(buf);
	}
	Cep__V1__EventAck ack = CEP__V1__EVENT_ACK__INIT;
	ack.acked_seq = R.nev;
	pthread_cond_broadcast(&R.cond);
	pthread_mutex_unlock(&R.mtx);
	cep_rpc_call_reply(c, &ack.base);
}

static void h_watch(cep_rpc_call *c, void *arg)
{
	(void)arg;
	if (!bound(c))
		return;
	int64_t until = cep_rpc_call_deadline(c) - 500;
	/* as the relay does: a command the runner has (seq <= after_seq) is
	 * not sent again, so a runner that has the abort parks here rather
	 * than spinning on the same answer */
	const Cep__V1__WatchRequest *req = (const Cep__V1__WatchRequest *)
	    cep_rpc_call_request(c);
	bool has = req->after_seq >= 1;
	Cep__V1__Command cmd = CEP__V1__COMMAND__INIT, *cmds[1] = {&cmd};
	Cep__V1__CommandBatch b = CEP__V1__COMMAND_BATCH__INIT;
	pthread_mutex_lock(&R.mtx);
	while (
	    (!R.abort || has) && !R.stopping && cep_clock_mono_ms() < until) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&R.cond, &R.mtx, &ts);
	}
	if (R.abort && !has) {
		cmd.seq = 1;
		cmd.kind = CEP__V1__COMMAND__KIND__ABORT;
		cmd.reason = "aborted by operator";
		b.n_commands = 1;
		b.commands = cmds;
	}
	pthread_mutex_unlock(&R.mtx);
	cep_rpc_call_reply(c, &b.base);
}

static void h_fault(cep_rpc_call *c, void *arg)
{
	(void)arg;
	if (!bound(c))
		return;
	bool rec = strstr(cep_rpc_call_method(c), "RecordFault") != NULL;
	pthread_mutex_lock(&R.mtx);
	(*(rec ? &R.records : &R.reverted))++;
	pthread_cond_broadcast(&R.cond);
	pthread_mutex_unlock(&R.mtx);
	Cep__V1__FaultAck ack = CEP__V1__FAULT_ACK__INIT;
	ack.recorded = true;
	cep_rpc_call_reply(c, &ack.base);
}

static const cep_rpc_method methods[] = {
    {"cep.v1.Runner/Challenge", &cep__v1__challenge_request__descriptor,
        h_challenge},
    {"cep.v1.Runner/Prove", &cep__v1__prove_request__descriptor, h_prove},
    {"cep.v1.Runner/GetAssignment", &cep__v1__assignment_request__descriptor,
        h_assignment},
    {"cep.v1.Runner/PushEvents", &cep__v1__event_batch__descriptor, h_push},
    {"cep.v1.Runner/WatchCommands", &cep__v1__watch_request__descriptor,
        h_watch},
    {"cep.v1.Runner/RecordFault", &cep__v1__fault_record__descriptor, h_fault},
    {"cep.v1.Runner/FaultReverted", &cep__v1__fault_record__descriptor,
        h_fault},
};

/* ------------------------------------------------------ identities */

static void write_file(const char *name, const char *text, unsigned mode)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(cep_files_write(path, text, strlen(text), mode, NULL),
	    CEP_OK);
}

static void make_pki(char **relay_cert, char **relay_key)
{
	cep_err err = {0};
	char cadir[512];
	snprintf(cadir, sizeof(cadir), "%s/ca", dir);
	cr_assert_eq(mkdir(cadir, 0700), 0);
	cr_assert_eq(cep_pki_ca_create(cadir, "test", &err), CEP_OK, "%s",
	    err.msg);
	cep_pki_ca *ca;
	cr_assert_eq(cep_pki_ca_load(&ca, cadir, &err), CEP_OK, "%s", err.msg);
	ca_pem = strdup(cep_pki_ca_cert_pem(ca));
	const char *ips[] = {"127.0.0.1", NULL};
	const char *dns[] = {"localhost", NULL};
	cep_pki_issue_req rr = {.cn = "cep-relay",
	    .dns = dns,
	    .ips = ips,
	    .not_after_ms = cep_clock_now_ms() + 3600000,
	    .server = 1};
	cr_assert_eq(cep_pki_issue(ca, &rr, relay_cert, relay_key, &err),
	    CEP_OK, "%s", err.msg);
	char uri[256];
	cep_pki_identity_uri(uri, sizeof(uri), "test", "local", "host", RUN_ID,
	    NULL);
	cep_pki_issue_req ru = {.cn = RUN_ID,
	    .uri_san = uri,
	    .not_after_ms = cep_clock_now_ms() + 3600000};
	char *cert, *key;
	cr_assert_eq(cep_pki_issue(ca, &ru, &cert, &key, &err), CEP_OK, "%s",
	    err.msg);
	write_file("ca.crt", ca_pem, 0644);
	write_file("runner.crt", cert, 0644);
	write_file("runner.key", key, 0600);
	free(cert);
	cep_pki_free_secret(key);
	cep_pki_ca_free(ca);
}

static void setup(void)
{
	memset(&R, 0, sizeof(R));
	pthread_mutex_init(&R.mtx, NULL);
	pthread_cond_init(&R.cond, NULL);
	R.deadman_ms = 10000;
	dir = cep_test_tmpdir("session");
	char *cert, *key;
	make_pki(&cert, &key);
	cep_err err = {0};
	cep_rpc_server_opts so = {.name = "fake-relay"};
	cr_assert_eq(cep_rpc_server_new(&srv, methods,
	                 sizeof(methods) / sizeof(methods[0]), NULL, &so, &err),
	    CEP_OK, "%s", err.msg);
	cep_rpc_tls tls = {.cert_pem = cert, .key_pem = key, .ca_pem = ca_pem};
	cr_assert_eq(cep_rpc_server_listen(srv, "tls+tcp://127.0.0.1:0", &tls,
	                 &err),
	    CEP_OK, "%s", err.msg);
	port = cep_rpc_server_port(srv);
	free(cert);
	cep_pki_free_secret(key);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
}

static void stop_relay(void)
{
	pthread_mutex_lock(&R.mtx);
	R.stopping = true;
	pthread_cond_broadcast(&R.cond);
	pthread_mutex_unlock(&R.mtx);
	cep_rpc_server_free(srv);
	srv = NULL;
}

static void teardown(void)
{
	stop_relay();
	for (size_t i = 0; i < R.nev; i++)
		cep__v1__event__free_unpacked(R.ev[i], NULL);
	free(ca_pem);
	cep_test_rmdir(dir);
}

TestSuite(session, .init = setup, .fini = teardown, .timeout = 90);

/* ----------------------------------------------------------- the runner */

extern char **environ;

static pid_t start_runner(const char *run_id)
{
	char url[64];
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", port);
	char *bin = cep_test_bin("cep-runner");
	const char *argv[] = {bin, "--relay", url, "--identity", dir,
	    "--run-id", run_id, NULL};
	pid_t pid;
	cr_assert_eq(posix_spawn(&pid, bin, NULL, NULL, (char *const *)argv,
	                 environ),
	    0, "cannot run %s", bin);
	free(bin);
	return pid;
}

/* Exit status, or -1 if still running after ms (then killed). */
static int wait_runner(pid_t pid, int64_t ms)
{
	int64_t until = cep_clock_mono_ms() + ms;
	int st;
	while (cep_clock_mono_ms() < until) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) :
			                       128 + WTERMSIG(st);
		cep_clock_sleep_ms(20);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* Waits until the fake has journaled n fault records. */
static bool wait_records(int n, int64_t ms)
{
	int64_t until = cep_clock_mono_ms() + ms;
	pthread_mutex_lock(&R.mtx);
	while (R.records < n && cep_clock_mono_ms() < until) {
		pthread_mutex_unlock(&R.mtx);
		cep_clock_sleep_ms(20);
		pthread_mutex_lock(&R.mtx);
	}
	bool ok = R.records >= n;
	pthread_mutex_unlock(&R.mtx);
	return ok;
}

static const Cep__V1__Verdict *verdict(void)
{
	cr_assert_gt(R.nev, 0, "no events journaled");
	Cep__V1__Event *e = R.ev[R.nev - 1];
	cr_assert_eq(e->type, CEP__V1__EVENT_TYPE__EVENT_VERDICT,
	    "last journaled event is not the verdict");
	return e->verdict;
}

#define SPEC(dur, extra)                                                      \
	"apiVersion: cep.io/v1\nkind: Experiment\nmetadata: {name: s}\n"      \
	"spec:\n  duration: " dur "\n" extra                                  \
	"  faults:\n    - {name: hog, type: cpu-hog, workers: 1, load: 10}\n" \
	"  probes:\n    - {name: ok, type: cmd, mode: start-of-test, "        \
	"command: [\"true\"]}\n"

Test(session, full_run_delivers_every_event_and_the_verdict)
{
	R.spec = SPEC("500ms", "");
	pid_t pid = start_runner(RUN_ID);
	cr_assert_eq(wait_runner(pid, 30000), 0, "runner did not exit 0");
	for (size_t i = 0; i < R.nev; i++)
		cr_expect_eq(R.ev[i]->seq, i + 1);
	cr_expect_str_eq(verdict()->verdict, "Pass", "%s", verdict()->reason);
	cr_expect_eq(R.records, 1);
	cr_expect_eq(R.reverted, 1);
	cr_expect_geq(R.proves, 2,
	    "runner did not prove again after "
	    "UNAUTHENTICATED");
	int pids[4];
	cr_expect_eq(rt_children_named("cep-cpu-hog", pids, 4), 0);
}

Test(session, abort_command_reverts_and_exits)
{
	R.spec = SPEC("60s", "");
	pid_t pid = start_runner(RUN_ID);
	cr_assert(wait_records(1, 20000), "fault never recorded");
	cep_clock_sleep_ms(200);
	int64_t t0 = cep_clock_mono_ms();
	pthread_mutex_lock(&R.mtx);
	R.abort = true;
	pthread_cond_broadcast(&R.cond);
	pthread_mutex_unlock(&R.mtx);
	cr_assert_eq(wait_runner(pid, 20000), 0);
	cr_expect_lt(cep_clock_mono_ms() - t0, 5000);
	cr_expect_str_eq(verdict()->verdict, "Aborted");
	cr_expect_str_eq(verdict()->reason, "aborted by operator");
	cr_expect_eq(R.reverted, 1);
	int pids[4];
	cr_expect_eq(rt_children_named("cep-cpu-hog", pids, 4), 0,
	    "hog worker left behind");
}

Test(session, dead_man_reverts_when_the_relay_is_gone)
{
	R.spec = SPEC("60s", "");
	R.deadman_ms = 2000;
	pid_t pid = start_runner(RUN_ID);
	cr_assert(wait_records(1, 20000), "fault never recorded");
	stop_relay();
	int64_t t0 = cep_clock_mono_ms();
	/* the hog must be gone soon after the dead-man interval */
	int pids[4];
	int left = 1;
	while ((left = rt_children_named("cep-cpu-hog", pids, 4)) > 0 &&
	    cep_clock_mono_ms() - t0 < 8000)
		cep_clock_sleep_ms(50);
	cr_expect_eq(left, 0, "hog still there 8 s after the relay went away");
	int st = wait_runner(pid, 30000);
	cr_expect_eq(st, 3, "verdict cannot be delivered: exit 3, got %d", st);
}

Test(session, loose_key_file_is_refused)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/runner.key", dir);
	cr_assert_eq(chmod(path, 0640), 0);
	R.spec = SPEC("500ms", "");
	cr_expect_eq(wait_runner(start_runner(RUN_ID), 20000), 2);
	cr_expect_eq(R.proves, 0);
}

Test(session, wrong_run_id_is_refused)
{
	R.spec = SPEC("500ms", "");
	cr_expect_eq(wait_runner(start_runner("r-ffffffffffffffff"), 20000), 2);
	cr_expect_eq(wait_runner(start_runner("../etc"), 20000), 2);
	cr_expect_eq(R.records, 0);
}

Test(session, sigterm_reverts_and_reports_aborted)
{
	R.spec = SPEC("60s", "");
	pid_t pid = start_runner(RUN_ID);
	cr_assert(wait_records(1, 20000), "fault never recorded");
	cep_clock_sleep_ms(200);
	kill(pid, SIGTERM);
	cr_assert_eq(wait_runner(pid, 20000), 0);
	cr_expect_str_eq(verdict()->verdict, "Aborted");
	cr_expect_str_eq(verdict()->reason, "terminated by SIGTERM");
	cr_expect_eq(R.reverted, 1);
	int pids[4];
	cr_expect_eq(rt_children_named("cep-cpu-hog", pids, 4), 0);
}

/* A delegate on a full disk refuses every batch for 5 s while a probe
 * makes 20 events a second: the runner retries on its backoff (about 8
 * tries), not once per new event, and once the disk has room every event
 * arrives, in order, and the run passes. */
Test(session, refused_pushes_back_off_and_resume)
{
	R.spec =
	    "apiVersion: cep.io/v1\nkind: Experiment\nmetadata: {name: s}\n"
	    "spec:\n  duration: 7s\n  probes:\n    - {name: t, type: cmd, "
	    "mode: continuous, interval: 50ms, command: [\"true\"]}\n";
	R.full_until = cep_clock_mono_ms() + 5000;
	pid_t pid = start_runner(RUN_ID);
	cr_assert_eq(wait_runner(pid, 40000), 0, "runner did not exit 0");
	cr_expect_geq(R.full_refusals, 3);
	cr_expect_leq(R.full_refusals, 15, "%d pushes in 5 s of refusals",
	    R.full_refusals);
	for (size_t i = 0; i < R.nev; i++)
		cr_expect_eq(R.ev[i]->seq, i + 1);
	cr_expect_gt(R.nev, 100);
	cr_expect_str_eq(verdict()->verdict, "Pass", "%s", verdict()->reason);
}
