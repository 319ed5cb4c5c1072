/*
 * netlab.h - a two-namespace lab for the network fault tests (header-only).
 *
 * nl_up builds namespaces "<tag>a" and "<tag>b" joined by a veth pair:
 * a = 10.201.<k>.1/24, b = 10.201.<k>.2/24 and 10.201.<k>.130/24, lo up in
 * both. Test setup shells out to ip(8), ping(8) and nft(8) by fork/exec
 * (never a shell); the product code uses netlink only. nl_down removes
 * everything nl_up made.
 */
#ifndef CEP_TEST_NETLAB_H
#define CEP_TEST_NETLAB_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns.h"

typedef struct netlab {
	char a[32], b[32];
	int k;
	char ip_a[32], ip_b[32], ip_b2[32]; /* ip_b2 is in .128/25 */
} netlab;

/* Runs argv; stdout into out (if not NULL). Returns the exit status, or
 * -1 if it did not exit normally. */
static inline int nl_run(char *out, size_t olen, const char *const *argv)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		int dn = open("/dev/null", O_WRONLY);
		if (dn >= 0 && out == NULL)
			dup2(dn, 1);
		if (dn >= 0)
			dup2(dn, 2);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	size_t n = 0;
	char tmp[4096];
	ssize_t r;
	while ((r = read(p[0], tmp, sizeof(tmp))) > 0 ||
	    (r < 0 && errno == EINTR)) {
		if (r <= 0)
			continue;
		if (out != NULL && n + 1 < olen) {
			size_t c = (size_t)r < olen - 1 - n ? (size_t)r :
			                                      olen - 1 - n;
			memcpy(out + n, tmp, c);
			n += c;
		}
	}
	if (out != NULL)
		out[n] = '\0';
	close(p[0]);
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

#define NL_RUN(out, olen, ...) \
	nl_run(out, olen, (const char *const[]){__VA_ARGS__, NULL})

static inline void nl_down(netlab *l)
{
	NL_RUN(NULL, 0, "ip", "netns", "del", l->a);
	NL_RUN(NULL, 0, "ip", "netns", "del", l->b);
}

static inline void nl_up(netlab *l, int k)
{
	memset(l, 0, sizeof(*l));
	l->k = k;
	snprintf(l->a, sizeof(l->a), "cepnt%da%d", (int)getpid() % 100000, k);
	snprintf(l->b, sizeof(l->b), "cepnt%db%d", (int)getpid() % 100000, k);
	snprintf(l->ip_a, sizeof(l->ip_a), "10.201.%d.1", k);
	snprintf(l->ip_b, sizeof(l->ip_b), "10.201.%d.2", k);
	snprintf(l->ip_b2, sizeof(l->ip_b2), "10.201.%d.130", k);
	char a24[40], b24[40], b2[40];
	snprintf(a24, sizeof(a24), "%s/24", l->ip_a);
	snprintf(b24, sizeof(b24), "%s/24", l->ip_b);
	snprintf(b2, sizeof(b2), "%s/24", l->ip_b2);
	nl_down(l);
	int rc = NL_RUN(NULL, 0, "ip", "netns", "add", l->a);
	rc |= NL_RUN(NULL, 0, "ip", "netns", "add", l->b);
	rc |= NL_RUN(NULL, 0, "ip", "-n", l->a, "link", "add", "va", "type",
	    "veth", "peer", "name", "vb", "netns", l->b);
	rc |= NL_RUN(NULL, 0, "ip", "-n", l->a, "addr", "add", a24, "dev",
	    "va");
	rc |= NL_RUN(NULL, 0, "ip", "-n", l->b, "addr", "add", b24, "dev",
	    "vb");
	rc |= NL_RUN(NULL, 0, "ip", "-n", l->b, "addr", "add", b2, "dev", "vb");
	rc |= NL_RUN(NULL, 0, "ip", "-n", l->a, "link", "set", "va", "up");
	rc |= NL_RUN(NULL, 0, "ip", "-n", l->b, "link", "set", "vb", "up");
	rc |= NL_RUN(NULL, 0, "ip", "-n", l->a, "link", "set", "lo", "up");
	rc |= NL_RUN(NULL, 0, "ip", "-n", l->b, "link", "set", "lo", "up");
	if (rc != 0)
		nl_down(l);
	cr_assert_eq(rc, 0, "building the network lab failed");
}

/* ping from ns to dst: count probes at interval; loss % and mean RTT ms
 * from ping's summary ("x% packet loss", "rtt min/avg/max/mdev = a/b/.."). */
static inline void nl_ping(const char *ns, const char *dst, int count,
    const char *interval, double *loss, double *avg)
{
	char out[8192], c[16];
	snprintf(c, sizeof(c), "%d", count);
	NL_RUN(out, sizeof(out), "ip", "netns", "exec", ns, "ping", "-n", "-q",
	    "-c", c, "-i", interval, "-W", "1", dst);
	*loss = -1;
	*avg = -1;
	char *p = strstr(out, "% packet loss");
	if (p != NULL) {
		char *s = p;
		while (s > out && s[-1] != ' ')
			s--;
		*loss = strtod(s, NULL);
	}
	p = strstr(out, "mdev = ");
	if (p != NULL) {
		p = strchr(p, '/');
		if (p != NULL)
			*avg = strtod(p + 1, NULL);
	}
}

/* Whether ns's ruleset holds a table whose name starts with "cep_". */
static inline bool nl_has_cep_table(const char *ns)
{
	char out[65536];
	int rc = NL_RUN(out, sizeof(out), "ip", "netns", "exec", ns, "nft",
	    "-j", "list", "tables");
	cr_assert_eq(rc, 0, "nft list tables in %s failed", ns);
	return strstr(out, "\"name\": \"cep_") != NULL ||
	    strstr(out, "\"name\":\"cep_") != NULL;
}

/* Whether any interface of ns has a root qdisc of this kind, per tc(8)
 * (an observer independent of lib/node/tc.c). */
static inline bool nl_has_qdisc(const char *ns, const char *kind)
{
	char out[16384], want[64];
	int rc = NL_RUN(out, sizeof(out), "ip", "netns", "exec", ns, "tc",
	    "qdisc", "show");
	cr_assert_eq(rc, 0, "tc qdisc show in %s failed", ns);
	snprintf(want, sizeof(want), "qdisc %s ce", kind);
	return strstr(out, want) != NULL;
}

/* A process in ns (sleep 600), by ip netns exec. */
static inline pid_t nl_spawn_sleeper(const char *ns)
{
	pid_t pid = fork();
	if (pid == 0) {
		int dn = open("/dev/null", O_RDWR);
		if (dn >= 0) {
			dup2(dn, 0);
			dup2(dn, 1);
			dup2(dn, 2);
		}
		execlp("ip", "ip", "netns", "exec", ns, "sleep", "600",
		    (char *)NULL);
		_exit(127);
	}
	/* ip netns exec execs sleep: wait until the pid is in the netns */
	for (int i = 0; i < 200; i++) {
		char path[64], comm[32] = "";
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		FILE *f = fopen(path, "r");
		if (f != NULL) {
			if (fgets(comm, sizeof(comm), f) == NULL)
				comm[0] = '\0';
			fclose(f);
		}
		if (strncmp(comm, "sleep", 5) == 0)
			return pid;
		usleep(10000);
	}
	cr_assert_fail("sleeper in %s did not start", ns);
	return -1;
}

static inline void nl_kill(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

/* A TCP socket opened inside namespace ns: listening on ip:port when lsn,
 * else unbound (to connect from). Non-blocking. */
typedef struct nl_tcp_open {
	const char *ip;
	int port, fd;
	bool listen;
} nl_tcp_open;

static inline int nl_open_tcp(void *arg, cep_err *err)
{
	nl_tcp_open *t = arg;
	t->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (t->fd < 0 || !t->listen)
		return t->fd < 0 ? cep_err_set(err, CEP_INTERNAL, "socket") :
		                   CEP_OK;
	struct sockaddr_in sa = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)t->port)};
	inet_pton(AF_INET, t->ip, &sa.sin_addr);
	int one = 1;
	setsockopt(t->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(t->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(t->fd, 8) != 0)
		return cep_err_set(err, CEP_INTERNAL, "tcp listen %s:%d", t->ip,
		    t->port);
	return CEP_OK;
}

static inline int nl_tcp_sock(const char *ns, const char *ip, int port,
    bool lsn)
{
	int nsfd;
	cep_netns_id id;
	cep_err err = {0};
	cr_assert_eq(cep_netns_open(0, ns, &nsfd, &id, NULL, 0, &err), CEP_OK,
	    "%s", err.msg);
	nl_tcp_open t = {.ip = ip, .port = port, .fd = -1, .listen = lsn};
	cr_assert_eq(cep_netns_run(nsfd, nl_open_tcp, &t, &err), CEP_OK, "%s",
	    err.msg);
	close(nsfd);
	return t.fd;
}

#endif
