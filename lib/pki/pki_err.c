/* pki_err.c - mbedTLS's error codes as cep statuses: the one
 * translation, for the CA and identities and for the bus's TLS (rpc). */
#include <mbedtls/error.h>

#include "pki.h"

int cep_pki_err_mbedtls(cep_err *err, int rv, const char *what)
{
	char buf[160];
	mbedtls_strerror(rv, buf, sizeof(buf));
	return cep_err_set(err, CEP_INTERNAL, "%s: %s (-0x%04x)", what, buf,
	    (unsigned)-rv);
}
