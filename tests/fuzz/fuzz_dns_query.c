/* fuzz_dns_query.c - libFuzzer target: what the dns-error responder
 * (runner/fault_net_dns.c) reads from a client of the target namespace:
 * a DNS message, parsed with libresolv for its one question
 * (runner_net_dns_query_name). Invariants: a query is accepted only as a
 * one-question query (QR clear, QDCOUNT 1) whose question ends inside the
 * message; the name is text (no control characters, escaped by
 * libresolv) and shorter than its buffer; and one that fits round-trips:
 * a query made for that name (res_mkquery) is read back as the same
 * name. */
#define _GNU_SOURCE
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "fault_net_int.h"

static void trap_unless(int ok)
{
	if (!ok)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[256];
	size_t qend = 0;
	if (size > 4096) /* the responder reads at most 4096 bytes */
		return 0;
	if (!runner_net_dns_query_name(data, size, name, sizeof(name), &qend))
		return 0;
	trap_unless(size >= HFIXEDSZ && (data[2] & 0x80) == 0);
	trap_unless(data[4] == 0 && data[5] == 1);
	trap_unless(qend >= HFIXEDSZ + 1 + QFIXEDSZ && qend <= size);
	size_t n = strlen(name);
	trap_unless(n < sizeof(name));
	for (size_t i = 0; i < n; i++)
		trap_unless((unsigned char)name[i] > 0x20 &&
		    (unsigned char)name[i] < 0x7f);

	/* a name longer than the buffer as text (escaped bytes count four) is
	 * refused above, never cut (docs/testing.md, "Findings") */
	unsigned char q[512];
	int ql = res_mkquery(ns_o_query, name, ns_c_in, ns_t_a, NULL, 0, NULL,
	    q, sizeof(q));
	if (ql < 0) /* a name libresolv prints but will not encode (> 255) */
		return 0;
	char again[256];
	size_t qend2 = 0;
	trap_unless(runner_net_dns_query_name(q, (size_t)ql, again,
	    sizeof(again), &qend2));
	trap_unless(strcasecmp(name, again) == 0 && qend2 == (size_t)ql);
	return 0;
}
