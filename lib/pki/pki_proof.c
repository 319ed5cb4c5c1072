/*
 * pki_proof.c - proof of possession: a runner signs a relay nonce with its
 * identity key; the relay checks the signature with the key in the
 * certificate it has already verified (pki_verify.c). The signed bytes
 * are "cep-runner-proof-v1" || nonce, so the signature can never be
 * replayed as anything else the key signs.
 */
#define _GNU_SOURCE
#include "pki.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>

#define PROOF_CONTEXT "cep-runner-proof-v1"
#define NONCE_MIN 16
#define NONCE_MAX 64
#define KEY_PEM_MAX 16384

/* SHA-256 of the context string and the nonce: the context keeps this
 * signature from ever being valid for anything else the key signs. */
static int proof_digest(const uint8_t *nonce, size_t n, unsigned char out[32],
    cep_err *err)
{
	if (nonce == NULL || n < NONCE_MIN || n > NONCE_MAX)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "proof nonce must be %d-%d bytes, got %zu", NONCE_MIN,
		    NONCE_MAX, n);
	mbedtls_sha256_context c;
	mbedtls_sha256_init(&c);
	int rv = mbedtls_sha256_starts_ret(&c, 0);
	if (rv == 0)
		rv = mbedtls_sha256_update_ret(&c,
		    (const unsigned char *)PROOF_CONTEXT,
		    strlen(PROOF_CONTEXT));
	if (rv == 0)
		rv = mbedtls_sha256_update_ret(&c, nonce, n);
	if (rv == 0)
		rv = mbedtls_sha256_finish_ret(&c, out);
	mbedtls_sha256_free(&c);
	return rv ? cep_pki_err_mbedtls(err, rv, "hashing the proof") : CEP_OK;
}

static int proof_sign(mbedtls_pk_context *pk, const unsigned char hash[32],
    uint8_t **sig, size_t *sig_len, cep_err *err)
{
	/* ECDSA here is deterministic (RFC 6979); the DRBG only blinds */
	static const char pers[] = "cep-proof";
	mbedtls_entropy_context ent;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_entropy_init(&ent);
	mbedtls_ctr_drbg_init(&drbg);
	unsigned char buf[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
	size_t n = 0;
	int m = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent,
	    (const unsigned char *)pers, sizeof(pers) - 1);
	if (m == 0)
		m = mbedtls_pk_sign(pk, MBEDTLS_MD_SHA256, hash, 32, buf, &n,
		    mbedtls_ctr_drbg_random, &drbg);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&ent);
	if (m != 0)
		return cep_pki_err_mbedtls(err, m, "signing the proof");
	*sig = malloc(n);
	if (*sig == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	memcpy(*sig, buf, n);
	*sig_len = n;
	return CEP_OK;
}

int cep_pki_sign_proof(const char *key_pem, const uint8_t *nonce, size_t n,
    uint8_t **sig, size_t *sig_len, cep_err *err)
{
	unsigned char hash[32];
	*sig = NULL;
	*sig_len = 0;
	int rv = proof_digest(nonce, n, hash, err);
	if (rv != 0)
		return rv;
	if (key_pem == NULL || strnlen(key_pem, KEY_PEM_MAX + 1) > KEY_PEM_MAX)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "no usable key PEM");
	mbedtls_pk_context pk;
	mbedtls_pk_init(&pk);
	int m = mbedtls_pk_parse_key(&pk, (const unsigned char *)key_pem,
	    strlen(key_pem) + 1, NULL, 0);
	if (m != 0)
		rv = cep_pki_err_mbedtls(err, m, "parsing the identity key");
	else if (!mbedtls_pk_can_do(&pk, MBEDTLS_PK_ECDSA))
		rv = cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "the identity key is not an ECDSA key");
	else
		rv = proof_sign(&pk, hash, sig, sig_len, err);
	mbedtls_pk_free(&pk);
	return rv;
}

int cep_pki_check_proof(const uint8_t *cert_der, size_t der_len,
    const uint8_t *nonce, size_t n, const uint8_t *sig, size_t sig_len,
    cep_err *err)
{
	unsigned char hash[32];
	int rv = proof_digest(nonce, n, hash, err);
	if (rv != 0)
		return rv;
	if (sig == NULL || sig_len == 0 ||
	    sig_len > MBEDTLS_PK_SIGNATURE_MAX_SIZE)
		return cep_err_set(err, CEP_UNAUTHENTICATED,
		    "proof signature length %zu is out of range", sig_len);
	mbedtls_x509_crt crt;
	mbedtls_x509_crt_init(&crt);
	int m = mbedtls_x509_crt_parse_der(&crt, cert_der, der_len);
	if (m != 0) {
		cep_pki_err_mbedtls(err, m, "parsing the certificate");
		rv = CEP_UNAUTHENTICATED;
		if (err != NULL)
			err->code = rv;
	} else if (!mbedtls_pk_can_do(&crt.pk, MBEDTLS_PK_ECDSA)) {
		rv = cep_err_set(err, CEP_UNAUTHENTICATED,
		    "the certificate key is not an ECDSA key");
	} else if (mbedtls_pk_verify(&crt.pk, MBEDTLS_MD_SHA256, hash, 32, sig,
	               sig_len) != 0) {
		rv = cep_err_set(err, CEP_UNAUTHENTICATED,
		    "proof signature does not verify with the certificate's key");
	}
	mbedtls_x509_crt_free(&crt);
	return rv;
}
