/*
 * nft.h - nftables tables that hold one network fault each.
 *
 * A fault is one table, family inet, named cep_<run-id hex>_<n>, created in
 * the target's network namespace in one netlink transaction. Its rules are
 * guarded by a set element with a timeout (set "armed"), so they stop
 * matching by themselves at the run's deadline even if the runner and the
 * delegate are both gone. Deleting the table is the undo; an absent table
 * is already undone.
 *
 * Callers describe a fault as a typed spec (cep_nft_spec: directions,
 * peers, ports, what happens to a matching packet); this module checks
 * every field and only then writes the rules, in nft's own syntax, for
 * libnftables (the netlink library; nothing parses command output). No
 * caller hands nft text of its own. The one rule nft cannot express here
 * (the xtables NFQUEUE target through nft_compat, for kernels without the
 * nft queue expression) is built with libnftnl.
 */
#ifndef CEP_NFT_H
#define CEP_NFT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "netns.h"

#define CEP_NFT_TABLE_MAX 64
/* The guard set every rule of a fault table looks up (meta mark & 0). */
#define CEP_NFT_ARMED_SET "armed"

/* "cep_<16 hex digits of the run id>_<n>"; run_id "r-<16 hex>". */
int cep_nft_table_name(const char *run_id, unsigned n, char *buf, size_t len,
    cep_err *err);
/* Whether t has the form of such a name: "cep_" then [a-z0-9_], shorter
 * than CEP_NFT_TABLE_MAX. */
bool cep_nft_table_name_ok(const char *t);

/* ---- a fault as a typed spec (nft_spec.c) ---- */

#define CEP_NFT_CIDRS_MAX 64 /* the schema's cidrs limit */
#define CEP_NFT_PORTS_MAX 32 /* the schema's ports limit */
/* The armed element's timeout: at most a year. */
#define CEP_NFT_ARMED_MAX_MS (366LL * 24 * 3600 * 1000)
/* The policer's largest rate (bytes/s) and burst (bytes). */
#define CEP_NFT_RATE_MAX (1ULL << 40)
/* Room for the longest script a checked spec makes. */
#define CEP_NFT_SCRIPT_MAX 16384

/* A peer network: family AF_INET or AF_INET6, addr in network order with
 * no bits set past plen (nft refuses host bits in a prefix). */
typedef struct cep_nft_cidr {
	int family;
	uint8_t addr[16];
	uint8_t plen;
} cep_nft_cidr;

/* TCP/UDP ports lo..hi (lo == hi: one port), 1 <= lo <= hi. */
typedef struct cep_nft_ports {
	uint16_t lo, hi;
} cep_nft_ports;

/* Directions: a filter chain "out" (hook output) and/or "in" (input). */
#define CEP_NFT_OUT 1u
#define CEP_NFT_IN 2u

/* What happens to a matching packet while the armed element lives. */
typedef enum cep_nft_action {
	CEP_NFT_DROP = 1,     /* percent (1..100) of them, at random */
	CEP_NFT_REJECT,       /* TCP: reset; else ICMP admin-prohibited */
	CEP_NFT_POLICE,       /* over rate bytes/s (+ burst bytes): dropped */
	CEP_NFT_QUEUE,        /* NFQUEUE qnum, bypass (cep_nft_queue_rules) */
	CEP_NFT_DNS_REDIRECT, /* IPv4 TCP/UDP to port 53 -> 127.0.0.1:port, in
	                       * a nat chain "dns" on output; OUT only, no
	                       * cidrs, ports or lifeline */
} cep_nft_action;

typedef struct cep_nft_spec {
	char table[CEP_NFT_TABLE_MAX]; /* cep_nft_table_name */
	int64_t armed_ms;              /* 1..CEP_NFT_ARMED_MAX_MS */
	unsigned dirs;                 /* CEP_NFT_OUT | CEP_NFT_IN, not 0 */
	/* Only traffic to (out) or from (in) these peers; none: all. */
	cep_nft_cidr cidrs[CEP_NFT_CIDRS_MAX];
	size_t ncidrs;
	/* Only TCP/UDP traffic with either port in these; none: all. */
	cep_nft_ports ports[CEP_NFT_PORTS_MAX];
	size_t nports;
	uint16_t lifeline_port; /* TCP port exempt both ways; 0: none */
	/* Packets carrying this mark pass before the action (the out chain,
	 * or the dns chain): a worker's own packets. 0: none. */
	uint32_t pass_mark;
	cep_nft_action action;
	unsigned percent;       /* DROP */
	uint64_t rate, burst;   /* POLICE: bytes/s >= 1, bytes */
	uint16_t qnum;          /* QUEUE */
	uint16_t redirect_port; /* DNS_REDIRECT: >= 1 */
} cep_nft_spec;

/* User text into the typed fields, canonical (host bits cleared):
 * "10.0.0.0/8", "fd00::1" (a full-length prefix); "53", "8000-8080".
 * The error names the text. */
int cep_nft_cidr_parse(const char *s, cep_nft_cidr *out, cep_err *err);
int cep_nft_ports_parse(const char *s, cep_nft_ports *out, cep_err *err);

/* Checks every field of s; the error names the first bad one. */
int cep_nft_spec_check(const cep_nft_spec *s, cep_err *err);

/* The nft commands cep_nft_create runs for s (checked first), into buf:
 * the table, the armed set and element, per direction a chain whose
 * first rules let pass what the filters exclude (loopback, the lifeline,
 * other families, other peers, other ports), the pass_mark rule, then the
 * action (none for QUEUE: cep_nft_queue_rules). For tests and logs. */
int cep_nft_spec_script(const cep_nft_spec *s, char *buf, size_t len,
    cep_err *err);

/* Creates s's table in the namespace in one transaction; nft's own
 * message is the error on failure. */
int cep_nft_create(int nsfd, const cep_nft_spec *s, cep_err *err);

/* QUEUE: appends to each chain of s a rule "meta mark & 0 == @armed" +
 * xtables NFQUEUE target (revision 3, queue s->qnum, bypass: packets pass
 * when no program listens, so a dead queue worker fails open). Separate
 * from cep_nft_create so that the queue's reader is there first. */
int cep_nft_queue_rules(int nsfd, const cep_nft_spec *s, cep_err *err);

/* Whether table (family inet) exists in the namespace. */
int cep_nft_table_exists(int nsfd, const char *table, bool *exists,
    cep_err *err);

/* Deletes the table; absent = OK. Succeeds only when a later lookup
 * confirms it is gone. */
int cep_nft_delete_table(int nsfd, const char *table, cep_err *err);

/* Undo record: {"netns_dev", "netns_inode", "netns_path", "table"}. */
json_t *cep_nft_undo_json(const cep_netns_id *id, const char *path,
    const char *table);

/* lib/undo/undo.c mechanism "nftables": find the namespace by identity, delete
 * the table. A namespace that is truly gone counts as clean. */
int cep_nft_undo(const char *run_id, const char *undo_json, cep_err *err);

#endif
