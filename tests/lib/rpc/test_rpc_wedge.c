/*
 * test_rpc_wedge.c - nng 1.5.2's TLS listener wedge and its remedy
 * (docs/internals.md, "nng 1.5.2 TLS listener wedge"): clients, each a
 * process of its own (tests/support/rpc_peer.c), are killed with SIGKILL
 * at random points around their connect, over and over; after each, a
 * fresh client must be served. Without the gate's wedge watch the server
 * stops taking new pipes for good now and then (measured: 4 times in 200
 * kills; a fresh client then went unserved for 15 s and more); with it,
 * every fresh client is served, within about 5-10 s after a wedge. This
 * process only forks and execs: Criterion's workers run nng already, and
 * nng refuses to work in a forked child.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "testutil.h"

#define KILLS 120
#define SERVED_MS 20000 /* a wedge: 5 s to notice, then reconnects */

static pid_t peer(const char *a, const char *b, const char *c, const char *d)
{
	char *prog = cep_test_bin("test_rpc_peer");
	pid_t p = fork();
	cr_assert(p >= 0);
	if (p == 0) {
		execl(prog, "test_rpc_peer", a, b, c, d, (char *)NULL);
		_exit(3);
	}
	free(prog);
	return p;
}

/* A fresh client's time to its first answer (-1: none within SERVED_MS). */
static int64_t served(const char *url, const char *dir)
{
	char ms[16];
	snprintf(ms, sizeof(ms), "%d", SERVED_MS);
	int64_t t0 = cep_clock_mono_ms();
	int st = 0;
	waitpid(peer("dial", url, dir, ms), &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ?
	    cep_clock_mono_ms() - t0 :
	    -1;
}

static void server_url(const char *dir, pid_t srv, char *url, size_t len)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/url", dir);
	int64_t until = cep_clock_mono_ms() + 60000;
	FILE *f = NULL;
	while ((f = fopen(path, "r")) == NULL && cep_clock_mono_ms() < until &&
	    waitpid(srv, NULL, WNOHANG) == 0)
		cep_clock_sleep_ms(20);
	cr_assert_not_null(f, "the server did not start (its stderr above)");
	cr_assert_not_null(fgets(url, (int)len, f));
	fclose(f);
}

Test(rpc_wedge, tls_clients_killed_while_connecting, .timeout = 280)
{
	char *dir = cep_test_tmpdir("rpc-wedge");
	pid_t srv = peer("serve", dir, NULL, NULL);
	char url[64];
	server_url(dir, srv, url, sizeof(url));
	/* how long a client takes to start, connect and be answered here
	 * (ASan, load): the kills fall from well before that to after */
	int64_t t = 0;
	for (int i = 0; i < 3; i++) {
		int64_t one = served(url, dir);
		cr_assert_geq(one, 0,
		    "a client on a fresh listener not served");
		t = one > t ? one : t;
	}
	unsigned seed = (unsigned)cep_clock_mono_ms();
	int64_t worst = 0;
	int slow = 0;
	for (int i = 0; i < KILLS; i++) {
		pid_t p = peer("dial", url, dir, NULL);
		int64_t at = t / 4 +
		    (int64_t)(rand_r(&seed) % (unsigned)(t + 1));
		cep_clock_sleep_ms(at);
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
		int64_t took = served(url, dir);
		if (took < 0) {
			kill(srv, SIGKILL);
			waitpid(srv, NULL, 0);
		}
		cr_assert_geq(took, 0,
		    "kill %d (%lld ms after its start, a client takes %lld "
		    "ms): no fresh client served within %d ms",
		    i, (long long)at, (long long)t, SERVED_MS);
		worst = took > worst ? took : worst;
		slow += took >= 3000;
	}
	cr_log_info("%d kills (a client takes %lld ms): %d fresh client(s) "
	            "took 3 s or more (a wedge and its remedy), the slowest "
	            "%lld ms",
	    KILLS, (long long)t, slow, (long long)worst);
	kill(srv, SIGKILL);
	waitpid(srv, NULL, 0);
	cep_test_rmdir(dir);
}
