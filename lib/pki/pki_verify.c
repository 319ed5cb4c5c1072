/*
 * pki_verify.c - checking a certificate someone presents: chain to the
 * appliance CA, validity at a given time, and the identity it names
 * (CN, URI SAN cep://<appliance>/<connector>/<ns>/<run-id>).
 *
 * The input is hostile (runners present it). mbedTLS parses it; this file
 * only reads the parsed fields, with every length checked before a copy.
 * Validity is judged against the caller's now_ms rather than mbedTLS's
 * own clock, so the relay and the tests decide what "now" is.
 * Issuing and private keys are in pki.c.
 */
#define _GNU_SOURCE
#include "pki.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509.h>
#include <mbedtls/x509_crt.h>

#include "clock.h"
#include "run_id.h"

#define CERT_DER_MAX 16384
#define CA_PEM_MAX 65536
#define URI_SCHEME "cep://"

/* ---- identity URIs ------------------------------------------------------ */

static bool segment_ok(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
		if (!ok)
			return false;
	}
	/* "." and ".." would be path syntax wherever a segment lands */
	return !(s[0] == '.' && (n == 1 || (n == 2 && s[1] == '.')));
}

/* Copies one '/'-terminated segment of *p into out[cap]. */
static int take_segment(const char **p, bool last, char *out, size_t cap,
    const char *what, cep_err *err)
{
	const char *end = last ? *p + strlen(*p) : strchr(*p, '/');
	if (end == NULL)
		return cep_err_set(err, CEP_UNAUTHENTICATED,
		    "identity URI has no %s", what);
	size_t n = (size_t)(end - *p);
	if (!segment_ok(*p, n) || n >= cap)
		return cep_err_set(err, CEP_UNAUTHENTICATED,
		    "identity URI %s is empty, too long (limit %zu) or has "
		    "characters outside [A-Za-z0-9._-]",
		    what, cap - 1);
	memcpy(out, *p, n);
	out[n] = '\0';
	*p = last ? end : end + 1;
	return CEP_OK;
}

static int parse_identity_uri(const char *uri, cep_pki_identity *id,
    cep_err *err)
{
	size_t sl = strlen(URI_SCHEME);
	if (strncmp(uri, URI_SCHEME, sl) != 0)
		return cep_err_set(err, CEP_UNAUTHENTICATED,
		    "URI SAN does not start with " URI_SCHEME);
	const char *p = uri + sl;
	char run[32];
	int rv = take_segment(&p, false, id->appliance, sizeof(id->appliance),
	    "appliance", err);
	if (rv == 0)
		rv = take_segment(&p, false, id->connector,
		    sizeof(id->connector), "connector", err);
	if (rv == 0)
		rv = take_segment(&p, false, id->ns, sizeof(id->ns),
		    "namespace", err);
	if (rv == 0)
		rv = take_segment(&p, true, run, sizeof(run), "run id", err);
	if (rv == 0 && !cep_run_id_parse(&id->run_id, run))
		rv = cep_err_set(err, CEP_UNAUTHENTICATED,
		    "identity URI run id is not a run id");
	return rv;
}

int cep_pki_identity_uri(char *buf, size_t len, const char *appliance,
    const char *connector, const char *ns, const char *run_id, cep_err *err)
{
	const char *parts[] = {appliance, connector, ns};
	const char *names[] = {"appliance", "connector", "namespace"};
	for (int i = 0; i < 3; i++)
		if (parts[i] == NULL ||
		    !segment_ok(parts[i], strlen(parts[i])) ||
		    strlen(parts[i]) >= 64)
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "%s must be 1-63 of [A-Za-z0-9._-]", names[i]);
	if (!cep_run_id_valid(run_id))
		return cep_err_set(err, CEP_INVALID_ARGUMENT, "bad run id");
	int n = snprintf(buf, len, URI_SCHEME "%s/%s/%s/%s", appliance,
	    connector, ns, run_id);
	if (n < 0 || (size_t)n >= len)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "identity URI needs %d bytes, buffer has %zu", n, len);
	return CEP_OK;
}

/* ---- reading the parsed certificate ------------------------------------ */

static int64_t x509_time_ms(const mbedtls_x509_time *t)
{
	struct tm tm = {
	    .tm_year = t->year - 1900,
	    .tm_mon = t->mon - 1,
	    .tm_mday = t->day,
	    .tm_hour = t->hour,
	    .tm_min = t->min,
	    .tm_sec = t->sec,
	};
	return (int64_t)timegm(&tm) * 1000;
}

static void fmt_utc(char *buf, size_t len, const mbedtls_x509_time *t)
{
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", t->year, t->mon,
	    t->day, t->hour, t->min, t->sec);
}

static int copy_cn(const mbedtls_x509_crt *crt, cep_pki_identity *id,
    cep_err *err)
{
	for (const mbedtls_x509_name *n = &crt->subject; n != NULL;
	     n = n->next) {
		if (n->oid.p == NULL ||
		    MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) != 0)
			continue;
		if (n->val.len >= sizeof(id->cn) ||
		    memchr(n->val.p, '\0', n->val.len) != NULL)
			return cep_err_set(err, CEP_UNAUTHENTICATED,
			    "certificate CN is longer than %zu bytes or holds NUL",
			    sizeof(id->cn) - 1);
		memcpy(id->cn, n->val.p, n->val.len);
		id->cn[n->val.len] = '\0';
		return CEP_OK;
	}
	return CEP_OK;
}

/* In mbedTLS 2.28 the SAN list keeps each GeneralName's raw tag; a URI is
 * [6] IMPLICIT IA5String, i.e. tag 0x86. */
static int copy_uri(const mbedtls_x509_crt *crt, cep_pki_identity *id,
    cep_err *err)
{
	if (!(crt->ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME))
		return CEP_OK;
	bool seen = false;
	for (const mbedtls_x509_sequence *s = &crt->subject_alt_names;
	     s != NULL; s = s->next) {
		if (s->buf.tag !=
		    (MBEDTLS_ASN1_CONTEXT_SPECIFIC |
		        MBEDTLS_X509_SAN_UNIFORM_RESOURCE_IDENTIFIER))
			continue;
		if (seen)
			return cep_err_set(err, CEP_UNAUTHENTICATED,
			    "certificate has more than one URI SAN");
		seen = true;
		if (s->buf.len == 0 || s->buf.len >= sizeof(id->uri))
			return cep_err_set(err, CEP_UNAUTHENTICATED,
			    "certificate URI SAN length %zu is out of range (1-%zu)",
			    s->buf.len, sizeof(id->uri) - 1);
		for (size_t i = 0; i < s->buf.len; i++)
			if (s->buf.p[i] <= 0x20 || s->buf.p[i] > 0x7e)
				return cep_err_set(err, CEP_UNAUTHENTICATED,
				    "certificate URI SAN has a non-printable byte");
		memcpy(id->uri, s->buf.p, s->buf.len);
		id->uri[s->buf.len] = '\0';
	}
	if (seen)
		return parse_identity_uri(id->uri, id, err);
	return CEP_OK;
}

/* ---- verification ------------------------------------------------------- */

/* mbedTLS's flags in words; the most telling reason first. */
static int flags_error(uint32_t flags, cep_err *err)
{
	if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED)
		return cep_err_set(err, CEP_UNAUTHENTICATED,
		    "certificate is not signed by the appliance CA");
	if (flags &
	    (MBEDTLS_X509_BADCERT_BAD_MD | MBEDTLS_X509_BADCERT_BAD_PK |
	        MBEDTLS_X509_BADCERT_BAD_KEY))
		return cep_err_set(err, CEP_UNAUTHENTICATED,
		    "certificate uses a hash, algorithm or key size the "
		    "appliance does not accept");
	if (flags &
	    (MBEDTLS_X509_BADCERT_KEY_USAGE |
	        MBEDTLS_X509_BADCERT_EXT_KEY_USAGE |
	        MBEDTLS_X509_BADCERT_NS_CERT_TYPE))
		return cep_err_set(err, CEP_UNAUTHENTICATED,
		    "certificate's key usage does not allow this use");
	char buf[256];
	int n = mbedtls_x509_crt_verify_info(buf, sizeof(buf), "", flags);
	for (int i = 0; i < n && buf[i]; i++)
		if (buf[i] == '\n')
			buf[i] = (i + 1 < n && buf[i + 1]) ? ';' : '\0';
	return cep_err_set(err, CEP_UNAUTHENTICATED,
	    "certificate verification failed: %s",
	    n > 0 ? buf : "unknown reason");
}

static int check_time(const mbedtls_x509_crt *c, int64_t now_ms,
    const char *what, cep_err *err)
{
	char t[40];
	if (now_ms > x509_time_ms(&c->valid_to)) {
		fmt_utc(t, sizeof(t), &c->valid_to);
		return cep_err_set(err, CEP_UNAUTHENTICATED, "%s expired at %s",
		    what, t);
	}
	if (now_ms < x509_time_ms(&c->valid_from)) {
		fmt_utc(t, sizeof(t), &c->valid_from);
		return cep_err_set(err, CEP_UNAUTHENTICATED,
		    "%s not yet valid (valid from %s)", what, t);
	}
	return CEP_OK;
}

static int parse_ca(mbedtls_x509_crt *ca, const char *ca_pem, cep_err *err)
{
	if (ca_pem == NULL || strnlen(ca_pem, CA_PEM_MAX) >= CA_PEM_MAX)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "no appliance CA certificate to verify against");
	int m = mbedtls_x509_crt_parse(ca, (const unsigned char *)ca_pem,
	    strlen(ca_pem) + 1);
	if (m != 0) {
		cep_pki_err_mbedtls(err, m,
		    "parsing the appliance CA certificate");
		if (err != NULL)
			err->code = CEP_INVALID_ARGUMENT;
		return CEP_INVALID_ARGUMENT;
	}
	return CEP_OK;
}

static int parse_leaf(mbedtls_x509_crt *crt, const uint8_t *der, size_t der_len,
    cep_err *err)
{
	if (der == NULL || der_len == 0 || der_len > CERT_DER_MAX)
		return cep_err_set(err, CEP_UNAUTHENTICATED,
		    "certificate size %zu is out of range (1-%d bytes)",
		    der_len, CERT_DER_MAX);
	int m = mbedtls_x509_crt_parse_der(crt, der, der_len);
	if (m != 0) {
		cep_pki_err_mbedtls(err, m,
		    "certificate is not valid X.509 DER");
		if (err != NULL)
			err->code = CEP_UNAUTHENTICATED;
		return CEP_UNAUTHENTICATED;
	}
	if (crt->raw.len != der_len)
		return cep_err_set(err, CEP_UNAUTHENTICATED,
		    "%zu stray bytes after the certificate",
		    der_len - crt->raw.len);
	if (crt->ca_istrue)
		return cep_err_set(err, CEP_UNAUTHENTICATED,
		    "certificate is a CA certificate, not an identity");
	return CEP_OK;
}

/* Chain and signature by mbedTLS; validity by now_ms (its own clock's
 * verdicts are masked out and judged again here). */
static int verify_chain(mbedtls_x509_crt *crt, mbedtls_x509_crt *ca,
    int64_t now_ms, cep_err *err)
{
	uint32_t flags = 0;
	int m = mbedtls_x509_crt_verify(crt, ca, NULL, NULL, &flags, NULL,
	    NULL);
	flags &= ~(uint32_t)(MBEDTLS_X509_BADCERT_EXPIRED |
	    MBEDTLS_X509_BADCERT_FUTURE);
	if (flags != 0)
		return flags_error(flags, err);
	if (m != 0 && m != MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
		cep_pki_err_mbedtls(err, m, "verifying the certificate");
		if (err != NULL)
			err->code = CEP_UNAUTHENTICATED;
		return CEP_UNAUTHENTICATED;
	}
	int rv = check_time(ca, now_ms, "the appliance CA certificate", err);
	if (rv == 0)
		rv = check_time(crt, now_ms, "certificate", err);
	return rv;
}

int cep_pki_verify_der(const char *ca_pem, const uint8_t *der, size_t der_len,
    int64_t now_ms, cep_pki_identity *id, cep_err *err)
{
	cep_pki_identity tmp;
	memset(&tmp, 0, sizeof(tmp));
	if (id != NULL)
		memset(id, 0, sizeof(*id));
	if (now_ms == 0)
		now_ms = cep_clock_now_ms();
	mbedtls_x509_crt ca, crt;
	mbedtls_x509_crt_init(&ca);
	mbedtls_x509_crt_init(&crt);
	int rv = parse_ca(&ca, ca_pem, err);
	if (rv == 0)
		rv = parse_leaf(&crt, der, der_len, err);
	if (rv == 0)
		rv = verify_chain(&crt, &ca, now_ms, err);
	if (rv == 0)
		rv = copy_cn(&crt, &tmp, err);
	if (rv == 0)
		rv = copy_uri(&crt, &tmp, err);
	if (rv == 0) {
		tmp.not_after_ms = x509_time_ms(&crt.valid_to);
		if (id != NULL)
			*id = tmp;
	}
	mbedtls_x509_crt_free(&crt);
	mbedtls_x509_crt_free(&ca);
	return rv;
}

int cep_pki_cert_der(const char *cert_pem, uint8_t **der, size_t *der_len,
    cep_err *err)
{
	*der = NULL;
	*der_len = 0;
	if (cert_pem == NULL || strnlen(cert_pem, CA_PEM_MAX) >= CA_PEM_MAX)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "no certificate PEM (or larger than %d bytes)", CA_PEM_MAX);
	mbedtls_x509_crt crt;
	mbedtls_x509_crt_init(&crt);
	int m = mbedtls_x509_crt_parse(&crt, (const unsigned char *)cert_pem,
	    strlen(cert_pem) + 1);
	int rv = CEP_OK;
	if (m < 0 || crt.raw.len == 0) {
		cep_pki_err_mbedtls(err,
		    m < 0 ? m : MBEDTLS_ERR_X509_INVALID_FORMAT,
		    "parsing the certificate PEM");
		rv = CEP_INVALID_ARGUMENT;
		if (err != NULL)
			err->code = rv;
	} else if ((*der = malloc(crt.raw.len)) == NULL) {
		rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory");
	} else {
		memcpy(*der, crt.raw.p, crt.raw.len);
		*der_len = crt.raw.len;
	}
	mbedtls_x509_crt_free(&crt);
	return rv;
}

int cep_pki_fingerprint(const char *cert_pem, char *out, size_t len,
    cep_err *err)
{
	uint8_t *der = NULL, h[32];
	size_t n = 0;
	if (len < sizeof(h) * 3)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "fingerprint buffer of %zu bytes is too small", len);
	int rv = cep_pki_cert_der(cert_pem, &der, &n, err);
	if (rv != CEP_OK)
		return rv;
	int m = mbedtls_sha256_ret(der, n, h, 0);
	free(der);
	if (m != 0)
		return cep_pki_err_mbedtls(err, m, "hashing the certificate");
	for (size_t i = 0; i < sizeof(h); i++)
		snprintf(out + 3 * i, len - 3 * i, "%02X%s", h[i],
		    i + 1 < sizeof(h) ? ":" : "");
	return CEP_OK;
}
