/*
 * bench_upstream.c - events relayed upstream to a control plane: the relay
 * path (runner -> cep-relay -> delegate journal ack + spool fsync ->
 * uploader -> plane) against the direct path (UploadEvents straight to the
 * plane), throughput and latency. Prints figures; never fails on speed.
 *
 *   bench_upstream [-r runners] [-d seconds] [-k latency samples]
 *
 * The plane is the reference control plane (controlplane/cep_cp.py of the
 * source tree, or $CEP_CP), started here with a certificate from a fresh
 * appliance CA; the relay runs in-process with a stand-in delegate that
 * acknowledges every batch (so the figures are the relay's and the plane's,
 * not the delegate's journal). Both paths end at the same plane, whose
 * Python + sqlite store bounds both: the ratio is what the relay adds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bus_side.h"
#include "cep.pb-c.h"
#include "config.h"
#include "cp.h"
#include "log.h"
#include "metrics.h"
#include "pki.h"
#include "relay.h"
#include "rpc.h"
#include "clock.h"
#include "files.h"

#define BATCH 64
#define APPL "bench"

static struct {
	char *home;
	cep_paths paths;
	cep_config cfg;
	cep_pki_ca *ca;
	pid_t cp_pid;
	int cp_port;
	cep_rpc_server *fake;
	cep_relay *relay;
	cep_rpc_client *dlg;
	int seconds;
	atomic_bool stop;
} B = {.seconds = 3};

static void die(const char *what, const cep_err *err)
{
	fprintf(stderr, "bench_upstream: %s: %s\n", what, err ? err->msg : "");
	if (B.cp_pid > 0)
		kill(B.cp_pid, SIGKILL);
	exit(2);
}

/* ------------------------------------------------- the stand-in delegate */

static void fd_ok(cep_rpc_call *c, void *arg)
{
	(void)arg;
	Cep__V1__FaultAck ack = CEP__V1__FAULT_ACK__INIT;
	ack.recorded = true;
	cep_rpc_call_reply(c, &ack.base);
}

static const cep_rpc_method fd_methods[] = {
    {"cep.v1.Delegate/RunnerEvents", &cep__v1__event_batch__descriptor,
        bbus_ack_batch},
    {"cep.v1.Delegate/RunnerConnected", &cep__v1__runner_seen__descriptor,
        fd_ok},
};

/* ------------------------------------------------------------ the plane */

static void write_secret(const char *path, const char *text, unsigned mode)
{
	cep_err err = {0};
	if (cep_files_write(path, text, strlen(text), mode, &err) != CEP_OK)
		die(path, &err);
}

static void start_plane(void)
{
	cep_err err = {0};
	char cert[4200], key[4200], tok[4200], pf[4200], apf[4200], st[4200];
	const char *ips[] = {"127.0.0.1", NULL};
	cep_pki_issue_req req = {.cn = "cep-plane",
	    .ips = ips,
	    .not_after_ms = cep_clock_now_ms() + 86400000,
	    .server = 1};
	char *c = NULL, *k = NULL;
	if (cep_pki_issue(B.ca, &req, &c, &k, &err) != CEP_OK)
		die("plane certificate", &err);
	snprintf(cert, sizeof(cert), "%s/plane.crt", B.home);
	snprintf(key, sizeof(key), "%s/plane.key", B.home);
	snprintf(tok, sizeof(tok), "%s/tokens", B.home);
	snprintf(pf, sizeof(pf), "%s/plane.port", B.home);
	snprintf(apf, sizeof(apf), "%s/plane.admin-port", B.home);
	snprintf(st, sizeof(st), "%s/plane-state", B.home);
	write_secret(cert, c, 0644);
	write_secret(key, k, 0600);
	write_secret(tok, "t-bench\n", 0600);
	free(c);
	cep_pki_free_secret(k);
	const char *src = getenv("CEP_CP");
	char script[4200];
	if (src == NULL) {
		snprintf(script, sizeof(script), "%s/controlplane/cep_cp.py",
		    CEP_SOURCE_DIR);
		src = script;
	}
	char log[4200];
	snprintf(log, sizeof(log), "%s/plane.log", B.home);
	B.cp_pid = fork();
	if (B.cp_pid == 0) {
		FILE *f = freopen(log, "a", stderr);
		(void)f;
		execlp("python3", "python3", src, "--listen", "127.0.0.1:0",
		    "--port-file", pf, "--cert", cert, "--key", key, "--tokens",
		    tok, "--state", st, "--admin", "127.0.0.1:0",
		    "--admin-port-file", apf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 400; i++) {
		char *data = NULL;
		size_t len = 0;
		if (cep_files_read(pf, 64, &data, &len, NULL) == CEP_OK &&
		    len > 0) {
			B.cp_port = (int)strtol(data, NULL, 10);
			free(data);
			return;
		}
		free(data);
		if (waitpid(B.cp_pid, NULL, WNOHANG) == B.cp_pid)
			break;
		cep_clock_sleep_ms(50);
	}
	B.cp_pid = -1;
	fprintf(stderr, "the control plane did not start; see %s\n", log);
	exit(2);
}

/* --------------------------------------------------------- the appliance */

static void setup(void)
{
	cep_err err = {0};
	char tmpl[] = "/tmp/cep-bench-up-XXXXXX";
	if (mkdtemp(tmpl) == NULL)
		die("mkdtemp", NULL);
	B.home = strdup(tmpl);
	if (cep_paths_resolve(B.home, &B.paths, &err) ||
	    cep_files_mkdirs(B.paths.pki, 0700, &err) ||
	    cep_files_mkdirs(B.paths.run, 0750, &err) ||
	    cep_files_mkdirs(B.paths.state, 0700, &err) ||
	    cep_pki_ca_create(B.paths.pki, APPL, &err) ||
	    cep_pki_ca_load(&B.ca, B.paths.pki, &err))
		die("home", &err);
	const char *dns[] = {"localhost", NULL}, *ips[] = {"127.0.0.1", NULL};
	cep_pki_issue_req req = {.cn = "cep-relay",
	    .dns = dns,
	    .ips = ips,
	    .not_after_ms = cep_clock_now_ms() + 86400000,
	    .server = 1};
	char *c = NULL, *k = NULL, path[4200];
	if (cep_pki_issue(B.ca, &req, &c, &k, &err) != CEP_OK)
		die("relay certificate", &err);
	snprintf(path, sizeof(path), "%s/relay.crt", B.paths.pki);
	write_secret(path, c, 0644);
	snprintf(path, sizeof(path), "%s/relay.key", B.paths.pki);
	write_secret(path, k, 0600);
	free(c);
	cep_pki_free_secret(k);
	start_plane();
	cep_config_defaults(&B.cfg);
	snprintf(B.cfg.appliance, sizeof(B.cfg.appliance), APPL);
	snprintf(B.cfg.relay_listen, sizeof(B.cfg.relay_listen),
	    "tls+tcp://127.0.0.1:0");
	B.cfg.relay_metrics[0] = '\0';
	cep_cp_opts *o = &B.cfg.cp;
	snprintf(o->url, sizeof(o->url), "https://127.0.0.1:%d", B.cp_port);
	snprintf(o->ca_file, sizeof(o->ca_file), "%s/ca.crt", B.paths.pki);
	snprintf(o->token_file, sizeof(o->token_file), "%s/tokens", B.home);
	o->poll_wait_ms = 1000;
	cep_rpc_server_opts so = {.name = "bench-delegate", .workers = 4};
	char url[4300];
	if (cep_rpc_server_new(&B.fake, fd_methods, 2, NULL, &so, &err) ||
	    cep_paths_url(&B.paths, "delegate.sock", url, sizeof(url), &err) ||
	    cep_rpc_server_listen(B.fake, url, NULL, &err))
		die("stand-in delegate", &err);
	if (relay_new(&B.paths, &B.cfg, &B.relay, &err) != CEP_OK)
		die("relay", &err);
	if (cep_paths_url(&B.paths, "relay.sock", url, sizeof(url), &err) ||
	    cep_rpc_client_new(&B.dlg, url, NULL, &err))
		die("relay.sock", &err);
}

/* ------------------------------------------------------------- runners */

typedef struct rn {
	char run_id[24], uri[256];
	char *cert, *key;
	uint8_t *der;
	size_t der_len;
	cep_rpc_client *cli;
	uint64_t seq, events;
	int64_t *lat_us;
	size_t nlat;
} rn;

static void runner_new(rn *r, unsigned idx)
{
	cep_err err = {0};
	snprintf(r->run_id, sizeof(r->run_id), "r-%016x", idx + 1);
	if (cep_pki_identity_uri(r->uri, sizeof(r->uri), APPL, "local", "host",
	        r->run_id, &err) != CEP_OK)
		die("uri", &err);
	cep_pki_issue_req req = {.cn = r->run_id,
	    .uri_san = r->uri,
	    .not_after_ms = cep_clock_now_ms() + 3600000};
	if (cep_pki_issue(B.ca, &req, &r->cert, &r->key, &err) ||
	    cep_pki_cert_der(r->cert, &r->der, &r->der_len, &err))
		die("identity", &err);
}

static void grant_all(rn *rs, size_t n)
{
	Cep__V1__RunGrant *g = calloc(n, sizeof(*g));
	Cep__V1__RunGrant **gp = calloc(n, sizeof(*gp));
	Cep__V1__Assignment *a = calloc(n, sizeof(*a));
	for (size_t i = 0; i < n; i++) {
		cep__v1__run_grant__init(&g[i]);
		cep__v1__assignment__init(&a[i]);
		a[i].run_id = rs[i].run_id;
		a[i].spec_yaml = "apiVersion: cep.io/v1\n";
		a[i].deadline_ms = cep_clock_now_ms() + 600000;
		g[i].run_id = rs[i].run_id;
		g[i].identity_uri = rs[i].uri;
		g[i].not_after_ms = cep_clock_now_ms() + 3600000;
		g[i].assignment = &a[i];
		gp[i] = &g[i];
	}
	Cep__V1__RunGrants rg = CEP__V1__RUN_GRANTS__INIT;
	rg.n_grants = n;
	rg.grants = gp;
	ProtobufCMessage *rep = NULL;
	cep_err err = {0};
	if (cep_rpc_invoke(B.dlg, "cep.v1.Relay/SyncRuns", &rg.base,
	        &cep__v1__sync_reply__descriptor, &rep, 5000, &err) != CEP_OK)
		die("SyncRuns", &err);
	protobuf_c_message_free_unpacked(rep, NULL);
	free(g);
	free(gp);
	free(a);
}

static int rcall(rn *r, const char *m, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *d, ProtobufCMessage **rep, cep_err *e)
{
	char full[96];
	snprintf(full, sizeof(full), "cep.v1.Runner/%s", m);
	return cep_rpc_invoke(r->cli, full, req, d, rep, 10000, e);
}

static void runner_connect(rn *r, int port)
{
	cep_err err = {0};
	char url[64];
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", port);
	cep_rpc_tls tls = {.cert_pem = r->cert,
	    .key_pem = r->key,
	    .ca_pem = cep_pki_ca_cert_pem(B.ca),
	    .server_name = "localhost"};
	if (cep_rpc_client_new(&r->cli, url, &tls, &err) != CEP_OK)
		die("dial", &err);
	Cep__V1__ChallengeRequest cr = CEP__V1__CHALLENGE_REQUEST__INIT;
	cr.run_id = r->run_id;
	ProtobufCMessage *rep = NULL;
	if (rcall(r, "Challenge", &cr.base,
	        &cep__v1__challenge_reply__descriptor, &rep, &err) != CEP_OK)
		die("Challenge", &err);
	Cep__V1__ChallengeReply *ch = (Cep__V1__ChallengeReply *)rep;
	uint8_t *sig = NULL;
	size_t sl = 0;
	if (cep_pki_sign_proof(r->key, ch->nonce.data, ch->nonce.len, &sig, &sl,
	        &err) != CEP_OK)
		die("sign", &err);
	protobuf_c_message_free_unpacked(rep, NULL);
	Cep__V1__ProveRequest pr = CEP__V1__PROVE_REQUEST__INIT;
	pr.run_id = r->run_id;
	pr.cert_der = (ProtobufCBinaryData){r->der_len, r->der};
	pr.signature = (ProtobufCBinaryData){sl, sig};
	rep = NULL;
	if (rcall(r, "Prove", &pr.base, &cep__v1__prove_reply__descriptor, &rep,
	        &err) != CEP_OK)
		die("Prove", &err);
	protobuf_c_message_free_unpacked(rep, NULL);
	free(sig);
}

/* A batch of n events for run, seq from *seq on (advanced). */
static void fill(Cep__V1__EventBatch *b, Cep__V1__Event *ev,
    Cep__V1__Event **evp, const char *run, uint64_t *seq, size_t n)
{
	cep__v1__event_batch__init(b);
	for (size_t i = 0; i < n; i++) {
		cep__v1__event__init(&ev[i]);
		ev[i].run_id = (char *)run;
		ev[i].seq = ++*seq;
		ev[i].time_ms = cep_clock_now_ms();
		ev[i].type = CEP__V1__EVENT_TYPE__EVENT_LOG;
		ev[i].text = "probe web-availability: status 200 in 3ms";
		evp[i] = &ev[i];
	}
	b->run_id = (char *)run;
	b->n_events = n;
	b->events = evp;
}

/* ---------------------------------------------------------- the paths */

/* The plane has taken this many events from the relay. */
static double uploaded(void)
{
	char *text = NULL;
	size_t len = 0;
	cep_err err = {0};
	double v = -1;
	if (cep_metrics_render(relay_metrics(B.relay), &text, &len, &err))
		return -1;
	const char *p = strstr(text, "\ncep_relay_upstream_events_total ");
	if (p != NULL)
		v = strtod(p + strlen("\ncep_relay_upstream_events_total "),
		    NULL);
	else if (strstr(text, "\ncep_relay_upstream_events_total") == NULL)
		v = 0;
	free(text);
	return v;
}

static void *relay_pusher(void *arg)
{
	rn *r = arg;
	Cep__V1__Event ev[BATCH], *evp[BATCH];
	Cep__V1__EventBatch b;
	while (!atomic_load(&B.stop)) {
		uint64_t s0 = r->seq;
		fill(&b, ev, evp, r->run_id, &r->seq, BATCH);
		ProtobufCMessage *rep = NULL;
		cep_err err = {0};
		if (rcall(r, "PushEvents", &b.base,
		        &cep__v1__event_ack__descriptor, &rep,
		        &err) != CEP_OK) {
			r->seq = s0; /* backpressure or a hiccup: resend */
			cep_clock_sleep_ms(20);
			continue;
		}
		protobuf_c_message_free_unpacked(rep, NULL);
		r->events += BATCH;
	}
	return NULL;
}

typedef struct direct {
	cep_cp *cp;
	char run_id[24];
	uint64_t seq, events;
} direct;

static int upload(direct *d, size_t n, cep_err *err)
{
	Cep__V1__Event ev[BATCH], *evp[BATCH];
	Cep__V1__EventBatch b, *bp = &b;
	fill(&b, ev, evp, d->run_id, &d->seq, n);
	Cep__V1__CpEventUpload up = CEP__V1__CP_EVENT_UPLOAD__INIT;
	up.appliance = APPL;
	up.n_batches = 1;
	up.batches = &bp;
	ProtobufCMessage *rep = NULL;
	int rv = cep_cp_call(d->cp, "UploadEvents", &up.base,
	    &cep__v1__cp_upload_reply__descriptor, &rep, 0, NULL, err);
	if (rep != NULL)
		protobuf_c_message_free_unpacked(rep, NULL);
	return rv;
}

static void *direct_pusher(void *arg)
{
	direct *d = arg;
	while (!atomic_load(&B.stop)) {
		cep_err err = {0};
		if (upload(d, BATCH, &err) != CEP_OK) {
			fprintf(stderr, "direct upload: %s\n", err.msg);
			cep_clock_sleep_ms(20);
			continue;
		}
		d->events += BATCH;
	}
	return NULL;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void stats(const char *what, int64_t *v, size_t n, double *p50)
{
	qsort(v, n, sizeof(*v), cmp64);
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += (double)v[i];
	*p50 = v[n / 2] / 1000.0;
	printf("  %-34s p50 %7.2f ms  p99 %7.2f ms  mean %7.2f ms  (%zu)\n",
	    what, v[n / 2] / 1000.0, v[(n * 99) / 100] / 1000.0,
	    sum / (double)n / 1000.0, n);
}

static int64_t us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int num(const char *s)
{
	char *end = NULL;
	long v = strtol(s, &end, 10);
	return end != s && *end == '\0' && v > 0 && v < 100000 ? (int)v : -1;
}

int main(int argc, char **argv)
{
	int nr = 4, k = 100, opt;
	while ((opt = getopt(argc, argv, "r:d:k:")) != -1) {
		if (opt == 'r')
			nr = num(optarg);
		else if (opt == 'd')
			B.seconds = num(optarg);
		else if (opt == 'k')
			k = num(optarg);
		else {
			fprintf(stderr,
			    "usage: bench_upstream [-r runners] "
			    "[-d seconds] [-k latency samples]\n");
			return 2;
		}
	}
	if (nr < 1 || nr > 64 || B.seconds < 1 || k < 10)
		return 2;
	cep_log_set_level(CEP_LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	setup();
	rn *rs = calloc((size_t)nr + 1, sizeof(*rs));
	for (int i = 0; i <= nr; i++)
		runner_new(&rs[i], (unsigned)i);
	grant_all(rs, (size_t)nr + 1);
	for (int i = 0; i <= nr; i++)
		runner_connect(&rs[i], relay_port(B.relay));
	cep_err err = {0};
	printf("bench_upstream: %d runner(s) x %d s, batches of %d events; "
	       "%d latency samples\n",
	    nr, B.seconds, BATCH, k);

	/* 1. throughput, relay path: pushed until the plane has them all */
	pthread_t th[64];
	int64_t t0 = cep_clock_mono_ms();
	for (int i = 0; i < nr; i++)
		pthread_create(&th[i], NULL, relay_pusher, &rs[i]);
	cep_clock_sleep_ms(B.seconds * 1000);
	atomic_store(&B.stop, true);
	uint64_t pushed = 0;
	for (int i = 0; i < nr; i++) {
		pthread_join(th[i], NULL);
		pushed += rs[i].events;
	}
	int64_t t_ack = cep_clock_mono_ms();
	while (
	    uploaded() < (double)pushed && cep_clock_mono_ms() - t_ack < 120000)
		cep_clock_sleep_ms(20);
	int64_t t_up = cep_clock_mono_ms();
	double relay_eps = (double)pushed * 1000.0 / (double)(t_up - t0);

	/* 2. throughput, direct path */
	direct *ds = calloc((size_t)nr + 1, sizeof(*ds));
	for (int i = 0; i <= nr; i++) {
		snprintf(ds[i].run_id, sizeof(ds[i].run_id), "r-%016x",
		    0x100 + i);
		if (cep_cp_new(&B.cfg.cp, &ds[i].cp, &err) != CEP_OK)
			die("cp client", &err);
	}
	atomic_store(&B.stop, false);
	int64_t t1 = cep_clock_mono_ms();
	for (int i = 0; i < nr; i++)
		pthread_create(&th[i], NULL, direct_pusher, &ds[i]);
	cep_clock_sleep_ms(B.seconds * 1000);
	atomic_store(&B.stop, true);
	uint64_t direct_n = 0;
	for (int i = 0; i < nr; i++) {
		pthread_join(th[i], NULL);
		direct_n += ds[i].events;
	}
	double direct_eps = (double)direct_n * 1000.0 /
	    (double)(cep_clock_mono_ms() - t1);

	/* 3. latency of one event: pushed -> at the plane, both ways */
	int64_t *lr = calloc((size_t)k, sizeof(*lr));
	int64_t *ld = calloc((size_t)k, sizeof(*ld));
	rn *one = &rs[nr];
	for (int i = 0; i < k; i++) {
		double before = uploaded();
		Cep__V1__Event ev[1], *evp[1];
		Cep__V1__EventBatch b;
		fill(&b, ev, evp, one->run_id, &one->seq, 1);
		int64_t s = us();
		ProtobufCMessage *rep = NULL;
		if (rcall(one, "PushEvents", &b.base,
		        &cep__v1__event_ack__descriptor, &rep, &err) != CEP_OK)
			die("PushEvents", &err);
		protobuf_c_message_free_unpacked(rep, NULL);
		/* polled every 0.2 ms: a spin would take the CPU the relay
		 * and the plane need on a small machine */
		while (uploaded() <= before && us() - s < 30000000)
			usleep(200);
		lr[i] = us() - s;
		s = us();
		if (upload(&ds[nr], 1, &err) != CEP_OK)
			die("UploadEvents", &err);
		ld[i] = us() - s;
	}
	printf("throughput (events/s taken by the plane):\n");
	printf("  relay path  %10.0f ev/s  (%llu events; last ack -> all "
	       "upstream %lld ms)\n",
	    relay_eps, (unsigned long long)pushed, (long long)(t_up - t_ack));
	printf("  direct path %10.0f ev/s  (%llu events)\n", direct_eps,
	    (unsigned long long)direct_n);
	printf("  ratio relay/direct  %.2f\n", relay_eps / direct_eps);
	printf("latency of one event until the plane has it:\n");
	double p_r, p_d;
	stats("relay path (push -> uploaded)", lr, (size_t)k, &p_r);
	stats("direct path (UploadEvents)", ld, (size_t)k, &p_d);
	printf("  added by the relay (p50)           %7.2f ms\n", p_r - p_d);

	for (int i = 0; i <= nr; i++) {
		cep_rpc_client_free(rs[i].cli);
		free(rs[i].cert);
		cep_pki_free_secret(rs[i].key);
		free(rs[i].der);
		cep_cp_free(ds[i].cp);
	}
	free(rs);
	free(ds);
	free(lr);
	free(ld);
	cep_rpc_client_free(B.dlg);
	relay_free(B.relay);
	cep_rpc_server_free(B.fake);
	cep_pki_ca_free(B.ca);
	kill(B.cp_pid, SIGTERM);
	waitpid(B.cp_pid, NULL, 0);
	cep_files_rmtree(B.home, NULL);
	free(B.home);
	return 0;
}
