/* kubeapi_fixture.c - starts and stops the Python Kubernetes API test
 * server for C tests; see kubeapi_fixture.h. */
#define _GNU_SOURCE
#include "kubeapi_fixture.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "clock.h"
#include "files.h"

#define READY_TIMEOUT_MS 20000
#define STOP_TIMEOUT_MS 10000

struct kubeapi_fixture {
	char *dir;
	pid_t pid;
	int port;
};

static void dump_log(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/server.log", dir);
	char *data = NULL;
	size_t len = 0;
	if (cep_files_read(path, 1 << 20, &data, &len, NULL) == CEP_OK) {
		const char *tail = len > 4000 ? data + len - 4000 : data;
		fprintf(stderr, "kubeapi server log (%s):\n%s\n", path, tail);
		free(data);
	}
}

static pid_t spawn(const char *rel, const char *dir, const char *const *args)
{
	const char *src = getenv("CEP_SRC_DIR");
	char script[4096], log[4096];
	snprintf(script, sizeof(script), "%s/%s", src ? src : ".", rel);
	snprintf(log, sizeof(log), "%s/server.log", dir);
	const char *argv[64];
	size_t n = 0;
	argv[n++] = "python3";
	argv[n++] = script;
	argv[n++] = "--dir";
	argv[n++] = dir;
	for (size_t i = 0; args != NULL && args[i] != NULL && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	execvp("python3", (char *const *)argv);
	_exit(127);
}

static bool wait_ready(kubeapi_fixture *f)
{
	char ready[4096], port[4096];
	snprintf(ready, sizeof(ready), "%s/ready", f->dir);
	snprintf(port, sizeof(port), "%s/port", f->dir);
	int64_t end = cep_clock_mono_ms() + READY_TIMEOUT_MS;
	while (cep_clock_mono_ms() < end) {
		int st;
		if (waitpid(f->pid, &st, WNOHANG) == f->pid) {
			fprintf(stderr,
			    "kubeapi: server exited before ready\n");
			f->pid = 0;
			return false;
		}
		if (access(ready, F_OK) == 0) {
			char *data = NULL;
			size_t len = 0;
			if (cep_files_read(port, 64, &data, &len, NULL) !=
			    CEP_OK)
				return false;
			char *e;
			long p = strtol(data, &e, 10);
			free(data);
			if (e == data || p <= 0 || p > 65535)
				return false;
			f->port = (int)p;
			return true;
		}
		cep_clock_sleep_ms(50);
	}
	fprintf(stderr, "kubeapi: no %s within %d ms\n", ready,
	    READY_TIMEOUT_MS);
	return false;
}

kubeapi_fixture *kubeapi_start(const char *const *args)
{
	return kubeapi_start_script("tests/kubeapi/kubeapi.py", args);
}

kubeapi_fixture *kubeapi_start_script(const char *script,
    const char *const *args)
{
	kubeapi_fixture *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->dir = cep_test_tmpdir("kubeapi");
	f->pid = spawn(script, f->dir, args);
	if (f->pid < 0) {
		f->pid = 0;
		kubeapi_stop(f);
		return NULL;
	}
	if (!wait_ready(f)) {
		dump_log(f->dir);
		kubeapi_stop(f);
		return NULL;
	}
	return f;
}

void kubeapi_stop(kubeapi_fixture *f)
{
	if (f == NULL)
		return;
	if (f->pid > 0) {
		kill(f->pid, SIGTERM);
		int64_t end = cep_clock_mono_ms() + STOP_TIMEOUT_MS;
		int st;
		while (waitpid(f->pid, &st, WNOHANG) == 0) {
			if (cep_clock_mono_ms() > end) {
				kill(f->pid, SIGKILL);
				waitpid(f->pid, &st, 0);
				break;
			}
			cep_clock_sleep_ms(20);
		}
	}
	cep_test_rmdir(f->dir);
	free(f);
}

const char *kubeapi_dir(const kubeapi_fixture *f)
{
	return f->dir;
}

int kubeapi_port(const kubeapi_fixture *f)
{
	return f->port;
}

char *kubeapi_kubeconfig(const kubeapi_fixture *f, const char *user)
{
	char *p = NULL;
	if (asprintf(&p, "%s/kubeconfig%s%s", f->dir, user ? "-" : "",
	        user ? user : "") < 0)
		abort();
	return p;
}

char *kubeapi_token(const kubeapi_fixture *f, const char *user)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/tokens.json", f->dir);
	json_t *j = json_load_file(path, 0, NULL);
	const char *t = json_string_value(
	    json_object_get(j, user ? user : "admin"));
	char *out = t ? strdup(t) : NULL;
	json_decref(j);
	return out;
}

struct buf {
	char *p;
	size_t len;
};

static size_t sink(char *p, size_t sz, size_t n, void *arg)
{
	struct buf *b = arg;
	char *q = realloc(b->p, b->len + sz * n + 1);
	if (q == NULL)
		return 0;
	memcpy(q + b->len, p, sz * n);
	b->len += sz * n;
	q[b->len] = '\0';
	b->p = q;
	return sz * n;
}

static int call(kubeapi_fixture *f, const char *name, const char *json,
    json_t **out)
{
	char url[512], auth[1024];
	char *tok = kubeapi_token(f, "admin");
	if (tok == NULL)
		return -1;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s%s", f->port,
	    strncmp(name, "/_test/", 7) == 0 ? "" : "/_test/", name);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
	free(tok);
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, auth);
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (out == NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json ? json : "{}");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	struct buf b = {0};
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	long code = -1;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	if (out != NULL)
		*out = code == 200 && b.p ? json_loads(b.p, 0, NULL) : NULL;
	free(b.p);
	return (int)code;
}

int kubeapi_control(kubeapi_fixture *f, const char *name, const char *json)
{
	return call(f, name, json, NULL);
}

json_t *kubeapi_stats(kubeapi_fixture *f)
{
	json_t *out = NULL;
	call(f, "stats", NULL, &out);
	return out;
}
