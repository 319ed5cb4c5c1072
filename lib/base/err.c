/* err.c - the status type and the translations from nng, mbedTLS, errno. */
#define _POSIX_C_SOURCE 200809L
#include "err.h"

#include <errno.h>
#include <nng/nng.h>
#include <mbedtls/error.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cep_err_set(cep_err *err, int code, const char *fmt, ...)
{
	if (err == NULL)
		return code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	err->code = code;
	return code;
}

int cep_err_wrap(cep_err *err, const char *fmt, ...)
{
	if (err == NULL)
		return CEP_UNKNOWN;
	char prefix[CEP_ERR_MSG_MAX], old[CEP_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	/* truncation is acceptable here: the head of the message matters most */
	size_t pl = strnlen(prefix, sizeof(err->msg) - 3);
	memcpy(err->msg, prefix, pl);
	memcpy(err->msg + pl, ": ", 2);
	size_t room = sizeof(err->msg) - pl - 3;
	size_t ol = strnlen(old, room);
	memcpy(err->msg + pl + 2, old, ol);
	err->msg[pl + 2 + ol] = '\0';
	return err->code;
}

void cep_err_clear(cep_err *err)
{
	if (err != NULL) {
		err->code = CEP_OK;
		err->msg[0] = '\0';
	}
}

const char *cep_code_name(int code)
{
	static const char *names[] = {
	    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
	    "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
	    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
	    "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	};
	if (code < 0 || code >= (int)(sizeof(names) / sizeof(names[0])))
		return "UNKNOWN";
	return names[code];
}

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

int cep_err_nng(cep_err *err, int nng_rv, const char *what)
{
	return cep_err_set(err, nng_to_code(nng_rv), "%s: %s", what,
	    nng_strerror(nng_rv));
}

int cep_err_mbedtls(cep_err *err, int rv, const char *what)
{
	char buf[160];
	mbedtls_strerror(rv, buf, sizeof(buf));
	return cep_err_set(err, CEP_INTERNAL, "%s: %s (-0x%04x)", what, buf,
	    (unsigned)-rv);
}

int cep_err_errno(cep_err *err, int errnum, const char *what)
{
	int code = CEP_INTERNAL;
	if (errnum == ENOENT)
		code = CEP_NOT_FOUND;
	else if (errnum == EACCES || errnum == EPERM)
		code = CEP_PERMISSION_DENIED;
	else if (errnum == EEXIST)
		code = CEP_ALREADY_EXISTS;
	else if (errnum == ENOSPC || errnum == ENOMEM)
		code = CEP_RESOURCE_EXHAUSTED;
	return cep_err_set(err, code, "%s: %s", what, strerror(errnum));
}
