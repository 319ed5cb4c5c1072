/*
 * rpc_gate.c - the connection limits of a TCP listener (rpc.h,
 * cep_rpc_limits): total, per peer address, handshakes in flight, and the
 * handshake timeout; and the call rate's token bucket the server takes
 * from. The RPC server's tls+tcp listener has one, so has lib/metrics'
 * HTTP endpoint.
 *
 * Why from beside nng: libnng 1.5.2 accepts, runs the TLS handshake and
 * the SP negotiation inside its transport and tells the socket about a
 * connection only when all that is done. A peer that connects and says
 * nothing, or stalls inside its ClientHello, is invisible to us and held
 * forever (measured: 350 such connections stayed open 20 s and more, the
 * relay's RSS doubled; the transport's own 10 s negotiation timeout does
 * not fire while the TLS handshake is pending). A proxy in front of nng
 * would see them but costs a copy of every byte and hides peer addresses
 * from nng; instead this gate looks at the process's own sockets.
 *
 * Every GATE_PERIOD_MS a thread lists /proc/self/fd, keeps the sockets
 * whose local port is the listener's and that have a peer (accepted
 * connections; the listener itself has none), and remembers when it
 * first saw each (by inode). A connection whose peer address has a pipe
 * in the server's table is negotiated. Then, in this order, it sheds:
 * not negotiated past the handshake timeout; not negotiated beyond
 * max_handshakes (oldest first: a real client completes its handshake in
 * milliseconds, a slowloris is the one that stays); beyond the per-peer
 * and the total limits (not negotiated oldest first, then negotiated
 * newest first, so established runners are the last to go).
 *
 * Shedding is shutdown(2), never close(2): nng owns the descriptor; its
 * read sees the end, it closes the connection and frees its TLS state.
 * Just before, the descriptor's inode is checked again, so a descriptor
 * number nng closed and reused meanwhile is left alone.
 *
 * Refusals are counted per reason and logged at most once per peer
 * address per interval (lib/base/lograte.h), with the count held back.
 */
#define _GNU_SOURCE
#include "rpc_int.h"

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <dirent.h>
#include <malloc.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "lograte.h"

#define GATE_PERIOD_MS 100
#define PEER_LEN 64
#define IP_LEN 48
#define STALL_MS 1000 /* between two sweeps: the process was stopped */
#define TRIM_PEAK 64  /* handshakes at once that make an attack */

const char *const cep_rpc_limit_names[CEP_RPC_LIMIT_N] = {"connections",
    "per_peer", "handshakes", "handshake_timeout", "call_rate"};

typedef struct gate_conn {
	ino_t ino;
	int fd;
	int64_t first_ms;
	bool negotiated, seen;
	bool was_negotiated; /* at the last sweep (progress: it became so) */
	bool shed; /* shut down; counted once, until its owner closes it */
	char peer[PEER_LEN]; /* "ip:port" as cep_rpc_pipe_query */
	char ip[IP_LEN];
} gate_conn;

struct cep_rpc_gate {
	char name[64];
	int port;
	cep_rpc_limits lim;
	cep_rpc_gate_peers_fn peers_fn;
	void *peers_arg;
	pthread_t thread;
	pthread_mutex_t mu; /* stop flag, cv */
	int log_every_ms;
	pthread_cond_t cv;
	bool stop;
	gate_conn *conns;
	size_t n, cap;
	char (*peers)[PEER_LEN]; /* negotiated, sorted */
	size_t npeers, cap_peers;
	cep_lograte *log; /* one line per peer address per interval */
	_Atomic uint64_t limited[CEP_RPC_LIMIT_N];
	_Atomic uint32_t handshaking;
	uint32_t hs_peak;             /* since memory was last given back */
	cep_rpc_bucket *buckets;      /* under the server's lock, not mu */
	cep_rpc_gate_wedge_fn wedged; /* under mu */
	void *wedged_arg;
	int64_t progress_ms; /* a connection last became negotiated */
	int64_t swept_ms;    /* the last sweep */
	int64_t wedge_ms;    /* the wedge watch last fired */
};

/* ------------------------------------------------------------- logging */

void cep_rpc_gate_note(cep_rpc_gate *g, enum cep_rpc_limit why,
    const char *peer)
{
	if (g == NULL || why >= CEP_RPC_LIMIT_N)
		return;
	atomic_fetch_add(&g->limited[why], 1);
	char ip[IP_LEN];
	uint64_t held = 0;
	cep_lograte_peer_key(peer != NULL ? peer : "?", ip, sizeof(ip));
	if (cep_lograte_take(g->log, ip, cep_clock_mono_ms(), &held))
		cep_log_warn(NULL,
		    "rpc %s: refused peer %s over its limits: %s; %llu more "
		    "refusal(s) of it since its last line, the next line in "
		    "%d s at the earliest",
		    g->name, ip, cep_rpc_limit_names[why],
		    (unsigned long long)held, g->log_every_ms / 1000);
}

/* ------------------------------------------------------------- sockets */

static void fmt_addr(const struct sockaddr_storage *ss, char *peer, char *ip)
{
	char a[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;
		inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
		port = ntohs(in->sin_port);
		snprintf(peer, PEER_LEN, "%s:%u", a, port);
	} else {
		const struct sockaddr_in6 *in6 = (const void *)ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
		port = ntohs(in6->sin6_port);
		snprintf(peer, PEER_LEN, "[%s]:%u", a, port);
	}
	snprintf(ip, IP_LEN, "%s", a);
}

static int local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

/* An accepted connection of our port on fd: its inode and peer. */
static bool conn_probe(cep_rpc_gate *g, int fd, gate_conn *c)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
	    local_port(fd) != g->port)
		return false;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
		return false; /* the listener, or not TCP */
	*c = (gate_conn){.ino = st.st_ino, .fd = fd, .seen = true};
	fmt_addr(&ss, c->peer, c->ip);
	return true;
}

static int ino_cmp(const void *a, const void *b)
{
	const gate_conn *x = a, *y = b;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Among the first n (sorted by inode): a scan of a thousand sockets
 * stays n log n. */
static gate_conn *conn_find(cep_rpc_gate *g, size_t n, ino_t ino)
{
	gate_conn key = {.ino = ino};
	return n > 0 ? bsearch(&key, g->conns, n, sizeof(key), ino_cmp) : NULL;
}

static void conn_add(cep_rpc_gate *g, const gate_conn *c, int64_t now)
{
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 256;
		gate_conn *nc = realloc(g->conns, cap * sizeof(*nc));
		if (nc == NULL)
			return; /* seen again next sweep */
		g->conns = nc;
		g->cap = cap;
	}
	g->conns[g->n] = *c;
	g->conns[g->n++].first_ms = now;
}

static int fd_of(const char *name)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(name, &end, 10);
	return errno == 0 && end != name && *end == '\0' && v >= 0 &&
	        v < 1 << 30 ?
	    (int)v :
	    -1;
}

/* Brings the table up to date with the sockets open now. */
static void conns_scan(cep_rpc_gate *g, int64_t now)
{
	for (size_t i = 0; i < g->n; i++)
		g->conns[i].seen = false;
	if (g->n > 0) /* (qsort and bsearch want a base even for none) */
		qsort(g->conns, g->n, sizeof(*g->conns), ino_cmp);
	size_t known = g->n; /* new ones are appended after these */
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return;
	struct dirent *e;
	int self = dirfd(d);
	while ((e = readdir(d)) != NULL) {
		gate_conn c;
		int fd = fd_of(e->d_name);
		if (fd < 0 || fd == self || !conn_probe(g, fd, &c))
			continue;
		gate_conn *old = conn_find(g, known, c.ino);
		if (old != NULL) {
			old->seen = true;
			old->fd = fd;
		} else {
			conn_add(g, &c, now);
		}
	}
	closedir(d);
	size_t k = 0;
	for (size_t i = 0; i < g->n; i++)
		if (g->conns[i].seen)
			g->conns[k++] = g->conns[i];
	g->n = k;
}

/* ---------------------------------------------------------- negotiated */

static int peer_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The server's negotiated peers, sorted; false when out of memory (the
 * sweep is skipped: every connection would look unnegotiated). */
static bool peers_load(cep_rpc_gate *g)
{
	size_t total = g->n + 16;
	if (g->peers_fn == NULL) {
		g->npeers = 0;
		return true;
	}
	for (;;) {
		if (total > g->cap_peers) {
			void *np = realloc(g->peers, total * PEER_LEN);
			if (np == NULL)
				return false;
			g->peers = np;
			g->cap_peers = total;
		}
		total = g->peers_fn(g->peers, g->cap_peers, g->peers_arg);
		if (total <= g->cap_peers)
			break; /* else pipes came meanwhile: again, larger */
	}
	g->npeers = total;
	if (g->npeers > 0)
		qsort(g->peers, g->npeers, PEER_LEN, peer_cmp);
	return true;
}

static bool mark_negotiated(cep_rpc_gate *g)
{
	if (!peers_load(g))
		return false;
	uint32_t hs = 0;
	int64_t now = cep_clock_mono_ms();
	for (size_t i = 0; i < g->n; i++) {
		gate_conn *c = &g->conns[i];
		c->negotiated = g->npeers > 0 &&
		    bsearch(c->peer, g->peers, g->npeers, PEER_LEN, peer_cmp) !=
		        NULL;
		if (c->negotiated && !c->was_negotiated)
			g->progress_ms = now;
		c->was_negotiated = c->negotiated;
		hs += !c->negotiated && !c->shed;
	}
	atomic_store(&g->handshaking, hs);
	return true;
}

/* ------------------------------------------------------------ shedding */

static void shed(cep_rpc_gate *g, gate_conn *c, enum cep_rpc_limit why)
{
	struct stat st;
	c->shed = true;
	/* nng may have closed the descriptor, and the number be reused */
	if (fstat(c->fd, &st) == 0 && st.st_ino == c->ino)
		shutdown(c->fd, SHUT_RDWR);
	cep_rpc_gate_note(g, why, c->peer);
}

/* Shedding order: not negotiated oldest first, then negotiated newest
 * first. The table is kept in order of first sight (oldest first). */
static int order_cmp(const void *a, const void *b)
{
	const gate_conn *x = a, *y = b;
	if (x->negotiated != y->negotiated)
		return x->negotiated ? 1 : -1;
	int64_t d = x->first_ms - y->first_ms;
	if (d == 0) /* seen in one sweep: the kernel numbers sockets upwards */
		d = x->ino < y->ino ? -1 : x->ino > y->ino;
	if (x->negotiated)
		d = -d;
	return d < 0 ? -1 : d > 0 ? 1 : 0;
}

/* Sheds live connections in shedding order while more than limit of
 * those that match (ip NULL = all; only_hs = not negotiated) remain. */
static void shed_over(cep_rpc_gate *g, int limit, const char *ip, bool only_hs,
    enum cep_rpc_limit why)
{
	if (limit <= 0)
		return;
	long live = 0;
	for (size_t i = 0; i < g->n; i++) {
		gate_conn *c = &g->conns[i];
		live += !c->shed && (ip == NULL || strcmp(c->ip, ip) == 0) &&
		    (!only_hs || !c->negotiated);
	}
	for (size_t i = 0; i < g->n && live > limit; i++) {
		gate_conn *c = &g->conns[i];
		if (c->shed || (ip != NULL && strcmp(c->ip, ip) != 0) ||
		    (only_hs && c->negotiated))
			continue;
		shed(g, c, why);
		live--;
	}
}

/* Per peer address: a pass per address over its limit. */
static void shed_per_peer(cep_rpc_gate *g)
{
	int limit = g->lim.max_conns_per_peer;
	if (limit <= 0 || g->n <= (size_t)limit)
		return;
	for (size_t i = 0; i < g->n; i++) {
		long same = 0;
		bool first = true;
		for (size_t j = 0; j < g->n; j++) {
			if (strcmp(g->conns[j].ip, g->conns[i].ip) != 0)
				continue;
			first = first && j >= i;
			same += !g->conns[j].shed;
		}
		if (first && same > limit)
			shed_over(g, limit, g->conns[i].ip, false,
			    CEP_RPC_LIMIT_PER_PEER);
	}
}

/* After an attack (many handshakes at once, now few) the TLS state nng
 * freed sits in malloc's arenas: given back to the kernel, so that RSS
 * returns near where it was instead of staying at the attack's peak. */
static void trim_after_attack(cep_rpc_gate *g)
{
	uint32_t hs = atomic_load(&g->handshaking);
	if (hs > g->hs_peak)
		g->hs_peak = hs;
	if (g->hs_peak >= TRIM_PEAK && hs < g->hs_peak / 8) {
		malloc_trim(0);
		g->hs_peak = hs;
	}
}

/* Bytes the kernel holds unread on fd (0 when it cannot tell). */
static int unread(int fd)
{
	int n = 0;
	return ioctl(fd, SIOCINQ, &n) == 0 ? n : 0;
}

/* See cep_rpc_gate_on_wedge. A connection still in its TLS handshake
 * has nothing unread: nng reads what the peer sends as it comes. */
static void watch_wedge(cep_rpc_gate *g, int64_t now)
{
	pthread_mutex_lock(&g->mu);
	cep_rpc_gate_wedge_fn fn = g->wedged;
	void *arg = g->wedged_arg;
	pthread_mutex_unlock(&g->mu);
	/* the process stood still (stopped, swapped out, a paused VM): nng
	 * gets its chance to catch up before anything counts as stuck */
	if (now - g->swept_ms > STALL_MS)
		g->progress_ms = now;
	g->swept_ms = now;
	if (fn == NULL || now - g->progress_ms < CEP_RPC_WEDGE_MS ||
	    (g->wedge_ms != 0 && now - g->wedge_ms < 2 * CEP_RPC_WEDGE_MS))
		return;
	/* shed ones too: a handshake timeout shorter than the interval
	 * shuts them down first, and nng does not close what it never reads */
	int waiting = 0;
	for (size_t i = 0; i < g->n; i++) {
		const gate_conn *c = &g->conns[i];
		waiting += !c->negotiated &&
		    now - c->first_ms >= CEP_RPC_WEDGE_MS && unread(c->fd) > 0;
	}
	if (waiting == 0)
		return;
	g->wedge_ms = now;
	fn(waiting, arg);
}

static void sweep(cep_rpc_gate *g)
{
	int64_t now = cep_clock_mono_ms();
	conns_scan(g, now);
	if (!mark_negotiated(g))
		return;
	if (g->n > 0)
		qsort(g->conns, g->n, sizeof(*g->conns), order_cmp);
	int timeout = g->lim.handshake_timeout_ms;
	for (size_t i = 0; timeout > 0 && i < g->n; i++) {
		gate_conn *c = &g->conns[i];
		if (!c->negotiated && !c->shed && now - c->first_ms >= timeout)
			shed(g, c, CEP_RPC_LIMIT_HANDSHAKE_TIMEOUT);
	}
	shed_over(g, g->lim.max_handshakes, NULL, true,
	    CEP_RPC_LIMIT_HANDSHAKES);
	shed_per_peer(g);
	shed_over(g, g->lim.max_conns, NULL, false, CEP_RPC_LIMIT_CONNS);
	trim_after_attack(g);
	watch_wedge(g, now);
}

static void *gate_main(void *arg)
{
	cep_rpc_gate *g = arg;
	pthread_mutex_lock(&g->mu);
	while (!g->stop) {
		pthread_mutex_unlock(&g->mu);
		sweep(g);
		pthread_mutex_lock(&g->mu);
		if (!g->stop)
			cep_clock_cond_wait_ms(&g->cv, &g->mu, GATE_PERIOD_MS);
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

/* ----------------------------------------------------------- call rate */

/* A runner proves one identity, but may open several connections with
 * it: the rate is the identity's, so its pipes share one bucket (the
 * server's lock guards the list and the tokens). */
struct cep_rpc_bucket {
	char identity[128];
	double tokens;
	int64_t refill_ms;
	int refs;
	cep_rpc_bucket *next;
};

bool cep_rpc_gate_take(cep_rpc_gate *g, cep_rpc_pipe_info *pi, int64_t now)
{
	int rate = g != NULL ? g->lim.calls_per_sec : 0;
	if (rate <= 0 || strcmp(pi->peer, "ipc") == 0)
		return true;
	double burst = g->lim.call_burst > 0 ? g->lim.call_burst : rate;
	double *tokens = pi->bucket ? &pi->bucket->tokens : &pi->tokens;
	int64_t *refill = pi->bucket ? &pi->bucket->refill_ms : &pi->refill_ms;
	if (*refill == 0) {
		*tokens = burst; /* a new pipe or identity starts full */
	} else if (now > *refill) {
		*tokens += (double)(now - *refill) * rate / 1000.0;
		if (*tokens > burst)
			*tokens = burst;
	}
	*refill = now;
	if (*tokens < 1.0)
		return false;
	*tokens -= 1.0;
	return true;
}

void cep_rpc_gate_unbind(cep_rpc_gate *g, cep_rpc_pipe_info *pi)
{
	cep_rpc_bucket *b = pi->bucket;
	pi->bucket = NULL;
	if (g == NULL || b == NULL || --b->refs > 0)
		return;
	for (cep_rpc_bucket **p = &g->buckets; *p != NULL; p = &(*p)->next)
		if (*p == b) {
			*p = b->next;
			break;
		}
	free(b);
}

void cep_rpc_gate_bind(cep_rpc_gate *g, cep_rpc_pipe_info *pi,
    const char *identity)
{
	if (g == NULL || g->lim.calls_per_sec <= 0)
		return;
	cep_rpc_bucket *b = g->buckets;
	while (b != NULL &&
	    strncmp(b->identity, identity, sizeof(b->identity) - 1) != 0)
		b = b->next;
	if (b == pi->bucket && b != NULL)
		return;
	if (b == NULL && (b = calloc(1, sizeof(*b))) != NULL) {
		snprintf(b->identity, sizeof(b->identity), "%s", identity);
		b->next = g->buckets;
		g->buckets = b;
	}
	if (b == NULL)
		return;
	b->refs++;
	cep_rpc_gate_unbind(g, pi);
	pi->bucket = b;
}

/* --------------------------------------------------------------- life */

static bool limits_any(const cep_rpc_limits *l)
{
	return l->max_conns > 0 || l->max_conns_per_peer > 0 ||
	    l->max_handshakes > 0 || l->handshake_timeout_ms > 0;
}

int cep_rpc_gate_new(cep_rpc_gate **out, const char *name, int port,
    const cep_rpc_limits *lim, cep_rpc_gate_peers_fn peers, void *arg,
    cep_err *err)
{
	*out = NULL;
	cep_rpc_gate *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	snprintf(g->name, sizeof(g->name), "%s", name);
	g->port = port;
	g->lim = *lim;
	g->peers_fn = peers;
	g->peers_arg = arg;
	g->progress_ms = g->swept_ms = cep_clock_mono_ms();
	g->log_every_ms = lim->log_interval_ms > 0 ? lim->log_interval_ms :
	                                             10000;
	if (cep_lograte_new(&g->log, g->log_every_ms, 1, err) != CEP_OK) {
		free(g);
		return err ? err->code : CEP_INTERNAL;
	}
	pthread_mutex_init(&g->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->cv, &ca);
	pthread_condattr_destroy(&ca);
	g->stop = !limits_any(lim); /* only the call rate: no thread */
	if (!g->stop && pthread_create(&g->thread, NULL, gate_main, g) != 0) {
		g->stop = true;
		cep_rpc_gate_free(g);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "rpc %s: cannot start the connection gate", name);
	}
	*out = g;
	return CEP_OK;
}

void cep_rpc_gate_on_wedge(cep_rpc_gate *g, cep_rpc_gate_wedge_fn fn, void *arg)
{
	if (g == NULL)
		return;
	pthread_mutex_lock(&g->mu);
	g->wedged = fn;
	g->wedged_arg = arg;
	pthread_mutex_unlock(&g->mu);
}

void cep_rpc_gate_stats(cep_rpc_gate *g, cep_rpc_stats *out)
{
	if (g == NULL)
		return;
	for (int i = 0; i < CEP_RPC_LIMIT_N; i++)
		out->limited[i] = atomic_load(&g->limited[i]);
	out->handshaking = atomic_load(&g->handshaking);
}

void cep_rpc_gate_free(cep_rpc_gate *g)
{
	if (g == NULL)
		return;
	pthread_mutex_lock(&g->mu);
	bool running = !g->stop;
	g->stop = true;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->mu);
	if (running)
		pthread_join(g->thread, NULL);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	cep_lograte_free(g->log);
	while (g->buckets != NULL) { /* the server's pipes are gone */
		cep_rpc_bucket *b = g->buckets;
		g->buckets = b->next;
		free(b);
	}
	free(g->conns);
	free(g->peers);
	free(g);
}
