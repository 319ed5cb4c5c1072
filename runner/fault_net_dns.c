/*
 * fault_net_dns.c - `dns-error`: chosen names answer NXDOMAIN or SERVFAIL,
 * or get no answer (timeout), for one network namespace only.
 *
 * The fault's table has a nat output chain in the target namespace that
 * redirects the namespace's own DNS traffic (udp and tcp port 53) to a
 * responder on its loopback: a worker process ("cep-dns", forked from the
 * runner, PDEATHSIG, inside the namespace). The responder parses each
 * query with libresolv (ns_initparse/ns_parserr), answers matching names
 * with the configured error, and forwards everything else to the upstream
 * resolver (its own packets carry a mark the redirect skips). conntrack
 * makes the answers appear to come from the resolver the client asked.
 *
 * Sockets are opened by the runner on a thread in the namespace, so a
 * failure is reported before the fault counts as injected; the worker
 * inherits them and allocates nothing.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fault_net_int.h"
#include "params.h"

#define DNS_COMM "cep-dns"
#define DNS_MARK 0x00ce9d45
#define MAX_NAMES 64
#define PENDING 4096

enum dns_err { DNS_NXDOMAIN, DNS_SERVFAIL, DNS_TIMEOUT };

typedef struct dns_arg {
	int nsfd;
	int udp, tcp; /* listeners on 127.0.0.1 */
	int up;       /* marked socket towards the upstream */
	int port;     /* the listeners' port */
	struct sockaddr_in upstream;
	enum dns_err err;
	size_t nnames;
	char names[MAX_NAMES][256];
} dns_arg;

/* ---- matching and answers (worker side: no allocation) ---- */

static bool name_matches(const dns_arg *a, const char *q)
{
	size_t ql = strlen(q);
	for (size_t i = 0; i < a->nnames; i++) {
		const char *n = a->names[i];
		if (n[0] == '*' && n[1] == '.') {
			size_t sl = strlen(n + 1); /* ".suffix" */
			if (ql > sl && strcasecmp(q + ql - sl, n + 1) == 0)
				return true;
		} else if (strcasecmp(q, n) == 0) {
			return true;
		}
	}
	return false;
}

/* Query name of msg, or false if it is not a one-question query. */
bool runner_net_dns_query_name(const unsigned char *msg, size_t len, char *name,
    size_t nlen, size_t *qend)
{
	ns_msg h;
	ns_rr rr;
	if (len < HFIXEDSZ || ns_initparse(msg, (int)len, &h) != 0 ||
	    ns_msg_getflag(h, ns_f_qr) != 0 || ns_msg_count(h, ns_s_qd) != 1 ||
	    ns_parserr(&h, ns_s_qd, 0, &rr) != 0)
		return false;
	/* a name cut to fit could end in a wildcard's suffix and get that
	 * domain's error answer: refuse it instead */
	int w = snprintf(name, nlen, "%s", ns_rr_name(rr));
	if (w < 0 || (size_t)w >= nlen)
		return false;
	int skip = dn_skipname(msg + HFIXEDSZ, msg + len);
	if (skip < 0 || (size_t)skip + HFIXEDSZ + QFIXEDSZ > len)
		return false;
	*qend = HFIXEDSZ + (size_t)skip + QFIXEDSZ;
	return true;
}

/* The query's header and question, turned into an error answer. */
static size_t error_answer(const dns_arg *a, unsigned char *msg, size_t qend)
{
	HEADER *hd = (HEADER *)msg;
	hd->qr = 1;
	hd->aa = 0;
	hd->tc = 0;
	hd->ra = 1;
	hd->rcode = a->err == DNS_SERVFAIL ? SERVFAIL : NXDOMAIN;
	hd->ancount = 0;
	hd->nscount = 0;
	hd->arcount = 0;
	return qend;
}

/* Pending forwards, indexed by the id we gave the upstream query. */
static struct pend {
	bool used;
	uint16_t orig_id;
	struct sockaddr_storage from;
	socklen_t fromlen;
} pend[PENDING];
static uint16_t next_id;

static void udp_query(const dns_arg *a)
{
	unsigned char msg[4096];
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(a->udp, msg, sizeof(msg), MSG_DONTWAIT,
	    (struct sockaddr *)&from, &fl);
	char name[256];
	size_t qend;
	if (n <= 0 ||
	    !runner_net_dns_query_name(msg, (size_t)n, name, sizeof(name),
	        &qend))
		return;
	if (name_matches(a, name)) {
		if (a->err != DNS_TIMEOUT)
			sendto(a->udp, msg, error_answer(a, msg, qend), 0,
			    (struct sockaddr *)&from, fl);
		return;
	}
	uint16_t id = (uint16_t)(next_id++ % PENDING);
	struct pend *p = &pend[id];
	HEADER *hd = (HEADER *)msg;
	p->used = true;
	p->orig_id = hd->id;
	p->from = from;
	p->fromlen = fl;
	hd->id = htons(id);
	sendto(a->up, msg, (size_t)n, 0, (const struct sockaddr *)&a->upstream,
	    sizeof(a->upstream));
}

static void upstream_answer(const dns_arg *a)
{
	unsigned char msg[4096];
	ssize_t n = recv(a->up, msg, sizeof(msg), MSG_DONTWAIT);
	if (n < HFIXEDSZ)
		return;
	HEADER *hd = (HEADER *)msg;
	uint16_t id = ntohs(hd->id);
	if (id >= PENDING || !pend[id].used)
		return;
	struct pend *p = &pend[id];
	hd->id = p->orig_id;
	p->used = false;
	sendto(a->udp, msg, (size_t)n, 0, (struct sockaddr *)&p->from,
	    p->fromlen);
}

/* Reads exactly len bytes within 2 s. */
static bool read_full(int fd, unsigned char *b, size_t len)
{
	size_t got = 0;
	while (got < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 2000) <= 0)
			return false;
		ssize_t n = recv(fd, b + got, len - got, 0);
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

/* A fresh marked UDP socket: one upstream round-trip for a TCP query. */
static ssize_t forward_once(const dns_arg *a, unsigned char *msg, size_t len,
    size_t cap)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	int mark = DNS_MARK;
	setsockopt(s, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
	ssize_t n = -1;
	if (sendto(s, msg, len, 0, (const struct sockaddr *)&a->upstream,
	        sizeof(a->upstream)) == (ssize_t)len) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		if (poll(&p, 1, 2000) > 0)
			n = recv(s, msg, cap, 0);
	}
	close(s);
	return n;
}

static void tcp_query(const dns_arg *a)
{
	int c = accept4(a->tcp, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	unsigned char lenb[2], msg[4096];
	char name[256];
	size_t qend;
	if (read_full(c, lenb, 2)) {
		size_t len = (size_t)lenb[0] << 8 | lenb[1];
		ssize_t out = -1;
		if (len <= sizeof(msg) && read_full(c, msg, len) &&
		    runner_net_dns_query_name(msg, len, name, sizeof(name),
		        &qend)) {
			if (!name_matches(a, name))
				out = forward_once(a, msg, len, sizeof(msg));
			else if (a->err != DNS_TIMEOUT)
				out = (ssize_t)error_answer(a, msg, qend);
		}
		if (out > 0) {
			lenb[0] = (unsigned char)(out >> 8);
			lenb[1] = (unsigned char)out;
			send(c, lenb, 2, MSG_NOSIGNAL);
			send(c, msg, (size_t)out, MSG_NOSIGNAL);
		}
	}
	close(c);
}

static void dns_body(const void *p)
{
	const dns_arg *a = p;
	if (cep_netns_enter(a->nsfd) != 0)
		_exit(3);
	for (;;) {
		struct pollfd pf[3] = {{.fd = a->udp, .events = POLLIN},
		    {.fd = a->up, .events = POLLIN},
		    {.fd = a->tcp, .events = POLLIN}};
		if (poll(pf, 3, -1) <= 0)
			continue;
		if (pf[0].revents & POLLIN)
			udp_query(a);
		if (pf[1].revents & POLLIN)
			upstream_answer(a);
		if (pf[2].revents & POLLIN)
			tcp_query(a);
	}
}

/* ---- runner side ---- */

static int open_sockets(void *arg, cep_err *err)
{
	dns_arg *a = arg;
	struct sockaddr_in lo = {.sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(lo);
	int one = 1, mark = DNS_MARK;
	a->udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (a->udp < 0 || bind(a->udp, (struct sockaddr *)&lo, sizeof(lo)) ||
	    getsockname(a->udp, (struct sockaddr *)&lo, &sl))
		return cep_err_errno(err, errno,
		    "dns-error: responder socket on "
		    "127.0.0.1 (is lo up in the namespace?)");
	a->port = ntohs(lo.sin_port);
	a->tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (a->tcp >= 0)
		setsockopt(a->tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->tcp < 0 || bind(a->tcp, (struct sockaddr *)&lo, sizeof(lo)) ||
	    listen(a->tcp, 16))
		return cep_err_errno(err, errno,
		    "dns-error: TCP responder socket");
	a->up = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (a->up < 0 ||
	    setsockopt(a->up, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)))
		return cep_err_errno(err, errno, "dns-error: upstream socket");
	return CEP_OK;
}

/* upstream parameter, else the first IPv4 nameserver of the runner's
 * /etc/resolv.conf. */
static int pick_upstream(const cep_exp_item *it, dns_arg *a, cep_err *err)
{
	char ip[64] = "";
	const char *u = runner_param_str(it, "upstream", NULL);
	if (u != NULL) {
		snprintf(ip, sizeof(ip), "%s", u);
	} else {
		FILE *f = fopen("/etc/resolv.conf", "re");
		char line[512];
		while (f != NULL && ip[0] == '\0' &&
		    fgets(line, sizeof(line), f)) {
			if (strncmp(line, "nameserver", 10) != 0 ||
			    !isspace((unsigned char)line[10]))
				continue;
			char *s = line + 10;
			while (isspace((unsigned char)*s))
				s++;
			s[strcspn(s, " \t\r\n")] = '\0';
			struct in_addr t;
			if (inet_pton(AF_INET, s, &t) == 1)
				snprintf(ip, sizeof(ip), "%s", s);
		}
		if (f != NULL)
			fclose(f);
	}
	a->upstream.sin_family = AF_INET;
	a->upstream.sin_port = htons(53);
	if (inet_pton(AF_INET, ip, &a->upstream.sin_addr) != 1)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "dns-error: "
		    "upstream \"%.64s\" is not an IPv4 address (IPv6 upstreams "
		    "are not supported)",
		    ip[0] ? ip : "(none in resolv.conf)");
	return CEP_OK;
}

static int read_args(const cep_exp_item *it, dns_arg *a, cep_err *err)
{
	const char *e = runner_param_str(it, "error", "nxdomain");
	a->err = strcmp(e, "servfail") == 0 ? DNS_SERVFAIL :
	    strcmp(e, "timeout") == 0       ? DNS_TIMEOUT :
	                                      DNS_NXDOMAIN;
	a->nnames = cep_exp_list_len(it, "names");
	if (a->nnames == 0 || a->nnames > MAX_NAMES)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "dns-error: 1..%d names", MAX_NAMES);
	for (size_t i = 0; i < a->nnames; i++) {
		const char *n = cep_exp_list_at(it, "names", i);
		size_t l = strlen(n);
		while (l > 1 && n[l - 1] == '.')
			l--; /* "example.com." = "example.com" */
		if (l == 0 || l > 253 || strchr(n + (n[0] == '*'), '*') ||
		    (n[0] == '*' && n[1] != '.'))
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "dns-error: "
			    "name \"%.64s\": want a name or *.suffix",
			    n);
		snprintf(a->names[i], sizeof(a->names[i]), "%.*s", (int)l, n);
	}
	return pick_upstream(it, a, err);
}

static int dns_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	dns_arg *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "no memory");
	int rc = read_args(it, a, err);
	free(a);
	return rc != CEP_OK ? rc :
	                      runner_net_describe(it, target, tlen, undo, err);
}

/* A nat chain on output: the responder's own upstream queries (DNS_MARK)
 * pass, IPv4 TCP/UDP to port 53 goes to the responder on port. */
static int dns_table(const cep_exp_item *it, const cep_net_fault *f, int port,
    cep_err *err)
{
	cep_nft_spec *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "no memory");
	int rc = runner_net_spec(it, f, s, err);
	if (rc == CEP_OK) {
		/* only port 53 is touched: no filters, no lifeline */
		s->dirs = CEP_NFT_OUT;
		s->ncidrs = s->nports = 0;
		s->lifeline_port = 0;
		s->pass_mark = DNS_MARK;
		s->action = CEP_NFT_DNS_REDIRECT;
		s->redirect_port = (uint16_t)port;
		rc = cep_nft_create(f->nsfd, s, err);
	}
	free(s);
	return rc;
}

static void close_args(dns_arg *a)
{
	if (a->udp >= 0)
		close(a->udp);
	if (a->tcp >= 0)
		close(a->tcp);
	if (a->up >= 0)
		close(a->up);
	a->udp = a->tcp = a->up = -1;
}

static int dns_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	cep_net_fault *f = calloc(1, sizeof(*f));
	dns_arg *a = calloc(1, sizeof(*a));
	if (f == NULL || a == NULL) {
		free(f);
		free(a);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "no memory");
	}
	a->udp = a->tcp = a->up = -1;
	int rc = read_args(it, a, err);
	if (rc == CEP_OK)
		rc = runner_net_open(it, f, err);
	a->nsfd = f->nsfd;
	if (rc == CEP_OK)
		rc = cep_netns_run(f->nsfd, open_sockets, a, err);
	if (rc == CEP_OK)
		rc = runner_fault_spawn_worker(DNS_COMM, dns_body, a,
		    &f->worker, err);
	close_args(a); /* the worker holds them now */
	if (rc == CEP_OK)
		rc = dns_table(it, f, a->port, err);
	if (rc == CEP_OK)
		runner_emit_log(ctx->sink,
		    "%s: table %s in network namespace "
		    "%s, responder pid %d on 127.0.0.1:%d, upstream %s",
		    ctx->fault_id, f->table, f->path, (int)f->worker, a->port,
		    inet_ntoa(a->upstream.sin_addr));
	free(a);
	if (rc != CEP_OK) {
		if (f->worker > 0)
			runner_net_revert(f, NULL);
		runner_net_free(f);
		return rc;
	}
	*state = f;
	return CEP_OK;
}

const cep_fault_ops runner_fault_net_dns = {
    .type = "dns-error",
    .mechanism = "nftables",
    .describe = dns_describe,
    .inject = dns_inject,
    .revert = runner_net_revert_free,
};
