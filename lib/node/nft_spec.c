/*
 * nft_spec.c - a network fault's typed spec (nft.h) checked and written
 * as nft commands: the only place that writes nftables rule text. Every
 * value in the text is a number or an address this file formats itself
 * (inet_ntop), or the table name, checked to [a-z0-9_]; nothing a user
 * wrote reaches nft verbatim. Running the text is nft.c's job.
 */
#define _GNU_SOURCE
#include "nft.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- parsing user text ---- */

int cep_nft_cidr_parse(const char *s, cep_nft_cidr *out, cep_err *err)
{
	char a[64];
	const char *slash = strchr(s, '/');
	size_t al = slash ? (size_t)(slash - s) : strlen(s);
	if (al == 0 || al >= sizeof(a))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "cidr \"%.64s\": not an address", s);
	memcpy(a, s, al);
	a[al] = '\0';
	memset(out, 0, sizeof(*out));
	out->family = inet_pton(AF_INET, a, out->addr) == 1 ? AF_INET :
	    inet_pton(AF_INET6, a, out->addr) == 1          ? AF_INET6 :
	                                                      0;
	if (out->family == 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "cidr \"%.64s\": not an IPv4 or IPv6 address", s);
	long maxp = out->family == AF_INET ? 32 : 128, plen = maxp;
	if (slash != NULL) {
		char *end;
		errno = 0;
		plen = strtol(slash + 1, &end, 10);
		if (errno || end == slash + 1 || *end || plen < 0 ||
		    plen > maxp)
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "cidr \"%.64s\": bad prefix length", s);
	}
	out->plen = (uint8_t)plen;
	for (long b = plen; b < maxp; b++)
		out->addr[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
	return CEP_OK;
}

/* One port at s; the number of characters read, or -1. */
static int port_at(const char *s, const char *all, long *v, cep_err *err)
{
	char *end;
	errno = 0;
	*v = strtol(s, &end, 10);
	if (errno || end == s || *v < 1 || *v > 65535 ||
	    (*end && *end != '-')) {
		cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "port \"%.32s\": want 1..65535 or a range lo-hi", all);
		return -1;
	}
	return (int)(end - s);
}

int cep_nft_ports_parse(const char *s, cep_nft_ports *out, cep_err *err)
{
	long lo, hi;
	int n = port_at(s, s, &lo, err);
	if (n < 0)
		return CEP_INVALID_ARGUMENT;
	hi = lo;
	if (s[n] == '-') {
		int m = port_at(s + n + 1, s, &hi, err);
		if (m < 0)
			return CEP_INVALID_ARGUMENT;
		if (s[n + 1 + m] != '\0' || hi < lo)
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "port range \"%.32s\": want lo-hi, lo <= hi", s);
	}
	out->lo = (uint16_t)lo;
	out->hi = (uint16_t)hi;
	return CEP_OK;
}

/* ---- checking ---- */

static bool cidr_ok(const cep_nft_cidr *c)
{
	unsigned maxp = c->family == AF_INET ? 32 :
	    c->family == AF_INET6            ? 128 :
	                                       0;
	if (maxp == 0 || c->plen > maxp)
		return false;
	for (unsigned b = c->plen; b < 128; b++)
		if (c->addr[b / 8] & (0x80u >> (b % 8)))
			return false;
	return true;
}

static int bad(cep_err *err, const char *what)
{
	return cep_err_set(err, CEP_INVALID_ARGUMENT, "nftables spec: %s",
	    what);
}

static int check_filters(const cep_nft_spec *s, cep_err *err)
{
	if (s->ncidrs > CEP_NFT_CIDRS_MAX)
		return bad(err, "too many cidrs");
	for (size_t i = 0; i < s->ncidrs; i++)
		if (!cidr_ok(&s->cidrs[i]))
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "nftables "
			    "spec: cidr %zu: bad family, prefix or host bits",
			    i);
	if (s->nports > CEP_NFT_PORTS_MAX)
		return bad(err, "too many ports");
	for (size_t i = 0; i < s->nports; i++)
		if (s->ports[i].lo < 1 || s->ports[i].hi < s->ports[i].lo)
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "nftables "
			    "spec: ports %zu: want 1 <= lo <= hi",
			    i);
	return CEP_OK;
}

static int check_action(const cep_nft_spec *s, cep_err *err)
{
	switch (s->action) {
	case CEP_NFT_DROP:
		return s->percent >= 1 && s->percent <= 100 ?
		    CEP_OK :
		    bad(err, "drop percent: want 1..100");
	case CEP_NFT_REJECT:
	case CEP_NFT_QUEUE: return CEP_OK;
	case CEP_NFT_POLICE:
		/* nft counts in 64 bits; 2^40 bytes/s is far past any link */
		return s->rate >= 1 && s->rate <= CEP_NFT_RATE_MAX &&
		        s->burst <= CEP_NFT_RATE_MAX ?
		    CEP_OK :
		    bad(err,
		        "police rate 1..2^40 bytes/s, burst <= 2^40 bytes");
	case CEP_NFT_DNS_REDIRECT:
		if (s->redirect_port < 1)
			return bad(err, "dns redirect port 0");
		return s->dirs == CEP_NFT_OUT && s->ncidrs == 0 &&
		        s->nports == 0 && s->lifeline_port == 0 ?
		    CEP_OK :
		    bad(err,
		        "dns redirect: outgoing only, no cidrs, ports or "
		        "lifeline");
	}
	return bad(err, "unknown action");
}

int cep_nft_spec_check(const cep_nft_spec *s, cep_err *err)
{
	if (s == NULL)
		return bad(err, "none");
	if (!cep_nft_table_name_ok(s->table))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "nftables spec: "
		    "\"%.64s\" is not a cep table name",
		    s->table);
	if (s->armed_ms < 1 || s->armed_ms > CEP_NFT_ARMED_MAX_MS)
		return bad(err, "armed timeout out of range");
	if (s->dirs == 0 || (s->dirs & ~(CEP_NFT_OUT | CEP_NFT_IN)) != 0)
		return bad(err, "directions: want out, in or both");
	int rc = check_filters(s, err);
	return rc != CEP_OK ? rc : check_action(s, err);
}

/* ---- writing ---- */

typedef struct out {
	char *buf;
	size_t len, off;
	bool full;
} out;

static void put(out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
	if (o->full)
		return;
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(o->buf + o->off, o->len - o->off, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= o->len - o->off)
		o->full = true;
	else
		o->off += (size_t)w;
}

/* "a/p, b/q" of the cidrs of one family. */
static void put_cidrs(out *o, const cep_nft_spec *s, int family)
{
	bool first = true;
	for (size_t i = 0; i < s->ncidrs; i++) {
		if (s->cidrs[i].family != family)
			continue;
		char a[INET6_ADDRSTRLEN];
		inet_ntop(family, s->cidrs[i].addr, a, sizeof(a));
		put(o, "%s%s/%u", first ? "" : ", ", a,
		    (unsigned)s->cidrs[i].plen);
		first = false;
	}
}

static void put_ports(out *o, const cep_nft_spec *s)
{
	for (size_t i = 0; i < s->nports; i++) {
		const cep_nft_ports *p = &s->ports[i];
		put(o, i ? ", %u" : "%u", (unsigned)p->lo);
		if (p->hi != p->lo)
			put(o, "-%u", (unsigned)p->hi);
	}
}

static bool has_family(const cep_nft_spec *s, int family)
{
	for (size_t i = 0; i < s->ncidrs; i++)
		if (s->cidrs[i].family == family)
			return true;
	return false;
}

/* Rules that let everything the filters exclude pass this table (accept
 * ends only this table's chain: other tables still see the packet). */
static void put_skips(out *o, const cep_nft_spec *s, bool isout)
{
	const char *T = s->table, *ch = isout ? "out" : "in";
	const char *addr = isout ? "daddr" : "saddr";
	bool v4 = has_family(s, AF_INET), v6 = has_family(s, AF_INET6);
	put(o, "add rule inet %s %s %s \"lo\" accept\n", T, ch,
	    isout ? "oifname" : "iifname");
	if (s->lifeline_port != 0)
		put(o,
		    "add rule inet %s %s tcp dport %u accept\nadd rule inet "
		    "%s %s tcp sport %u accept\n",
		    T, ch, s->lifeline_port, T, ch, s->lifeline_port);
	if (v4 != v6)
		put(o, "add rule inet %s %s meta nfproto != %s accept\n", T, ch,
		    v4 ? "ipv4" : "ipv6");
	static const int fams[] = {AF_INET, AF_INET6};
	for (int i = 0; i < 2; i++) {
		if (!has_family(s, fams[i]))
			continue;
		put(o, "add rule inet %s %s %s %s != { ", T, ch,
		    i == 0 ? "ip" : "ip6", addr);
		put_cidrs(o, s, fams[i]);
		put(o, " } accept\n");
	}
	if (s->nports == 0)
		return;
	put(o,
	    "add rule inet %s %s meta l4proto != { tcp, udp } accept\n"
	    "add rule inet %s %s meta l4proto { tcp, udp } th dport != { ",
	    T, ch, T, ch);
	put_ports(o, s);
	put(o, " } th sport != { ");
	put_ports(o, s);
	put(o, " } accept\n");
}

#define ARMED "meta mark and 0x0 @" CEP_NFT_ARMED_SET

/* With both directions, the in chain's reject answers (a TCP reset, an
 * ICMP admin-prohibited) are generated locally and cross the out chain on
 * their way to the cut peer: without these rules the out chain's own
 * reject would swallow them (no reset answers a reset, no ICMP error an
 * ICMP error) and the peer would see a silent drop. Matched by their
 * form, so a reset or an admin-prohibited the namespace sends by itself
 * passes too (documented in docs/faults-network.md). */
static void put_reject_pass(out *o, const char *T)
{
	put(o,
	    "add rule inet %s out meta l4proto tcp tcp flags & rst == rst "
	    "accept\nadd rule inet %s out icmp type destination-unreachable "
	    "icmp code admin-prohibited accept\nadd rule inet %s out icmpv6 "
	    "type destination-unreachable icmpv6 code admin-prohibited "
	    "accept\n",
	    T, T, T);
}

static void put_action(out *o, const cep_nft_spec *s, const char *ch)
{
	const char *T = s->table;
	switch (s->action) {
	case CEP_NFT_DROP:
		if (s->percent >= 100)
			put(o, "add rule inet %s %s " ARMED " drop\n", T, ch);
		else
			put(o,
			    "add rule inet %s %s " ARMED " numgen random mod "
			    "100 < %u drop\n",
			    T, ch, s->percent);
		break;
	case CEP_NFT_REJECT:
		if (strcmp(ch, "out") == 0 && (s->dirs & CEP_NFT_IN))
			put_reject_pass(o, T);
		put(o,
		    "add rule inet %s %s " ARMED " meta l4proto tcp reject "
		    "with tcp reset\nadd rule inet %s %s " ARMED " reject with "
		    "icmpx type admin-prohibited\n",
		    T, ch, T, ch);
		break;
	case CEP_NFT_POLICE:
		put(o,
		    "add limit inet %s lim_%s { rate over %llu bytes/second "
		    "burst %llu bytes }\nadd rule inet %s %s " ARMED
		    " limit name "
		    "\"lim_%s\" drop\n",
		    T, ch, (unsigned long long)s->rate,
		    (unsigned long long)s->burst, T, ch, ch);
		break;
	default: break; /* QUEUE: libnftnl, later; DNS: its own chain */
	}
}

static void put_dns(out *o, const cep_nft_spec *s)
{
	const char *T = s->table;
	put(o,
	    "add chain inet %s dns { type nat hook output priority -100; "
	    "policy accept; }\n",
	    T);
	if (s->pass_mark != 0)
		put(o, "add rule inet %s dns meta mark 0x%08x accept\n", T,
		    s->pass_mark);
	put(o,
	    "add rule inet %s dns " ARMED " meta nfproto ipv4 meta l4proto "
	    "{ tcp, udp } th dport 53 redirect to :%u\n",
	    T, s->redirect_port);
}

int cep_nft_spec_script(const cep_nft_spec *s, char *buf, size_t len,
    cep_err *err)
{
	int rc = cep_nft_spec_check(s, err);
	if (rc != CEP_OK)
		return rc;
	out o = {.buf = buf, .len = len};
	const char *T = s->table;
	put(&o,
	    "add table inet %s\nadd set inet %s %s { type mark; flags "
	    "timeout; }\nadd element inet %s %s { 0x0 timeout %lldms }\n",
	    T, T, CEP_NFT_ARMED_SET, T, CEP_NFT_ARMED_SET,
	    (long long)s->armed_ms);
	if (s->action == CEP_NFT_DNS_REDIRECT) {
		put_dns(&o, s);
	} else {
		static const char *const chains[] = {"out", "in"};
		static const char *const hooks[] = {"output", "input"};
		static const unsigned dirs[] = {CEP_NFT_OUT, CEP_NFT_IN};
		for (int i = 0; i < 2; i++) {
			if (!(s->dirs & dirs[i]))
				continue;
			put(&o,
			    "add chain inet %s %s { type filter hook %s "
			    "priority -150; policy accept; }\n",
			    T, chains[i], hooks[i]);
			put_skips(&o, s, i == 0);
		}
		if (s->pass_mark != 0 && (s->dirs & CEP_NFT_OUT))
			put(&o,
			    "add rule inet %s out meta mark 0x%08x accept\n", T,
			    s->pass_mark);
		for (int i = 0; i < 2; i++)
			if (s->dirs & dirs[i])
				put_action(&o, s, chains[i]);
	}
	if (len == 0 || o.full)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "nftables spec: the rules do not fit in %zu bytes", len);
	return CEP_OK;
}
