/*
 * pki.c - the appliance CA: creating and loading it, issuing certificates,
 * and the proof-of-possession signature. Everything here that holds a
 * private key wipes it before the memory is released (mbedtls_pk_free and
 * mbedtls_ctr_drbg_free zeroize internally; our own PEM buffers are wiped
 * with mbedtls_platform_zeroize).
 *
 * Verification of what others present (certificate chain, validity, URI
 * SAN) lives in pki_verify.c, the proof-of-possession signature in
 * pki_proof.c. Nothing here parses x509 by hand: mbedTLS
 * parses, and we only *write* the two extensions mbedTLS 2.28 has no writer
 * for (extendedKeyUsage, subjectAltName) with its ASN.1 writer.
 */
#define _GNU_SOURCE
#include "pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/x509_crt.h>

#include "secret.h"
#include "clock.h"
#include "files.h"

#define SKEW_MS (5 * 60 * 1000LL)
#define CA_VALIDITY_MS (3653LL * 24 * 3600 * 1000) /* ten years */
#define CERT_PEM_MAX 16384
#define KEY_PEM_MAX 1024
#define CERT_FILE_MAX 65536
#define KEY_FILE_MAX 16384
#define SAN_DER_MAX 8192
#define NAME_LEN_MAX 63 /* appliance names: also a URI path segment */
#define CN_LEN_MAX 64   /* RFC 5280 ub-common-name */
#define DNS_LEN_MAX 253
#define URI_LEN_MAX 255 /* fits cep_pki_identity.uri */

struct cep_pki_ca {
	mbedtls_x509_crt crt;
	mbedtls_pk_context key;
	char *cert_pem;
	char issuer[512];   /* the CA's subject, as the x509 writer takes it */
	pthread_mutex_t mu; /* one signer at a time on the CA key */
};

/* ---- randomness and keys ---------------------------------------------- */

/* A DRBG per operation: no shared state between threads, seeded from the
 * kernel each time; seeding costs microseconds next to an ECDSA keygen. */
typedef struct pki_rng {
	mbedtls_entropy_context ent;
	mbedtls_ctr_drbg_context drbg;
} pki_rng;

static void rng_free(pki_rng *r)
{
	mbedtls_ctr_drbg_free(&r->drbg);
	mbedtls_entropy_free(&r->ent);
}

static int rng_init(pki_rng *r, cep_err *err)
{
	static const char pers[] = "cep-pki";
	mbedtls_entropy_init(&r->ent);
	mbedtls_ctr_drbg_init(&r->drbg);
	int rv = mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->ent,
	    (const unsigned char *)pers, sizeof(pers) - 1);
	if (rv != 0) {
		rng_free(r);
		return cep_pki_err_mbedtls(err, rv,
		    "seeding the random generator");
	}
	return CEP_OK;
}

static int gen_key(mbedtls_pk_context *key, pki_rng *r, cep_err *err)
{
	int rv = mbedtls_pk_setup(key,
	    mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
	if (rv == 0)
		rv = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1,
		    mbedtls_pk_ec(*key), mbedtls_ctr_drbg_random, &r->drbg);
	if (rv != 0)
		return cep_pki_err_mbedtls(err, rv, "generating a P-256 key");
	return CEP_OK;
}

/* PEM of key into a fresh heap string; the stack copy is wiped. */
static int key_to_pem(mbedtls_pk_context *key, char **out, cep_err *err)
{
	unsigned char buf[KEY_PEM_MAX];
	int rv = mbedtls_pk_write_key_pem(key, buf, sizeof(buf));
	if (rv != 0) {
		mbedtls_platform_zeroize(buf, sizeof(buf));
		return cep_pki_err_mbedtls(err, rv, "encoding the private key");
	}
	*out = strdup((const char *)buf);
	mbedtls_platform_zeroize(buf, sizeof(buf));
	if (*out == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	return CEP_OK;
}

void cep_pki_free_secret(char *s)
{
	if (s == NULL)
		return;
	mbedtls_platform_zeroize(s, strlen(s));
	free(s);
}

/* ---- input checks ------------------------------------------------------ */

/* Names that end up in a URI path segment and a DN: a conservative set. */
static bool name_ok(const char *s, size_t max)
{
	if (s == NULL || s[0] == '\0' || strnlen(s, max + 1) > max)
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
		if (!ok)
			return false;
	}
	return true;
}

/* A CN goes through mbedTLS's "CN=..." string parser, so the characters
 * that parser treats as syntax are refused rather than escaped. */
static bool cn_ok(const char *s)
{
	if (s == NULL || s[0] == '\0' ||
	    strnlen(s, CN_LEN_MAX + 1) > CN_LEN_MAX)
		return false;
	for (const char *p = s; *p; p++)
		if (*p < 0x20 || *p > 0x7e || strchr(",=+\\\"<>;#", *p) != NULL)
			return false;
	return true;
}

static bool uri_ok(const char *s)
{
	if (s[0] == '\0' || strnlen(s, URI_LEN_MAX + 1) > URI_LEN_MAX)
		return false;
	for (const char *p = s; *p; p++)
		if (*p <= 0x20 || *p > 0x7e)
			return false;
	return true;
}

/* "YYYYMMDDhhmmss" in UTC, the form mbedtls_x509write_crt_set_validity takes. */
static int fmt_validity(char *out, size_t len, int64_t ms, cep_err *err)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (ms < 0 || gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "certificate time %lld ms is out of range", (long long)ms);
	snprintf(out, len, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return CEP_OK;
}

/* ---- certificate writing ----------------------------------------------- */

typedef struct cert_spec {
	const char *subject; /* "CN=..." */
	const char *issuer;
	mbedtls_pk_context *subject_key;
	mbedtls_pk_context *issuer_key;
	int64_t not_before_ms, not_after_ms;
} cert_spec;

/* 16 random bytes, top bit clear (positive INTEGER) and the next one set
 * so the serial keeps its full length. */
static int set_serial(mbedtls_x509write_cert *w, pki_rng *r)
{
	unsigned char b[16];
	mbedtls_mpi s;
	mbedtls_mpi_init(&s);
	int rv = mbedtls_ctr_drbg_random(&r->drbg, b, sizeof(b));
	b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
	if (rv == 0)
		rv = mbedtls_mpi_read_binary(&s, b, sizeof(b));
	if (rv == 0)
		rv = mbedtls_x509write_crt_set_serial(w, &s);
	mbedtls_mpi_free(&s);
	return rv;
}

/* What every certificate we write has in common. */
static int cert_begin(mbedtls_x509write_cert *w, const cert_spec *s, pki_rng *r,
    cep_err *err)
{
	char nb[32], na[32];
	if (fmt_validity(nb, sizeof(nb), s->not_before_ms, err) != 0 ||
	    fmt_validity(na, sizeof(na), s->not_after_ms, err) != 0)
		return err ? err->code : CEP_INVALID_ARGUMENT;
	mbedtls_x509write_crt_set_version(w, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(w, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(w, s->subject_key);
	mbedtls_x509write_crt_set_issuer_key(w, s->issuer_key);
	int rv = mbedtls_x509write_crt_set_subject_name(w, s->subject);
	if (rv != 0)
		return cep_pki_err_mbedtls(err, rv, "setting the subject name");
	if ((rv = mbedtls_x509write_crt_set_issuer_name(w, s->issuer)) != 0)
		return cep_pki_err_mbedtls(err, rv, "setting the issuer name");
	if ((rv = set_serial(w, r)) != 0)
		return cep_pki_err_mbedtls(err, rv,
		    "setting the serial number");
	if ((rv = mbedtls_x509write_crt_set_validity(w, nb, na)) != 0)
		return cep_pki_err_mbedtls(err, rv,
		    "setting the validity period");
	if ((rv = mbedtls_x509write_crt_set_subject_key_identifier(w)) != 0 ||
	    (rv = mbedtls_x509write_crt_set_authority_key_identifier(w)) != 0)
		return cep_pki_err_mbedtls(err, rv,
		    "setting the key identifiers");
	return CEP_OK;
}

static int cert_finish(mbedtls_x509write_cert *w, pki_rng *r, char **pem,
    cep_err *err)
{
	unsigned char *buf = malloc(CERT_PEM_MAX);
	if (buf == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	int rv = mbedtls_x509write_crt_pem(w, buf, CERT_PEM_MAX,
	    mbedtls_ctr_drbg_random, &r->drbg);
	if (rv != 0) {
		free(buf);
		return cep_pki_err_mbedtls(err, rv, "signing the certificate");
	}
	*pem = strdup((const char *)buf);
	free(buf);
	if (*pem == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	return CEP_OK;
}

/* extendedKeyUsage ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId */
static int set_eku(mbedtls_x509write_cert *w, int server)
{
	unsigned char buf[32];
	unsigned char *p = buf + sizeof(buf);
	size_t len = 0;
	int ret;
	if (server)
		MBEDTLS_ASN1_CHK_ADD(len,
		    mbedtls_asn1_write_oid(&p, buf, MBEDTLS_OID_SERVER_AUTH,
		        MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)));
	else
		MBEDTLS_ASN1_CHK_ADD(len,
		    mbedtls_asn1_write_oid(&p, buf, MBEDTLS_OID_CLIENT_AUTH,
		        MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)));
	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(&p, buf, len));
	MBEDTLS_ASN1_CHK_ADD(len,
	    mbedtls_asn1_write_tag(&p, buf,
	        MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
	return mbedtls_x509write_crt_set_extension(w,
	    MBEDTLS_OID_EXTENDED_KEY_USAGE,
	    MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE), 0, p, len);
}

/* One GeneralName, [tag] IMPLICIT, written backwards as asn1write does. */
static int san_put(unsigned char **p, unsigned char *start, int tag,
    const void *data, size_t n)
{
	size_t len = 0;
	int ret;
	MBEDTLS_ASN1_CHK_ADD(len,
	    mbedtls_asn1_write_raw_buffer(p, start, data, n));
	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(p, start, n));
	MBEDTLS_ASN1_CHK_ADD(len,
	    mbedtls_asn1_write_tag(p, start,
	        MBEDTLS_ASN1_CONTEXT_SPECIFIC | tag));
	return (int)len;
}

static size_t list_len(const char *const *l)
{
	size_t n = 0;
	while (l != NULL && l[n] != NULL)
		n++;
	return n;
}

/* iPAddress entries, last first. mbedTLS 2.28's hostname check matches
 * only dNSName entries, so each address is also written as a dNSName in
 * its text form: a TLS client that dials "127.0.0.1" then verifies. */
static int san_put_ips(unsigned char **p, unsigned char *start,
    const char *const *ips, size_t *len, cep_err *err)
{
	for (size_t i = list_len(ips); i-- > 0;) {
		unsigned char a[16];
		size_t an = 4;
		if (inet_pton(AF_INET, ips[i], a) != 1) {
			an = 16;
			if (inet_pton(AF_INET6, ips[i], a) != 1)
				return cep_err_set(err, CEP_INVALID_ARGUMENT,
				    "SAN IP \"%.64s\" is not an IPv4 or IPv6 address",
				    ips[i]);
		}
		int n = san_put(p, start, 7, a, an);
		if (n < 0)
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "too many SANs");
		*len += (size_t)n;
		n = san_put(p, start, 2, ips[i], strlen(ips[i]));
		if (n < 0)
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "too many SANs");
		*len += (size_t)n;
	}
	return CEP_OK;
}

static int san_put_dns(unsigned char **p, unsigned char *start,
    const char *const *dns, size_t *len, cep_err *err)
{
	for (size_t i = list_len(dns); i-- > 0;) {
		if (!name_ok(dns[i], DNS_LEN_MAX))
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "SAN DNS name \"%.64s\" is not a host name",
			    dns[i]);
		int n = san_put(p, start, 2, dns[i], strlen(dns[i]));
		if (n < 0)
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "too many SANs");
		*len += (size_t)n;
	}
	return CEP_OK;
}

/* subjectAltName ::= GeneralNames ::= SEQUENCE OF GeneralName, in the
 * order URI, DNS names, addresses. */
static int set_san(mbedtls_x509write_cert *w, const cep_pki_issue_req *req,
    cep_err *err)
{
	if (req->uri_san == NULL && list_len(req->dns) == 0 &&
	    list_len(req->ips) == 0)
		return CEP_OK;
	unsigned char *buf = malloc(SAN_DER_MAX);
	if (buf == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	unsigned char *p = buf + SAN_DER_MAX;
	size_t len = 0;
	int rv = san_put_ips(&p, buf, req->ips, &len, err);
	if (rv == 0)
		rv = san_put_dns(&p, buf, req->dns, &len, err);
	if (rv == 0 && req->uri_san != NULL) {
		int n = san_put(&p, buf, 6, req->uri_san, strlen(req->uri_san));
		rv = n < 0 ?
		    cep_err_set(err, CEP_INVALID_ARGUMENT, "too many SANs") :
		    (len += (size_t)n, 0);
	}
	int n1 = rv == 0 ? mbedtls_asn1_write_len(&p, buf, len) : 0;
	int n2 = rv == 0 && n1 >= 0 ?
	    mbedtls_asn1_write_tag(&p, buf,
	        MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) :
	    0;
	if (rv == 0 && (n1 < 0 || n2 < 0))
		rv = cep_err_set(err, CEP_INVALID_ARGUMENT, "too many SANs");
	if (rv == 0) {
		int m = mbedtls_x509write_crt_set_extension(w,
		    MBEDTLS_OID_SUBJECT_ALT_NAME,
		    MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0, p,
		    len + (size_t)n1 + (size_t)n2);
		if (m != 0)
			rv = cep_pki_err_mbedtls(err, m,
			    "adding subjectAltName");
	}
	free(buf);
	return rv;
}

/* ---- the CA ------------------------------------------------------------ */

static int ca_paths(const char *dir, char *key, char *crt, size_t len,
    cep_err *err)
{
	if (cep_files_path(key, len, err, "%s/ca.key", dir) != 0 ||
	    cep_files_path(crt, len, err, "%s/ca.crt", dir) != 0)
		return err ? err->code : CEP_INVALID_ARGUMENT;
	return CEP_OK;
}

static int ca_build(const char *appliance, int64_t now, pki_rng *r,
    mbedtls_pk_context *key, char **crt_pem, cep_err *err)
{
	char subject[128];
	snprintf(subject, sizeof(subject), "CN=cep appliance CA %s", appliance);
	cert_spec s = {
	    .subject = subject,
	    .issuer = subject,
	    .subject_key = key,
	    .issuer_key = key,
	    .not_before_ms = now - SKEW_MS,
	    .not_after_ms = now + CA_VALIDITY_MS,
	};
	mbedtls_x509write_cert w;
	mbedtls_x509write_crt_init(&w);
	int rv = cert_begin(&w, &s, r, err);
	if (rv == 0) {
		int m = mbedtls_x509write_crt_set_basic_constraints(&w, 1, 0);
		if (m == 0)
			m = mbedtls_x509write_crt_set_key_usage(&w,
			    MBEDTLS_X509_KU_KEY_CERT_SIGN |
			        MBEDTLS_X509_KU_CRL_SIGN);
		if (m != 0)
			rv = cep_pki_err_mbedtls(err, m,
			    "setting CA extensions");
	}
	if (rv == 0)
		rv = cert_finish(&w, r, crt_pem, err);
	mbedtls_x509write_crt_free(&w);
	return rv;
}

static int ca_write(const char *keyp, const char *crtp, const char *key_pem,
    const char *crt_pem, cep_err *err)
{
	int rv = cep_files_write(keyp, key_pem, strlen(key_pem), 0600, err);
	if (rv != 0)
		return rv;
	rv = cep_files_write(crtp, crt_pem, strlen(crt_pem), 0644, err);
	if (rv != 0)
		unlink(keyp); /* no half a CA: let a retry start clean */
	return rv;
}

int cep_pki_ca_create(const char *dir, const char *appliance, cep_err *err)
{
	char keyp[4096], crtp[4096];
	if (!name_ok(appliance, NAME_LEN_MAX))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "appliance name must be 1-%d of [A-Za-z0-9._-]",
		    NAME_LEN_MAX);
	if (ca_paths(dir, keyp, crtp, sizeof(keyp), err) != 0)
		return err ? err->code : CEP_INVALID_ARGUMENT;
	if (access(keyp, F_OK) == 0 || access(crtp, F_OK) == 0)
		return cep_err_set(err, CEP_ALREADY_EXISTS,
		    "%s already holds a CA (ca.key or ca.crt exists)", dir);
	int rv = cep_files_mkdirs(dir, 0700, err);
	if (rv != 0)
		return rv;
	pki_rng r;
	if ((rv = rng_init(&r, err)) != 0)
		return rv;
	mbedtls_pk_context key;
	mbedtls_pk_init(&key);
	char *crt_pem = NULL, *key_pem = NULL;
	rv = gen_key(&key, &r, err);
	if (rv == 0)
		rv = ca_build(appliance, cep_clock_now_ms(), &r, &key, &crt_pem,
		    err);
	if (rv == 0)
		rv = key_to_pem(&key, &key_pem, err);
	if (rv == 0)
		rv = ca_write(keyp, crtp, key_pem, crt_pem, err);
	cep_pki_free_secret(key_pem);
	free(crt_pem);
	mbedtls_pk_free(&key);
	rng_free(&r);
	return rv;
}

static int ca_load_cert(cep_pki_ca *ca, const char *path, cep_err *err)
{
	size_t len;
	int rv = cep_files_read(path, CERT_FILE_MAX, &ca->cert_pem, &len, err);
	if (rv != 0)
		return rv;
	int m = mbedtls_x509_crt_parse(&ca->crt,
	    (const unsigned char *)ca->cert_pem, len + 1);
	if (m != 0) {
		cep_pki_err_mbedtls(err, m, path);
		return cep_err_wrap(err, "parsing the CA certificate");
	}
	if (!ca->crt.ca_istrue)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "%s is not a CA certificate (basicConstraints CA:false)",
		    path);
	if (mbedtls_x509_dn_gets(ca->issuer, sizeof(ca->issuer),
	        &ca->crt.subject) < 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s: subject name too long", path);
	return CEP_OK;
}

static int ca_load_key(cep_pki_ca *ca, const char *path, cep_err *err)
{
	/* no one but us may read the CA key (lib/base/secret.h) */
	static const cep_secret_opts so = {KEY_FILE_MAX, false, false,
	    "the CA key"};
	cep_secret key;
	int rv = cep_secret_read(path, &so, &key, err);
	if (rv != 0)
		return rv;
	if (key.len == 0) {
		cep_secret_free(&key);
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s: empty, expected a PEM private key", path);
	}
	int m = mbedtls_pk_parse_key(&ca->key, (const unsigned char *)key.data,
	    key.len + 1, NULL, 0);
	cep_secret_free(&key);
	if (m != 0) {
		cep_pki_err_mbedtls(err, m, path);
		return cep_err_wrap(err, "parsing the CA key");
	}
	if (mbedtls_pk_check_pair(&ca->crt.pk, &ca->key) != 0)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "%s does not belong to the CA certificate beside it", path);
	return CEP_OK;
}

int cep_pki_ca_load(cep_pki_ca **out, const char *dir, cep_err *err)
{
	char keyp[4096], crtp[4096];
	*out = NULL;
	if (ca_paths(dir, keyp, crtp, sizeof(keyp), err) != 0)
		return err ? err->code : CEP_INVALID_ARGUMENT;
	cep_pki_ca *ca = calloc(1, sizeof(*ca));
	if (ca == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	mbedtls_x509_crt_init(&ca->crt);
	mbedtls_pk_init(&ca->key);
	pthread_mutex_init(&ca->mu, NULL);
	int rv = ca_load_cert(ca, crtp, err);
	if (rv == 0)
		rv = ca_load_key(ca, keyp, err);
	if (rv != 0) {
		cep_pki_ca_free(ca);
		return rv;
	}
	*out = ca;
	return CEP_OK;
}

void cep_pki_ca_free(cep_pki_ca *ca)
{
	if (ca == NULL)
		return;
	mbedtls_pk_free(&ca->key); /* zeroizes the private scalar */
	mbedtls_x509_crt_free(&ca->crt);
	free(ca->cert_pem);
	pthread_mutex_destroy(&ca->mu);
	mbedtls_platform_zeroize(ca, sizeof(*ca));
	free(ca);
}

const char *cep_pki_ca_cert_pem(const cep_pki_ca *ca)
{
	return ca->cert_pem;
}

/* ---- issuing ------------------------------------------------------------ */

static int check_req(const cep_pki_issue_req *req, int64_t nb, cep_err *err)
{
	if (!cn_ok(req->cn))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "certificate CN must be 1-%d printable characters without "
		    ",=+\\\"<>;#",
		    CN_LEN_MAX);
	if (req->uri_san != NULL && !uri_ok(req->uri_san))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "URI SAN must be 1-%d printable characters without spaces",
		    URI_LEN_MAX);
	if (req->not_after_ms <= nb)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "certificate not_after (%lld ms) must be after not_before "
		    "(%lld ms)",
		    (long long)req->not_after_ms, (long long)nb);
	return CEP_OK;
}

static int leaf_build(cep_pki_ca *ca, const cep_pki_issue_req *req, int64_t nb,
    mbedtls_pk_context *key, pki_rng *r, char **pem, cep_err *err)
{
	char subject[CN_LEN_MAX + 8];
	snprintf(subject, sizeof(subject), "CN=%s", req->cn);
	cert_spec s = {
	    .subject = subject,
	    .issuer = ca->issuer,
	    .subject_key = key,
	    .issuer_key = &ca->key,
	    .not_before_ms = nb,
	    .not_after_ms = req->not_after_ms,
	};
	mbedtls_x509write_cert w;
	mbedtls_x509write_crt_init(&w);
	int rv = cert_begin(&w, &s, r, err);
	if (rv == 0) {
		int m = mbedtls_x509write_crt_set_basic_constraints(&w, 0, -1);
		if (m == 0)
			m = mbedtls_x509write_crt_set_key_usage(&w,
			    MBEDTLS_X509_KU_DIGITAL_SIGNATURE);
		if (m == 0)
			m = set_eku(&w, req->server);
		if (m != 0)
			rv = cep_pki_err_mbedtls(err, m,
			    "setting certificate extensions");
	}
	if (rv == 0)
		rv = set_san(&w, req, err);
	if (rv == 0) {
		pthread_mutex_lock(&ca->mu);
		rv = cert_finish(&w, r, pem, err);
		pthread_mutex_unlock(&ca->mu);
	}
	mbedtls_x509write_crt_free(&w);
	return rv;
}

/* What every issue checks first: a CA, a valid request; *nb: the start
 * of validity (the request's, or now less the clock skew allowed). */
static int req_start(const cep_pki_ca *ca, const cep_pki_issue_req *req,
    int64_t *nb, cep_err *err)
{
	if (ca == NULL || req == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "no CA or request");
	*nb = req->not_before_ms ? req->not_before_ms :
	                           cep_clock_now_ms() - SKEW_MS;
	return check_req(req, *nb, err);
}

/* A fresh key with its own random generator (key_open), and after its
 * use the key's PEM (when rv is still 0) with both freed (key_close). */
static int key_open(pki_rng *r, mbedtls_pk_context *key, cep_err *err)
{
	int rv = rng_init(r, err);
	if (rv != 0)
		return rv;
	mbedtls_pk_init(key);
	rv = gen_key(key, r, err);
	if (rv != 0) {
		mbedtls_pk_free(key);
		rng_free(r);
	}
	return rv;
}

static int key_close(pki_rng *r, mbedtls_pk_context *key, int rv,
    char **key_pem, cep_err *err)
{
	if (rv == 0)
		rv = key_to_pem(key, key_pem, err);
	mbedtls_pk_free(key);
	rng_free(r);
	return rv;
}

int cep_pki_issue(cep_pki_ca *ca, const cep_pki_issue_req *req, char **cert_pem,
    char **key_pem, cep_err *err)
{
	*cert_pem = NULL;
	*key_pem = NULL;
	int64_t nb;
	int rv = req_start(ca, req, &nb, err);
	if (rv != 0)
		return rv;
	pki_rng r;
	mbedtls_pk_context key;
	if ((rv = key_open(&r, &key, err)) != 0)
		return rv;
	rv = key_close(&r, &key,
	    leaf_build(ca, req, nb, &key, &r, cert_pem, err), key_pem, err);
	if (rv != 0) {
		free(*cert_pem);
		*cert_pem = NULL;
	}
	return rv;
}

/* ---- keys made elsewhere (privsep: the delegate keys, the signer signs) */

static int pub_der(mbedtls_pk_context *key, uint8_t **out, size_t *len,
    cep_err *err)
{
	unsigned char buf[CEP_PKI_PUBKEY_MAX];
	int n = mbedtls_pk_write_pubkey_der(key, buf, sizeof(buf));
	if (n <= 0)
		return cep_pki_err_mbedtls(err, n, "encoding the public key");
	*out = malloc((size_t)n);
	if (*out == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	memcpy(*out, buf + sizeof(buf) - (size_t)n,
	    (size_t)n); /* DER at the end */
	*len = (size_t)n;
	return CEP_OK;
}

int cep_pki_keypair_new(char **key_pem, uint8_t **pub, size_t *pub_len,
    cep_err *err)
{
	*key_pem = NULL;
	*pub = NULL;
	*pub_len = 0;
	pki_rng r;
	mbedtls_pk_context key;
	int rv = key_open(&r, &key, err);
	if (rv != 0)
		return rv;
	rv = key_close(&r, &key, pub_der(&key, pub, pub_len, err), key_pem,
	    err);
	if (rv != 0) {
		free(*pub);
		*pub = NULL;
		*pub_len = 0;
	}
	return rv;
}

/* The key's type or curve in words, for a refusal. */
static const char *key_kind(const mbedtls_pk_context *pk)
{
	if (mbedtls_pk_get_type(pk) != MBEDTLS_PK_ECKEY)
		return mbedtls_pk_get_name(pk);
	const mbedtls_ecp_curve_info *ci = mbedtls_ecp_curve_info_from_grp_id(
	    mbedtls_pk_ec(*pk)->grp.id);
	return ci != NULL ? ci->name : "an unknown curve";
}

/* Parses and checks; pk is set up on success (the caller frees it either
 * way). The re-encoding must equal the input: no trailing bytes, no
 * second encoding of the same key slipping past a size or log check. */
static int parse_pub(mbedtls_pk_context *pk, const uint8_t *der, size_t len,
    cep_err *err)
{
	if (der == NULL || len == 0 || len > CEP_PKI_PUBKEY_MAX)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "public key is "
		    "%zu bytes; a DER P-256 key is 91 (limit %d)",
		    len, CEP_PKI_PUBKEY_MAX);
	int m = mbedtls_pk_parse_public_key(pk, der, len);
	if (m != 0) {
		char why[128];
		mbedtls_strerror(m, why, sizeof(why));
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "public key is not "
		    "a DER SubjectPublicKeyInfo (%s)",
		    why);
	}
	if (mbedtls_pk_get_type(pk) != MBEDTLS_PK_ECKEY ||
	    mbedtls_pk_ec(*pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "public key is %s; "
		    "only EC P-256 (secp256r1) keys are signed",
		    key_kind(pk));
	const mbedtls_ecp_keypair *ec = mbedtls_pk_ec(*pk);
	if (mbedtls_ecp_check_pubkey(&ec->grp, &ec->Q) != 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "public key is not a point on P-256");
	uint8_t *again = NULL;
	size_t alen = 0;
	int rv = pub_der(pk, &again, &alen, err);
	if (rv == 0 && (alen != len || memcmp(again, der, len) != 0))
		rv = cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "public key is not "
		    "canonical DER (trailing bytes or another encoding)");
	free(again);
	return rv;
}

int cep_pki_check_pub(const uint8_t *der, size_t len, cep_err *err)
{
	mbedtls_pk_context pk;
	mbedtls_pk_init(&pk);
	int rv = parse_pub(&pk, der, len, err);
	mbedtls_pk_free(&pk);
	return rv;
}

int cep_pki_issue_pub(cep_pki_ca *ca, const cep_pki_issue_req *req,
    const uint8_t *der, size_t len, char **cert_pem, cep_err *err)
{
	*cert_pem = NULL;
	int64_t nb;
	int rv = req_start(ca, req, &nb, err);
	if (rv != 0)
		return rv;
	mbedtls_pk_context pk;
	mbedtls_pk_init(&pk);
	if ((rv = parse_pub(&pk, der, len, err)) != 0) {
		mbedtls_pk_free(&pk);
		return rv;
	}
	pki_rng r;
	if ((rv = rng_init(&r, err)) == 0) {
		rv = leaf_build(ca, req, nb, &pk, &r, cert_pem, err);
		rng_free(&r);
	}
	mbedtls_pk_free(&pk);
	return rv;
}
