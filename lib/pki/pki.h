/*
 * pki.h - the appliance CA and the identities it issues (mbedTLS).
 *
 * One ECDSA P-256 CA per appliance. It issues: the relay's server
 * certificate, the delegate's client certificate, and per-run runner
 * identities (fresh key; URI SAN cep://<appliance>/<connector>/<ns>/<run>;
 * notAfter = run deadline + margin). Runners prove possession of their key
 * by signing a relay nonce (nng 1.5 does not expose the TLS peer cert).
 *
 * The CA key is the appliance's crown jewel: it lives in one file of mode
 * 0600, is loaded only by cep-signer (or, in a home without privsep, the
 * delegate), and is wiped from memory after use.
 * All text in and out is PEM unless named _der.
 */
#ifndef CEP_PKI_H
#define CEP_PKI_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "run_id.h"

typedef struct cep_pki_ca cep_pki_ca;

/* Creates dir (0700 if new), dir/ca.key (0600) and dir/ca.crt: P-256,
 * CA:true pathlen 0, keyCertSign|cRLSign, valid ten years, CN
 * "cep appliance CA <appliance>" (appliance: 1-63 of [A-Za-z0-9._-]).
 * Fails if either file exists (ALREADY_EXISTS). */
int cep_pki_ca_create(const char *dir, const char *appliance, cep_err *err);
/* Loads dir/ca.crt and dir/ca.key; refuses a key file readable by group
 * or others (PERMISSION_DENIED, naming the file and its mode), a key that
 * does not match the certificate and a certificate that is no CA
 * (FAILED_PRECONDITION). The handle may be shared by threads. */
int cep_pki_ca_load(cep_pki_ca **out, const char *dir, cep_err *err);
void cep_pki_ca_free(cep_pki_ca *ca); /* wipes the key */
const char *cep_pki_ca_cert_pem(const cep_pki_ca *ca);

typedef struct cep_pki_issue_req {
	const char *cn;
	const char *uri_san;    /* optional */
	const char *const *dns; /* optional, NULL-terminated */
	const char *const *ips; /* optional, NULL-terminated, "127.0.0.1" or
				    * "::1"; written as iPAddress and, because
				    * mbedTLS 2.28 matches a TLS server name
				    * against dNSName only, also as dNSName */
	int64_t not_before_ms;  /* 0 = now - 5 min (clock skew) */
	int64_t not_after_ms;
	int server; /* 1: serverAuth EKU, else clientAuth */
} cep_pki_issue_req;

/* A fresh P-256 key and a certificate signed by ca: CA:false,
 * digitalSignature, EKU serverAuth (server) or clientAuth, SANs in the
 * order URI, dns, ips. cn: 1-64 printable, none of ,=+\"<>;# .
 * Caller frees both strings; wipe key_pem with cep_pki_free_secret.
 * On failure both are NULL. */
int cep_pki_issue(cep_pki_ca *ca, const cep_pki_issue_req *req, char **cert_pem,
    char **key_pem, cep_err *err);
void cep_pki_free_secret(char *s);

/* Issuing for a key made elsewhere (the delegate makes a runner's key,
 * cep-signer signs it; docs/privsep.md). */
#define CEP_PKI_PUBKEY_MAX 512 /* a P-256 SubjectPublicKeyInfo is 91 */
/* A fresh P-256 key pair: *key_pem (wipe with cep_pki_free_secret) and
 * its public half as a DER SubjectPublicKeyInfo (*pub_der, free()). */
int cep_pki_keypair_new(char **key_pem, uint8_t **pub_der, size_t *pub_len,
    cep_err *err);
/* Checks that pub_der is exactly one canonical DER SubjectPublicKeyInfo
 * (at most CEP_PKI_PUBKEY_MAX bytes) of an EC key on P-256 with a valid
 * point; INVALID_ARGUMENT naming what is wrong ("an RSA key", "curve
 * secp384r1") otherwise. */
int cep_pki_check_pub(const uint8_t *pub_der, size_t pub_len, cep_err *err);
/* cep_pki_issue for that key: the same certificate, signed by ca, with
 * pub_der (checked by cep_pki_check_pub) as its subject key. */
int cep_pki_issue_pub(cep_pki_ca *ca, const cep_pki_issue_req *req,
    const uint8_t *pub_der, size_t pub_len, char **cert_pem, cep_err *err);

/* What a verified certificate says. */
typedef struct cep_pki_identity {
	char uri[256]; /* URI SAN, "" if none */
	char cn[128];
	int64_t not_after_ms;
	char appliance[64], connector[64], ns[64]; /* from uri */
	cep_run_id run_id;                         /* from uri */
} cep_pki_identity;

/* Verifies cert (DER) against ca_pem at time now_ms (0 = now; validity of
 * the certificate and of the CA is judged at now_ms, not by mbedTLS's
 * clock): signature chain, validity period, not a CA certificate, and
 * parses the URI SAN (at most one; if present it must be a well-formed
 * cep:// identity with a valid run id). id may be NULL; it is filled only
 * on success. Refusals are UNAUTHENTICATED (a bad ca_pem is
 * INVALID_ARGUMENT) and name the reason: "certificate expired at
 * 2026-11-25T13:55:11Z", "certificate not yet valid (valid from ...)",
 * "certificate is not signed by the appliance CA", "certificate is not
 * valid X.509 DER: ...". EKU is not checked here; the caller checks the
 * URI against what it expects. */
int cep_pki_verify_der(const char *ca_pem, const uint8_t *der, size_t der_len,
    int64_t now_ms, cep_pki_identity *id, cep_err *err);
/* PEM -> DER (first certificate). Caller frees *der. */
int cep_pki_cert_der(const char *cert_pem, uint8_t **der, size_t *der_len,
    cep_err *err);

/* SHA-256 of the certificate's DER as "AB:CD:..." (95 characters; len
 * >= 96): how an operator tells two CAs apart. */
int cep_pki_fingerprint(const char *cert_pem, char *out, size_t len,
    cep_err *err);

/* Proof of possession: ECDSA-SHA256 over "cep-runner-proof-v1" || nonce.
 * The nonce must be 16..64 bytes (INVALID_ARGUMENT otherwise). The *sig
 * is malloc'd (free()). check_proof only checks the signature with the
 * certificate's key: verify the certificate with cep_pki_verify_der first.
 * A bad signature is UNAUTHENTICATED. */
int cep_pki_sign_proof(const char *key_pem, const uint8_t *nonce, size_t n,
    uint8_t **sig, size_t *sig_len, cep_err *err);
int cep_pki_check_proof(const uint8_t *cert_der, size_t der_len,
    const uint8_t *nonce, size_t n, const uint8_t *sig, size_t sig_len,
    cep_err *err);

/* cep://<appliance>/<connector>/<ns>/<run>; each of the first three 1-63
 * of [A-Za-z0-9._-], run a valid run id (INVALID_ARGUMENT otherwise). */
int cep_pki_identity_uri(char *buf, size_t len, const char *appliance,
    const char *connector, const char *ns, const char *run_id, cep_err *err);

/* mbedTLS's error rv as INTERNAL, "what: mbedTLS's text (-0xNNNN)". */
int cep_pki_err_mbedtls(cep_err *err, int mbedtls_rv, const char *what);

#endif
