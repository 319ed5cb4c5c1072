/*
 * litmus_val.c - Litmus values that are more than a number: tc rates and
 * sizes (pod-network-rate-limit) and TARGET_HOSTNAMES, a JSON list inside
 * a string (pod-dns-error), read through the one YAML loader (a JSON flow
 * list is YAML).
 */
#define _GNU_SOURCE
#include "litmus_int.h"

#include <stdio.h>
#include <string.h>

/* "123unit" -> 123 and "unit"; false without a leading number. */
static bool split_unit(const char *s, long long *num, const char **unit)
{
	long long x = 0;
	const char *p = s;
	if (s == NULL || *p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (x > 1000000000000LL)
			return false;
		x = x * 10 + (*p - '0');
	}
	*num = x;
	*unit = p;
	return true;
}

struct unit {
	const char *name;
	long long mul; /* bits per second, or bytes */
};

static bool scaled(const char *s, const struct unit *units, long long div,
    long long *out)
{
	long long x;
	const char *u;
	if (!split_unit(s, &x, &u))
		return false;
	for (size_t i = 0; units[i].name != NULL; i++) {
		if (strcmp(units[i].name, u) != 0)
			continue;
		if (x > 4000000000000000000LL / units[i].mul)
			return false;
		*out = (x * units[i].mul + div - 1) / div; /* rounded up */
		return true;
	}
	return false;
}

/* tc(8) rates: bit and bps families, SI multiples. */
bool cep_litmus_tc_rate(const char *s, long long *kbps)
{
	static const struct unit units[] = {{"", 1}, {"bit", 1}, {"kbit", 1000},
	    {"mbit", 1000000}, {"gbit", 1000000000}, {"bps", 8}, {"kbps", 8000},
	    {"mbps", 8000000}, {"gbps", 8000000000LL}, {NULL, 0}};
	return scaled(s, units, 1000, kbps);
}

/* tc(8) sizes: bytes, k/kb, m/mb, g/gb (binary), and kbit, mbit. */
bool cep_litmus_tc_size(const char *s, long long *kib)
{
	static const struct unit units[] = {{"", 1}, {"b", 1}, {"k", 1024},
	    {"kb", 1024}, {"m", 1048576}, {"mb", 1048576}, {"g", 1073741824LL},
	    {"gb", 1073741824LL}, {"kbit", 128}, {"mbit", 131072}, {NULL, 0}};
	return scaled(s, units, 1024, kib);
}

static bool valid_hostname(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		        (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		        ch == '_'))
			return false;
	}
	return true;
}

void cep_litmus_hostnames(struct lit_ctx *c, const cep_yaml_node *n,
    const char *s, struct lit_item *it)
{
	cep_yaml_doc *doc = NULL;
	cep_err err;
	const char *bad = NULL;
	char b[80];
	if (cep_yamldoc_parse(s, strlen(s), "TARGET_HOSTNAMES", &doc, &err) !=
	    CEP_OK) {
		bad = "not a list";
	} else {
		const cep_yaml_node *list = cep_yamldoc_root(doc);
		size_t len = cep_yamldoc_len(list);
		if (cep_yamldoc_kind(list) != CEP_YAML_SEQ || len == 0 ||
		    len > 64)
			bad = "not a list of 1..64 names";
		for (size_t i = 0; bad == NULL && i < len; i++) {
			const char *name = cep_yamldoc_scalar(
			    cep_yamldoc_at(list, i));
			if (name == NULL || !valid_hostname(name))
				bad = "a name is not a host name";
			else
				cep_litmus_add_item(c, it, "names", name);
		}
	}
	cep_yamldoc_free(doc);
	if (bad != NULL)
		cep_exp_val_diag(c->v, n, "env TARGET_HOSTNAMES",
		    "\"%s\": %s, expected a JSON list of host names such as "
		    "'[\"db.shop.svc\", \"example.com\"]'",
		    cep_exp_val_shown(s, b, sizeof(b)), bad);
}
