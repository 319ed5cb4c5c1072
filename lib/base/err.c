/* err.c - the status type and the translation from errno. nng's codes
 * are translated in rpc (rpc_err.c), mbedTLS's in pki (pki_err.c): base
 * links neither. */
#define _POSIX_C_SOURCE 200809L
#include "err.h"

#include <errno.h>
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

const char *cep_err_code_name(int code)
{
	static const char *names[] = {
	    "OK",
	    "CANCELLED",
	    "UNKNOWN",
	    "INVALID_ARGUMENT",
	    "DEADLINE_EXCEEDED",
	    "NOT_FOUND",
	    "ALREADY_EXISTS",
	    "PERMISSION_DENIED",
	    "RESOURCE_EXHAUSTED",
	    "FAILED_PRECONDITION",
	    "ABORTED",
	    "OUT_OF_RANGE",
	    "UNIMPLEMENTED",
	    "INTERNAL",
	    "UNAVAILABLE",
	    "DATA_LOSS",
	    "UNAUTHENTICATED",
	};
	if (code < 0 || code >= (int)(sizeof(names) / sizeof(names[0])))
		return "UNKNOWN";
	return names[code];
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
	else if (errnum == ENOSPC || errnum == EDQUOT || errnum == ENOMEM)
		code = CEP_RESOURCE_EXHAUSTED;
	return cep_err_set(err, code, "%s: %s", what, strerror(errnum));
}
