/*
 * test_netfaults.c - the network faults measured from inside real
 * namespaces (root): each test builds two namespaces joined by a veth pair
 * (netlab.h), injects through the backend as the engine does (describe,
 * inject, revert), measures with ping, and checks the ruleset and the
 * process table after the revert. Figures are the issue's: latency 100 ms
 * +- 20 ms (mean RTT), loss 30% +- 10 points over 500 probes, partition
 * 100% / 0% in the configured direction only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <resolv.h>
#include <sys/socket.h>

#include "fault.h"
#include "netinj.h"
#include "netlab.h"
#include "netns.h"
#include "nft.h"
#include "rt.h"
#include "undo.h"
#include "undo_node.h"
#include "clock.h"

TestSuite(netfaults, .init = setup, .fini = teardown, .timeout = 120);

Test(netfaults, latency_adds_100ms_and_revert_restores_baseline)
{
	nl_up(&L, 11);
	double loss, base, avg;
	nl_ping(L.a, L.ip_b, 20, "0.05", &loss, &base);
	cr_assert_eq(loss, 0, "baseline loss %.1f%%", loss);
	char f[256];
	snprintf(f, sizeof(f),
	    "{name: lat, type: network-latency, netns: %s, "
	    "delay: 100ms}",
	    L.a);
	injected in;
	inject_yaml(&in, f);
	int pids[2];
	cr_assert_eq(rt_children_named("cep-netq", pids, 2), 1);
	cr_assert(nl_has_cep_table(L.a));
	nl_ping(L.a, L.ip_b, 40, "0.05", &loss, &avg);
	cr_log_info("latency: RTT %.1f ms, baseline %.1f ms", avg, base);
	cr_expect_eq(loss, 0, "loss under latency %.1f%%", loss);
	cr_expect(avg - base >= 80 && avg - base <= 120,
	    "RTT %.1f ms, baseline %.1f ms: want +100 +- 20", avg, base);
	revert(&in);
	assert_clean(L.a);
	nl_ping(L.a, L.ip_b, 20, "0.05", &loss, &avg);
	cr_expect_eq(loss, 0);
	cr_expect(avg < base + 20, "RTT %.1f ms after revert (baseline %.1f)",
	    avg, base);
}

Test(netfaults, loss_30_percent_then_none_after_revert)
{
	nl_up(&L, 12);
	char f[256];
	snprintf(f, sizeof(f),
	    "{name: loss, type: network-loss, netns: %s, "
	    "percent: 30}",
	    L.a);
	injected in;
	inject_yaml(&in, f);
	double loss, avg;
	nl_ping(L.a, L.ip_b, 600, "0.005", &loss, &avg);
	cr_log_info("loss: %.1f%% over 600 probes", loss);
	cr_expect(loss >= 20 && loss <= 40,
	    "loss %.1f%% over 600 probes, "
	    "want 30 +- 10",
	    loss);
	revert(&in);
	assert_clean(L.a);
	nl_ping(L.a, L.ip_b, 200, "0.005", &loss, &avg);
	cr_expect_eq(loss, 0, "loss %.1f%% after revert", loss);
}

/* One-way UDP: a socket in each namespace (cep_netns_run opens it there);
 * true if a datagram from src reaches dst_ip:port in ns dst. */
/* Datagrams delivered out of 20 sent from s to ip:port, received on r. */
static int udp_delivered(int s, int r, const char *ip, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, ip, &sa.sin_addr);
	for (int i = 0; i < 20; i++)
		sendto(s, "x", 1, 0, (struct sockaddr *)&sa, sizeof(sa));
	int got = 0;
	struct pollfd p = {.fd = r, .events = POLLIN};
	char b[16];
	while (poll(&p, 1, 300) > 0 && recv(r, b, sizeof(b), 0) > 0)
		got++;
	return got;
}

Test(netfaults, partition_blocks_cidr_only_in_its_direction)
{
	nl_up(&L, 13);
	char f[256];
	snprintf(f, sizeof(f),
	    "{name: cut, type: network-partition, netns: %s, "
	    "cidrs: [\"10.201.13.128/25\"], direction: egress}",
	    L.a);
	injected in;
	inject_yaml(&in, f);
	double loss, avg;
	nl_ping(L.a, L.ip_b2, 50, "0.01", &loss, &avg);
	cr_expect_eq(loss, 100, "blocked cidr: loss %.1f%%", loss);
	nl_ping(L.a, L.ip_b, 50, "0.01", &loss, &avg);
	cr_expect_eq(loss, 0, "unblocked address: loss %.1f%%", loss);
	/* direction: a -> b2 blocked, b2 -> a delivered */
	int sa = udp_sock(L.a, L.ip_a, 40001);
	int sb = udp_sock(L.b, L.ip_b2, 40002);
	cr_expect_eq(udp_delivered(sa, sb, L.ip_b2, 40002), 0,
	    "egress to the blocked cidr delivered");
	cr_expect_eq(udp_delivered(sb, sa, L.ip_a, 40001), 20,
	    "ingress from the blocked cidr was cut (direction egress only)");
	revert(&in);
	assert_clean(L.a);
	cr_expect_eq(udp_delivered(sa, sb, L.ip_b2, 40002), 20);
	nl_ping(L.a, L.ip_b2, 50, "0.01", &loss, &avg);
	cr_expect_eq(loss, 0, "after revert: loss %.1f%%", loss);
	close(sa);
	close(sb);
}

Test(netfaults, partition_ingress_reject)
{
	nl_up(&L, 14);
	char f[256];
	snprintf(f, sizeof(f),
	    "{name: cut, type: network-partition, netns: %s, "
	    "cidrs: [\"10.201.14.130\"], direction: ingress, action: reject}",
	    L.a);
	injected in;
	inject_yaml(&in, f);
	int sa = udp_sock(L.a, L.ip_a, 40003);
	int sb = udp_sock(L.b, L.ip_b2, 40004);
	cr_expect_eq(udp_delivered(sa, sb, L.ip_b2, 40004), 20,
	    "egress cut by an ingress partition");
	cr_expect_eq(udp_delivered(sb, sa, L.ip_a, 40003), 0,
	    "ingress from the blocked address delivered");
	revert(&in);
	assert_clean(L.a);
	cr_expect_eq(udp_delivered(sb, sa, L.ip_a, 40003), 20);
	close(sa);
	close(sb);
}

/* errno of a TCP connect from lab b (source ip_b) to a's port: 0 when it
 * connects, ETIMEDOUT when nothing answers within 3 s; *ms its duration. */
static int tcp_connect_in(int port, long *ms)
{
	int c = nl_tcp_sock(L.b, NULL, 0, false);
	struct sockaddr_in sa = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, L.ip_a, &sa.sin_addr);
	int64_t t0 = cep_clock_mono_ms();
	int soerr = connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 :
	                                                                  errno;
	if (soerr == EINPROGRESS) {
		struct pollfd p = {.fd = c, .events = POLLOUT};
		socklen_t sl = sizeof(soerr);
		if (poll(&p, 1, 3000) != 1 ||
		    getsockopt(c, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
			soerr = ETIMEDOUT;
	}
	*ms = (long)(cep_clock_mono_ms() - t0);
	close(c);
	return soerr;
}

/* errno a connected UDP socket in lab b gets from a datagram to a's port
 * (0: none within 1 s); the ICMP admin-prohibited of a reject gives
 * EHOSTUNREACH. */
static int udp_error_in(int port)
{
	int s = udp_sock(L.b, L.ip_b, 40020);
	struct sockaddr_in sa = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, L.ip_a, &sa.sin_addr);
	cr_assert_eq(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	send(s, "x", 1, 0);
	struct pollfd p = {.fd = s, .events = POLLIN};
	char b[8];
	int e = poll(&p, 1, 1000) == 1 && recv(s, b, sizeof(b), 0) < 0 ? errno :
	                                                                 0;
	close(s);
	return e;
}

/* action reject, seen by the cut peer: its TCP connect is refused at once
 * and its UDP gets the ICMP error (both pass the fault's own out chain
 * with both). */
static void reject_refuses(int k, const char *dir)
{
	nl_up(&L, k);
	int l = nl_tcp_sock(L.a, L.ip_a, 40010, true);
	int ul = udp_sock(L.a, L.ip_a, 40021);
	long ms;
	cr_assert_eq(tcp_connect_in(40010, &ms), 0, "baseline connect");
	cr_assert_eq(udp_error_in(40021), 0, "baseline udp");
	char f[256];
	snprintf(f, sizeof(f),
	    "{name: cut, type: network-partition, netns: %s, cidrs: [\"%s\"], "
	    "direction: %s, action: reject}",
	    L.a, L.ip_b, dir);
	injected in;
	inject_yaml(&in, f);
	int e = tcp_connect_in(40010, &ms);
	cr_expect_eq(e, ECONNREFUSED, "%s reject: connect gave %s after %ld ms",
	    dir, strerror(e), ms);
	cr_expect_lt(ms, 1000, "%s reject took %ld ms", dir, ms);
	e = udp_error_in(40021);
	cr_expect_eq(e, EHOSTUNREACH, "%s reject: udp got %s", dir,
	    strerror(e));
	revert(&in);
	assert_clean(L.a);
	cr_expect_eq(tcp_connect_in(40010, &ms), 0, "connect after revert");
	cr_expect_eq(udp_error_in(40021), 0, "udp after revert");
	close(l);
	close(ul);
}

Test(netfaults, partition_reject_both_refuses_at_once)
{
	reject_refuses(24, "both");
}

Test(netfaults, partition_reject_ingress_refuses_at_once)
{
	reject_refuses(25, "ingress");
}

/* ping from inside the namespace of pid (what that process sees). */
static void ping_as(pid_t pid, const char *dst, int count, const char *interval,
    double *loss, double *avg)
{
	char out[8192], c[16], net[64];
	snprintf(c, sizeof(c), "%d", count);
	snprintf(net, sizeof(net), "--net=/proc/%d/ns/net", (int)pid);
	NL_RUN(out, sizeof(out), "nsenter", net, "ping", "-n", "-q", "-c", c,
	    "-i", interval, "-W", "1", dst);
	*loss = -1;
	*avg = -1;
	char *p = strstr(out, "% packet loss");
	if (p != NULL) {
		while (p > out && p[-1] != ' ')
			p--;
		*loss = strtod(p, NULL);
	}
	p = strstr(out, "mdev = ");
	if (p != NULL && (p = strchr(p, '/')) != NULL)
		*avg = strtod(p + 1, NULL);
}

/* The fault is held by the namespace, not by the process that named it:
 * the target is killed and restarted in the same namespace while a fault
 * is active. Loss: the delegate's undo from the record (whose /proc path
 * is now stale) clears it. Latency: the runner's revert clears it. The
 * restarted process sees baseline loss and RTT afterwards. */
Test(netfaults, restarted_target_still_reverted)
{
	nl_up(&L, 15);
	double loss, base, avg;
	pid_t p1 = nl_spawn_sleeper(L.a);
	ping_as(p1, L.ip_b, 20, "0.05", &loss, &base);
	cr_assert_eq(loss, 0);
	char f[256];
	snprintf(f, sizeof(f),
	    "{name: loss, type: network-loss, pid: %d, "
	    "percent: 100}",
	    (int)p1);
	injected ls;
	inject_yaml(&ls, f);
	nl_kill(p1);
	pid_t p2 = nl_spawn_sleeper(L.a);
	ping_as(p2, L.ip_b, 10, "0.05", &loss, &avg);
	cr_expect_eq(loss, 100, "loss fault gone with the process (%.0f%%)",
	    loss);
	/* the delegate's path: only the record, the runner is gone */
	Cep__V1__FaultRecord rec = CEP__V1__FAULT_RECORD__INIT;
	rec.fault_id = (char *)"loss";
	rec.mechanism = (char *)"nftables";
	rec.undo = ls.undo;
	rec.run_id = (char *)"r-0123456789abcdef";
	cep_err err = {0};
	cr_assert(strstr(ls.undo, "/proc/") != NULL, "%s", ls.undo);
	cr_assert_eq(cep_undo_apply(NULL, &rec, &err), CEP_OK, "undo: %s",
	    err.msg);
	cr_assert_not(nl_has_cep_table(L.a));
	cr_assert_eq(cep_undo_apply(NULL, &rec, &err), CEP_OK, "undo again: %s",
	    err.msg);
	revert(&ls); /* the runner's revert after the delegate's: idempotent */
	ping_as(p2, L.ip_b, 100, "0.01", &loss, &avg);
	cr_expect_eq(loss, 0, "restarted process sees loss %.0f%%", loss);

	snprintf(f, sizeof(f),
	    "{name: lat, type: network-latency, pid: %d, "
	    "delay: 100ms}",
	    (int)p2);
	injected lat;
	inject_yaml(&lat, f);
	nl_kill(p2);
	pid_t p3 = nl_spawn_sleeper(L.a);
	ping_as(p3, L.ip_b, 20, "0.05", &loss, &avg);
	cr_expect(avg - base >= 80, "latency gone with the process (%.1f ms)",
	    avg);
	revert(&lat);
	assert_clean(L.a);
	ping_as(p3, L.ip_b, 20, "0.05", &loss, &avg);
	cr_expect_eq(loss, 0);
	cr_expect(avg < base + 20,
	    "restarted process sees RTT %.1f ms "
	    "(baseline %.1f)",
	    avg, base);
	nl_kill(p3);
}

/* A namespace that nothing holds any more took its rules with it: the
 * undo counts it as clean. */
Test(netfaults, undo_of_a_vanished_namespace_is_clean)
{
	nl_up(&L, 16);
	char f[256];
	snprintf(f, sizeof(f),
	    "{name: loss, type: network-loss, netns: %s, "
	    "percent: 50}",
	    L.a);
	injected ls;
	inject_yaml(&ls, f);
	revert(&ls);
	injected again;
	inject_yaml(&again, f);
	nl_down(&L);
	/* the runner's state still holds an fd: the namespace lives on */
	Cep__V1__FaultRecord rec = CEP__V1__FAULT_RECORD__INIT;
	rec.fault_id = (char *)"loss";
	rec.mechanism = (char *)"nftables";
	rec.undo = again.undo;
	cep_err err = {0};
	cr_assert_eq(cep_undo_apply(NULL, &rec, &err), CEP_OK, "undo: %s",
	    err.msg);
	revert(&again);
	cr_assert_eq(cep_undo_apply(NULL, &rec, &err), CEP_OK,
	    "undo once gone: %s", err.msg);
}

/* ---- dns-error ---- */

/* Upstream stand-in in b: answers every A query with 10.9.9.9. */
static void fake_upstream_answer(int s)
{
	unsigned char m[512];
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(s, m, sizeof(m) - 16, 0, (struct sockaddr *)&from,
	    &fl);
	if (n < 12)
		return;
	static const unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60,
	    0, 4, 10, 9, 9, 9};
	memcpy(m + n, rr, sizeof(rr));
	m[2] |= 0x80; /* qr */
	m[3] = 0x80;  /* ra, NOERROR */
	m[6] = 0;
	m[7] = 1; /* ancount */
	sendto(s, m, (size_t)n + sizeof(rr), 0, (struct sockaddr *)&from, fl);
}

/* rcode of the answer to an A query for name, sent from c (in a) to the
 * resolver; -1 if none within 1.5 s. ancount into *an. */
static int dns_ask(int c, int up, const char *resolver, const char *name,
    int *an)
{
	unsigned char q[512], r[512];
	int ql = res_mkquery(ns_o_query, name, ns_c_in, ns_t_a, NULL, 0, NULL,
	    q, sizeof(q));
	cr_assert_gt(ql, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)};
	inet_pton(AF_INET, resolver, &sa.sin_addr);
	cr_assert_eq(sendto(c, q, (size_t)ql, 0, (struct sockaddr *)&sa,
	                 sizeof(sa)),
	    ql);
	int64_t end = cep_clock_mono_ms() + 1500;
	while (cep_clock_mono_ms() < end) {
		struct pollfd p[2] = {{.fd = c, .events = POLLIN},
		    {.fd = up, .events = POLLIN}};
		if (poll(p, 2, (int)(end - cep_clock_mono_ms())) <= 0)
			break;
		if (p[1].revents & POLLIN)
			fake_upstream_answer(up);
		if (p[0].revents & POLLIN) {
			ssize_t n = recv(c, r, sizeof(r), 0);
			if (n >= 12 && r[0] == q[0] && r[1] == q[1]) {
				*an = r[6] << 8 | r[7];
				return r[3] & 0x0f;
			}
		}
	}
	return -1;
}

Test(netfaults, dns_error_fails_chosen_names_only)
{
	nl_up(&L, 17);
	int up = udp_sock(L.b, L.ip_b, 53);
	int c = udp_sock(L.a, L.ip_a, 0);
	int an = 0;
	cr_assert_eq(dns_ask(c, up, L.ip_b, "bad.test", &an), 0, "baseline");
	static const struct {
		const char *err;
		int rcode;
	} cases[] = {{"nxdomain", 3}, {"servfail", 2}, {"timeout", -1}};
	for (size_t i = 0; i < 3; i++) {
		/* a fresh source port, as a stub resolver uses per query: a
		 * flow tracked before the injection is not redirected */
		close(c);
		c = udp_sock(L.a, L.ip_a, 0);
		char f[512];
		snprintf(f, sizeof(f),
		    "{name: dns, type: dns-error, netns: %s, "
		    "names: [bad.test, \"*.blocked.test\"], error: %s, "
		    "upstream: \"%s\"}",
		    L.a, cases[i].err, L.ip_b);
		injected in;
		inject_yaml(&in, f);
		int pids[2];
		cr_assert_eq(rt_children_named("cep-dns", pids, 2), 1);
		cr_expect_eq(dns_ask(c, up, L.ip_b, "bad.test", &an),
		    cases[i].rcode, "%s: bad.test", cases[i].err);
		cr_expect_eq(dns_ask(c, up, L.ip_b, "x.y.blocked.test", &an),
		    cases[i].rcode, "%s: x.y.blocked.test", cases[i].err);
		an = 0;
		cr_expect_eq(dns_ask(c, up, L.ip_b, "good.test", &an), 0,
		    "%s: good.test not resolved through the responder",
		    cases[i].err);
		cr_expect_eq(an, 1);
		cr_expect_eq(dns_ask(c, up, L.ip_b, "blocked.test", &an), 0,
		    "*.blocked.test must not match blocked.test itself");
		revert(&in);
		assert_clean(L.a);
		cr_expect_eq(dns_ask(c, up, L.ip_b, "bad.test", &an), 0,
		    "%s: bad.test after revert", cases[i].err);
	}
	close(c);
	close(up);
}

/* ---- network-bandwidth ---- */

/* Sends 1200-byte datagrams from s for ms at ~4 Mbit/s, draining r as it
 * goes; bytes received and the elapsed seconds. */
static long udp_stream(int s, int r, const char *ip, int port, int ms,
    double *secs, long *sent)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, ip, &sa.sin_addr);
	char b[1200] = {0};
	long got = 0;
	*sent = 0;
	int64_t t0 = cep_clock_mono_ms();
	for (int64_t next = t0; cep_clock_mono_ms() - t0 < ms; next += 2) {
		if (sendto(s, b, sizeof(b), 0, (struct sockaddr *)&sa,
		        sizeof(sa)) > 0)
			*sent += (long)sizeof(b);
		ssize_t n;
		while ((n = recv(r, b, sizeof(b), MSG_DONTWAIT)) > 0)
			got += n;
		while (cep_clock_mono_ms() < next)
			usleep(200);
	}
	*secs = (double)(cep_clock_mono_ms() - t0) / 1000.0;
	struct pollfd p = {.fd = r, .events = POLLIN};
	ssize_t n;
	while (poll(&p, 1, 200) > 0 && (n = recv(r, b, sizeof(b), 0)) > 0)
		got += n;
	return got;
}

/* Streams through a network-bandwidth fault (800 kbit/s, 16 KiB burst)
 * and checks the steady rate, then the revert. The first second spends
 * the initial tokens (nftables' limiter starts with a second's worth,
 * tbf with the burst) and fills tbf's queue; then the rate is measured. */
static void bandwidth_case(const char *kind)
{
	int sa = udp_sock(L.a, L.ip_a, 40005);
	int sb = udp_sock(L.b, L.ip_b, 40006);
	int big = 4 << 20;
	setsockopt(sb, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	char f[256];
	snprintf(f, sizeof(f),
	    "{name: bw, type: network-bandwidth, netns: %s, "
	    "kbps: 800, burstKiB: 16}",
	    L.a);
	injected in;
	inject_yaml(&in, f);
	bool tbf = strcmp(kind, "tbf") == 0;
	cr_assert_eq(nl_has_qdisc(L.a, "tbf"), tbf, "tbf qdisc %s",
	    tbf ? "missing" : "present on the nftables path");
	cr_assert_eq(nl_has_cep_table(L.a), !tbf, "cep_ table %s",
	    tbf ? "present on the tbf path" : "missing");
	cr_assert_eq(strcmp(in.ops->mechanism_of(cep_exp_fault(in.e, 0)),
	                 tbf ? "tc-qdisc" : "nftables"),
	    0);
	double secs;
	long sent;
	udp_stream(sa, sb, L.ip_b, 40006, 1000, &secs, &sent);
	long got = udp_stream(sa, sb, L.ip_b, 40006, 1500, &secs, &sent);
	double want = 100000.0 * secs; /* 800 kbit/s */
	/* tbf also delivers what its queue held when sending stopped: 100 ms
	 * at the rate plus the burst */
	double queued = tbf ? 10000.0 + 16384.0 : 0.0;
	cr_log_info("bandwidth (%s): %ld of %ld bytes in %.2fs", kind, got,
	    sent, secs);
	cr_expect(got > want * 0.6 && got < want * 1.3 + queued,
	    "%s: %ld of %ld bytes in %.2fs through an 800 kbit/s limit "
	    "(want ~%.0f)",
	    kind, got, sent, secs, want);
	revert(&in);
	assert_clean(L.a);
	cr_assert_not(nl_has_qdisc(L.a, "tbf"), "tbf qdisc left after revert");
	got = udp_stream(sa, sb, L.ip_b, 40006, 500, &secs, &sent);
	cr_expect(got >= sent * 9 / 10,
	    "%s: after revert only %ld of %ld "
	    "bytes",
	    kind, got, sent);
	close(sa);
	close(sb);
}

Test(netfaults, bandwidth_shapes_with_tbf)
{
	nl_up(&L, 18);
	bandwidth_case("tbf");
}

Test(netfaults, bandwidth_polices_with_nftables_without_tbf)
{
	nl_up(&L, 19);
	setenv("CEP_NET_NO_TBF", "1", 1);
	bandwidth_case("nftables");
	unsetenv("CEP_NET_NO_TBF");
}

/* The delegate's path: the runner is gone, lib/undo/undo.c removes the tbf
 * qdisc from the recorded undo; a second undo finds nothing (idempotent),
 * and a root qdisc someone else put there since is left alone. */
Test(netfaults, tbf_undone_by_the_delegate_path)
{
	nl_up(&L, 20);
	char f[256];
	snprintf(f, sizeof(f),
	    "{name: bw, type: network-bandwidth, netns: %s, "
	    "kbps: 800}",
	    L.a);
	injected in;
	inject_yaml(&in, f);
	cr_assert(nl_has_qdisc(L.a, "tbf"));
	Cep__V1__FaultRecord rec = CEP__V1__FAULT_RECORD__INIT;
	rec.fault_id = (char *)"bw";
	rec.mechanism = (char *)"tc-qdisc";
	rec.undo = in.undo;
	cep_err err = {0};
	cr_assert_eq(cep_undo_apply(NULL, &rec, &err), CEP_OK, "undo: %s",
	    err.msg);
	cr_assert_not(nl_has_qdisc(L.a, "tbf"), "undo left the tbf qdisc");
	cr_assert_eq(cep_undo_apply(NULL, &rec, &err), CEP_OK,
	    "second undo: %s", err.msg);
	/* the runner's revert after the delegate's undo: nothing of ours */
	revert(&in);
}

/* A namespace with only lo (a pod before its CNI set it up): a tbf fault
 * would shape nothing, so it is refused at inject, naming why, and leaves
 * nothing behind (found by the Litmus rate-limit test: it reported the
 * fault injected and the run passed). */
Test(netfaults, qdisc_fault_on_a_namespace_with_only_lo_is_refused)
{
	nl_up(&L, 21);
	cr_assert_eq(NL_RUN(NULL, 0, "ip", "-n", L.a, "link", "del", "va"), 0);
	char f[256];
	snprintf(f, sizeof(f),
	    "{name: bw, type: network-bandwidth, netns: %s, kbps: 800}", L.a);
	char yaml[2048];
	snprintf(yaml, sizeof(yaml), EXP_HEAD "    - %s\n", f);
	injected in = {0};
	in.e = rt_parse(yaml);
	const cep_exp_item *it = cep_exp_fault(in.e, 0);
	in.ops = runner_fault_find(cep_exp_item_type(it));
	cr_assert_not_null(in.ops);
	char target[300];
	json_t *u = NULL;
	cep_err err = {0};
	cr_assert_eq(in.ops->describe(it, target, sizeof(target), &u, &err),
	    CEP_OK, "describe: %s", err.msg);
	json_decref(u);
	cep_fault_ctx ctx = {.sink = S.sink, .fault_id = "bw"};
	cr_assert_eq(in.ops->inject(it, &ctx, &in.st, &err),
	    CEP_FAILED_PRECONDITION, "%s", err.msg);
	cr_assert(strstr(err.msg, "no interface but lo") != NULL, "%s",
	    err.msg);
	cr_assert_not(nl_has_qdisc(L.a, "tbf"));
	cep_exp_free(in.e);
}
