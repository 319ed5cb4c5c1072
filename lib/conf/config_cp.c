/*
 * config_cp.c - the controlPlane section of cep.yaml
 * (docs/configuration.md, docs/control-plane-api.md): URL, TLS material,
 * the site proxy and the allowlist, checked as strictly as the rest of the
 * file, because it decides where the appliance connects.
 */
#define _GNU_SOURCE
#include "config_int.h"

#include <stdio.h>
#include <string.h>

#include "err.h"

static bool valid_url(const char *s, const char *scheme)
{
	size_t n = strlen(scheme);
	if (strncmp(s, scheme, n) != 0 || s[n] == '\0' || s[n] == '/')
		return false;
	for (const char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '@')
			return false;
	return true;
}

static bool valid_https_url(const char *s)
{
	return s[0] == '\0' || valid_url(s, "https://");
}

static bool valid_proxy_url(const char *s)
{
	return s[0] == '\0' || valid_url(s, "http://") ||
	    valid_url(s, "https://");
}

/* A file path; relative ones are relative to the config folder. */
int cep_config_get_file(cep_yamlget *l, const char *dir,
    const cep_yaml_node *map, const char *key, char *dst, size_t dlen)
{
	static const char exp[] = "a file path";
	const cep_yaml_node *n = cep_yamldoc_get(map, key);
	if (n == NULL)
		return CEP_OK;
	const char *s = cep_yamlget_scalar(l, n, key, exp);
	if (s == NULL)
		return l->err ? l->err->code : CEP_INVALID_ARGUMENT;
	if (s[0] == '\0')
		return cep_yamlget_bad(l, n, key, "empty", exp);
	int w = s[0] == '/' ? snprintf(dst, dlen, "%s", s) :
	                      snprintf(dst, dlen, "%s/%s", dir, s);
	if (w < 0 || (size_t)w >= dlen)
		return cep_yamlget_bad(l, n, key, "too long", exp);
	return CEP_OK;
}

static bool valid_host(const char *s)
{
	return s[0] != '\0' && strlen(s) <= 255 && strpbrk(s, " \t,/@") == NULL;
}

/* A list of host names or patterns, each 1..255 bytes without blanks or
 * commas: into rules[] (allow), or with rules NULL joined with commas
 * into joined (noProxy, as CURLOPT_NOPROXY takes it). */
static int get_hosts(cep_yamlget *l, const cep_yaml_node *map, const char *key,
    size_t max, char rules[][256], size_t *n, char *joined, size_t jlen)
{
	char exp[96];
	snprintf(exp, sizeof(exp), "a list of at most %zu host names", max);
	const struct cep_yamlget_list spec = {max, valid_host, "bad host name",
	    exp};
	const cep_yaml_node *list;
	int rv = cep_yamlget_strings(l, map, key, &spec, &list);
	if (rv != CEP_OK || list == NULL)
		return rv;
	size_t off = 0;
	for (size_t i = 0; i < cep_yamldoc_len(list); i++) {
		const cep_yaml_node *it = cep_yamldoc_at(list, i);
		const char *s = cep_yamldoc_scalar(it);
		if (rules != NULL) {
			snprintf(rules[i], 256, "%s", s);
			continue;
		}
		int w = snprintf(joined + off, jlen - off, "%s%s", i ? "," : "",
		    s);
		if (w < 0 || (size_t)w >= jlen - off)
			return cep_yamlget_bad(l, it, key, "list too long",
			    exp);
		off += (size_t)w;
	}
	if (n != NULL)
		*n = cep_yamldoc_len(list);
	return CEP_OK;
}

int cep_config_load_cp(cep_yamlget *l, const char *dir,
    const cep_yaml_node *root, cep_cp_opts *o)
{
	static const char *const ck[] = {"url", "caFile", "clientCert",
	    "clientKey", "tokenFile", "proxy", "noProxy", "allow", "timeoutMs",
	    "pollWaitMs", "spoolMiB", NULL};
	const cep_yaml_node *s;
	int mib = (int)(o->spool_max_bytes >> 20);
	int rv = cep_yamlget_section(l, root, "controlPlane", ck, &s);
	if (rv != CEP_OK || s == NULL)
		return rv;
	if ((rv = cep_yamlget_string(l, s, "url", valid_https_url,
	         "an https:// URL", o->url, sizeof(o->url))) != CEP_OK ||
	    (rv = cep_config_get_file(l, dir, s, "caFile", o->ca_file,
	         sizeof(o->ca_file))) != CEP_OK ||
	    (rv = cep_config_get_file(l, dir, s, "clientCert", o->cert_file,
	         sizeof(o->cert_file))) != CEP_OK ||
	    (rv = cep_config_get_file(l, dir, s, "clientKey", o->key_file,
	         sizeof(o->key_file))) != CEP_OK ||
	    (rv = cep_config_get_file(l, dir, s, "tokenFile", o->token_file,
	         sizeof(o->token_file))) != CEP_OK ||
	    (rv = cep_yamlget_string(l, s, "proxy", valid_proxy_url,
	         "an http:// or https:// URL such as http://proxy:3128",
	         o->proxy, sizeof(o->proxy))) != CEP_OK ||
	    (rv = get_hosts(l, s, "noProxy", 64, NULL, NULL, o->no_proxy,
	         sizeof(o->no_proxy))) != CEP_OK ||
	    (rv = get_hosts(l, s, "allow", CEP_CP_MAX_ALLOW, o->allow,
	         &o->n_allow, NULL, 0)) != CEP_OK ||
	    (rv = cep_yamlget_int(l, s, "timeoutMs", 100, 600000,
	         &o->timeout_ms)) != CEP_OK ||
	    (rv = cep_yamlget_int(l, s, "pollWaitMs", 0, 300000,
	         &o->poll_wait_ms)) != CEP_OK ||
	    (rv = cep_yamlget_int(l, s, "spoolMiB", 1, 1048576, &mib)) !=
	        CEP_OK)
		return rv;
	o->spool_max_bytes = (int64_t)mib << 20;
	if ((o->cert_file[0] != '\0') != (o->key_file[0] != '\0'))
		return cep_yamldoc_error(l->err, l->doc, s,
		    "controlPlane: "
		    "clientCert and clientKey go together");
	if (o->cert_file[0] != '\0' && o->token_file[0] != '\0')
		return cep_yamldoc_error(l->err, l->doc, s,
		    "controlPlane: "
		    "tokenFile and clientCert exclude each other (one "
		    "identity per appliance)");
	return CEP_OK;
}
