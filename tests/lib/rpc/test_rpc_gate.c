/*
 * test_rpc_gate.c - the connection gate (rpc_gate.c) on a plain TCP
 * listener of the test's own: it sheds accepted sockets of its port over
 * the handshake timeout, the handshakes and per-peer limits, in the order
 * it promises (not negotiated oldest first, negotiated ones last), and the
 * call rate's token bucket.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rpc.h"
#include "rpc_int.h"
#include "clock.h"

#define MAXC 8

static int lfd = -1, port;
static int cli[MAXC], srv[MAXC], ncli;
static char negotiated[64] = ""; /* the peer peers_fn reports */

static void setup(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(lfd >= 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(lfd, 16), 0);
	getsockname(lfd, (struct sockaddr *)&a, &len);
	port = ntohs(a.sin_port);
	ncli = 0;
	negotiated[0] = '\0';
}

static void teardown(void)
{
	for (int i = 0; i < ncli; i++) {
		close(cli[i]);
		close(srv[i]);
	}
	close(lfd);
}

TestSuite(rpc_gate, .init = setup, .fini = teardown);

/* A client from src (127.0.0.x) and the accepted end the gate sees. */
static int connect_from(const char *src)
{
	struct sockaddr_in s = {.sin_family = AF_INET}, d = s;
	inet_pton(AF_INET, src, &s.sin_addr);
	d.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d.sin_port = htons((uint16_t)port);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&s, sizeof(s)), 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&d, sizeof(d)), 0);
	cr_assert_lt(ncli, MAXC);
	cli[ncli] = fd;
	srv[ncli] = accept(lfd, NULL, NULL);
	cr_assert(srv[ncli] >= 0);
	return ncli++;
}

/* "ip:port" of client i as the gate formats a peer. */
static void peer_of(int i, char *out, size_t len)
{
	struct sockaddr_in a;
	socklen_t n = sizeof(a);
	char ip[INET_ADDRSTRLEN];
	getsockname(cli[i], (struct sockaddr *)&a, &n);
	inet_ntop(AF_INET, &a.sin_addr, ip, sizeof(ip));
	snprintf(out, len, "%s:%u", ip, (unsigned)ntohs(a.sin_port));
}

static size_t peers(char (*out)[64], size_t max, void *arg)
{
	(void)arg;
	if (negotiated[0] == '\0')
		return 0;
	if (max > 0)
		memcpy(out[0], negotiated, sizeof(negotiated));
	return 1;
}

/* True when the gate shut client i's connection down (EOF within ms). */
static bool closed(int i, int ms)
{
	struct pollfd p = {.fd = cli[i], .events = POLLIN};
	char b;
	return poll(&p, 1, ms) == 1 && recv(cli[i], &b, 1, 0) <= 0;
}

static uint64_t limited(cep_rpc_gate *g, enum cep_rpc_limit why)
{
	cep_rpc_stats st = {0};
	cep_rpc_gate_stats(g, &st);
	return st.limited[why];
}

static cep_rpc_gate *gate(const cep_rpc_limits *lim)
{
	cep_rpc_gate *g = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_rpc_gate_new(&g, "test", port, lim, peers, NULL, &err),
	    CEP_OK, "%s", err.msg);
	return g;
}

Test(rpc_gate, handshake_timeout_spares_negotiated)
{
	cep_rpc_limits lim = {.handshake_timeout_ms = 300};
	for (int i = 0; i < 3; i++)
		connect_from("127.0.0.1");
	peer_of(0, negotiated, sizeof(negotiated));
	cep_rpc_gate *g = gate(&lim);
	cr_assert(closed(1, 2000), "not negotiated: closed at the timeout");
	cr_assert(closed(2, 2000));
	cr_assert_not(closed(0, 500), "negotiated: left alone");
	cr_assert_eq(limited(g, CEP_RPC_LIMIT_HANDSHAKE_TIMEOUT), 2);
	cep_rpc_stats st = {0};
	cep_rpc_gate_stats(g, &st);
	cr_assert_eq(st.handshaking, 0, "shut down: no longer handshaking");
	cep_rpc_gate_free(g);
}

Test(rpc_gate, handshakes_shed_oldest_first)
{
	cep_rpc_limits lim = {.max_handshakes = 2};
	cep_rpc_gate *g = gate(&lim);
	for (int i = 0; i < 4; i++) {
		connect_from("127.0.0.1");
		usleep(250 * 1000); /* seen by a sweep before the next */
	}
	cr_assert(closed(0, 1000), "the oldest two go");
	cr_assert(closed(1, 1000));
	cr_assert_not(closed(2, 300), "the newest two stay");
	cr_assert_not(closed(3, 300));
	cr_assert_eq(limited(g, CEP_RPC_LIMIT_HANDSHAKES), 2);
	cep_rpc_gate_free(g);
}

Test(rpc_gate, per_peer_counts_one_address)
{
	cep_rpc_limits lim = {.max_conns_per_peer = 2};
	for (int i = 0; i < 3; i++)
		connect_from("127.0.0.2");
	connect_from("127.0.0.3");
	peer_of(0, negotiated, sizeof(negotiated));
	cep_rpc_gate *g = gate(&lim);
	/* .2 has one too many: not a negotiated one */
	cr_assert(closed(1, 1000) || closed(2, 1000));
	cr_assert_not(closed(0, 300), "the negotiated one stays");
	cr_assert_not(closed(3, 300), "another address is not counted");
	cr_assert_eq(limited(g, CEP_RPC_LIMIT_PER_PEER), 1);
	cep_rpc_gate_free(g);
}

Test(rpc_gate, total_sheds_negotiated_last)
{
	cep_rpc_limits lim = {.max_conns = 1};
	connect_from("127.0.0.1");
	connect_from("127.0.0.2");
	peer_of(1, negotiated, sizeof(negotiated));
	cep_rpc_gate *g = gate(&lim);
	cr_assert(closed(0, 1000), "not negotiated goes first");
	cr_assert_not(closed(1, 300));
	cep_rpc_gate_free(g);
}

Test(rpc_gate, call_rate_bucket)
{
	cep_rpc_limits lim = {.calls_per_sec = 10, .call_burst = 3};
	cep_rpc_gate *g = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_rpc_gate_new(&g, "test", port, &lim, NULL, NULL, &err),
	    CEP_OK);
	cep_rpc_pipe_info pi = {.id = 1, .peer = "127.0.0.1:5"};
	int64_t t = 1000;
	for (int i = 0; i < 3; i++)
		cr_assert(cep_rpc_gate_take(g, &pi, t), "the burst");
	cr_assert_not(cep_rpc_gate_take(g, &pi, t), "then the rate");
	cr_assert(cep_rpc_gate_take(g, &pi, t + 100), "10/s: one per 100 ms");
	cr_assert_not(cep_rpc_gate_take(g, &pi, t + 150));
	cep_rpc_pipe_info ipc = {.id = 2, .peer = "ipc"};
	for (int i = 0; i < 10; i++)
		cr_assert(cep_rpc_gate_take(g, &ipc, t), "ipc is not limited");
	cep_rpc_gate_note(g, CEP_RPC_LIMIT_CALL_RATE, "127.0.0.1:5");
	cr_assert_eq(limited(g, CEP_RPC_LIMIT_CALL_RATE), 1);
	cep_rpc_gate_free(g);
	cep_rpc_gate_free(NULL);
}

/* The rate is the identity's: two connections that proved one run share
 * its bucket (a runner cannot multiply its rate by connecting twice);
 * another run has its own; a pipe let go leaves the others theirs. */
Test(rpc_gate, call_rate_per_identity)
{
	cep_rpc_limits lim = {.calls_per_sec = 10, .call_burst = 4};
	cep_rpc_gate *g = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_rpc_gate_new(&g, "test", port, &lim, NULL, NULL, &err),
	    CEP_OK);
	cep_rpc_pipe_info a = {.id = 1, .peer = "127.0.0.1:5"},
	                  b = {.id = 2, .peer = "127.0.0.1:6"},
	                  c = {.id = 3, .peer = "127.0.0.1:7"};
	cep_rpc_gate_bind(g, &a, "r-0123456789abcdef");
	cep_rpc_gate_bind(g, &b, "r-0123456789abcdef");
	cep_rpc_gate_bind(g, &c, "r-fedcba9876543210");
	cr_assert_not_null(a.bucket);
	cr_assert_eq(a.bucket, b.bucket, "one bucket for the run");
	cr_assert_neq(a.bucket, c.bucket);
	int64_t t = 1000;
	for (int i = 0; i < 2; i++) {
		cr_assert(cep_rpc_gate_take(g, &a, t));
		cr_assert(cep_rpc_gate_take(g, &b, t));
	}
	cr_assert_not(cep_rpc_gate_take(g, &a, t), "4 between both");
	cr_assert_not(cep_rpc_gate_take(g, &b, t));
	cr_assert(cep_rpc_gate_take(g, &c, t), "the other run: its own");
	cep_rpc_gate_unbind(g, &a);
	cr_assert_null(a.bucket);
	cr_assert(cep_rpc_gate_take(g, &b, t + 100), "refilled, still bound");
	cep_rpc_gate_bind(g, &b, "r-fedcba9876543210"); /* rebound: moves */
	cr_assert_eq(b.bucket, c.bucket);
	cep_rpc_gate_unbind(g, &b);
	cep_rpc_gate_unbind(g, &c);
	cep_rpc_gate_bind(NULL, &a, "r-0123456789abcdef");
	cr_assert_null(a.bucket, "no gate: nothing bound");
	cep_rpc_gate_free(g);
}

/* ------------------------------------------------------ the wedge watch */

static _Atomic int wedges, wedge_waiting;
static char late_peer[64]; /* reported once late_on is set */
static _Atomic bool late_on;

static void on_wedge(int waiting, void *arg)
{
	(void)arg;
	atomic_store(&wedge_waiting, waiting);
	atomic_fetch_add(&wedges, 1);
}

static size_t late_peers(char (*out)[64], size_t max, void *arg)
{
	(void)arg;
	if (!atomic_load(&late_on))
		return 0;
	if (max > 0)
		memcpy(out[0], late_peer, sizeof(late_peer));
	return 1;
}

static cep_rpc_gate *wedge_gate(void)
{
	cep_rpc_limits lim = {.max_conns = 100}; /* a limit: the thread runs */
	cep_rpc_gate *g = NULL;
	cep_err err = {0};
	atomic_store(&wedges, 0);
	atomic_store(&late_on, false);
	cr_assert_eq(cep_rpc_gate_new(&g, "test", port, &lim, late_peers, NULL,
	                 &err),
	    CEP_OK, "%s", err.msg);
	cep_rpc_gate_on_wedge(g, on_wedge, NULL);
	return g;
}

/* Fires for the connection with data its owner never read, not for the
 * one still quiet (a TLS handshake waiting for its peer), and once per
 * interval. */
Test(rpc_gate, wedge_fires_on_data_unread)
{
	connect_from("127.0.0.1");
	int b = connect_from("127.0.0.2");
	cr_assert_eq(write(cli[b], "call", 4), 4);
	int64_t t0 = cep_clock_mono_ms();
	cep_rpc_gate *g = wedge_gate();
	while (atomic_load(&wedges) == 0 && cep_clock_mono_ms() - t0 < 15000)
		cep_clock_sleep_ms(50);
	int64_t took = cep_clock_mono_ms() - t0;
	cr_assert_eq(atomic_load(&wedges), 1, "not fired in 15 s");
	cr_assert_geq(took, CEP_RPC_WEDGE_MS - 200, "fired after %lld ms",
	    (long long)took);
	cr_assert_eq(atomic_load(&wedge_waiting), 1);
	cep_clock_sleep_ms(2000);
	cr_assert_eq(atomic_load(&wedges), 1, "fired again within 2 x 5 s");
	cep_rpc_gate_free(g);
}

/* A connection becoming negotiated is progress: the listener works (a
 * storm of handshakes), and the watch waits a whole interval after it. */
Test(rpc_gate, wedge_waits_after_progress)
{
	int b = connect_from("127.0.0.2");
	cr_assert_eq(write(cli[b], "call", 4), 4);
	int c = connect_from("127.0.0.3");
	peer_of(c, late_peer, sizeof(late_peer));
	cep_rpc_gate *g = wedge_gate();
	cep_clock_sleep_ms(3000);
	atomic_store(&late_on, true);
	int64_t t1 = cep_clock_mono_ms();
	cep_clock_sleep_ms(3500); /* 6.5 s after the start */
	cr_assert_eq(atomic_load(&wedges), 0,
	    "fired although a connection became negotiated 3.5 s ago");
	while (atomic_load(&wedges) == 0 && cep_clock_mono_ms() - t1 < 15000)
		cep_clock_sleep_ms(50);
	cr_assert_eq(atomic_load(&wedges), 1, "not fired after the progress");
	cep_rpc_gate_free(g);
}
