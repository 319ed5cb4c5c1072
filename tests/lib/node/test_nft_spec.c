/* test_nft_spec.c - a network fault's typed spec (lib/node/nft_spec.c)
 * without root: user text parsed into it, every field checked, and the
 * exact nft commands written for it. Applying them: test_nft.c. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "nft.h"

#define T "cep_0123456789abcdef_3"

static cep_nft_spec base(void)
{
	cep_nft_spec s = {.armed_ms = 70000,
	    .dirs = CEP_NFT_OUT,
	    .action = CEP_NFT_DROP,
	    .percent = 100};
	snprintf(s.table, sizeof(s.table), "%s", T);
	return s;
}

static void cidr(cep_nft_spec *s, const char *text)
{
	cep_err err = {0};
	cr_assert_eq(cep_nft_cidr_parse(text, &s->cidrs[s->ncidrs++], &err),
	    CEP_OK, "%s: %s", text, err.msg);
}

static void ports(cep_nft_spec *s, const char *text)
{
	cep_err err = {0};
	cr_assert_eq(cep_nft_ports_parse(text, &s->ports[s->nports++], &err),
	    CEP_OK, "%s: %s", text, err.msg);
}

static char buf[CEP_NFT_SCRIPT_MAX];

static const char *script(const cep_nft_spec *s)
{
	cep_err err = {0};
	cr_assert_eq(cep_nft_spec_script(s, buf, sizeof(buf), &err), CEP_OK,
	    "%s", err.msg);
	return buf;
}

Test(nft_spec, cidrs_parsed_canonical)
{
	cep_nft_cidr c;
	cep_err err = {0};
	char a[INET6_ADDRSTRLEN];
	cr_assert_eq(cep_nft_cidr_parse("10.1.2.3/8", &c, &err), CEP_OK);
	cr_assert_eq(c.family, AF_INET);
	cr_assert_eq(c.plen, 8);
	cr_assert_str_eq(inet_ntop(AF_INET, c.addr, a, sizeof(a)), "10.0.0.0");
	cr_assert_eq(cep_nft_cidr_parse("fd00::1", &c, &err), CEP_OK);
	cr_assert_eq(c.family, AF_INET6);
	cr_assert_eq(c.plen, 128);
	cr_assert_eq(cep_nft_cidr_parse("fd00:1:2::7/33", &c, &err), CEP_OK);
	cr_assert_str_eq(inet_ntop(AF_INET6, c.addr, a, sizeof(a)), "fd00:1::");
	static const char *const bad[] = {"", "/8", "x", "10.0.0.0/33",
	    "fd00::/129", "10.0.0.0/", "10.0.0.0/8x", "10.0.0.0/-1",
	    "10.0.0.1; flush ruleset", "10.0.0.1 } accept",
	    /* longer than any address text: 68 characters */
	    "11111111111111111111111111111111111111111111111111111111111111111111/8"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		cr_expect_eq(cep_nft_cidr_parse(bad[i], &c, &err),
		    CEP_INVALID_ARGUMENT, "\"%s\" accepted", bad[i]);
		cr_expect(strstr(err.msg, "cidr \""), "%s: %s", bad[i],
		    err.msg);
	}
}

Test(nft_spec, ports_parsed)
{
	cep_nft_ports p;
	cep_err err = {0};
	cr_assert_eq(cep_nft_ports_parse("53", &p, &err), CEP_OK);
	cr_assert(p.lo == 53 && p.hi == 53);
	cr_assert_eq(cep_nft_ports_parse("8000-8080", &p, &err), CEP_OK);
	cr_assert(p.lo == 8000 && p.hi == 8080);
	cr_assert_eq(cep_nft_ports_parse("1-65535", &p, &err), CEP_OK);
	static const char *const bad[] = {"", "0", "65536", "80-79", "80-",
	    "-80", "80x", "1-2-3", "53 accept", "99999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		cr_expect_eq(cep_nft_ports_parse(bad[i], &p, &err),
		    CEP_INVALID_ARGUMENT, "\"%s\" accepted", bad[i]);
		cr_expect(strstr(err.msg, "port"), "%s: %s", bad[i], err.msg);
	}
}

/* Each case breaks one field of a good spec; the check refuses it, and
 * so do the writer and cep_nft_create's first step. */
Test(nft_spec, every_field_checked)
{
	cep_nft_spec good = base();
	cep_err err = {0};
	cr_assert_eq(cep_nft_spec_check(&good, &err), CEP_OK, "%s", err.msg);
	cep_nft_spec c[24];
	size_t n = 0;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		c[i] = good;
	snprintf(c[n++].table, sizeof(good.table), "%s", "");
	snprintf(c[n++].table, sizeof(good.table), "%s",
	    "cep_x; flush ruleset");
	snprintf(c[n++].table, sizeof(good.table), "%s", "CEP_X");
	snprintf(c[n++].table, sizeof(good.table), "%s", "other_table");
	c[n++].armed_ms = 0;
	c[n++].armed_ms = CEP_NFT_ARMED_MAX_MS + 1;
	c[n++].dirs = 0;
	c[n++].dirs = 4;
	c[n].ncidrs = 1;
	c[n++].cidrs[0] = (cep_nft_cidr){.family = 99, .plen = 8};
	c[n].ncidrs = 1;
	c[n++].cidrs[0] = (cep_nft_cidr){.family = AF_INET, .plen = 33};
	c[n].ncidrs = 1; /* host bits past the prefix */
	c[n++].cidrs[0] = (cep_nft_cidr){.family = AF_INET,
	    .plen = 8,
	    .addr = {10, 0, 0, 1}};
	c[n++].ncidrs = CEP_NFT_CIDRS_MAX + 1;
	c[n].nports = 1;
	c[n++].ports[0] = (cep_nft_ports){0, 10};
	c[n].nports = 1;
	c[n++].ports[0] = (cep_nft_ports){80, 79};
	c[n++].nports = CEP_NFT_PORTS_MAX + 1;
	c[n++].action = 0;
	c[n++].action = 99;
	c[n++].percent = 0;
	c[n++].percent = 101;
	c[n].action = CEP_NFT_POLICE;
	c[n++].rate = 0;
	c[n].action = CEP_NFT_POLICE;
	c[n].rate = 1000;
	c[n++].burst = CEP_NFT_RATE_MAX + 1;
	c[n].action = CEP_NFT_DNS_REDIRECT; /* no port */
	n++;
	c[n].action = CEP_NFT_DNS_REDIRECT;
	c[n].redirect_port = 5353;
	c[n++].dirs = CEP_NFT_OUT | CEP_NFT_IN;
	c[n].action = CEP_NFT_DNS_REDIRECT;
	c[n].redirect_port = 5353;
	c[n++].lifeline_port = 7443;
	cr_assert_eq(n, sizeof(c) / sizeof(c[0]));
	for (size_t i = 0; i < n; i++) {
		err.msg[0] = '\0';
		cr_expect_eq(cep_nft_spec_check(&c[i], &err),
		    CEP_INVALID_ARGUMENT, "case %zu accepted", i);
		cr_expect(strstr(err.msg, "nftables spec"), "case %zu: %s", i,
		    err.msg);
		cr_expect_eq(cep_nft_spec_script(&c[i], buf, sizeof(buf), &err),
		    CEP_INVALID_ARGUMENT, "case %zu written", i);
		cr_expect_eq(cep_nft_create(-1, &c[i], &err),
		    CEP_INVALID_ARGUMENT, "case %zu created", i);
	}
	cr_expect_neq(cep_nft_spec_check(NULL, &err), CEP_OK);
}

/* The whole text of a filtered, sampled drop: the order matters (every
 * exemption before the action) and so does each token. */
Test(nft_spec, loss_with_filters_exact)
{
	cep_nft_spec s = base();
	s.dirs = CEP_NFT_OUT | CEP_NFT_IN;
	s.percent = 30;
	s.lifeline_port = 7443;
	cidr(&s, "10.1.0.0/16");
	cidr(&s, "fd00::5/64");
	cidr(&s, "192.0.2.7");
	ports(&s, "53");
	ports(&s, "8000-8080");
	const char *want =
	    "add table inet " T "\n"
	    "add set inet " T " armed { type mark; flags timeout; }\n"
	    "add element inet " T " armed { 0x0 timeout 70000ms }\n"
	    "add chain inet " T " out { type filter hook output priority -150; "
	    "policy accept; }\n"
	    "add rule inet " T " out oifname \"lo\" accept\n"
	    "add rule inet " T " out tcp dport 7443 accept\n"
	    "add rule inet " T " out tcp sport 7443 accept\n"
	    "add rule inet " T " out ip daddr != { 10.1.0.0/16, 192.0.2.7/32 } "
	    "accept\n"
	    "add rule inet " T " out ip6 daddr != { fd00::/64 } accept\n"
	    "add rule inet " T " out meta l4proto != { tcp, udp } accept\n"
	    "add rule inet " T " out meta l4proto { tcp, udp } th dport != "
	    "{ 53, 8000-8080 } th sport != { 53, 8000-8080 } accept\n"
	    "add chain inet " T " in { type filter hook input priority -150; "
	    "policy accept; }\n"
	    "add rule inet " T " in iifname \"lo\" accept\n"
	    "add rule inet " T " in tcp dport 7443 accept\n"
	    "add rule inet " T " in tcp sport 7443 accept\n"
	    "add rule inet " T " in ip saddr != { 10.1.0.0/16, 192.0.2.7/32 } "
	    "accept\n"
	    "add rule inet " T " in ip6 saddr != { fd00::/64 } accept\n"
	    "add rule inet " T " in meta l4proto != { tcp, udp } accept\n"
	    "add rule inet " T " in meta l4proto { tcp, udp } th dport != "
	    "{ 53, 8000-8080 } th sport != { 53, 8000-8080 } accept\n"
	    "add rule inet " T
	    " out meta mark and 0x0 @armed numgen random mod "
	    "100 < 30 drop\n"
	    "add rule inet " T " in meta mark and 0x0 @armed numgen random mod "
	    "100 < 30 drop\n";
	cr_assert_str_eq(script(&s), want);
}

Test(nft_spec, one_family_skips_the_other)
{
	cep_nft_spec s = base();
	cidr(&s, "192.0.2.0/24");
	cr_expect(strstr(script(&s), "out meta nfproto != ipv4 accept\n"), "%s",
	    buf);
	s = base();
	s.dirs = CEP_NFT_IN;
	cidr(&s, "2001:db8::/32");
	cr_expect(strstr(script(&s), "in meta nfproto != ipv6 accept\n"), "%s",
	    buf);
	cr_expect(strstr(buf, "in ip6 saddr != { 2001:db8::/32 } accept\n"),
	    "%s", buf);
	cr_expect_null(strstr(buf, " out "), "%s", buf);
	s = base(); /* no filters: loopback only, then the action */
	cr_expect_null(strstr(script(&s), "nfproto"), "%s", buf);
	cr_expect(strstr(buf, "out meta mark and 0x0 @armed drop\n"), "%s",
	    buf);
}

Test(nft_spec, actions_written)
{
	cep_nft_spec s = base();
	s.action = CEP_NFT_REJECT;
	s.dirs = CEP_NFT_IN;
	script(&s);
	cr_expect(
	    strstr(buf,
	        "add rule inet " T " in meta mark and 0x0 @armed "
	        "meta l4proto tcp reject with tcp reset\nadd rule inet " T
	        " in "
	        "meta mark and 0x0 @armed reject with icmpx type admin-prohibited\n"),
	    "%s", buf);
	cr_expect_null(strstr(buf, "rst"), "%s", buf);
	/* both: the in chain's answers pass the out chain before its reject */
	s.dirs = CEP_NFT_IN | CEP_NFT_OUT;
	script(&s);
	const char *pass = strstr(buf,
	    "add rule inet " T
	    " out meta l4proto tcp tcp flags & rst == rst accept\n"
	    "add rule inet " T " out icmp type destination-unreachable icmp "
	    "code admin-prohibited accept\nadd rule inet " T " out icmpv6 "
	    "type destination-unreachable icmpv6 code admin-prohibited "
	    "accept\n");
	cr_expect(pass, "%s", buf);
	const char *rej = strstr(buf,
	    " out meta mark and 0x0 @armed meta "
	    "l4proto tcp reject");
	cr_expect(rej && pass && pass < rej, "%s", buf);
	s = base();
	s.action = CEP_NFT_POLICE;
	s.rate = 125000;
	s.burst = 32768;
	script(&s);
	cr_expect(strstr(buf,
	              "add limit inet " T " lim_out { rate over 125000 "
	              "bytes/second burst 32768 bytes }\nadd rule inet " T
	              " out meta mark "
	              "and 0x0 @armed limit name \"lim_out\" drop\n"),
	    "%s", buf);
	s = base(); /* queue: chains and the mark pass only; no action yet */
	s.action = CEP_NFT_QUEUE;
	s.qnum = 51203;
	s.pass_mark = 0x63657064;
	script(&s);
	cr_expect(strstr(buf,
	              "add rule inet " T " out meta mark 0x63657064 "
	              "accept\n"),
	    "%s", buf);
	cr_expect_null(strstr(buf, "@armed"), "%s", buf);
	s.dirs = CEP_NFT_IN; /* the mark pass is for outgoing copies only */
	cr_expect_null(strstr(script(&s), "0x63657064"), "%s", buf);
}

Test(nft_spec, dns_redirect_exact)
{
	cep_nft_spec s = base();
	s.action = CEP_NFT_DNS_REDIRECT;
	s.redirect_port = 40053;
	s.pass_mark = 0x00ce9d45;
	const char *want =
	    "add table inet " T "\n"
	    "add set inet " T " armed { type mark; flags timeout; }\n"
	    "add element inet " T " armed { 0x0 timeout 70000ms }\n"
	    "add chain inet " T " dns { type nat hook output priority -100; "
	    "policy accept; }\n"
	    "add rule inet " T " dns meta mark 0x00ce9d45 accept\n"
	    "add rule inet " T
	    " dns meta mark and 0x0 @armed meta nfproto ipv4 "
	    "meta l4proto { tcp, udp } th dport 53 redirect to :40053\n";
	cr_assert_str_eq(script(&s), want);
}

/* A full spec fits CEP_NFT_SCRIPT_MAX; a short buffer is an error, never
 * a cut script. */
Test(nft_spec, size_bounds)
{
	cep_nft_spec s = base();
	s.dirs = CEP_NFT_OUT | CEP_NFT_IN;
	s.lifeline_port = 65535;
	for (size_t i = 0; i < CEP_NFT_CIDRS_MAX; i++) {
		char c[64];
		snprintf(c, sizeof(c),
		    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:%zx/128", 0xff00 + i);
		cidr(&s, c);
	}
	for (size_t i = 0; i < CEP_NFT_PORTS_MAX; i++) {
		char p[32];
		snprintf(p, sizeof(p), "%zu-%zu", 60000 + i * 10,
		    60005 + i * 10);
		ports(&s, p);
	}
	s.action = CEP_NFT_POLICE;
	s.rate = s.burst = CEP_NFT_RATE_MAX;
	script(&s);
	size_t full = strlen(buf);
	cep_err err = {0};
	cr_assert_eq(cep_nft_spec_script(&s, buf, full, &err),
	    CEP_INVALID_ARGUMENT);
	cr_expect(strstr(err.msg, "do not fit"), "%s", err.msg);
	cr_assert_eq(cep_nft_spec_script(&s, buf, 0, &err),
	    CEP_INVALID_ARGUMENT);
}
