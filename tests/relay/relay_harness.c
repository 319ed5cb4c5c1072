/*
 * relay_harness.c - the relay in-process, between a fake delegate and test
 * runners (included once by each tests/relay/test_relay*.c program).
 *
 * setup() builds a temp appliance home (CA, relay certificate), starts a
 * fake delegate (a Delegate server on <run>/delegate.sock that records what
 * it gets and acks events the way the real one journals them), a relay
 * (relay_new), and a client of relay.sock through which the test plays
 * the delegate. Runners dial over tls+tcp with identities from
 * cep_pki_issue.
 *
 * The relay's log goes to a file in the home so tests can check that each
 * refusal is one line naming peer, bound run, requested run and reason.
 * CEP_TEST_VERBOSE=1 copies it to the real stderr at the end.
 */
#include "relay_harness.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "testutil.h"
#include "clock.h"
#include "files.h"
#include "run_id.h"

/* ------------------------------------------------------- fake delegate */

/* Test run ids are "r-" + 16 hex digits holding the run's index. */
int run_index(const char *run_id)
{
	if (!cep_run_id_valid(run_id))
		return -1;
	char *end;
	unsigned long long v = strtoull(run_id + 2, &end, 16);
	return (*end == '\0' && v < MAX_RUNS) ? (int)v : -1;
}

/* Journals like the real delegate: seq == last + 1 advances, older ones
 * are duplicates, nothing past a gap. */
static void fd_events(cep_rpc_call *c, void *arg)
{
	fake_delegate *fd = arg;
	const Cep__V1__EventBatch *b = (const Cep__V1__EventBatch *)
	    cep_rpc_call_request(c);
	Cep__V1__EventAck ack = CEP__V1__EVENT_ACK__INIT;
	pthread_mutex_lock(&fd->mu);
	fd->event_calls++;
	int ri = run_index(b->run_id);
	for (size_t i = 0; i < b->n_events; i++) {
		const Cep__V1__Event *e = b->events[i];
		fd->events++;
		if (ri < 0 || e->seq == 0 || e->seq >= MAX_SEQ) {
			fd->foreign++;
			continue;
		}
		if (fd->seen[ri][e->seq]++ > 0)
			fd->dupes++;
		if (e->seq == fd->acked[ri] + 1)
			fd->acked[ri] = e->seq;
	}
	ack.acked_seq = ri >= 0 ? fd->acked[ri] : 0;
	pthread_mutex_unlock(&fd->mu);
	cep_rpc_call_reply(c, &ack.base);
}

static void reply_ack(cep_rpc_call *c)
{
	Cep__V1__FaultAck ack = CEP__V1__FAULT_ACK__INIT;
	ack.recorded = true;
	cep_rpc_call_reply(c, &ack.base);
}

static void fd_record(cep_rpc_call *c, void *arg)
{
	fake_delegate *fd = arg;
	pthread_mutex_lock(&fd->mu);
	fd->faults++;
	pthread_mutex_unlock(&fd->mu);
	reply_ack(c);
}

static void fd_reverted(cep_rpc_call *c, void *arg)
{
	fake_delegate *fd = arg;
	pthread_mutex_lock(&fd->mu);
	fd->reverted++;
	pthread_mutex_unlock(&fd->mu);
	reply_ack(c);
}

static void fd_connected(cep_rpc_call *c, void *arg)
{
	fake_delegate *fd = arg;
	const Cep__V1__RunnerSeen *s = (const Cep__V1__RunnerSeen *)
	    cep_rpc_call_request(c);
	pthread_mutex_lock(&fd->mu);
	fd->connected++;
	snprintf(fd->last_connected, sizeof(fd->last_connected), "%s",
	    s->run_id);
	pthread_mutex_unlock(&fd->mu);
	reply_ack(c);
}

static const cep_rpc_method fd_methods[] = {
    {"cep.v1.Delegate/RunnerEvents", &cep__v1__event_batch__descriptor,
        fd_events},
    {"cep.v1.Delegate/RecordFault", &cep__v1__fault_record__descriptor,
        fd_record},
    {"cep.v1.Delegate/FaultReverted", &cep__v1__fault_record__descriptor,
        fd_reverted},
    {"cep.v1.Delegate/RunnerConnected", &cep__v1__runner_seen__descriptor,
        fd_connected},
};

/* ------------------------------------------------------------ test env */

env E;

static void write_pem(const char *name, const char *pem, unsigned mode)
{
	char path[PATH_MAX + 16];
	cep_err err = {0};
	snprintf(path, sizeof(path), "%s/%s", E.paths.pki, name);
	cr_assert_eq(cep_files_write(path, pem, strlen(pem), mode, &err), 0,
	    "%s", err.msg);
}

static void make_home(void)
{
	cep_err err = {0};
	E.home = cep_test_tmpdir("relay");
	cr_assert_eq(cep_paths_resolve(E.home, &E.paths, &err), 0, "%s",
	    err.msg);
	cr_assert_eq(cep_files_mkdirs(E.paths.pki, 0700, &err), 0, "%s",
	    err.msg);
	cr_assert_eq(cep_files_mkdirs(E.paths.run, 0750, &err), 0, "%s",
	    err.msg);
	cr_assert_eq(cep_pki_ca_create(E.paths.pki, APPLIANCE, &err), 0, "%s",
	    err.msg);
	cr_assert_eq(cep_pki_ca_load(&E.ca, E.paths.pki, &err), 0, "%s",
	    err.msg);
	const char *dns[] = {"localhost", NULL}, *ips[] = {"127.0.0.1", NULL};
	cep_pki_issue_req req = {.cn = "cep-relay",
	    .dns = dns,
	    .ips = ips,
	    .not_after_ms = cep_clock_now_ms() + 86400000,
	    .server = 1};
	char *cert = NULL, *key = NULL;
	cr_assert_eq(cep_pki_issue(E.ca, &req, &cert, &key, &err), 0, "%s",
	    err.msg);
	write_pem("relay.crt", cert, 0644);
	write_pem("relay.key", key, 0600);
	free(cert);
	cep_pki_free_secret(key);
	cep_config_defaults(&E.cfg);
	snprintf(E.cfg.appliance, sizeof(E.cfg.appliance), APPLIANCE);
	snprintf(E.url, sizeof(E.url), "tls+tcp://127.0.0.1:%d",
	    cep_test_free_port());
	snprintf(E.cfg.relay_listen, sizeof(E.cfg.relay_listen), "%s", E.url);
}

/* The relay logs through the stderr stream: point that stream at a file
 * the tests read. fd 2 stays as it is, so sanitizer reports and crashes
 * still reach the real stderr. */
static void capture_log(void)
{
	snprintf(E.logpath, sizeof(E.logpath), "%s/relay.log", E.home);
	FILE *f = fopen(E.logpath, "ae");
	cr_assert_not_null(f);
	fflush(stderr);
	E.saved_stderr = stderr;
	stderr = f;
}

static void restore_log(void)
{
	fclose(stderr);
	stderr = E.saved_stderr;
	if (getenv("CEP_TEST_VERBOSE") == NULL)
		return;
	char *data = NULL;
	size_t len = 0;
	if (cep_files_read(E.logpath, 64 << 20, &data, &len, NULL) == 0)
		fwrite(data, 1, len, stderr);
	free(data);
}

static void start_fake_delegate(void)
{
	cep_err err = {0};
	char url[PATH_MAX + 32];
	pthread_mutex_init(&E.fd.mu, NULL);
	cep_rpc_server_opts o = {.name = "fake-delegate", .workers = 4};
	cr_assert_eq(cep_rpc_server_new(&E.fd.srv, fd_methods,
	                 sizeof(fd_methods) / sizeof(fd_methods[0]), &E.fd, &o,
	                 &err),
	    0, "%s", err.msg);
	cr_assert_eq(cep_paths_url(&E.paths, "delegate.sock", url, sizeof(url),
	                 &err),
	    0, "%s", err.msg);
	cr_assert_eq(cep_rpc_server_listen(E.fd.srv, url, NULL, &err), 0, "%s",
	    err.msg);
}

void setup(void)
{
	setup_with(NULL);
}

void setup_with(void (*tweak)(cep_config *cfg))
{
	cep_err err = {0};
	memset(&E, 0, sizeof(E));
	cep_log_init("relay");
	make_home();
	capture_log();
	start_fake_delegate();
	if (tweak != NULL)
		tweak(&E.cfg);
	cr_assert_eq(relay_new(&E.paths, &E.cfg, &E.relay, &err), 0, "%s",
	    err.msg);
	char url[PATH_MAX + 32];
	cr_assert_eq(cep_paths_url(&E.paths, "relay.sock", url, sizeof(url),
	                 &err),
	    0, "%s", err.msg);
	cr_assert_eq(cep_rpc_client_new(&E.dlg, url, NULL, &err), 0, "%s",
	    err.msg);
}

static void runner_free(runner *rn)
{
	cep_rpc_client_free(rn->cli);
	free(rn->cert_pem);
	cep_pki_free_secret(rn->key_pem);
	free(rn->der);
	free(rn);
}

void teardown(void)
{
	for (size_t i = 0; i < E.nall; i++)
		runner_free(E.all[i]);
	cep_rpc_client_free(E.dlg);
	relay_free(E.relay);
	cep_rpc_server_free(E.fd.srv);
	pthread_mutex_destroy(&E.fd.mu);
	cep_pki_ca_free(E.ca);
	restore_log();
	cep_test_rmdir(E.home);
}

/* ------------------------------------------------------------- runners */

/* An identity for run index idx from ca, valid [nb, na] (0: defaults). */
runner *runner_new(unsigned idx, cep_pki_ca *ca, int64_t nb, int64_t na)
{
	cep_err err = {0};
	runner *rn = calloc(1, sizeof(*rn));
	cr_assert_not_null(rn);
	snprintf(rn->run_id, sizeof(rn->run_id), "r-%016x", idx);
	cr_assert_eq(cep_pki_identity_uri(rn->uri, sizeof(rn->uri), APPLIANCE,
	                 "local", "host", rn->run_id, &err),
	    0, "%s", err.msg);
	cep_pki_issue_req req = {.cn = rn->run_id,
	    .uri_san = rn->uri,
	    .not_before_ms = nb,
	    .not_after_ms = na ? na : cep_clock_now_ms() + 3600000};
	cr_assert_eq(cep_pki_issue(ca, &req, &rn->cert_pem, &rn->key_pem, &err),
	    0, "%s", err.msg);
	cr_assert_eq(cep_pki_cert_der(rn->cert_pem, &rn->der, &rn->der_len,
	                 &err),
	    0, "%s", err.msg);
	E.all[E.nall++] = rn;
	return rn;
}

void runner_connect(runner *rn)
{
	cep_err err = {0};
	cep_rpc_tls tls = {.cert_pem = rn->cert_pem,
	    .key_pem = rn->key_pem,
	    .ca_pem = cep_pki_ca_cert_pem(E.ca),
	    .server_name = "localhost"};
	cr_assert_eq(cep_rpc_client_new(&rn->cli, E.url, &tls, &err), 0, "%s",
	    err.msg);
}

int rcall(runner *rn, const char *method, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *d, ProtobufCMessage **rep, cep_err *err)
{
	char full[96];
	snprintf(full, sizeof(full), "cep.v1.Runner/%s", method);
	ProtobufCMessage *ignored = NULL;
	int rc = cep_rpc_invoke(rn->cli, full, req, d, rep ? rep : &ignored,
	    CALL_MS, err);
	if (ignored != NULL)
		protobuf_c_message_free_unpacked(ignored, NULL);
	return rc;
}

/* Challenge + Prove. corrupt: sign another nonce than the relay's. */
int runner_prove(runner *rn, bool corrupt, cep_err *err)
{
	Cep__V1__ChallengeRequest cr = CEP__V1__CHALLENGE_REQUEST__INIT;
	cr.run_id = rn->run_id;
	ProtobufCMessage *rep = NULL;
	int rc = rcall(rn, "Challenge", &cr.base,
	    &cep__v1__challenge_reply__descriptor, &rep, err);
	if (rc != 0)
		return rc;
	Cep__V1__ChallengeReply *ch = (Cep__V1__ChallengeReply *)rep;
	cr_assert_eq(ch->nonce.len, 32);
	if (corrupt)
		ch->nonce.data[0] ^= 0xff;
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	cr_assert_eq(cep_pki_sign_proof(rn->key_pem, ch->nonce.data,
	                 ch->nonce.len, &sig, &sig_len, err),
	    0, "%s", err->msg);
	protobuf_c_message_free_unpacked(rep, NULL);
	Cep__V1__ProveRequest pr = CEP__V1__PROVE_REQUEST__INIT;
	pr.run_id = rn->run_id;
	pr.cert_der = (ProtobufCBinaryData){rn->der_len, rn->der};
	pr.signature = (ProtobufCBinaryData){sig_len, sig};
	rc = rcall(rn, "Prove", &pr.base, &cep__v1__prove_reply__descriptor,
	    NULL, err);
	free(sig);
	return rc;
}

/* PushEvents of n events seq first.. for event_run, in a batch for
 * batch_run. */
int push(runner *rn, const char *batch_run, const char *event_run,
    uint64_t first, size_t n, uint64_t *acked, cep_err *err)
{
	Cep__V1__Event ev[64], *evp[64];
	cr_assert(n <= 64);
	for (size_t i = 0; i < n; i++) {
		cep__v1__event__init(&ev[i]);
		ev[i].run_id = (char *)event_run;
		ev[i].seq = first + i;
		ev[i].time_ms = cep_clock_now_ms();
		ev[i].type = CEP__V1__EVENT_TYPE__EVENT_LOG;
		ev[i].text = "hello";
		evp[i] = &ev[i];
	}
	Cep__V1__EventBatch b = CEP__V1__EVENT_BATCH__INIT;
	b.run_id = (char *)batch_run;
	b.n_events = n;
	b.events = evp;
	ProtobufCMessage *rep = NULL;
	int rc = rcall(rn, "PushEvents", &b.base,
	    &cep__v1__event_ack__descriptor, &rep, err);
	if (rc == 0 && acked != NULL)
		*acked = ((Cep__V1__EventAck *)rep)->acked_seq;
	if (rep != NULL)
		protobuf_c_message_free_unpacked(rep, NULL);
	return rc;
}

int get_assignment(runner *rn, const char *run_id, cep_err *err,
    Cep__V1__Assignment **out)
{
	Cep__V1__AssignmentRequest req = CEP__V1__ASSIGNMENT_REQUEST__INIT;
	req.run_id = (char *)run_id;
	return rcall(rn, "GetAssignment", &req.base,
	    &cep__v1__assignment__descriptor, (ProtobufCMessage **)out, err);
}

/* -------------------------------------------------- the test, delegate */

int dcall(const char *method, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *d, ProtobufCMessage **rep, cep_err *err)
{
	char full[96];
	snprintf(full, sizeof(full), "cep.v1.Relay/%s", method);
	ProtobufCMessage *ignored = NULL;
	int rc = cep_rpc_invoke(E.dlg, full, req, d, rep ? rep : &ignored,
	    CALL_MS, err);
	if (ignored != NULL)
		protobuf_c_message_free_unpacked(ignored, NULL);
	return rc;
}

/* SyncRuns with E.granted and E.finished, as the delegate does. */
void sync_grants(void)
{
	static Cep__V1__RunGrant g[MAX_RUNS + 16];
	static Cep__V1__RunGrant *gp[MAX_RUNS + 16];
	static Cep__V1__Assignment a[MAX_RUNS + 16];
	static char names[MAX_RUNS + 16][40];
	for (size_t i = 0; i < E.ngranted; i++) {
		cep__v1__run_grant__init(&g[i]);
		cep__v1__assignment__init(&a[i]);
		snprintf(names[i], sizeof(names[i]), "exp-%s",
		    E.granted[i]->run_id);
		a[i].run_id = E.granted[i]->run_id;
		a[i].spec_name = names[i];
		a[i].spec_yaml = "apiVersion: cep/v1\n";
		a[i].deadline_ms = cep_clock_now_ms() + 600000;
		a[i].deadman_ms = 10000;
		g[i].run_id = E.granted[i]->run_id;
		g[i].identity_uri = E.granted[i]->uri;
		g[i].not_after_ms = cep_clock_now_ms() + 3600000;
		g[i].assignment = &a[i];
		gp[i] = &g[i];
	}
	Cep__V1__RunGrants rg = CEP__V1__RUN_GRANTS__INIT;
	rg.n_grants = E.ngranted;
	rg.grants = gp;
	rg.n_finished = E.nfinished;
	rg.finished = (char **)E.finished;
	ProtobufCMessage *rep = NULL;
	cep_err err = {0};
	cr_assert_eq(dcall("SyncRuns", &rg.base,
	                 &cep__v1__sync_reply__descriptor, &rep, &err),
	    0, "SyncRuns: %s", err.msg);
	cr_assert_eq(((Cep__V1__SyncReply *)rep)->active, E.ngranted);
	protobuf_c_message_free_unpacked(rep, NULL);
}

void grant(runner *rn)
{
	E.granted[E.ngranted++] = rn;
}

void ungrant(runner *rn)
{
	for (size_t i = 0; i < E.ngranted; i++)
		if (E.granted[i] == rn)
			E.granted[i] = E.granted[--E.ngranted];
}

int send_abort(const char *run_id, uint64_t seq, cep_err *err)
{
	Cep__V1__Command cmd = CEP__V1__COMMAND__INIT;
	cmd.seq = seq;
	cmd.kind = CEP__V1__COMMAND__KIND__ABORT;
	cmd.reason = "operator abort";
	Cep__V1__CommandForRun cfr = CEP__V1__COMMAND_FOR_RUN__INIT;
	cfr.run_id = (char *)run_id;
	cfr.command = &cmd;
	return dcall("SendCommand", &cfr.base, &cep__v1__sync_reply__descriptor,
	    NULL, err);
}

Cep__V1__RelayStats *stats(void)
{
	Cep__V1__StatsRequest req = CEP__V1__STATS_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	cep_err err = {0};
	cr_assert_eq(dcall("Stats", &req.base,
	                 &cep__v1__relay_stats__descriptor, &rep, &err),
	    0, "Stats: %s", err.msg);
	return (Cep__V1__RelayStats *)rep;
}

uint64_t refusals(const char *reason)
{
	Cep__V1__RelayStats *st = stats();
	uint64_t n = 0;
	for (size_t i = 0; i < st->n_refusals_by_reason; i++)
		if (strcmp(st->refusals_by_reason[i]->key, reason) == 0)
			n = st->refusals_by_reason[i]->value;
	protobuf_c_message_free_unpacked(&st->base, NULL);
	return n;
}

/* Lines of the relay's log holding every one of the (non-NULL) needles. */
int log_lines(const char *a, const char *b, const char *c)
{
	char *data = NULL;
	size_t len = 0;
	fflush(stderr);
	cr_assert_eq(cep_files_read(E.logpath, 64 << 20, &data, &len, NULL), 0);
	int n = 0;
	for (char *line = data; line != NULL && *line != '\0';) {
		char *nl = strchr(line, '\n');
		if (nl != NULL)
			*nl = '\0';
		if (strstr(line, a) && (!b || strstr(line, b)) &&
		    (!c || strstr(line, c)))
			n++;
		line = nl ? nl + 1 : NULL;
	}
	free(data);
	return n;
}

fd_snap fd_snapshot(void)
{
	pthread_mutex_lock(&E.fd.mu);
	fd_snap s = {E.fd.event_calls, E.fd.faults, E.fd.reverted,
	    E.fd.connected};
	pthread_mutex_unlock(&E.fd.mu);
	return s;
}

void assert_fd_unchanged(fd_snap before)
{
	fd_snap now = fd_snapshot();
	cr_assert_eq(now.event_calls, before.event_calls,
	    "the delegate got events from a refused runner");
	cr_assert_eq(now.faults, before.faults);
	cr_assert_eq(now.reverted, before.reverted);
	cr_assert_eq(now.connected, before.connected,
	    "the delegate was told a refused runner connected");
}

/* After a refusal the relay still serves a good runner end to end. */
void assert_good_runner_served(unsigned idx)
{
	cep_err err = {0};
	runner *rn = runner_new(idx, E.ca, 0, 0);
	grant(rn);
	sync_grants();
	runner_connect(rn);
	cr_assert_eq(runner_prove(rn, false, &err), 0, "good runner: %s",
	    err.msg);
	uint64_t acked = 0;
	cr_assert_eq(push(rn, rn->run_id, rn->run_id, 1, 2, &acked, &err), 0,
	    "good runner push: %s", err.msg);
	cr_assert_eq(acked, 2);
	pthread_mutex_lock(&E.fd.mu);
	int ri = run_index(rn->run_id);
	cr_assert(E.fd.seen[ri][1] == 1 && E.fd.seen[ri][2] == 1);
	pthread_mutex_unlock(&E.fd.mu);
}

void *watch_thread(void *p)
{
	watch_arg *w = p;
	Cep__V1__WatchRequest req = CEP__V1__WATCH_REQUEST__INIT;
	req.run_id = w->rn->run_id;
	req.after_seq = w->after;
	ProtobufCMessage *rep = NULL;
	cep_err err = {0};
	w->rc = cep_rpc_invoke(w->rn->cli, "cep.v1.Runner/WatchCommands",
	    &req.base, &cep__v1__command_batch__descriptor, &rep, w->timeout_ms,
	    &err);
	w->t_done = cep_clock_mono_ms();
	snprintf(w->err, sizeof(w->err), "%s", err.msg);
	if (w->rc == 0) {
		Cep__V1__CommandBatch *b = (Cep__V1__CommandBatch *)rep;
		w->n = b->n_commands;
		if (b->n_commands > 0) {
			w->seq = b->commands[0]->seq;
			w->kind = b->commands[0]->kind;
		}
		protobuf_c_message_free_unpacked(rep, NULL);
	}
	return NULL;
}

uint64_t stat_calls(void)
{
	Cep__V1__RelayStats *st = stats();
	uint64_t n = st->calls;
	protobuf_c_message_free_unpacked(&st->base, NULL);
	return n;
}

/* --------------------------------------------------------- start-up */

void home_only(void)
{
	memset(&E, 0, sizeof(E));
	cep_log_init("relay");
	make_home();
	capture_log();
}

void home_only_fini(void)
{
	relay_free(E.relay);
	cep_pki_ca_free(E.ca);
	restore_log();
	cep_test_rmdir(E.home);
}
