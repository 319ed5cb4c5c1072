/* test_pki.c - the appliance CA, issuing, verification, proofs, and the
 * certificates in a real mutual-TLS nng connection. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/x509_crt.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/supplemental/tls/tls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pki.h"
#include "keyfix.h"
#include "testutil.h"
#include "clock.h"
#include "run_id.h"
#include "util.h"

#define HOUR_MS (3600 * 1000LL)

static char *dir;
static cep_pki_ca *ca;

static void setup(void)
{
	cep_err err;
	dir = cep_test_tmpdir("pki");
	char ca_dir[512];
	snprintf(ca_dir, sizeof(ca_dir), "%s/ca", dir);
	cr_assert_eq(cep_pki_ca_create(ca_dir, "app1", &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(cep_pki_ca_load(&ca, ca_dir, &err), CEP_OK, "%s", err.msg);
}

static void teardown(void)
{
	cep_pki_ca_free(ca);
	ca = NULL;
	cep_test_rmdir(dir);
	dir = NULL;
}

/* A second, unrelated CA under dir/<name>. */
static cep_pki_ca *other_ca(const char *name)
{
	cep_err err;
	char d[512];
	cep_pki_ca *o = NULL;
	snprintf(d, sizeof(d), "%s/%s", dir, name);
	cr_assert_eq(cep_pki_ca_create(d, "other", &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(cep_pki_ca_load(&o, d, &err), CEP_OK, "%s", err.msg);
	return o;
}

static void issue(cep_pki_ca *c, const cep_pki_issue_req *req, char **crt,
    char **key)
{
	cep_err err;
	cr_assert_eq(cep_pki_issue(c, req, crt, key, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert(strstr(*crt, "BEGIN CERTIFICATE") != NULL);
	cr_assert(strstr(*key, "PRIVATE KEY") != NULL);
}

static void to_der(const char *pem, uint8_t **der, size_t *len)
{
	cep_err err;
	cr_assert_eq(cep_pki_cert_der(pem, der, len, &err), CEP_OK, "%s",
	    err.msg);
}

static void runner_identity(cep_pki_ca *c, cep_run_id *rid, int64_t nb,
    int64_t na, char **crt, char **key)
{
	char uri[256];
	cep_err err;
	cep_run_id_new(rid);
	cr_assert_eq(cep_pki_identity_uri(uri, sizeof(uri), "app1", "local",
	                 "host", rid->s, &err),
	    CEP_OK, "%s", err.msg);
	cep_pki_issue_req req = {.cn = rid->s,
	    .uri_san = uri,
	    .not_before_ms = nb,
	    .not_after_ms = na,
	    .server = 0};
	issue(c, &req, crt, key);
}

Test(pki, ca_create_load, .init = setup, .fini = teardown)
{
	cep_err err;
	char p[512];
	struct stat st;
	snprintf(p, sizeof(p), "%s/ca/ca.key", dir);
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	snprintf(p, sizeof(p), "%s/ca", dir);
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0700);
	cr_assert_eq(cep_pki_ca_create(p, "app1", &err), CEP_ALREADY_EXISTS);
	cr_assert(strstr(err.msg, p) != NULL, "%s", err.msg);
	cr_assert_eq(cep_pki_ca_create(p, "bad/name", &err),
	    CEP_INVALID_ARGUMENT);

	/* what the CA certificate really says, read back by mbedTLS */
	mbedtls_x509_crt c;
	mbedtls_x509_crt_init(&c);
	const char *pem = cep_pki_ca_cert_pem(ca);
	cr_assert_eq(mbedtls_x509_crt_parse(&c, (const unsigned char *)pem,
	                 strlen(pem) + 1),
	    0);
	cr_assert_eq(c.ca_istrue, 1);
	cr_assert_eq(c.max_pathlen, 1); /* mbedTLS stores pathlen + 1 */
	cr_assert_eq(c.key_usage,
	    MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN);
	cr_assert_eq(c.serial.len, 16);
	cr_assert_lt(c.serial.p[0], 0x80);
	cr_assert_eq(c.sig_md, MBEDTLS_MD_SHA256);
	cr_assert_eq(mbedtls_pk_get_type(&c.pk), MBEDTLS_PK_ECKEY);
	cr_assert_eq(mbedtls_pk_get_bitlen(&c.pk), 256);
	cr_assert_geq(c.valid_to.year - c.valid_from.year, 10);
	char dn[256];
	mbedtls_x509_dn_gets(dn, sizeof(dn), &c.subject);
	cr_assert_str_eq(dn, "CN=cep appliance CA app1");
	mbedtls_x509_crt_free(&c);
}

Test(pki, load_refuses_open_key_mode, .init = setup, .fini = teardown)
{
	cep_err err;
	char p[600], d[512];
	cep_pki_ca *c = NULL;
	snprintf(d, sizeof(d), "%s/ca", dir);
	snprintf(p, sizeof(p), "%s/ca.key", d);
	cr_assert_eq(chmod(p, 0644), 0);
	cr_assert_eq(cep_pki_ca_load(&c, d, &err), CEP_PERMISSION_DENIED);
	cr_assert_null(c);
	cr_assert(strstr(err.msg, p) != NULL, "%s", err.msg);
	cr_assert(strstr(err.msg, "0644") != NULL, "%s", err.msg);
	cr_assert_eq(chmod(p, 0640), 0);
	cr_assert_eq(cep_pki_ca_load(&c, d, &err), CEP_PERMISSION_DENIED);
	cr_assert_eq(chmod(p, 0600), 0);
	cr_assert_eq(cep_pki_ca_load(&c, d, &err), CEP_OK, "%s", err.msg);
	cep_pki_ca_free(c);
}

Test(pki, load_refuses_key_of_another_ca, .init = setup, .fini = teardown)
{
	cep_err err;
	cep_pki_ca_free(other_ca("b"));
	char from[512], to[512], d[512];
	snprintf(from, sizeof(from), "%s/b/ca.key", dir);
	snprintf(to, sizeof(to), "%s/ca/ca.key", dir);
	snprintf(d, sizeof(d), "%s/ca", dir);
	cr_assert_eq(rename(from, to), 0);
	cep_pki_ca *c = NULL;
	cr_assert_eq(cep_pki_ca_load(&c, d, &err), CEP_FAILED_PRECONDITION);
	cr_assert(strstr(err.msg, "does not belong") != NULL, "%s", err.msg);
	cr_assert_null(c);
}

static int count_san(const mbedtls_x509_crt *c, int type, const void *v,
    size_t n)
{
	int hits = 0;
	for (const mbedtls_x509_sequence *s = &c->subject_alt_names; s;
	     s = s->next)
		if ((s->buf.tag & 0x1f) == type && s->buf.len == n &&
		    memcmp(s->buf.p, v, n) == 0)
			hits++;
	return hits;
}

Test(pki, server_cert_sans_and_usage, .init = setup, .fini = teardown)
{
	const char *dns[] = {"localhost", "cep-relay", NULL};
	const char *ips[] = {"127.0.0.1", "::1", NULL};
	cep_pki_issue_req req = {.cn = "cep-relay",
	    .dns = dns,
	    .ips = ips,
	    .not_after_ms = cep_clock_now_ms() + HOUR_MS,
	    .server = 1};
	char *crt, *key;
	issue(ca, &req, &crt, &key);

	mbedtls_x509_crt c;
	mbedtls_x509_crt_init(&c);
	cr_assert_eq(mbedtls_x509_crt_parse(&c, (const unsigned char *)crt,
	                 strlen(crt) + 1),
	    0);
	cr_assert_eq(c.ca_istrue, 0);
	cr_assert_eq(count_san(&c, 2, "localhost", 9), 1);
	cr_assert_eq(count_san(&c, 2, "cep-relay", 9), 1);
	cr_assert_eq(count_san(&c, 7, "\x7f\0\0\x01", 4), 1);
	cr_assert_eq(count_san(&c, 7, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16),
	    1);
	cr_assert_eq(mbedtls_x509_crt_check_key_usage(&c,
	                 MBEDTLS_X509_KU_DIGITAL_SIGNATURE),
	    0);
	cr_assert_neq(mbedtls_x509_crt_check_key_usage(&c,
	                  MBEDTLS_X509_KU_KEY_CERT_SIGN),
	    0);
	cr_assert_eq(mbedtls_x509_crt_check_extended_key_usage(&c,
	                 MBEDTLS_OID_SERVER_AUTH,
	                 MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)),
	    0);
	cr_assert_neq(mbedtls_x509_crt_check_extended_key_usage(&c,
	                  MBEDTLS_OID_CLIENT_AUTH,
	                  MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)),
	    0);
	/* notBefore defaults to five minutes back */
	struct tm tm = {.tm_year = c.valid_from.year - 1900,
	    .tm_mon = c.valid_from.mon - 1,
	    .tm_mday = c.valid_from.day,
	    .tm_hour = c.valid_from.hour,
	    .tm_min = c.valid_from.min,
	    .tm_sec = c.valid_from.sec};
	int64_t nb = (int64_t)timegm(&tm) * 1000,
	        skew = cep_clock_now_ms() - nb;
	cr_assert(skew >= 299000 && skew <= 310000, "skew %lld",
	    (long long)skew);
	mbedtls_x509_crt_free(&c);

	uint8_t *der;
	size_t n;
	cep_pki_identity id;
	cep_err err;
	to_der(crt, &der, &n);
	cr_assert_eq(cep_pki_verify_der(cep_pki_ca_cert_pem(ca), der, n, 0, &id,
	                 &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_str_eq(id.cn, "cep-relay");
	cr_assert_str_eq(id.uri, "");
	cr_assert_str_eq(id.run_id.s, "");
	free(der);
	free(crt);
	cep_pki_free_secret(key);

	const char *bad_ip[] = {"300.1.1.1", NULL};
	req.ips = bad_ip;
	cr_assert_eq(cep_pki_issue(ca, &req, &crt, &key, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_null(crt);
	cr_assert_null(key);
}

Test(pki, client_identity_verifies, .init = setup, .fini = teardown)
{
	int64_t now = cep_clock_now_ms(), na = now + HOUR_MS;
	cep_run_id rid;
	char *crt, *key;
	runner_identity(ca, &rid, 0, na, &crt, &key);
	uint8_t *der;
	size_t n;
	to_der(crt, &der, &n);
	cep_pki_identity id;
	cep_err err;
	cr_assert_eq(cep_pki_verify_der(cep_pki_ca_cert_pem(ca), der, n, now,
	                 &id, &err),
	    CEP_OK, "%s", err.msg);
	char want[256];
	snprintf(want, sizeof(want), "cep://app1/local/host/%s", rid.s);
	cr_assert_str_eq(id.uri, want);
	cr_assert_str_eq(id.appliance, "app1");
	cr_assert_str_eq(id.connector, "local");
	cr_assert_str_eq(id.ns, "host");
	cr_assert_str_eq(id.run_id.s, rid.s);
	cr_assert_str_eq(id.cn, rid.s);
	cr_assert_eq(id.not_after_ms, na / 1000 * 1000);

	mbedtls_x509_crt c;
	mbedtls_x509_crt_init(&c);
	cr_assert_eq(mbedtls_x509_crt_parse_der(&c, der, n), 0);
	cr_assert_eq(mbedtls_x509_crt_check_extended_key_usage(&c,
	                 MBEDTLS_OID_CLIENT_AUTH,
	                 MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)),
	    0);
	mbedtls_x509_crt_free(&c);
	free(der);
	free(crt);
	cep_pki_free_secret(key);
}

Test(pki, validity_judged_at_now_ms, .init = setup, .fini = teardown)
{
	/* the CA is valid from now - 5 min; the leaf for one minute in it */
	int64_t now = cep_clock_now_ms(), min = 60 * 1000;
	cep_run_id rid;
	char *crt, *key;
	runner_identity(ca, &rid, now - 4 * min, now - 3 * min, &crt, &key);
	uint8_t *der;
	size_t n;
	to_der(crt, &der, &n);
	cep_err err;
	const char *ca_pem = cep_pki_ca_cert_pem(ca);
	cr_assert_eq(cep_pki_verify_der(ca_pem, der, n, now, NULL, &err),
	    CEP_UNAUTHENTICATED);
	cr_assert(strstr(err.msg, "certificate expired at 20") != NULL, "%s",
	    err.msg);
	/* within its window it is fine: mbedTLS's own clock does not decide */
	cr_assert_eq(cep_pki_verify_der(ca_pem, der, n, now - 210 * 1000, NULL,
	                 &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(cep_pki_verify_der(ca_pem, der, n, now - 270 * 1000, NULL,
	                 &err),
	    CEP_UNAUTHENTICATED);
	cr_assert(strstr(err.msg, "certificate not yet valid") != NULL, "%s",
	    err.msg);
	cr_assert(strstr(err.msg, "appliance CA") == NULL, "%s", err.msg);
	/* before the CA itself was valid */
	cr_assert_eq(cep_pki_verify_der(ca_pem, der, n, now - 10 * min, NULL,
	                 &err),
	    CEP_UNAUTHENTICATED);
	cr_assert(strstr(err.msg, "appliance CA certificate not yet valid") !=
	        NULL,
	    "%s", err.msg);
	free(der);
	free(crt);
	cep_pki_free_secret(key);
}

Test(pki, other_ca_refused, .init = setup, .fini = teardown)
{
	cep_pki_ca *o = other_ca("b");
	cep_run_id rid;
	char *crt, *key;
	runner_identity(o, &rid, 0, cep_clock_now_ms() + HOUR_MS, &crt, &key);
	uint8_t *der;
	size_t n;
	to_der(crt, &der, &n);
	cep_err err;
	cr_assert_eq(cep_pki_verify_der(cep_pki_ca_cert_pem(ca), der, n, 0,
	                 NULL, &err),
	    CEP_UNAUTHENTICATED);
	cr_assert(strstr(err.msg, "not signed by the appliance CA") != NULL,
	    "%s", err.msg);
	/* the CA certificate itself is no identity */
	uint8_t *cader;
	size_t can;
	to_der(cep_pki_ca_cert_pem(ca), &cader, &can);
	cr_assert_eq(cep_pki_verify_der(cep_pki_ca_cert_pem(ca), cader, can, 0,
	                 NULL, &err),
	    CEP_UNAUTHENTICATED);
	cr_assert(strstr(err.msg, "CA certificate") != NULL, "%s", err.msg);
	free(cader);
	free(der);
	free(crt);
	cep_pki_free_secret(key);
	cep_pki_ca_free(o);
}

Test(pki, garbage_refused, .init = setup, .fini = teardown)
{
	cep_err err;
	const char *ca_pem = cep_pki_ca_cert_pem(ca);
	uint8_t junk[300];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	cr_assert_eq(cep_pki_verify_der(ca_pem, junk, sizeof(junk), 0, NULL,
	                 &err),
	    CEP_UNAUTHENTICATED);
	cr_assert(strstr(err.msg, "not valid X.509") != NULL, "%s", err.msg);
	cr_assert_eq(cep_pki_verify_der(ca_pem, junk, 0, 0, NULL, &err),
	    CEP_UNAUTHENTICATED);
	cr_assert_eq(cep_pki_verify_der(ca_pem, NULL, 10, 0, NULL, &err),
	    CEP_UNAUTHENTICATED);

	cep_run_id rid;
	char *crt, *key;
	runner_identity(ca, &rid, 0, cep_clock_now_ms() + HOUR_MS, &crt, &key);
	uint8_t *der;
	size_t n;
	to_der(crt, &der, &n);
	cr_assert_eq(cep_pki_verify_der(ca_pem, der, n - 1, 0, NULL, &err),
	    CEP_UNAUTHENTICATED);
	uint8_t *longer = malloc(n + 1);
	memcpy(longer, der, n);
	longer[n] = 0;
	cr_assert_eq(cep_pki_verify_der(ca_pem, longer, n + 1, 0, NULL, &err),
	    CEP_UNAUTHENTICATED);
	cr_assert(strstr(err.msg, "stray") != NULL, "%s", err.msg);
	/* a flipped bit in the signed part breaks the signature */
	memcpy(longer, der, n);
	longer[n / 2] ^= 0x01;
	cr_assert_neq(cep_pki_verify_der(ca_pem, longer, n, 0, NULL, &err),
	    CEP_OK);
	free(longer);
	free(der);
	free(crt);
	cep_pki_free_secret(key);
	cr_assert_eq(cep_pki_cert_der("not a pem", &der, &n, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_null(der);
}

/* URIs our CA could be talked into signing must still be refused when
 * they do not name a run properly. */
Test(pki, bad_identity_uris, .init = setup, .fini = teardown)
{
	const char *uris[] = {
	    "https://app1/local/host/r-0123456789abcdef",
	    "cep://app1/local/host/not-a-run",
	    "cep://app1/local/../r-0123456789abcdef",
	    "cep://app1/local/host/r-0123456789abcdef/extra",
	    "cep://app1//host/r-0123456789abcdef",
	    "cep://app1/local/host",
	};
	for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
		cep_pki_issue_req req = {.cn = "x",
		    .uri_san = uris[i],
		    .not_after_ms = cep_clock_now_ms() + HOUR_MS};
		char *crt, *key;
		issue(ca, &req, &crt, &key);
		uint8_t *der;
		size_t n;
		to_der(crt, &der, &n);
		cep_err err;
		cep_pki_identity id;
		cr_assert_eq(cep_pki_verify_der(cep_pki_ca_cert_pem(ca), der, n,
		                 0, &id, &err),
		    CEP_UNAUTHENTICATED, "%s accepted", uris[i]);
		cr_assert_str_eq(id.uri, "", "identity filled on failure");
		free(der);
		free(crt);
		cep_pki_free_secret(key);
	}
	char buf[256];
	cep_err err;
	cr_assert_eq(cep_pki_identity_uri(buf, sizeof(buf), "a", "b/c", "d",
	                 "r-0123456789abcdef", &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_pki_identity_uri(buf, 20, "a", "b", "d",
	                 "r-0123456789abcdef", &err),
	    CEP_INVALID_ARGUMENT);
}

Test(pki, proof_of_possession, .init = setup, .fini = teardown)
{
	int64_t na = cep_clock_now_ms() + HOUR_MS;
	cep_run_id r1, r2;
	char *crt1, *key1, *crt2, *key2;
	runner_identity(ca, &r1, 0, na, &crt1, &key1);
	runner_identity(ca, &r2, 0, na, &crt2, &key2);
	uint8_t *der1, *der2, *sig;
	size_t n1, n2, sl;
	to_der(crt1, &der1, &n1);
	to_der(crt2, &der2, &n2);
	uint8_t nonce[32], other[32];
	cep_err err;
	cr_assert_eq(cep_util_random(nonce, sizeof(nonce), &err), CEP_OK);
	memcpy(other, nonce, sizeof(other));
	other[31] ^= 0x80;

	cr_assert_eq(cep_pki_sign_proof(key1, nonce, 32, &sig, &sl, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(cep_pki_check_proof(der1, n1, nonce, 32, sig, sl, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(cep_pki_check_proof(der2, n2, nonce, 32, sig, sl, &err),
	    CEP_UNAUTHENTICATED);
	cr_assert_eq(cep_pki_check_proof(der1, n1, other, 32, sig, sl, &err),
	    CEP_UNAUTHENTICATED);
	for (size_t i = 0; i < sl; i += 7) {
		sig[i] ^= 0x04;
		cr_assert_neq(cep_pki_check_proof(der1, n1, nonce, 32, sig, sl,
		                  &err),
		    CEP_OK, "flipped byte %zu accepted", i);
		sig[i] ^= 0x04;
	}
	cr_assert_neq(cep_pki_check_proof(der1, n1, nonce, 32, sig, sl - 1,
	                  &err),
	    CEP_OK);
	free(sig);

	/* nonce length 16..64 */
	cr_assert_eq(cep_pki_sign_proof(key1, nonce, 15, &sig, &sl, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_null(sig);
	uint8_t big[65] = {0};
	cr_assert_eq(cep_pki_sign_proof(key1, big, 65, &sig, &sl, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_pki_sign_proof(key1, big, 64, &sig, &sl, &err),
	    CEP_OK);
	cr_assert_eq(cep_pki_check_proof(der1, n1, big, 16, sig, sl, &err),
	    CEP_UNAUTHENTICATED);
	free(sig);
	cr_assert_eq(cep_pki_sign_proof("junk", nonce, 32, &sig, &sl, &err),
	    CEP_INTERNAL);

	free(der1);
	free(der2);
	free(crt1);
	free(crt2);
	cep_pki_free_secret(key1);
	cep_pki_free_secret(key2);
}

/* ---- the certificates in real mutual TLS (nng over mbedTLS) ---------- */

static nng_tls_config *tls_cfg(int server, const char *crt, const char *key,
    const char *server_name)
{
	nng_tls_config *cfg;
	cr_assert_eq(nng_tls_config_alloc(&cfg,
	                 server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT),
	    0);
	cr_assert_eq(nng_tls_config_own_cert(cfg, crt, key, NULL), 0);
	cr_assert_eq(nng_tls_config_ca_chain(cfg, cep_pki_ca_cert_pem(ca),
	                 NULL),
	    0);
	cr_assert_eq(nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED),
	    0);
	if (server_name != NULL)
		cr_assert_eq(nng_tls_config_server_name(cfg, server_name), 0);
	return cfg;
}

/* Dials url with the client identity and sends one message; returns the
 * nng error of the dial or the receive (0 when the message arrived). */
static int tls_exchange(nng_socket srv, const char *url, const char *crt,
    const char *key, const char *server_name)
{
	nng_socket cli;
	nng_dialer d;
	cr_assert_eq(nng_push0_open(&cli), 0);
	nng_tls_config *cfg = tls_cfg(0, crt, key, server_name);
	cr_assert_eq(nng_dialer_create(&d, cli, url), 0);
	cr_assert_eq(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg), 0);
	nng_tls_config_free(cfg);
	nng_socket_set_ms(cli, NNG_OPT_SENDTIMEO, 2000);
	int rv = nng_dialer_start(d, 0);
	if (rv == 0)
		rv = nng_send(cli, "ping", 5, 0);
	if (rv == 0) {
		char *buf = NULL;
		size_t n = 0;
		rv = nng_recv(srv, &buf, &n, NNG_FLAG_ALLOC);
		if (rv == 0) {
			cr_assert_eq(n, 5);
			cr_assert_str_eq(buf, "ping");
			nng_free(buf, n);
		}
	}
	nng_close(cli);
	return rv;
}

Test(pki, certs_work_in_mutual_tls, .init = setup, .fini = teardown)
{
	const char *dns[] = {"localhost", NULL};
	const char *ips[] = {"127.0.0.1", NULL};
	int64_t na = cep_clock_now_ms() + HOUR_MS;
	cep_pki_issue_req sreq = {.cn = "cep-relay",
	    .dns = dns,
	    .ips = ips,
	    .not_after_ms = na,
	    .server = 1};
	char *scrt, *skey, *ccrt, *ckey, *xcrt, *xkey;
	issue(ca, &sreq, &scrt, &skey);
	cep_run_id rid;
	runner_identity(ca, &rid, 0, na, &ccrt, &ckey);
	cep_pki_ca *o = other_ca("b");
	cep_run_id rid2;
	runner_identity(o, &rid2, 0, na, &xcrt, &xkey);

	char url[64];
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d",
	    cep_test_free_port());
	nng_socket srv;
	nng_listener l;
	cr_assert_eq(nng_pull0_open(&srv), 0);
	nng_socket_set_ms(srv, NNG_OPT_RECVTIMEO, 3000);
	nng_tls_config *scfg = tls_cfg(1, scrt, skey, NULL);
	cr_assert_eq(nng_listener_create(&l, srv, url), 0);
	cr_assert_eq(nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, scfg), 0);
	nng_tls_config_free(scfg);
	cr_assert_eq(nng_listener_start(l, 0), 0);

	/* by address (the URL's host), and by DNS name */
	cr_assert_eq(tls_exchange(srv, url, ccrt, ckey, NULL), 0);
	cr_assert_eq(tls_exchange(srv, url, ccrt, ckey, "localhost"), 0);
	cr_assert_eq(tls_exchange(srv, url, ccrt, ckey, "127.0.0.1"), 0);
	/* the client checks the server's name: it is not anyone's cert */
	cr_assert_neq(tls_exchange(srv, url, ccrt, ckey, "wrong.example"), 0);
	/* the server refuses a client from another CA */
	cr_assert_neq(tls_exchange(srv, url, xcrt, xkey, NULL), 0);
	/* a server certificate is no client certificate (EKU serverAuth) */
	cr_assert_neq(tls_exchange(srv, url, scrt, skey, NULL), 0);
	/* and the good client still works afterwards */
	cr_assert_eq(tls_exchange(srv, url, ccrt, ckey, NULL), 0);

	nng_close(srv);
	cep_pki_ca_free(o);
	free(scrt);
	free(ccrt);
	free(xcrt);
	cep_pki_free_secret(skey);
	cep_pki_free_secret(ckey);
	cep_pki_free_secret(xkey);
}

/* ---- keys made elsewhere (privsep: delegate keys, signer signs) ------- */

Test(pki, issue_pub_for_a_key_made_elsewhere, .init = setup, .fini = teardown)
{
	cep_err err;
	char *key = NULL, *crt = NULL, uri[256];
	uint8_t *pub = NULL;
	size_t plen = 0;
	cr_assert_eq(cep_pki_keypair_new(&key, &pub, &plen, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(plen, 91); /* P-256 SubjectPublicKeyInfo */
	cr_assert(strstr(key, "PRIVATE KEY") != NULL);
	cr_assert_eq(cep_pki_check_pub(pub, plen, &err), CEP_OK, "%s", err.msg);
	cep_run_id rid;
	cep_run_id_new(&rid);
	cr_assert_eq(cep_pki_identity_uri(uri, sizeof(uri), "app1", "local",
	                 "host", rid.s, &err),
	    CEP_OK);
	int64_t na = cep_clock_now_ms() + HOUR_MS;
	cep_pki_issue_req req = {.cn = rid.s,
	    .uri_san = uri,
	    .not_after_ms = na};
	cr_assert_eq(cep_pki_issue_pub(ca, &req, pub, plen, &crt, &err), CEP_OK,
	    "%s", err.msg);
	uint8_t *der;
	size_t dlen;
	to_der(crt, &der, &dlen);
	cep_pki_identity id;
	cr_assert_eq(cep_pki_verify_der(cep_pki_ca_cert_pem(ca), der, dlen, 0,
	                 &id, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_str_eq(id.uri, uri);
	cr_assert_str_eq(id.cn, rid.s);
	cr_assert_str_eq(id.run_id.s, rid.s);
	cr_assert_eq(id.not_after_ms / 1000, na / 1000);
	/* the certificate is for the key made here: its proof checks */
	uint8_t nonce[32] = {1, 2, 3}, *sig = NULL;
	size_t slen = 0;
	cr_assert_eq(cep_pki_sign_proof(key, nonce, sizeof(nonce), &sig, &slen,
	                 &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(cep_pki_check_proof(der, dlen, nonce, sizeof(nonce), sig,
	                 slen, &err),
	    CEP_OK, "%s", err.msg);
	free(sig);
	free(der);
	free(crt);
	free(pub);
	cep_pki_free_secret(key);
}

Test(pki, issue_pub_refuses_other_keys, .init = setup, .fini = teardown)
{
	cep_err err;
	uint8_t buf[1024], *pub = NULL;
	size_t n, plen = 0;
	char *key = NULL, *crt = (char *)"untouched";
	cep_pki_issue_req req = {.cn = "x",
	    .not_after_ms = cep_clock_now_ms() + HOUR_MS};

	n = cep_test_foreign_pub(MBEDTLS_PK_RSA, 0, buf, sizeof(buf));
	cr_assert_eq(cep_pki_issue_pub(ca, &req, buf, n, &crt, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_null(crt);
	cr_assert(strstr(err.msg, "RSA") != NULL, "%s", err.msg);
	n = cep_test_foreign_pub(MBEDTLS_PK_ECKEY, MBEDTLS_ECP_DP_SECP384R1,
	    buf, sizeof(buf));
	cr_assert_eq(cep_pki_check_pub(buf, n, &err), CEP_INVALID_ARGUMENT);
	cr_assert(strstr(err.msg, "secp384r1") != NULL, "%s", err.msg);

	cr_assert_eq(cep_pki_keypair_new(&key, &pub, &plen, &err), CEP_OK);
	/* trailing bytes, truncation, a flipped point, nothing, too much */
	memcpy(buf, pub, plen);
	buf[plen] = 0;
	cr_assert_eq(cep_pki_check_pub(buf, plen + 1, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_pki_check_pub(buf, plen - 1, &err),
	    CEP_INVALID_ARGUMENT);
	buf[plen - 1] ^= 0x01; /* y no longer on the curve */
	cr_assert_eq(cep_pki_check_pub(buf, plen, &err), CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_pki_check_pub(NULL, 0, &err), CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_pki_check_pub(buf, CEP_PKI_PUBKEY_MAX + 1, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert(strstr(err.msg, "bytes") != NULL, "%s", err.msg);
	memset(buf, 0xff, 200);
	cr_assert_eq(cep_pki_check_pub(buf, 200, &err), CEP_INVALID_ARGUMENT);
	free(pub);
	cep_pki_free_secret(key);
}

Test(pki, fingerprint_names_the_ca, .init = setup, .fini = teardown)
{
	cep_err err;
	char a[128], b[128];
	cr_assert_eq(cep_pki_fingerprint(cep_pki_ca_cert_pem(ca), a, sizeof(a),
	                 &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(strlen(a), 95);
	cep_pki_ca *o = other_ca("fp");
	cr_assert_eq(cep_pki_fingerprint(cep_pki_ca_cert_pem(o), b, sizeof(b),
	                 &err),
	    CEP_OK);
	cr_assert_str_neq(a, b);
	cr_assert_eq(cep_pki_fingerprint("junk", b, sizeof(b), &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_pki_fingerprint(cep_pki_ca_cert_pem(o), b, 10, &err),
	    CEP_INVALID_ARGUMENT);
	cep_pki_ca_free(o);
}
