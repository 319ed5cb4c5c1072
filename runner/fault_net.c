/*
 * fault_net.c - target, table and filters shared by the network faults
 * (see fault_net.h). Rules are text in nft's syntax built only from
 * values this file has parsed and re-formatted itself (addresses through
 * inet_pton/inet_ntop, ports through strtol), so nothing a user wrote
 * reaches nft verbatim.
 */
#define _GNU_SOURCE
#include "fault_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fault_target.h"
#include "params.h"
#include "util.h"

/* describe -> inject hand-over: the engine describes then injects the
 * same item on the same thread. */
#define MAX_SLOTS 64
static struct slot {
	const cep_exp_item *it;
	unsigned n;
	cep_netns_id id;
} slots[MAX_SLOTS];
static unsigned next_n;

static struct slot *slot_of(const cep_exp_item *it, bool create)
{
	for (unsigned i = 0; i < MAX_SLOTS; i++)
		if (slots[i].it == it)
			return &slots[i];
	if (!create)
		return NULL;
	struct slot *s = &slots[next_n % MAX_SLOTS];
	s->it = it;
	s->n = next_n++;
	return s;
}

/* Run-wide settings from the assignment (cep_net_configure). */
static bool allow_host;
static uint16_t relay_port;

/* "tls+tcp://host:port" or "tls+tcp://[v6]:port" -> port; anything else
 * (ipc://, no port) -> 0: no TCP lifeline to exempt. */
static uint16_t url_port(const char *url)
{
	const char *hp = url ? strstr(url, "://") : NULL;
	if (hp == NULL || strncmp(url, "ipc:", 4) == 0)
		return 0;
	hp += 3;
	const char *br = strrchr(hp, ']');
	const char *colon = strrchr(br ? br : hp, ':');
	if (colon == NULL)
		return 0;
	char *end;
	errno = 0;
	long v = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || (*end && *end != '/') || v < 1 ||
	    v > 65535)
		return 0;
	return (uint16_t)v;
}

void cep_net_configure(bool allow_host_netns, const char *relay_url)
{
	allow_host = allow_host_netns;
	relay_port = url_port(relay_url);
}

uint16_t cep_net_relay_port(void)
{
	return relay_port;
}

int cep_net_target_allowed(const char *type, const cep_netns_id *id,
    const char *path, cep_err *err)
{
	if (!cep_netns_is_host(id) || allow_host)
		return CEP_OK;
	return cep_err_set(err, CEP_PERMISSION_DENIED,
	    "%s: %s is the host's network namespace (pid 1's or the runner's "
	    "own); refused (policy.network.allowHostNetns is false)", type,
	    path);
}

bool cep_net_lifeline(const cep_net_fault *f, uint16_t *port)
{
	*port = relay_port;
	return relay_port != 0 && cep_netns_is_host(&f->id);
}

static int open_target(const cep_exp_item *it, int *fd, cep_netns_id *id,
    char *path, size_t plen, cep_err *err)
{
	int64_t pid;
	const char *ns = cep_runner_param_str(it, "netns", NULL);
	int rc = cep_fault_target_pid(it, &pid, err);
	if (rc != CEP_OK)
		return rc;
	if ((pid > 0) == (ns != NULL))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s: give exactly one of pid, netns and pod",
		    cep_exp_item_type(it));
	rc = cep_netns_open(pid, ns, fd, id, path, plen, err);
	if (rc != CEP_OK)
		return cep_err_wrap(err, "%s target", cep_exp_item_type(it));
	rc = cep_net_target_allowed(cep_exp_item_type(it), id, path, err);
	if (rc != CEP_OK)
		close(*fd);
	return rc;
}

bool cep_net_target_is_host(const cep_exp_item *it)
{
	int fd;
	cep_netns_id id;
	cep_err e = {0};
	int64_t pid;
	const char *ns = cep_runner_param_str(it, "netns", NULL);
	if (cep_fault_target_pid(it, &pid, &e) != CEP_OK ||
	    cep_netns_open(pid, ns, &fd, &id, NULL, 0, &e) != CEP_OK)
		return false;
	close(fd);
	return cep_netns_is_host(&id);
}

int cep_net_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	int fd;
	cep_netns_id id;
	char path[1024], table[CEP_NFT_TABLE_MAX];
	int rc = open_target(it, &fd, &id, path, sizeof(path), err);
	if (rc != CEP_OK)
		return rc;
	close(fd);
	struct slot *s = slot_of(it, true);
	s->id = id;
	rc = cep_nft_table_name(cep_fault_run_id(), s->n, table, sizeof(table),
	    err);
	if (rc != CEP_OK)
		return rc;
	snprintf(target, tlen, "network namespace %s (inode %llu), table %s",
	    path, (unsigned long long)id.ino, table);
	*undo = cep_nft_undo_json(&id, path, table);
	return *undo ? CEP_OK : cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
	    "no memory for the undo record");
}

int cep_net_open(const cep_exp_item *it, cep_net_fault *f, cep_err *err)
{
	memset(f, 0, sizeof(*f));
	f->nsfd = -1;
	struct slot *s = slot_of(it, false);
	if (s == NULL)
		return cep_err_set(err, CEP_INTERNAL,
		    "%s: injected before it was described",
		    cep_exp_item_type(it));
	int rc = open_target(it, &f->nsfd, &f->id, f->path, sizeof(f->path),
	    err);
	if (rc != CEP_OK)
		return rc;
	if (f->id.ino != s->id.ino || f->id.dev != s->id.dev) {
		close(f->nsfd);
		f->nsfd = -1;
		return cep_err_set(err, CEP_ABORTED, "%s: the target's network "
		    "namespace changed since the fault was recorded",
		    cep_exp_item_type(it));
	}
	f->n = s->n;
	return cep_nft_table_name(cep_fault_run_id(), s->n, f->table,
	    sizeof(f->table), err);
}

static int append(char *buf, size_t len, size_t *off, cep_err *err,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int append(char *buf, size_t len, size_t *off, cep_err *err,
    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= len - *off)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "network fault: too many rules");
	*off += (size_t)w;
	return CEP_OK;
}

/* "10.0.0.0/8" or "fd00::1" -> canonical text into v4 or v6 list. */
static int add_cidr(const char *s, char *v4, char *v6, size_t len,
    cep_err *err)
{
	char a[64];
	const char *slash = strchr(s, '/');
	size_t al = slash ? (size_t)(slash - s) : strlen(s);
	if (al == 0 || al >= sizeof(a))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "cidr \"%.64s\": not an address", s);
	memcpy(a, s, al);
	a[al] = '\0';
	unsigned char bin[16];
	int fam = inet_pton(AF_INET, a, bin) == 1 ? AF_INET :
	    inet_pton(AF_INET6, a, bin) == 1 ? AF_INET6 : 0;
	if (fam == 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "cidr \"%.64s\": not an IPv4 or IPv6 address", s);
	long maxp = fam == AF_INET ? 32 : 128, plen = maxp;
	if (slash != NULL) {
		char *end;
		errno = 0;
		plen = strtol(slash + 1, &end, 10);
		if (errno || end == slash + 1 || *end || plen < 0 || plen > maxp)
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "cidr \"%.64s\": bad prefix length", s);
	}
	/* clear host bits: nft refuses them in a prefix */
	for (long b = plen; b < maxp; b++)
		bin[b / 8] &= (unsigned char)~(0x80u >> (b % 8));
	char canon[INET6_ADDRSTRLEN];
	inet_ntop(fam, bin, canon, sizeof(canon));
	char *list = fam == AF_INET ? v4 : v6;
	size_t o = strlen(list);
	int w = snprintf(list + o, len - o, "%s%s/%ld", o ? ", " : "", canon,
	    plen);
	if (w < 0 || (size_t)w >= len - o)
		return cep_err_set(err, CEP_INVALID_ARGUMENT, "too many cidrs");
	return CEP_OK;
}

static int parse_port(const char *s, const char *all, long *v, cep_err *err)
{
	char *end;
	errno = 0;
	*v = strtol(s, &end, 10);
	if (errno || end == s || *v < 1 || *v > 65535 || (*end && *end != '-')) {
		cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "port \"%.32s\": want 1..65535 or a range lo-hi", all);
		return -1;
	}
	return (int)(end - s);
}

static int add_port(const char *s, char *list, size_t len, cep_err *err)
{
	long lo, hi;
	int n = parse_port(s, s, &lo, err);
	if (n < 0)
		return CEP_INVALID_ARGUMENT;
	hi = lo;
	if (s[n] == '-') {
		int m = parse_port(s + n + 1, s, &hi, err);
		if (m < 0)
			return CEP_INVALID_ARGUMENT;
		if (s[n + 1 + m] != '\0' || hi < lo)
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "port range \"%.32s\": want lo-hi, lo <= hi", s);
	}
	size_t o = strlen(list);
	int w = hi == lo ? snprintf(list + o, len - o, "%s%ld", o ? ", " : "",
	    lo) : snprintf(list + o, len - o, "%s%ld-%ld", o ? ", " : "", lo, hi);
	if (w < 0 || (size_t)w >= len - o)
		return cep_err_set(err, CEP_INVALID_ARGUMENT, "too many ports");
	return CEP_OK;
}

bool cep_net_dir_has(const cep_exp_item *it, const char *chain)
{
	const char *d = cep_runner_param_str(it, "direction", "egress");
	if (strcmp(d, "both") == 0)
		return true;
	return strcmp(chain, "out") == 0 ? strcmp(d, "egress") == 0 :
	    strcmp(d, "ingress") == 0;
}

/* Expiry of the armed element: the run's deadline (plus the delegate's
 * grace), or the fault's duration when no deadline is known. */
static int64_t armed_ms(const cep_exp_item *it)
{
	int64_t dl = cep_fault_deadline_mono();
	int64_t t = dl > 0 ? dl - cep_mono_ms() + 10000 :
	    cep_runner_param_ms(it, "duration", 60000) + 60000;
	return t < 1000 ? 1000 : t;
}

typedef struct filters {
	char v4[2048], v6[4096], ports[1024];
} filters;

static int parse_filters(const cep_exp_item *it, filters *fl, cep_err *err)
{
	memset(fl, 0, sizeof(*fl));
	for (size_t i = 0; i < cep_exp_list_len(it, "cidrs"); i++) {
		int rc = add_cidr(cep_exp_list_at(it, "cidrs", i), fl->v4, fl->v6,
		    sizeof(fl->v4) < sizeof(fl->v6) ? sizeof(fl->v4) :
		    sizeof(fl->v6), err);
		if (rc != CEP_OK)
			return rc;
	}
	for (size_t i = 0; i < cep_exp_list_len(it, "ports"); i++) {
		int rc = add_port(cep_exp_list_at(it, "ports", i), fl->ports,
		    sizeof(fl->ports), err);
		if (rc != CEP_OK)
			return rc;
	}
	return CEP_OK;
}

/* Rules that let everything the filters exclude pass this table (accept
 * ends only this table's chain: other tables still see the packet). */
static int skip_rules(const cep_net_fault *f, const char *ch,
    const filters *fl, char *buf, size_t len, size_t *off, cep_err *err)
{
	bool out = strcmp(ch, "out") == 0;
	const char *addr = out ? "daddr" : "saddr";
	const char *T = f->table;
	int rc = append(buf, len, off, err, "add rule inet %s %s %s \"lo\" "
	    "accept\n", T, ch, out ? "oifname" : "iifname");
	/* The runner's lifeline: in its own (the host's) namespace no
	 * fault may cut the relay's TCP port, either way round. */
	uint16_t port;
	if (rc == CEP_OK && cep_net_lifeline(f, &port))
		rc = append(buf, len, off, err, "add rule inet %s %s tcp dport "
		    "%u accept\nadd rule inet %s %s tcp sport %u accept\n", T, ch,
		    (unsigned)port, T, ch, (unsigned)port);
	if (rc == CEP_OK && fl->v4[0] && !fl->v6[0])
		rc = append(buf, len, off, err, "add rule inet %s %s meta nfproto "
		    "!= ipv4 accept\n", T, ch);
	if (rc == CEP_OK && fl->v6[0] && !fl->v4[0])
		rc = append(buf, len, off, err, "add rule inet %s %s meta nfproto "
		    "!= ipv6 accept\n", T, ch);
	if (rc == CEP_OK && fl->v4[0])
		rc = append(buf, len, off, err, "add rule inet %s %s ip %s != "
		    "{ %s } accept\n", T, ch, addr, fl->v4);
	if (rc == CEP_OK && fl->v6[0])
		rc = append(buf, len, off, err, "add rule inet %s %s ip6 %s != "
		    "{ %s } accept\n", T, ch, addr, fl->v6);
	if (rc == CEP_OK && fl->ports[0])
		rc = append(buf, len, off, err, "add rule inet %s %s meta l4proto "
		    "!= { tcp, udp } accept\nadd rule inet %s %s meta l4proto { "
		    "tcp, udp } th dport != { %s } th sport != { %s } accept\n", T,
		    ch, T, ch, fl->ports, fl->ports);
	return rc;
}

int cep_net_table_head(const cep_exp_item *it, const cep_net_fault *f,
    char *buf, size_t len, size_t *off, cep_err *err)
{
	const char *T = f->table;
	return append(buf, len, off, err, "add table inet %s\n"
	    "add set inet %s %s { type mark; flags timeout; }\n"
	    "add element inet %s %s { 0x0 timeout %lldms }\n", T, T,
	    CEP_NFT_ARMED_SET, T, CEP_NFT_ARMED_SET, (long long)armed_ms(it));
}

int cep_net_table_cmds(const cep_exp_item *it, const cep_net_fault *f,
    char *buf, size_t len, size_t *off, cep_err *err)
{
	filters fl;
	int rc = parse_filters(it, &fl, err);
	if (rc != CEP_OK)
		return rc;
	const char *T = f->table;
	rc = cep_net_table_head(it, f, buf, len, off, err);
	static const char *const chains[] = {"out", "in"};
	static const char *const hooks[] = {"output", "input"};
	for (int i = 0; rc == CEP_OK && i < 2; i++) {
		if (!cep_net_dir_has(it, chains[i]))
			continue;
		rc = append(buf, len, off, err, "add chain inet %s %s { type "
		    "filter hook %s priority -150; policy accept; }\n", T,
		    chains[i], hooks[i]);
		if (rc == CEP_OK)
			rc = skip_rules(f, chains[i], &fl, buf, len, off, err);
	}
	return rc;
}

int cep_net_rule(const cep_net_fault *f, const char *chain,
    const char *action, char *buf, size_t len, size_t *off, cep_err *err)
{
	return append(buf, len, off, err, "add rule inet %s %s meta mark and "
	    "0x0 @%s %s\n", f->table, chain, CEP_NFT_ARMED_SET, action);
}

int cep_net_revert(cep_net_fault *f, cep_err *err)
{
	int rc = cep_nft_delete_table(f->nsfd, f->table, err);
	if (f->worker > 0) {
		if (f->worker_grace_ms > 0)
			cep_sleep_ms(f->worker_grace_ms);
		cep_err kerr = {0};
		int krc = cep_fault_kill_workers(&f->worker, 1, &kerr);
		if (krc != CEP_OK && rc == CEP_OK) {
			rc = krc;
			if (err != NULL)
				*err = kerr;
		}
		f->worker = 0;
	}
	return rc;
}

void cep_net_free(cep_net_fault *f)
{
	if (f == NULL)
		return;
	if (f->nsfd >= 0)
		close(f->nsfd);
	free(f);
}
