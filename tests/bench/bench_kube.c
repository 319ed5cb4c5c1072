/*
 * bench_kube.c - the kubernetes executor at scale: launch and clean up N
 * runners across C connectors, each connector its own Kubernetes API test
 * server (tests/kubeapi/kubeapi.py), one of them slow (every API call
 * delayed). Prints figures; never fails on speed.
 *
 *   bench_kube [-n runners] [-c connectors] [-s slow-ms]
 *
 * Defaults: 100 runners, 10 connectors, the last one 1500 ms slow. The
 * runner image is mapped (--exec-image) to a script that exits after ~1 s,
 * so a "run" is: Pod + Secret created, pod Running, pod Succeeded, both
 * deleted and confirmed gone - the executor's whole life cycle, driven the
 * way the delegate's monitor drives it (launch, poll, undo until done).
 *
 * Three rounds over the same servers and one executor (as a delegate
 * keeps one): the healthy connectors alone (the slow one unused), first
 * with no connection open (cold), then again on the connections the first
 * left (warm); then all of them with the slow one. Per connector:
 * launch-to-Running p50/p95 (seen by a watch of this program's own, per
 * server); wall time; CPU time of this process per launch (getrusage,
 * minus the benchmark's own watch threads); API calls and new connections;
 * and the healthy connectors' p95 with vs without the slow one - what one
 * slow API server costs the others.
 *
 * Needs root (the test server's kubelet runs pods in a private mount
 * namespace) and python3 + openssl.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "connector.h"
#include "executor.h"
#include "http.h"
#include "kube.h"
#include "log.h"
#include "clock.h"
#include "files.h"
#include "run_id.h"

#ifndef CEP_SOURCE_DIR
#define CEP_SOURCE_DIR "."
#endif

#define NS "bench"
#define IMAGE "cep.io/runner:bench"
#define MAXC 32
#define MAXN 1000

typedef struct brun {
	char id[40];
	char pod[64];
	int conn;
	int64_t t_launch, t_running, t_done;
	cep_exec_handle h;
	bool launched, exited, undone;
} brun;

typedef struct bconn {
	char dir[CEP_PATH_MAX];
	pid_t pid;
	cep_kube *admin;
	pthread_t th;
	bool th_started;
	_Atomic int64_t cpu_us; /* this watcher thread's CPU so far */
} bconn;

static struct {
	char tmp[CEP_PATH_MAX];
	int n, c;
	int nrun; /* runs in the current round */
	int64_t slow_ms;
	bconn conns[MAXC];
	brun runs[MAXN];
	pthread_mutex_t mu;
	atomic_bool stop;
} B = {.n = 100, .c = 10, .slow_ms = 1500};

static int64_t cpu_us(int who)
{
	struct rusage ru;
	getrusage(who, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
	    ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static int write_text(const char *path, const char *text, unsigned mode)
{
	cep_err err;
	if (cep_files_write(path, text, strlen(text), mode, &err) != CEP_OK) {
		fprintf(stderr, "bench_kube: %s\n", err.msg);
		return -1;
	}
	chmod(path, mode);
	return 0;
}

static const char *kubeapi_script(char *buf, size_t len)
{
	const char *env = getenv("CEP_KUBEAPI");
	if (env != NULL && env[0] != '\0')
		snprintf(buf, len, "%s", env);
	else
		snprintf(buf, len, "%s/tests/kubeapi/kubeapi.py",
		    CEP_SOURCE_DIR);
	return access(buf, R_OK) == 0 ? buf : NULL;
}

static pid_t start_server(const char *script, const char *dir,
    const char *exec_img)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	char log[CEP_PATH_MAX + 16];
	snprintf(log, sizeof(log), "%s.log", dir);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	execlp("python3", "python3", script, "--dir", dir, "--port", "0",
	    "--namespace", NS, "--nodes", "3", "--exec-image", exec_img,
	    (char *)NULL);
	_exit(127);
}

/* The runner image: a script that lives about a second, as uid 65532. */
static int setup_files(void)
{
	char path[CEP_PATH_MAX + 64];
	chmod(B.tmp, 0755);
	snprintf(path, sizeof(path), "%s/runner.sh", B.tmp);
	if (write_text(path, "#!/bin/sh\nsleep 1\nexit 0\n", 0755) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/identity", B.tmp);
	mkdir(path, 0700);
	static const char *const names[] = {"ca.crt", "runner.crt",
	    "runner.key"};
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/identity/%s", B.tmp, names[i]);
		if (write_text(path,
		        "-----BEGIN BENCH-----\nbench\n"
		        "-----END BENCH-----\n",
		        0600) != 0)
			return -1;
	}
	snprintf(path, sizeof(path), "%s/home/config/connectors.d", B.tmp);
	cep_files_mkdirs(path, 0700, NULL);
	return 0;
}

static int start_servers(const char *script)
{
	char exec_img[CEP_PATH_MAX + 64];
	snprintf(exec_img, sizeof(exec_img), IMAGE "=%s/runner.sh", B.tmp);
	for (int i = 0; i < B.c; i++) {
		snprintf(B.conns[i].dir, sizeof(B.conns[i].dir), "%s/k%02d",
		    B.tmp, i);
		B.conns[i].pid = start_server(script, B.conns[i].dir, exec_img);
	}
	for (int i = 0; i < B.c; i++) {
		char ready[CEP_PATH_MAX + 16];
		snprintf(ready, sizeof(ready), "%s/ready", B.conns[i].dir);
		int t = 0;
		while (access(ready, F_OK) != 0 && t++ < 1200) {
			if (waitpid(B.conns[i].pid, NULL, WNOHANG) != 0) {
				fprintf(stderr,
				    "bench_kube: test server %d exited; see "
				    "%s.log\n",
				    i, B.conns[i].dir);
				B.conns[i].pid = 0;
				return -1;
			}
			cep_clock_sleep_ms(50);
		}
		if (access(ready, F_OK) != 0) {
			fprintf(stderr,
			    "bench_kube: test server %d not ready\n", i);
			return -1;
		}
	}
	return 0;
}

static int write_connectors(void)
{
	for (int i = 0; i < B.c; i++) {
		char path[CEP_PATH_MAX + 64], text[CEP_PATH_MAX + 512];
		snprintf(path, sizeof(path),
		    "%s/home/config/connectors.d/c%02d.yaml", B.tmp, i);
		snprintf(text, sizeof(text),
		    "kubeconfig: %s/kubeconfig\n"
		    "namespaces: [" NS "]\n"
		    "runner:\n  serviceAccount: cep-runner\n  image: " IMAGE
		    "\n"
		    "timeouts: {request: 20s, launch: 2m}\n",
		    B.conns[i].dir);
		if (write_text(path, text, 0600) != 0)
			return -1;
	}
	return 0;
}

static int on_pod(void *arg, const char *type, json_t *pod)
{
	(void)type;
	bconn *bc = arg;
	const char *name = json_string_value(
	    json_object_get(json_object_get(pod, "metadata"), "name"));
	const char *phase = json_string_value(
	    json_object_get(json_object_get(pod, "status"), "phase"));
	atomic_store(&bc->cpu_us, cpu_us(RUSAGE_THREAD));
	if (name == NULL || phase == NULL || strcmp(phase, "Pending") == 0)
		return atomic_load(&B.stop);
	int64_t now = cep_clock_mono_ms();
	pthread_mutex_lock(&B.mu);
	for (int i = 0; i < B.nrun; i++)
		if (B.runs[i].launched && B.runs[i].t_running == 0 &&
		    strcmp(B.runs[i].pod, name) == 0)
			B.runs[i].t_running =
			    now; /* Running, or already past it */
	pthread_mutex_unlock(&B.mu);
	return atomic_load(&B.stop);
}

static void *watch_main(void *arg)
{
	bconn *bc = arg;
	cep_kube_list_opts lo = {
	    .label_selector = "app.kubernetes.io/managed-by=cep"};
	while (!atomic_load(&B.stop)) {
		cep_err err;
		cep_kube_watch_spec ws = {.res = &cep_kube_pods,
		    .ns = NS,
		    .list = &lo,
		    .timeout_ms = 600000,
		    .stop = &B.stop,
		    .fn = on_pod,
		    .arg = bc};
		int rv = cep_kube_watch(bc->admin, &ws, &err);
		if (rv != CEP_OK && rv != CEP_CANCELLED &&
		    !atomic_load(&B.stop))
			cep_clock_sleep_ms(200);
	}
	atomic_store(&bc->cpu_us, cpu_us(RUSAGE_THREAD));
	return NULL;
}

static int set_latency(int i, int64_t ms)
{
	json_t *body = json_pack("{s:I}", "ms", (json_int_t)ms);
	cep_err err;
	cep_kube_req req = {.method = "POST",
	    .path = "/_test/latency",
	    .body = body,
	    .what = "set latency"};
	int rv = cep_kube_request(B.conns[i].admin, &req, NULL, NULL, &err);
	json_decref(body);
	if (rv != CEP_OK)
		fprintf(stderr, "bench_kube: latency on server %d: %s\n", i,
		    err.msg);
	return rv;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of v[0..n) (sorted in place); -1 if empty. */
static int64_t pct(int64_t *v, int n, int p)
{
	if (n == 0)
		return -1;
	qsort(v, (size_t)n, sizeof(*v), cmp64);
	int k = (p * n + 99) / 100;
	return v[k < 1 ? 0 : k - 1];
}

/* Launch-to-Running of connector c's runs (c < 0: all but `except`). */
static int64_t conn_pct(int c, int except, int p)
{
	int64_t v[MAXN];
	int k = 0;
	for (int i = 0; i < B.nrun; i++) {
		const brun *r = &B.runs[i];
		if (!r->launched || r->t_running == 0)
			continue;
		if ((c >= 0 && r->conn == c) || (c < 0 && r->conn != except))
			v[k++] = r->t_running - r->t_launch;
	}
	return pct(v, k, p);
}

static int64_t watchers_cpu(void)
{
	int64_t s = 0;
	for (int i = 0; i < B.c; i++)
		s += atomic_load(&B.conns[i].cpu_us);
	return s;
}

/* B.nrun runs, round-robin over the connectors but `skip` (-1: none). */
static int launch_all(cep_executor *ex, int skip, int *failed)
{
	char identity[CEP_PATH_MAX + 16];
	snprintf(identity, sizeof(identity), "%s/identity", B.tmp);
	int used = skip >= 0 ? B.c - 1 : B.c;
	B.nrun = skip >= 0 ? B.n / B.c * used : B.n;
	for (int i = 0; i < B.nrun; i++) {
		brun *r = &B.runs[i];
		cep_run_id id;
		cep_run_id_new(&id);
		pthread_mutex_lock(&B.mu);
		memset(r, 0, sizeof(*r));
		snprintf(r->id, sizeof(r->id), "%s", id.s);
		snprintf(r->pod, sizeof(r->pod), "cep-runner-%s", id.s);
		r->conn = i % used;
		if (skip >= 0 && r->conn >= skip)
			r->conn++;
		r->t_launch = cep_clock_mono_ms();
		r->launched = true;
		pthread_mutex_unlock(&B.mu);
		char conn[16];
		snprintf(conn, sizeof(conn), "c%02d", r->conn);
		cep_exec_launch l = {.run_id = r->id,
		    .identity_dir = identity,
		    .relay_url = "tls+tcp://127.0.0.1:9",
		    .log_path = "/dev/null",
		    .connector = conn,
		    .ns = NS,
		    .appliance = "bench",
		    .not_after_ms = cep_clock_now_ms() + 300000};
		cep_err err;
		if (delegate_executor_launch(ex, &l, &r->h, &err) != CEP_OK) {
			fprintf(stderr, "bench_kube: launch %s on %s: %s\n",
			    r->id, conn, err.msg);
			r->exited = r->undone = true;
			(*failed)++;
		}
	}
	return 0;
}

/* What the delegate's monitor does, at its pace (delegate/monitor.c,
 * TICK_MS): poll each runner; once it exited, undo until the executor
 * confirms its objects are gone. */
#define MONITOR_TICK_MS 100
static int drive(cep_executor *ex, int *failed)
{
	int left = B.nrun;
	for (int i = 0; i < B.nrun; i++)
		if (B.runs[i].undone)
			left--;
	int64_t until = cep_clock_mono_ms() + 600000;
	while (left > 0 && cep_clock_mono_ms() < until) {
		for (int i = 0; i < B.nrun; i++) {
			brun *r = &B.runs[i];
			if (r->undone)
				continue;
			char what[256];
			if (!r->exited &&
			    delegate_executor_poll(ex, &r->h, what,
			        sizeof(what)) == CEP_EXEC_EXITED)
				r->exited = true;
			if (!r->exited)
				continue;
			cep_err err;
			enum cep_exec_state st = delegate_executor_undo(ex,
			    r->id, &err);
			if (st == CEP_EXEC_PENDING)
				continue;
			if (st != CEP_EXEC_DONE) {
				fprintf(stderr, "bench_kube: undo %s: %s\n",
				    r->id, err.msg);
				(*failed)++;
			}
			r->undone = true;
			r->t_done = cep_clock_mono_ms();
			left--;
		}
		cep_clock_sleep_ms(MONITOR_TICK_MS);
	}
	return left;
}

/* Pods and secrets carrying the cep label left on every server. */
static int leftovers(void)
{
	int total = 0;
	const cep_kube_res *res[2] = {&cep_kube_pods, &cep_kube_secrets};
	for (int i = 0; i < B.c; i++)
		for (int j = 0; j < 2; j++) {
			cep_kube_list_opts lo = {
			    .label_selector =
			        "app.kubernetes.io/managed-by=cep"};
			json_t *items = NULL;
			cep_err err;
			if (cep_kube_list(B.conns[i].admin, res[j], NULL, &lo,
			        &items, NULL, 0, &err) != CEP_OK) {
				fprintf(stderr, "bench_kube: list: %s\n",
				    err.msg);
				total++;
				continue;
			}
			total += (int)json_array_size(items);
			json_decref(items);
		}
	return total;
}

/* The executor's API calls and new connections so far: every client of
 * the process, less this benchmark's own (its watches and checks). */
static void http_counts(uint64_t *calls, uint64_t *conns)
{
	cep_http_totals(calls, conns);
	for (int i = 0; i < B.c; i++) {
		uint64_t c = 0, n = 0;
		if (B.conns[i].admin != NULL)
			cep_kube_http_stats(B.conns[i].admin, &c, &n);
		*calls -= c;
		*conns -= n;
	}
}

/* One round. slow >= 0: that connector is slow and takes its share of
 * the runs; skip >= 0: that connector gets none. */
static int round_run(cep_executor *ex, const char *label, int slow, int skip,
    int64_t *healthy_p95)
{
	int failed = 0;
	int64_t cpu0 = cpu_us(RUSAGE_SELF), w0 = watchers_cpu();
	uint64_t calls0, conns0;
	http_counts(&calls0, &conns0);
	int64_t t0 = cep_clock_mono_ms();
	launch_all(ex, skip, &failed);
	int64_t t_launched = cep_clock_mono_ms();
	int left = drive(ex, &failed);
	int64_t wall = cep_clock_mono_ms() - t0;
	int64_t cpu = cpu_us(RUSAGE_SELF) - cpu0 - (watchers_cpu() - w0);
	uint64_t calls, conns;
	http_counts(&calls, &conns);
	calls -= calls0;
	conns -= conns0;
	int lo = leftovers();
	printf("\n== %s: %d runners on %d connectors\n", label, B.nrun,
	    skip >= 0 ? B.c - 1 : B.c);
	printf("wall time %.2f s (launch calls %.0f ms), %d failed, %d not "
	       "cleaned up in time, %d cep objects left\n",
	    (double)wall / 1000.0, (double)(t_launched - t0), failed, left, lo);
	printf("CPU time per launch %.2f ms (process CPU %.2f s, less this "
	       "benchmark's own watches)\n",
	    (double)cpu / 1000.0 / B.nrun, (double)cpu / 1e6);
	printf("API calls per launch %.1f, new connections (TLS handshakes) "
	       "per launch %.2f (%llu calls, %llu connections)\n",
	    (double)calls / B.nrun, (double)conns / B.nrun,
	    (unsigned long long)calls, (unsigned long long)conns);
	printf("%-10s %10s %10s %10s\n", "connector", "runners", "p50 ms",
	    "p95 ms");
	for (int c = 0; c < B.c; c++) {
		if (c == skip)
			continue;
		int k = 0;
		for (int i = 0; i < B.nrun; i++)
			k += B.runs[i].conn == c && B.runs[i].t_running != 0;
		printf("c%02d%-7s %10d %10lld %10lld\n", c,
		    c == slow ? " slow" : "", k, (long long)conn_pct(c, -1, 50),
		    (long long)conn_pct(c, -1, 95));
	}
	*healthy_p95 = conn_pct(-1, B.c - 1, 95);
	printf("healthy connectors (c00..c%02d) launch-to-Running p50 %lld ms, "
	       "p95 %lld ms\n",
	    B.c - 2, (long long)conn_pct(-1, B.c - 1, 50),
	    (long long)*healthy_p95);
	return failed + left + lo == 0 ? 0 : 1;
}

static void usage(void)
{
	fputs("usage: bench_kube [-n runners] [-c connectors] [-s slow-ms]\n",
	    stderr);
}

static int parse(int argc, char **argv)
{
	int o;
	while ((o = getopt(argc, argv, "n:c:s:h")) != -1) {
		char *end = NULL;
		long v = optarg ? strtol(optarg, &end, 10) : 0;
		if (o == 'h' || o == '?' || end == NULL || *end != '\0' ||
		    v < 0) {
			usage();
			return -1;
		}
		if (o == 'n')
			B.n = (int)(v > MAXN ? MAXN : v < 1 ? 1 : v);
		else if (o == 'c')
			B.c = (int)(v > MAXC ? MAXC : v < 2 ? 2 : v);
		else
			B.slow_ms = v;
	}
	return 0;
}

static int bench(const char *script)
{
	if (setup_files() != 0 || start_servers(script) != 0 ||
	    write_connectors() != 0)
		return -1;
	cep_paths p;
	cep_connectors *cs = NULL;
	cep_err err;
	char home[CEP_PATH_MAX + 8];
	snprintf(home, sizeof(home), "%s/home", B.tmp);
	if (cep_paths_resolve(home, &p, &err) != CEP_OK ||
	    cep_connector_list_load(&p, &cs, &err) != CEP_OK) {
		fprintf(stderr, "bench_kube: connectors: %s\n", err.msg);
		return -1;
	}
	int rv = 0;
	for (int i = 0; i < B.c && rv == 0; i++) {
		char name[16];
		snprintf(name, sizeof(name), "c%02d", i);
		const cep_connector *c = cep_connector_list_find(cs, name);
		rv = c == NULL ?
		    cep_err_set(&err, CEP_NOT_FOUND, "no connector %s", name) :
		    cep_connector_client(c, &B.conns[i].admin, &err);
		if (rv != CEP_OK)
			fprintf(stderr, "bench_kube: client %d: %s\n", i,
			    err.msg);
		else
			B.conns[i].th_started = pthread_create(&B.conns[i].th,
			                            NULL, watch_main,
			                            &B.conns[i]) == 0;
	}
	/* One executor for all rounds, as a delegate keeps one: round 1
	 * opens the connectors' connections (cold), round 2 is the same on
	 * kept ones (warm). The slow connector last: what the warm rounds
	 * favour goes to the round with it, so its effect is not
	 * overstated. */
	int64_t with = -1, without = -1, warm = -1;
	cep_executor *ex = NULL;
	if (rv == 0 &&
	    delegate_executor_kube_new(cs, "bench", "tls+tcp://127.0.0.1:9",
	        &ex, &err) != CEP_OK) {
		fprintf(stderr, "bench_kube: executor: %s\n", err.msg);
		rv = -1;
	}
	if (rv == 0) {
		int r1 = round_run(ex,
		    "round 1 (cold): the healthy connectors only, the "
		    "slow one unused",
		    -1, B.c - 1, &without);
		int r2 = round_run(ex,
		    "round 2 (warm): the same again, connections kept", -1,
		    B.c - 1, &warm);
		int r3 = set_latency(B.c - 1, B.slow_ms) == CEP_OK ?
		    round_run(ex,
		        "round 3: all connectors, the last one's API server "
		        "delaying every call",
		        B.c - 1, -1, &with) :
		    -1;
		/* figures are printed either way; failures make the exit code */
		rv = r1 < 0 || r2 < 0 || r3 < 0 ? -1 : r1 + r2 + r3;
	}
	delegate_executor_free(ex);
	if (rv >= 0)
		printf("\nslow connector's effect on the others: healthy p95 "
		       "%lld ms with it (%lld ms per call), %lld ms without "
		       "(cold), %lld ms without (warm)\n",
		    (long long)with, (long long)B.slow_ms, (long long)without,
		    (long long)warm);
	atomic_store(&B.stop, true);
	for (int i = 0; i < B.c; i++)
		if (B.conns[i].th_started)
			pthread_join(B.conns[i].th, NULL);
	for (int i = 0; i < B.c; i++)
		cep_kube_free(B.conns[i].admin);
	cep_connector_list_free(cs);
	return rv;
}

int main(int argc, char **argv)
{
	cep_log_init("bench_kube");
	cep_log_set_level(CEP_LOG_ERROR);
	signal(SIGPIPE, SIG_IGN);
	if (parse(argc, argv) != 0)
		return 2;
	char script[CEP_PATH_MAX];
	if (kubeapi_script(script, sizeof(script)) == NULL) {
		fprintf(stderr,
		    "bench_kube: the Kubernetes API test server is "
		    "missing (%s); set CEP_KUBEAPI\n",
		    script);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr,
		    "bench_kube: needs root (the test server's kubelet "
		    "runs pods in a private mount namespace)\n");
		return 2;
	}
	const char *t = getenv("TMPDIR");
	snprintf(B.tmp, sizeof(B.tmp), "%s/cep-bench-kube-XXXXXX",
	    t ? t : "/tmp");
	if (mkdtemp(B.tmp) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	pthread_mutex_init(&B.mu, NULL);
	printf("bench_kube: %d runners across %d connectors (%d test servers), "
	       "connector c%02d %lld ms slow in round 2\n",
	    B.n, B.c, B.c, B.c - 1, (long long)B.slow_ms);
	fflush(stdout);
	int rv = bench(script);
	for (int i = 0; i < B.c; i++)
		if (B.conns[i].pid > 0) {
			kill(B.conns[i].pid, SIGTERM);
			waitpid(B.conns[i].pid, NULL, 0);
		}
	cep_files_rmtree(B.tmp, NULL);
	pthread_mutex_destroy(&B.mu);
	return rv == 0 ? 0 : 1;
}
