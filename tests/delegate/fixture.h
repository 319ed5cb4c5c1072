/*
 * fixture.h - what the delegate's in-process tests share: a temp home with
 * a real CA, a fake relay (an rpc server on relay.sock recording SyncRuns
 * and SendCommand) and a fake runner. The fake runner is the test binary
 * itself started under the name "cep-runner" (a symlink; CEP_RUNNER_BIN
 * points at it): a constructor notices the name, forks one "fault worker"
 * (same command line, like the real runner's workers) and both wait for an
 * exit file. So launch, kill and undo are observed in /proc on processes
 * whose command lines look like the real runner's.
 *
 * Included by one test program each (static definitions, no .c of its own:
 * tests/CMakeLists.txt builds every test_*.c with testutil.c only).
 */
#ifndef CEP_DELEGATE_FIXTURE_H
#define CEP_DELEGATE_FIXTURE_H

#define CEP_FIX_FN __attribute__((unused))

#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cep.pb-c.h"
#include "config.h"
#include "delegate.h"
#include "journal.h"
#include "pki.h"
#include "rpc.h"
#include "testutil.h"
#include "clock.h"
#include "files.h"

/* ------------------------------------------------------------ fake runner */

static CEP_FIX_FN bool file_exists(const char *p)
{
	return access(p, F_OK) == 0;
}

/* Runs before main when this binary is started as "cep-runner". */
__attribute__((constructor)) static void fake_runner(void)
{
	char cmd[4096];
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return;
	cmd[n] = '\0';
	const char *base = strrchr(cmd, '/');
	base = base ? base + 1 : cmd;
	if (strcmp(base, "cep-runner") != 0)
		return;
	const char *id = "";
	for (const char *p = cmd; p < cmd + n; p += strlen(p) + 1)
		if (strcmp(p, "--run-id") == 0 && p + strlen(p) + 1 < cmd + n)
			id = p + strlen(p) + 1;
	const char *dir = getenv("CEP_FAKE_DIR");
	char mine[4200], all[4200];
	snprintf(mine, sizeof(mine), "%s/exit-%s", dir ? dir : "/nonexistent",
	    id);
	snprintf(all, sizeof(all), "%s/exit-all", dir ? dir : "/nonexistent");
	(void)fork(); /* the "fault worker": same command line */
	for (int i = 0; i < 600; i++) { /* at most 30 s */
		if (file_exists(mine) || file_exists(all))
			_exit(0);
		usleep(50000);
	}
	_exit(3);
}

/* ------------------------------------------------------------- fake relay */

static struct {
	pthread_mutex_t mu;
	Cep__V1__RunGrants *last;
	int syncs;
	char cmd_run[8][24];
	int ncmds;
} relay = {.mu = PTHREAD_MUTEX_INITIALIZER};

static CEP_FIX_FN void on_sync(cep_rpc_call *c, void *arg)
{
	(void)arg;
	const Cep__V1__RunGrants *g = (const Cep__V1__RunGrants *)
	    cep_rpc_call_request(c);
	size_t len = cep__v1__run_grants__get_packed_size(g);
	uint8_t *buf = malloc(len + 1);
	cep__v1__run_grants__pack(g, buf);
	pthread_mutex_lock(&relay.mu);
	if (relay.last != NULL)
		cep__v1__run_grants__free_unpacked(relay.last, NULL);
	relay.last = cep__v1__run_grants__unpack(NULL, len, buf);
	relay.syncs++;
	pthread_mutex_unlock(&relay.mu);
	free(buf);
	Cep__V1__SyncReply rep = CEP__V1__SYNC_REPLY__INIT;
	rep.active = (uint32_t)g->n_grants;
	cep_rpc_call_reply(c, &rep.base);
}

static CEP_FIX_FN void on_command(cep_rpc_call *c, void *arg)
{
	(void)arg;
	const Cep__V1__CommandForRun *cmd = (const Cep__V1__CommandForRun *)
	    cep_rpc_call_request(c);
	pthread_mutex_lock(&relay.mu);
	if (relay.ncmds < 8 && cmd->command != NULL &&
	    cmd->command->kind == CEP__V1__COMMAND__KIND__ABORT)
		snprintf(relay.cmd_run[relay.ncmds++], 24, "%s", cmd->run_id);
	pthread_mutex_unlock(&relay.mu);
	Cep__V1__SyncReply rep = CEP__V1__SYNC_REPLY__INIT;
	cep_rpc_call_reply(c, &rep.base);
}

static CEP_FIX_FN void on_stats(cep_rpc_call *c, void *arg)
{
	(void)arg;
	Cep__V1__RelayStats rep = CEP__V1__RELAY_STATS__INIT;
	rep.calls = 42;
	cep_rpc_call_reply(c, &rep.base);
}

static const cep_rpc_method relay_methods[] = {
    {"cep.v1.Relay/SyncRuns", &cep__v1__run_grants__descriptor, on_sync},
    {"cep.v1.Relay/SendCommand", &cep__v1__command_for_run__descriptor,
        on_command},
    {"cep.v1.Relay/Stats", &cep__v1__stats_request__descriptor, on_stats},
};

/* Does the fake relay's last SyncRuns grant run (uri into uri)? */
static CEP_FIX_FN bool relay_granted(const char *run, char *uri, size_t len)
{
	bool found = false;
	pthread_mutex_lock(&relay.mu);
	for (size_t i = 0; relay.last && i < relay.last->n_grants; i++)
		if (strcmp(relay.last->grants[i]->run_id, run) == 0) {
			found = true;
			if (uri)
				snprintf(uri, len, "%s",
				    relay.last->grants[i]->identity_uri);
		}
	pthread_mutex_unlock(&relay.mu);
	return found;
}

static CEP_FIX_FN bool relay_finished(const char *run)
{
	bool found = false;
	pthread_mutex_lock(&relay.mu);
	for (size_t i = 0; relay.last && i < relay.last->n_finished; i++)
		found |= strcmp(relay.last->finished[i], run) == 0;
	pthread_mutex_unlock(&relay.mu);
	return found;
}

static CEP_FIX_FN bool relay_got_abort(const char *run)
{
	bool found = false;
	pthread_mutex_lock(&relay.mu);
	for (int i = 0; i < relay.ncmds; i++)
		found |= strcmp(relay.cmd_run[i], run) == 0;
	pthread_mutex_unlock(&relay.mu);
	return found;
}

/* ---------------------------------------------------------------- fixture */

static char *home;
static cep_paths paths;
static cep_config cfg;
static cep_delegate *dg;
static cep_rpc_server *relay_srv;
static cep_rpc_client *admin, *deleg;

static CEP_FIX_FN void start_delegate(void)
{
	cep_err err = {0};
	cr_assert_eq(delegate_new(&paths, &cfg, &dg, &err), CEP_OK, "%s",
	    err.msg);
}

static CEP_FIX_FN void setup(void)
{
	cep_err err = {0};
	home = cep_test_tmpdir("delegate");
	cr_assert_eq(cep_paths_resolve(home, &paths, &err), CEP_OK, "%s",
	    err.msg);
	cep_config_defaults(&cfg);
	snprintf(cfg.appliance, sizeof(cfg.appliance), "test");
	snprintf(cfg.relay_advertise, sizeof(cfg.relay_advertise),
	    "tls+tcp://127.0.0.1:1");
	cfg.policy.n_deny = 1;
	snprintf(cfg.policy.deny[0], sizeof(cfg.policy.deny[0]), "sshd");
	cr_assert_eq(cep_pki_ca_create(paths.pki, "test", &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(cep_files_mkdirs(paths.run, 0750, &err), CEP_OK);

	char link[4200], self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	cr_assert(n > 0);
	self[n] = '\0';
	snprintf(link, sizeof(link), "%s/cep-runner", home);
	cr_assert_eq(symlink(self, link), 0);
	setenv("CEP_RUNNER_BIN", link, 1);
	setenv("CEP_FAKE_DIR", home, 1);

	char url[4200];
	cr_assert_eq(cep_paths_url(&paths, "relay.sock", url, sizeof(url),
	                 &err),
	    CEP_OK);
	cr_assert_eq(cep_rpc_server_new(&relay_srv, relay_methods, 3, NULL,
	                 NULL, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(cep_rpc_server_listen(relay_srv, url, NULL, &err), CEP_OK,
	    "%s", err.msg);
	start_delegate();
	cr_assert_eq(cep_paths_url(&paths, "admin.sock", url, sizeof(url),
	                 &err),
	    CEP_OK);
	cr_assert_eq(cep_rpc_client_new(&admin, url, NULL, &err), CEP_OK);
	cr_assert_eq(cep_paths_url(&paths, "delegate.sock", url, sizeof(url),
	                 &err),
	    CEP_OK);
	cr_assert_eq(cep_rpc_client_new(&deleg, url, NULL, &err), CEP_OK);
}

static CEP_FIX_FN void teardown(void)
{
	char p[4200];
	snprintf(p, sizeof(p), "%s/exit-all", home);
	int fd = open(p, O_CREAT | O_WRONLY, 0600);
	if (fd >= 0)
		close(fd);
	cep_rpc_client_free(admin);
	cep_rpc_client_free(deleg);
	if (dg != NULL) {
		delegate_stop(dg);
		delegate_free(dg);
		dg = NULL;
	}
	cep_rpc_server_free(relay_srv);
	pthread_mutex_lock(&relay.mu);
	if (relay.last != NULL)
		cep__v1__run_grants__free_unpacked(relay.last, NULL);
	relay.last = NULL;
	relay.ncmds = 0;
	pthread_mutex_unlock(&relay.mu);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	cep_test_rmdir(home);
}

/* ------------------------------------------------------------- helpers */

#define GOOD_SPEC                                                            \
	"apiVersion: cep.io/v1\nkind: Experiment\nmetadata:\n  name: demo\n" \
	"spec:\n  target:\n    kind: host\n  duration: 20s\n  faults:\n"     \
	"    - name: hog\n      type: cpu-hog\n      workers: 1\n"

static CEP_FIX_FN int submit(const char *yaml, char *id, cep_err *err)
{
	Cep__V1__SubmitRequest req = CEP__V1__SUBMIT_REQUEST__INIT;
	req.spec_yaml = (char *)yaml;
	req.spec_name = (char *)"x.yaml";
	ProtobufCMessage *rep = NULL;
	int rv = cep_rpc_invoke(admin, "cep.v1.Admin/Submit", &req.base,
	    &cep__v1__submit_reply__descriptor, &rep, 5000, err);
	if (rv == CEP_OK) {
		snprintf(id, 24, "%s", ((Cep__V1__SubmitReply *)rep)->run_id);
		protobuf_c_message_free_unpacked(rep, NULL);
	}
	return rv;
}

static CEP_FIX_FN Cep__V1__RunInfo *get_run(const char *id)
{
	Cep__V1__GetRequest req = CEP__V1__GET_REQUEST__INIT;
	req.run_id = (char *)id;
	ProtobufCMessage *rep = NULL;
	cep_err err = {0};
	int rv = cep_rpc_invoke(admin, "cep.v1.Admin/Get", &req.base,
	    &cep__v1__run_info__descriptor, &rep, 5000, &err);
	cr_assert_eq(rv, CEP_OK, "Get: %s", err.msg);
	return (Cep__V1__RunInfo *)rep;
}

static CEP_FIX_FN Cep__V1__RunState run_state(const char *id, char *reason,
    size_t len)
{
	Cep__V1__RunInfo *ri = get_run(id);
	Cep__V1__RunState st = ri->state;
	if (reason)
		snprintf(reason, len, "%s", ri->reason);
	cep__v1__run_info__free_unpacked(ri, NULL);
	return st;
}

static CEP_FIX_FN Cep__V1__RunState wait_state(const char *id,
    Cep__V1__RunState want, int ms, char *reason, size_t len)
{
	Cep__V1__RunState st = 0;
	for (int t = 0; t < ms; t += 50) {
		if ((st = run_state(id, reason, len)) == want)
			break;
		cep_clock_sleep_ms(50);
	}
	return st;
}

/* Counts processes whose command line carries "--run-id <id>" (read here
 * from /proc independently of the executor). */
static CEP_FIX_FN int procs_of(const char *id)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		char p[300], buf[8192];
		snprintf(p, sizeof(p), "/proc/%s/cmdline", de->d_name);
		int fd = open(p, O_RDONLY);
		if (fd < 0)
			continue;
		ssize_t len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		for (char *a = buf; a < buf + len; a += strlen(a) + 1)
			if (strcmp(a, "--run-id") == 0 &&
			    a + strlen(a) + 1 < buf + len &&
			    strcmp(a + strlen(a) + 1, id) == 0)
				n++;
	}
	if (d)
		closedir(d);
	return n;
}

static CEP_FIX_FN int wait_procs(const char *id, int want, int ms)
{
	int n = -1;
	for (int t = 0; t < ms; t += 50) {
		/* reap what the delegate has not reaped yet is not our job */
		if ((n = procs_of(id)) == want)
			break;
		cep_clock_sleep_ms(50);
	}
	return n;
}

static CEP_FIX_FN void runner_exit(const char *id)
{
	char p[4200];
	snprintf(p, sizeof(p), "%s/exit-%s", home, id);
	int fd = open(p, O_CREAT | O_WRONLY, 0600);
	cr_assert(fd >= 0);
	close(fd);
}

static CEP_FIX_FN int call_delegate(const char *method,
    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rd,
    ProtobufCMessage **rep, cep_err *err)
{
	return cep_rpc_invoke(deleg, method, req, rd, rep, 5000, err);
}

static CEP_FIX_FN void runner_connected(const char *id)
{
	Cep__V1__RunnerSeen seen = CEP__V1__RUNNER_SEEN__INIT;
	seen.run_id = (char *)id;
	seen.peer = (char *)"127.0.0.1:5555";
	cep_err err = {0};
	cr_assert_eq(call_delegate("cep.v1.Delegate/RunnerConnected",
	                 &seen.base, &cep__v1__fault_ack__descriptor, NULL,
	                 &err),
	    CEP_OK, "%s", err.msg);
}

/* Sends events seq first..last (type LOG, or VERDICT verdict) and returns
 * the acked seq. */
static CEP_FIX_FN uint64_t push(const char *id, uint64_t first, uint64_t last,
    const char *verdict)
{
	size_t n = (size_t)(last - first + 1);
	Cep__V1__Event *ev = calloc(n, sizeof(*ev));
	Cep__V1__Event **evp = calloc(n, sizeof(*evp));
	Cep__V1__Verdict v = CEP__V1__VERDICT__INIT;
	v.verdict = (char *)verdict;
	v.score = 100;
	v.reason = (char *)"the runner's reason";
	for (size_t i = 0; i < n; i++) {
		cep__v1__event__init(&ev[i]);
		ev[i].run_id = (char *)id;
		ev[i].seq = first + i;
		ev[i].type = verdict ? CEP__V1__EVENT_TYPE__EVENT_VERDICT :
		                       CEP__V1__EVENT_TYPE__EVENT_LOG;
		ev[i].text = (char *)"hello";
		if (verdict)
			ev[i].verdict = &v;
		evp[i] = &ev[i];
	}
	Cep__V1__EventBatch b = CEP__V1__EVENT_BATCH__INIT;
	b.run_id = (char *)id;
	b.n_events = n;
	b.events = evp;
	ProtobufCMessage *rep = NULL;
	cep_err err = {0};
	int rv = call_delegate("cep.v1.Delegate/RunnerEvents", &b.base,
	    &cep__v1__event_ack__descriptor, &rep, &err);
	free(ev);
	free(evp);
	cr_assert_eq(rv, CEP_OK, "RunnerEvents: %s", err.msg);
	uint64_t acked = ((Cep__V1__EventAck *)rep)->acked_seq;
	protobuf_c_message_free_unpacked(rep, NULL);
	return acked;
}

static CEP_FIX_FN void fault(const char *method, const char *id,
    const char *fid)
{
	Cep__V1__FaultRecord f = CEP__V1__FAULT_RECORD__INIT;
	f.run_id = (char *)id;
	f.fault_id = (char *)fid;
	f.type = (char *)"cpu-hog";
	f.target = (char *)"host";
	f.mechanism = (char *)"child-process";
	f.undo = (char *)"{}";
	ProtobufCMessage *rep = NULL;
	cep_err err = {0};
	cr_assert_eq(call_delegate(method, &f.base,
	                 &cep__v1__fault_ack__descriptor, &rep, &err),
	    CEP_OK, "%s: %s", method, err.msg);
	cr_assert(((Cep__V1__FaultAck *)rep)->recorded);
	protobuf_c_message_free_unpacked(rep, NULL);
}

/* What the journal of a run holds. */
typedef struct jsum {
	int created, spec, deadline, pid, faults, reverted_by_delegate;
	int states[16];
	int nstates;
	uint64_t seqs[64];
	int nevents;
} jsum;

static CEP_FIX_FN int jsum_cb(const Cep__V1__JournalRecord *rec, void *arg)
{
	jsum *s = arg;
	switch (rec->rec_case) {
	case CEP__V1__JOURNAL_RECORD__REC_CREATED: s->created++; break;
	case CEP__V1__JOURNAL_RECORD__REC_SPEC_YAML: s->spec++; break;
	case CEP__V1__JOURNAL_RECORD__REC_DEADLINE_MS: s->deadline++; break;
	case CEP__V1__JOURNAL_RECORD__REC_RUNNER_PID: s->pid++; break;
	case CEP__V1__JOURNAL_RECORD__REC_FAULT: s->faults++; break;
	case CEP__V1__JOURNAL_RECORD__REC_REVERTED:
		s->reverted_by_delegate += strcmp(rec->text, "delegate") == 0;
		break;
	case CEP__V1__JOURNAL_RECORD__REC_STATE:
		if (s->nstates < 16)
			s->states[s->nstates++] = rec->state;
		break;
	case CEP__V1__JOURNAL_RECORD__REC_EVENT:
		if (s->nevents < 64)
			s->seqs[s->nevents++] = rec->event->seq;
		break;
	default: break;
	}
	return 0;
}

static CEP_FIX_FN void journal_of(const char *id, jsum *s)
{
	char dir[4200];
	cep_err err = {0};
	memset(s, 0, sizeof(*s));
	snprintf(dir, sizeof(dir), "%s/runs/%s", paths.state, id);
	cr_assert_eq(cep_journal_replay(dir, jsum_cb, s, NULL, &err), CEP_OK,
	    "%s", err.msg);
}

static CEP_FIX_FN bool has_state(const jsum *s, int st)
{
	for (int i = 0; i < s->nstates; i++)
		if (s->states[i] == st)
			return true;
	return false;
}

/* Submit + wait for the runner (runner and its worker) to be up. */
static CEP_FIX_FN void launched_run(char *id)
{
	cep_err err = {0};
	cr_assert_eq(submit(GOOD_SPEC, id, &err), CEP_OK, "%s", err.msg);
	cr_assert_eq(wait_procs(id, 2, 10000), 2, "runner + worker not seen");
}

#endif
