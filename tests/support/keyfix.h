/* keyfix.h - keys made outside lib/pki, for the tests of what accepts a
 * public key from elsewhere (the CA's issue_pub, the signer's checks). */
#ifndef CEP_KEYFIX_H
#define CEP_KEYFIX_H

#include <mbedtls/pk.h>
#include <stddef.h>
#include <stdint.h>

/* The DER SubjectPublicKeyInfo of a fresh key of another kind (RSA 1024,
 * or EC on curve, an mbedtls_ecp_group_id) at the start of out; returns
 * its length. Asserts (Criterion) that mbedTLS made it. */
size_t cep_test_foreign_pub(mbedtls_pk_type_t type, int curve, uint8_t *out,
    size_t cap);

#endif
