/* rpc_err.c - nng's error codes as cep statuses: the one translation, for
 * the bus and for the other module that speaks nng (metrics' endpoint). */
#include <nng/nng.h>

#include "rpc.h"

/* nng errors map onto the status a caller would retry or give up on. */
static int nng_to_code(int rv)
{
	switch (rv) {
	case NNG_ETIMEDOUT: return CEP_DEADLINE_EXCEEDED;
	case NNG_ECONNREFUSED:
	case NNG_ECONNRESET:
	case NNG_ECONNSHUT:
	case NNG_ECLOSED:
	case NNG_EADDRINVAL:
	case NNG_EUNREACHABLE: return CEP_UNAVAILABLE;
	case NNG_ENOMEM: return CEP_RESOURCE_EXHAUSTED;
	case NNG_EMSGSIZE: return CEP_RESOURCE_EXHAUSTED;
	case NNG_ECANCELED: return CEP_CANCELLED;
	case NNG_EINVAL: return CEP_INVALID_ARGUMENT;
	case NNG_EPERM: return CEP_PERMISSION_DENIED;
	case NNG_ECRYPTO:
	case NNG_EPEERAUTH: return CEP_UNAUTHENTICATED;
	case NNG_EADDRINUSE: return CEP_ALREADY_EXISTS;
	case NNG_ENOENT: return CEP_NOT_FOUND;
	case NNG_ENOTSUP: return CEP_UNIMPLEMENTED;
	default: return CEP_UNKNOWN;
	}
}

int cep_rpc_err_nng(cep_err *err, int nng_rv, const char *what)
{
	return cep_err_set(err, nng_to_code(nng_rv), "%s: %s", what,
	    nng_strerror(nng_rv));
}
