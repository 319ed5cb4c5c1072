/*
 * bench_rpc.c - RPC round-trip latency and event throughput over ipc:// and
 * tls+tcp:// on loopback. Prints figures; never fails on speed.
 *
 *   bench_rpc [-n calls] [-d seconds] [-t threads]
 *
 * Latency: n sequential Echo calls (ChallengeRequest -> ChallengeReply),
 * p50/p99/mean. Throughput: t callers each pushing EventBatch of 64 Event
 * messages (~100 bytes each) for d seconds, as a runner pushes to the relay.
 * Defaults keep the whole run under ~20 s (also in a sanitizer build).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cep.pb-c.h"
#include "log.h"
#include "pki.h"
#include "rpc.h"
#include "clock.h"
#include "files.h"

#define BATCH 64

static void h_echo(cep_rpc_call *c, void *arg)
{
	(void)arg;
	const Cep__V1__ChallengeRequest *rq =
	    (const Cep__V1__ChallengeRequest *)cep_rpc_call_request(c);
	Cep__V1__ChallengeReply rep = CEP__V1__CHALLENGE_REPLY__INIT;
	rep.nonce.data = (uint8_t *)rq->run_id;
	rep.nonce.len = strlen(rq->run_id);
	cep_rpc_call_reply(c, &rep.base);
}

static void h_push(cep_rpc_call *c, void *arg)
{
	(void)arg;
	const Cep__V1__EventBatch *b = (const Cep__V1__EventBatch *)
	    cep_rpc_call_request(c);
	Cep__V1__EventAck ack = CEP__V1__EVENT_ACK__INIT;
	if (b->n_events > 0)
		ack.acked_seq = b->events[b->n_events - 1]->seq;
	cep_rpc_call_reply(c, &ack.base);
}

static const cep_rpc_method methods[] = {
    {"cep.v1.Bench/Echo", &cep__v1__challenge_request__descriptor, h_echo},
    {"cep.v1.Bench/Push", &cep__v1__event_batch__descriptor, h_push},
};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void latency(const char *label, cep_rpc_client *c, int n)
{
	int64_t *us = calloc((size_t)n, sizeof(*us));
	Cep__V1__ChallengeRequest rq = CEP__V1__CHALLENGE_REQUEST__INIT;
	rq.run_id = "r-0123456789abcdef";
	int64_t sum = 0;
	int fails = 0;
	for (int i = 0; i < n; i++) {
		ProtobufCMessage *rep = NULL;
		cep_err err;
		int64_t t0 = now_us();
		if (cep_rpc_invoke(c, "cep.v1.Bench/Echo", &rq.base,
		        &cep__v1__challenge_reply__descriptor, &rep, 5000,
		        &err) != CEP_OK)
			fails++;
		us[i] = now_us() - t0;
		sum += us[i];
		if (rep != NULL)
			protobuf_c_message_free_unpacked(rep, NULL);
	}
	qsort(us, (size_t)n, sizeof(*us), cmp64);
	printf("%-8s latency  n=%d  p50=%lldus  p99=%lldus  mean=%.1fus%s\n",
	    label, n, (long long)us[n / 2], (long long)us[(n * 99) / 100],
	    (double)sum / n, fails ? "  (some calls failed!)" : "");
	free(us);
}

typedef struct pusher {
	cep_rpc_client *c;
	int64_t until_us;
	uint64_t events, bytes;
	int fails;
} pusher;

static void *push_main(void *arg)
{
	pusher *p = arg;
	Cep__V1__Event ev[BATCH], *evp[BATCH];
	char text[] = "probe http-ok: status 200 in 12ms (GET /healthz)  ";
	for (int i = 0; i < BATCH; i++) {
		cep__v1__event__init(&ev[i]);
		ev[i].run_id = "r-0123456789abcdef";
		ev[i].type = CEP__V1__EVENT_TYPE__EVENT_LOG;
		ev[i].text = text;
		evp[i] = &ev[i];
	}
	Cep__V1__EventBatch b = CEP__V1__EVENT_BATCH__INIT;
	b.run_id = "r-0123456789abcdef";
	b.events = evp;
	b.n_events = BATCH;
	uint64_t seq = 0;
	while (now_us() < p->until_us) {
		for (int i = 0; i < BATCH; i++) {
			ev[i].seq = ++seq;
			ev[i].time_ms = cep_clock_now_ms();
		}
		ProtobufCMessage *rep = NULL;
		cep_err err;
		if (cep_rpc_invoke(p->c, "cep.v1.Bench/Push", &b.base,
		        &cep__v1__event_ack__descriptor, &rep, 5000,
		        &err) != CEP_OK) {
			p->fails++;
			continue;
		}
		p->events += BATCH;
		p->bytes += cep__v1__event_batch__get_packed_size(&b);
		protobuf_c_message_free_unpacked(rep, NULL);
	}
	return NULL;
}

static void throughput(const char *label, cep_rpc_client *c, int secs,
    int threads)
{
	pusher p[16];
	pthread_t th[16];
	int64_t t0 = now_us();
	for (int i = 0; i < threads; i++) {
		p[i] = (pusher){.c = c,
		    .until_us = t0 + (int64_t)secs * 1000000};
		pthread_create(&th[i], NULL, push_main, &p[i]);
	}
	uint64_t events = 0, bytes = 0;
	int fails = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		events += p[i].events;
		bytes += p[i].bytes;
		fails += p[i].fails;
	}
	double s = (double)(now_us() - t0) / 1e6;
	printf("%-8s events   callers=%d  batch=%d  %.0f events/s  %.0f "
	       "batches/s  %.1f MB/s (%.0f B/event)%s\n",
	    label, threads, BATCH, events / s, events / BATCH / s,
	    bytes / s / 1e6, events ? (double)bytes / events : 0.0,
	    fails ? "  (some calls failed!)" : "");
}

typedef struct tls_set {
	char *ca, *srv_cert, *srv_key, *cli_cert, *cli_key;
} tls_set;

static int make_tls(const char *dir, tls_set *t, cep_err *err)
{
	static const char *const dns[] = {"localhost", NULL};
	cep_pki_ca *ca;
	if (cep_pki_ca_create(dir, "bench", err) != CEP_OK ||
	    cep_pki_ca_load(&ca, dir, err) != CEP_OK)
		return err->code;
	t->ca = strdup(cep_pki_ca_cert_pem(ca));
	cep_pki_issue_req s = {.cn = "relay",
	    .dns = dns,
	    .server = 1,
	    .not_after_ms = cep_clock_now_ms() + 3600000};
	cep_pki_issue_req c = {.cn = "runner",
	    .not_after_ms = cep_clock_now_ms() + 3600000};
	int rv = cep_pki_issue(ca, &s, &t->srv_cert, &t->srv_key, err);
	if (rv == CEP_OK)
		rv = cep_pki_issue(ca, &c, &t->cli_cert, &t->cli_key, err);
	cep_pki_ca_free(ca);
	return rv;
}

static void run(const char *label, cep_rpc_server *srv, const char *url,
    const cep_rpc_tls *ctls, int n, int secs, int threads)
{
	(void)srv;
	cep_rpc_client *c;
	cep_err err;
	if (cep_rpc_client_new(&c, url, ctls, &err) != CEP_OK) {
		fprintf(stderr, "%s: %s\n", label, err.msg);
		return;
	}
	latency(label, c, n);
	throughput(label, c, secs, threads);
	cep_rpc_client_free(c);
}

static int arg_int(int argc, char **argv, const char *flag, int def)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], flag) == 0) {
			char *end;
			long v = strtol(argv[i + 1], &end, 10);
			if (*end == '\0' && v > 0 && v < 1000000)
				return (int)v;
		}
	return def;
}

int main(int argc, char **argv)
{
	int n = arg_int(argc, argv, "-n", 2000);
	int secs = arg_int(argc, argv, "-d", 3);
	int threads = arg_int(argc, argv, "-t", 4);
	if (threads > 16)
		threads = 16;
	cep_log_init("bench");
	cep_log_set_level(CEP_LOG_WARN);
	char dir[] = "/tmp/cep-bench-rpc-XXXXXX";
	if (mkdtemp(dir) == NULL)
		return 1;
	char url[256];
	snprintf(url, sizeof(url), "ipc://%s/bench.sock", dir);
	cep_err err;
	cep_rpc_server *srv = NULL;
	tls_set t = {0};
	char cadir[300];
	snprintf(cadir, sizeof(cadir), "%s/ca", dir);
	cep_rpc_server_opts o = {.name = "bench", .workers = 2};
	int rv = cep_rpc_server_new(&srv, methods, 2, NULL, &o, &err);
	if (rv == CEP_OK)
		rv = cep_rpc_server_listen(srv, url, NULL, &err);
	if (rv == CEP_OK)
		rv = make_tls(cadir, &t, &err);
	cep_rpc_tls stls = {.cert_pem = t.srv_cert,
	    .key_pem = t.srv_key,
	    .ca_pem = t.ca};
	if (rv == CEP_OK)
		rv = cep_rpc_server_listen(srv, "tls+tcp://127.0.0.1:0", &stls,
		    &err);
	if (rv != CEP_OK) {
		fprintf(stderr, "bench_rpc: %s\n", err.msg);
	} else {
		printf("bench_rpc: %d calls, %d s x %d callers per transport\n",
		    n, secs, threads);
		run("ipc", srv, url, NULL, n, secs, threads);
		char turl[64];
		snprintf(turl, sizeof(turl), "tls+tcp://127.0.0.1:%d",
		    cep_rpc_server_port(srv));
		cep_rpc_tls ctls = {.cert_pem = t.cli_cert,
		    .key_pem = t.cli_key,
		    .ca_pem = t.ca,
		    .server_name = "localhost"};
		run("tls+tcp", srv, turl, &ctls, n, secs, threads);
	}
	cep_rpc_server_free(srv);
	free(t.ca);
	free(t.srv_cert);
	free(t.cli_cert);
	cep_pki_free_secret(t.srv_key);
	cep_pki_free_secret(t.cli_key);
	cep_files_rmtree(dir, NULL);
	return rv == CEP_OK ? 0 : 1;
}
