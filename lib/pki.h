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
 * 0600, is loaded only by the delegate, and is wiped from memory after use.
 * All text in and out is PEM unless named _der.
 */
#ifndef CEP_PKI_H
#define CEP_PKI_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct cep_pki_ca cep_pki_ca;

/* Creates dir/ca.key (0600) and dir/ca.crt, valid for years, CN
 * "cep appliance CA <appliance>". Fails if they exist (ALREADY_EXISTS). */
int cep_pki_ca_create(const char *dir, const char *appliance, cep_err *err);
/* Loads dir/ca.crt and dir/ca.key; refuses a key file readable by group
 * or others (PERMISSION_DENIED, naming the file and its mode). */
int cep_pki_ca_load(cep_pki_ca **out, const char *dir, cep_err *err);
void cep_pki_ca_free(cep_pki_ca *ca);  /* wipes the key */
const char *cep_pki_ca_cert_pem(const cep_pki_ca *ca);

typedef struct cep_pki_issue_req {
	const char *cn;
	const char *uri_san;       /* optional */
	const char *const *dns;    /* optional, NULL-terminated */
	const char *const *ips;    /* optional, NULL-terminated, "127.0.0.1" */
	int64_t not_before_ms;     /* 0 = now - 5 min (clock skew) */
	int64_t not_after_ms;
	int server;                /* 1: serverAuth EKU, else clientAuth */
} cep_pki_issue_req;

/* A fresh P-256 key and a certificate signed by ca. Caller frees both
 * strings; wipe key_pem with cep_pki_free_secret. */
int cep_pki_issue(cep_pki_ca *ca, const cep_pki_issue_req *req,
    char **cert_pem, char **key_pem, cep_err *err);
void cep_pki_free_secret(char *s);

/* What a verified certificate says. */
typedef struct cep_pki_identity {
	char uri[256];             /* URI SAN, "" if none */
	char cn[128];
	int64_t not_after_ms;
	char appliance[64], connector[64], ns[64], run_id[32]; /* from uri */
} cep_pki_identity;

/* Verifies cert (DER) against ca_pem at time now_ms: signature chain,
 * validity period, and parses the URI SAN. Errors name the reason:
 * "certificate expired at 2026-...", "not signed by the appliance CA", ... */
int cep_pki_verify_der(const char *ca_pem, const uint8_t *der, size_t der_len,
    int64_t now_ms, cep_pki_identity *id, cep_err *err);
/* PEM -> DER (first certificate). Caller frees *der. */
int cep_pki_cert_der(const char *cert_pem, uint8_t **der, size_t *der_len,
    cep_err *err);

/* Proof of possession: ECDSA-SHA256 over "cep-runner-proof-v1" || nonce. */
int cep_pki_sign_proof(const char *key_pem, const uint8_t *nonce, size_t n,
    uint8_t **sig, size_t *sig_len, cep_err *err);
int cep_pki_check_proof(const uint8_t *cert_der, size_t der_len,
    const uint8_t *nonce, size_t n, const uint8_t *sig, size_t sig_len,
    cep_err *err);

/* cep://<appliance>/<connector>/<ns>/<run> */
int cep_pki_identity_uri(char *buf, size_t len, const char *appliance,
    const char *connector, const char *ns, const char *run_id, cep_err *err);

#endif
