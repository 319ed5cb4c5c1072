/*
 * bench_rpc.c - RPC round-trip latency and event throughput over ipc:// and
 * tls+tcp:// on loopback. Prints figures; never fails on speed.
 *
 *   bench_rpc [-n calls] [-d seconds] [-t threads]
 *
 * Latency: n sequential Echo calls (ChallengeRequest -> ChallengeReply),
 * p50/p99/mean. Throughput: t callers each pushing EventBatch of 64 Event
 * messages (~87 bytes each) for d seconds, as a runner pushes to the relay.
 * The calls and the server are bus_side.c's (bench_grpc runs the same
 * ones beside gRPC). Defaults keep the whole run under ~20 s (also in a sanitizer build).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus_side.h"
#include "log.h"
#include "rpc.h"
#include "files.h"

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
	int64_t sum = 0;
	int fails = 0;
	for (int i = 0; i < n; i++) {
		cep_err err;
		int64_t t0 = now_us();
		if (bbus_echo(c, BBUS_RUN_ID, &err) != CEP_OK)
			fails++;
		us[i] = now_us() - t0;
		sum += us[i];
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
	bbus_batch *b = bbus_batch_new();
	while (b != NULL && now_us() < p->until_us) {
		size_t bytes;
		cep_err err;
		if (bbus_push(p->c, b, &bytes, &err) != CEP_OK) {
			p->fails++;
			continue;
		}
		p->events += BBUS_BATCH;
		p->bytes += bytes;
	}
	p->fails += b == NULL;
	bbus_batch_free(b);
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
	    label, threads, BBUS_BATCH, events / s, events / BBUS_BATCH / s,
	    bytes / s / 1e6, events ? (double)bytes / events : 0.0,
	    fails ? "  (some calls failed!)" : "");
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

int main(int argc, char **argv)
{
	int n = bbus_arg_int(argc, argv, "-n", 2000);
	int secs = bbus_arg_int(argc, argv, "-d", 3);
	int threads = bbus_arg_int(argc, argv, "-t", 4);
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
	bbus_tls t = {0};
	char cadir[300];
	snprintf(cadir, sizeof(cadir), "%s/ca", dir);
	int rv = bbus_server_new(&srv, &err);
	if (rv == CEP_OK)
		rv = cep_rpc_server_listen(srv, url, NULL, &err);
	if (rv == CEP_OK)
		rv = bbus_tls_make(cadir, &t, &err);
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
	bbus_tls_free(&t);
	cep_files_rmtree(dir, NULL);
	return rv == CEP_OK ? 0 : 1;
}
