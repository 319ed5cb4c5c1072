/*
 * test_netfaults_mangle.c - network-corrupt and network-duplicate measured
 * from a peer namespace across a veth pair (root, netinj.h): what the
 * receiver's kernel counts (/proc/net/snmp), what its sockets get, and
 * that nothing is left after the revert.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "netinj.h"
#include "netlab.h"
#include "clock.h"

TestSuite(netmangle, .init = setup, .fini = teardown, .timeout = 120);

/* Column col of table tab ("Udp", "Tcp", "Icmp") in ns's /proc/net/snmp
 * (the kernel's own count, independent of the fault's code); -1 if
 * absent. */
static long snmp(const char *ns, const char *tab, const char *col)
{
	char out[16384], key[16];
	cr_assert_eq(NL_RUN(out, sizeof(out), "ip", "netns", "exec", ns, "cat",
	                 "/proc/net/snmp"),
	    0);
	int kl = snprintf(key, sizeof(key), "\n%s: ", tab);
	char *hdr = strstr(out, key);
	cr_assert_not_null(hdr);
	char *val = strstr(hdr + 1, key);
	cr_assert_not_null(val);
	hdr += kl;
	val += kl;
	size_t cl = strlen(col);
	while (*hdr && *hdr != '\n') {
		char *end;
		long v = strtol(val, &end, 10);
		if (strncmp(hdr, col, cl) == 0 &&
		    (hdr[cl] == ' ' || hdr[cl] == '\n'))
			return v;
		val = end;
		hdr = strchr(hdr, ' ');
		if (hdr == NULL)
			break;
		hdr++;
	}
	return -1;
}

/* Sends n numbered 64-byte datagrams from s to ip:port, paced, draining r
 * as it goes: datagrams received in all, and how many distinct numbers. */
static int udp_numbered(int s, int r, const char *ip, int port, int n,
    int *distinct)
{
	static unsigned char seen[4096];
	cr_assert_leq(n, (int)sizeof(seen));
	memset(seen, 0, sizeof(seen));
	struct sockaddr_in sa = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, ip, &sa.sin_addr);
	int got = 0;
	*distinct = 0;
	unsigned char b[64] = {0};
	for (int i = 0; i <= n; i++) {
		ssize_t k;
		while ((k = recv(r, b, sizeof(b), MSG_DONTWAIT)) > 0 ||
		    (i == n &&
		        poll(&(struct pollfd){.fd = r, .events = POLLIN}, 1,
		            300) > 0 &&
		        (k = recv(r, b, sizeof(b), 0)) > 0)) {
			uint32_t seq;
			memcpy(&seq, b, sizeof(seq));
			got++;
			if (k == (ssize_t)sizeof(b) && seq < (uint32_t)n &&
			    !seen[seq]++)
				(*distinct)++;
		}
		if (i == n)
			break;
		uint32_t seq = (uint32_t)i;
		memcpy(b, &seq, sizeof(seq));
		sendto(s, b, sizeof(b), 0, (struct sockaddr *)&sa, sizeof(sa));
		if (i % 10 == 9)
			usleep(1000);
	}
	return got;
}

Test(netmangle, corrupt_30_percent_fails_receiver_checksums)
{
	nl_up(&L, 21);
	int sa = udp_sock(L.a, L.ip_a, 40007);
	int sb = udp_sock(L.b, L.ip_b, 40008);
	int big = 4 << 20, distinct;
	setsockopt(sb, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	char f[256];
	snprintf(f, sizeof(f),
	    "{name: bad, type: network-corrupt, netns: %s, "
	    "percent: 30}",
	    L.a);
	injected in;
	inject_yaml(&in, f);
	int pids[2];
	cr_assert_eq(rt_children_named("cep-netq", pids, 2), 1);
	cr_assert(nl_has_cep_table(L.a));
	long e0 = snmp(L.b, "Udp", "InCsumErrors");
	cr_assert_geq(e0, 0);
	int n = 1000;
	int got = udp_numbered(sa, sb, L.ip_b, 40008, n, &distinct);
	long bad = snmp(L.b, "Udp", "InCsumErrors") - e0;
	cr_log_info("corrupt 30%%: %d of %d delivered, %ld checksum errors at "
	            "the receiver (%.1f%%)",
	    got, n, bad, 100.0 * (double)bad / n);
	cr_expect(bad >= n * 20 / 100 && bad <= n * 40 / 100,
	    "checksum errors %ld of %d, want 30%% +- 10 points", bad, n);
	cr_expect(got + bad >= n - 5 && got + bad <= n,
	    "delivered %d + checksum errors %ld != %d sent", got, bad, n);
	cr_expect_eq(distinct, got, "a corrupted datagram was delivered");
	revert(&in);
	assert_clean(L.a);
	e0 = snmp(L.b, "Udp", "InCsumErrors");
	got = udp_numbered(sa, sb, L.ip_b, 40008, 200, &distinct);
	cr_expect_eq(got, 200, "after revert %d of 200 delivered", got);
	cr_expect_eq(snmp(L.b, "Udp", "InCsumErrors"), e0,
	    "checksum errors after revert");
	close(sa);
	close(sb);
}

Test(netmangle, duplicate_30_percent_then_none_after_revert)
{
	nl_up(&L, 22);
	int sa = udp_sock(L.a, L.ip_a, 40009);
	int sb = udp_sock(L.b, L.ip_b, 40010);
	int big = 4 << 20, distinct;
	setsockopt(sb, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	char f[256];
	snprintf(f, sizeof(f),
	    "{name: twice, type: network-duplicate, "
	    "netns: %s, percent: 30}",
	    L.a);
	injected in;
	inject_yaml(&in, f);
	int pids[2];
	cr_assert_eq(rt_children_named("cep-netq", pids, 2), 1);
	int n = 1000;
	long d0 = snmp(L.b, "Udp", "InDatagrams");
	int got = udp_numbered(sa, sb, L.ip_b, 40010, n, &distinct);
	long kern = snmp(L.b, "Udp", "InDatagrams") - d0;
	cr_log_info("duplicate 30%%: %d datagrams received for %d sent "
	            "(+%.1f%%), %d distinct; receiver's InDatagrams +%ld",
	    got, n, 100.0 * (got - n) / n, distinct, kern);
	cr_expect_eq(distinct, n, "only %d of %d datagrams arrived", distinct,
	    n);
	cr_expect(got - n >= n * 20 / 100 && got - n <= n * 40 / 100,
	    "%d extra datagrams for %d sent, want 30%% +- 10 points", got - n,
	    n);
	cr_expect_eq(kern, got, "the receiving kernel counted %ld", kern);
	revert(&in);
	assert_clean(L.a);
	got = udp_numbered(sa, sb, L.ip_b, 40010, 200, &distinct);
	cr_expect_eq(got, 200, "after revert %d datagrams for 200 sent", got);
	close(sa);
	close(sb);
}

/* Copies are sent from inside the namespace: ingress is refused when the
 * experiment is validated, with the allowed value named. */
Test(netmangle, duplicate_refuses_ingress)
{
	static const char *const dirs[] = {"ingress", "both"};
	for (int i = 0; i < 2; i++) {
		char yaml[512];
		snprintf(yaml, sizeof(yaml),
		    EXP_HEAD
		    "    - {name: d, type: "
		    "network-duplicate, netns: x, percent: 5, direction: %s}\n",
		    dirs[i]);
		cep_exp *e = NULL;
		cep_err err = {0};
		cr_assert_neq(cep_exp_parse(yaml, strlen(yaml), "t.yaml", &e,
		                  NULL, &err),
		    CEP_OK, "direction %s accepted", dirs[i]);
		cr_log_info("%s", err.msg);
		cr_expect(strstr(err.msg, "direction") != NULL &&
		        strstr(err.msg, "egress") != NULL,
		    "%s", err.msg);
	}
}

/* Ingress: packets delivered to the namespace are corrupted on the way in
 * (input hook); the namespace's own UDP counts the checksum failures,
 * and what it sends is left alone. */
Test(netmangle, corrupt_ingress_counts_in_the_target)
{
	nl_up(&L, 23);
	int sa = udp_sock(L.a, L.ip_a, 40011);
	int sb = udp_sock(L.b, L.ip_b, 40012);
	int big = 4 << 20, distinct;
	setsockopt(sa, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	char f[256];
	snprintf(f, sizeof(f),
	    "{name: bad, type: network-corrupt, netns: %s, "
	    "percent: 50, direction: ingress}",
	    L.a);
	injected in;
	inject_yaml(&in, f);
	long e0 = snmp(L.a, "Udp", "InCsumErrors");
	int n = 600;
	int got = udp_numbered(sb, sa, L.ip_a, 40011, n, &distinct);
	long bad = snmp(L.a, "Udp", "InCsumErrors") - e0;
	cr_log_info("corrupt 50%% ingress: %d of %d delivered, %ld checksum "
	            "errors (%.1f%%)",
	    got, n, bad, 100.0 * (double)bad / n);
	cr_expect(bad >= n * 40 / 100 && bad <= n * 60 / 100,
	    "checksum errors %ld of %d, want 50%% +- 10 points", bad, n);
	cr_expect(got + bad >= n - 5 && got + bad <= n, "%d + %ld != %d", got,
	    bad, n);
	e0 = snmp(L.b, "Udp", "InCsumErrors");
	got = udp_numbered(sa, sb, L.ip_b, 40012, 200, &distinct);
	cr_expect_eq(got, 200, "egress hit by an ingress fault: %d of 200",
	    got);
	cr_expect_eq(snmp(L.b, "Udp", "InCsumErrors"), e0);
	revert(&in);
	assert_clean(L.a);
	close(sa);
	close(sb);
}

/* ICMP: a corrupted echo reply fails the receiver's ICMP checksum check
 * (Icmp InCsumErrors), so an ICMP datagram socket (unprivileged ping)
 * never gets it; a raw socket (ping as root) gets every ICMP packet before
 * that check and shows it, with "wrong data byte". */
typedef struct icmp_dgram {
	int fd;
} icmp_dgram;

static int open_icmp_dgram(void *arg, cep_err *err)
{
	icmp_dgram *d = arg;
	d->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
	return d->fd < 0 ?
	    cep_err_set(err, CEP_INTERNAL, "icmp socket: %s", strerror(errno)) :
	    CEP_OK;
}

/* Lets group 0 open ICMP datagram sockets in lab b, or nobody (the
 * default "1 0"). iputils ping prefers such a socket when it may open
 * one, even as root; else it opens a raw socket. */
static void dgram_ping_allowed(bool yes)
{
	cr_assert_eq(NL_RUN(NULL, 0, "ip", "netns", "exec", L.b, "sysctl",
	                 "-qw",
	                 yes ? "net.ipv4.ping_group_range=0 0" :
	                       "net.ipv4.ping_group_range=1 0"),
	    0);
}

/* Echo replies an ICMP datagram socket in lab b gets to n requests to a. */
static int icmp_dgram_replies(int n)
{
	dgram_ping_allowed(true);
	int nsfd;
	cep_netns_id id;
	cep_err err = {0};
	cr_assert_eq(cep_netns_open(0, L.b, &nsfd, &id, NULL, 0, &err), CEP_OK,
	    "%s", err.msg);
	icmp_dgram d = {.fd = -1};
	cr_assert_eq(cep_netns_run(nsfd, open_icmp_dgram, &d, &err), CEP_OK,
	    "%s", err.msg);
	close(nsfd);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	inet_pton(AF_INET, L.ip_a, &sa.sin_addr);
	int got = 0;
	for (int i = 0; i < n; i++) {
		unsigned char req[16] = {8, 0, 0, 0, 0, 0, 0, (unsigned char)i};
		sendto(d.fd, req, sizeof(req), 0, (struct sockaddr *)&sa,
		    sizeof(sa));
		unsigned char b[64];
		struct pollfd p = {.fd = d.fd, .events = POLLIN};
		if (poll(&p, 1, 300) == 1 && recv(d.fd, b, sizeof(b), 0) > 0)
			got++;
	}
	close(d.fd);
	dgram_ping_allowed(false);
	return got;
}

/* "wrong data byte" reports of ping(8) from b to a, over a raw socket or
 * (dgram) an ICMP datagram socket; *loss its loss. */
static int ping_wrong(bool dgram, int n, double *loss)
{
	dgram_ping_allowed(dgram);
	char out[65536], c[16];
	snprintf(c, sizeof(c), "%d", n);
	NL_RUN(out, sizeof(out), "ip", "netns", "exec", L.b, "ping", "-n", "-c",
	    c, "-i", "0.05", "-W", "1", L.ip_a);
	int wrong = 0;
	for (const char *p = out; (p = strstr(p, "wrong data byte")); p++)
		wrong++;
	const char *l = strstr(out, "% packet loss");
	while (l != NULL && l > out && l[-1] != ' ')
		l--;
	*loss = l != NULL ? strtod(l, NULL) : -1;
	return wrong;
}

Test(netmangle, corrupt_icmp_echo_replies_as_documented)
{
	nl_up(&L, 26);
	cr_assert_eq(icmp_dgram_replies(5), 5, "baseline echo");
	char f[256];
	snprintf(f, sizeof(f),
	    "{name: bad, type: network-corrupt, netns: %s, percent: 100}", L.a);
	injected in;
	inject_yaml(&in, f);
	long e0 = snmp(L.b, "Icmp", "InCsumErrors");
	cr_expect_eq(icmp_dgram_replies(10), 0,
	    "an ICMP datagram socket got a corrupted reply");
	double loss, dloss;
	int wrong = ping_wrong(false, 20, &loss);
	int dwrong = ping_wrong(true, 10, &dloss);
	long bad = snmp(L.b, "Icmp", "InCsumErrors") - e0;
	cr_log_info("corrupt icmp: raw ping loss %.0f%%, %d wrong data byte; "
	            "dgram ping loss %.0f%%; Icmp InCsumErrors +%ld",
	    loss, wrong, dloss, bad);
	cr_expect_eq(loss, 0, "raw ping loss %.1f%%", loss);
	/* the first 16 bytes of ping's data are its timestamp, which it does
	 * not compare: a flip there shows as an odd RTT instead */
	cr_expect_geq(wrong, 5, "wrong data byte in %d of 20 replies", wrong);
	cr_expect_eq(dloss, 100, "datagram ping loss %.1f%%", dloss);
	cr_expect_eq(dwrong, 0);
	cr_expect_eq(bad, 40, "Icmp InCsumErrors +%ld, want 10 + 20 + 10", bad);
	revert(&in);
	assert_clean(L.a);
	cr_expect_eq(icmp_dgram_replies(5), 5, "echo after revert");
	cr_expect_eq(ping_wrong(false, 5, &loss), 0);
	cr_expect_eq(loss, 0);
	cr_expect_eq(ping_wrong(true, 5, &loss), 0);
	cr_expect_eq(loss, 0);
}

/* Sends up to len bytes of the counting pattern from offset off on the
 * non-blocking socket c; how many went. */
static long send_pattern(int c, long off, long len)
{
	unsigned char b[16384];
	size_t k = len < (long)sizeof(b) ? (size_t)len : sizeof(b);
	for (size_t i = 0; i < k; i++)
		b[i] = (unsigned char)(off + (long)i);
	ssize_t w = send(c, b, k, MSG_DONTWAIT | MSG_NOSIGNAL);
	return w > 0 ? (long)w : 0;
}

/* Sends n bytes (a counting pattern) over TCP from lab a to b's port, one
 * poll loop, at most 20 s: bytes b received intact, -1 at a wrong byte. */
static long tcp_transfer(int port, long n)
{
	int l = nl_tcp_sock(L.b, L.ip_b, port, true);
	int c = nl_tcp_sock(L.a, NULL, 0, false);
	struct sockaddr_in sa = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, L.ip_b, &sa.sin_addr);
	connect(c, (struct sockaddr *)&sa, sizeof(sa));
	long sent = 0, got = 0;
	int s = -1;
	unsigned char b[16384];
	int64_t end = cep_clock_mono_ms() + 20000;
	while (got < n && got >= 0 && cep_clock_mono_ms() < end) {
		struct pollfd p[2] = {{.fd = c, .events = POLLOUT},
		    {.fd = s >= 0 ? s : l, .events = POLLIN}};
		if (poll(p, 2, 200) <= 0)
			continue;
		if (s < 0 && (p[1].revents & POLLIN))
			s = accept(l, NULL, NULL);
		if (sent < n && (p[0].revents & POLLOUT))
			sent += send_pattern(c, sent, n - sent);
		ssize_t r = s >= 0 ? recv(s, b, sizeof(b), MSG_DONTWAIT) : 0;
		for (ssize_t k = 0; k < r && got >= 0; k++)
			got = b[k] == (unsigned char)(got) ? got + 1 : -1;
	}
	close(c);
	close(l);
	if (s >= 0)
		close(s);
	return got;
}

/* TCP: a corrupted segment fails the receiver's TCP checksum (Tcp
 * InCsumErrors) and is retransmitted; the stream arrives intact. */
Test(netmangle, corrupt_tcp_retransmits_and_stays_intact)
{
	nl_up(&L, 27);
	char f[256];
	snprintf(f, sizeof(f),
	    "{name: bad, type: network-corrupt, netns: %s, percent: 30}", L.a);
	injected in;
	inject_yaml(&in, f);
	long e0 = snmp(L.b, "Tcp", "InCsumErrors");
	long r0 = snmp(L.a, "Tcp", "RetransSegs");
	long n = 2 << 20;
	long got = tcp_transfer(41000, n);
	long bad = snmp(L.b, "Tcp", "InCsumErrors") - e0;
	long re = snmp(L.a, "Tcp", "RetransSegs") - r0;
	cr_log_info("corrupt tcp 30%%: %ld of %ld bytes intact, receiver Tcp "
	            "InCsumErrors +%ld, sender RetransSegs +%ld",
	    got, n, bad, re);
	cr_expect_eq(got, n, "stream: %ld of %ld bytes intact", got, n);
	cr_expect_gt(bad, 0, "no TCP checksum error at the receiver");
	cr_expect_gt(re, 0, "no retransmission at the sender");
	revert(&in);
	assert_clean(L.a);
	e0 = snmp(L.b, "Tcp", "InCsumErrors");
	cr_expect_eq(tcp_transfer(41001, n), n, "after revert");
	cr_expect_eq(snmp(L.b, "Tcp", "InCsumErrors"), e0, "after revert");
}
