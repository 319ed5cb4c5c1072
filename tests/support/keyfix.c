/*
 * keyfix.c - keys made outside lib/pki for tests; see keyfix.h.
 */
#include "keyfix.h"

#include <criterion/criterion.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/rsa.h>
#include <string.h>

size_t cep_test_foreign_pub(mbedtls_pk_type_t type, int curve, uint8_t *out,
    size_t cap)
{
	mbedtls_pk_context pk;
	mbedtls_entropy_context ent;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_pk_init(&pk);
	mbedtls_entropy_init(&ent);
	mbedtls_ctr_drbg_init(&drbg);
	cr_assert_eq(mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent,
	                 NULL, 0),
	    0);
	cr_assert_eq(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(type)), 0);
	if (type == MBEDTLS_PK_RSA)
		cr_assert_eq(mbedtls_rsa_gen_key(mbedtls_pk_rsa(pk),
		                 mbedtls_ctr_drbg_random, &drbg, 1024, 65537),
		    0);
	else
		cr_assert_eq(mbedtls_ecp_gen_key((mbedtls_ecp_group_id)curve,
		                 mbedtls_pk_ec(pk), mbedtls_ctr_drbg_random,
		                 &drbg),
		    0);
	int n = mbedtls_pk_write_pubkey_der(&pk, out, cap);
	cr_assert_gt(n, 0);
	memmove(out, out + cap - (size_t)n, (size_t)n);
	mbedtls_pk_free(&pk);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&ent);
	return (size_t)n;
}
