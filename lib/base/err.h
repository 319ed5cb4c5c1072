/*
 * err.h - the one status type of cep.
 *
 * Every fallible function in lib/ returns an int status (0 = CEP_OK) and,
 * when it fails, fills a cep_err the caller passes in. Codes are gRPC's so
 * that a status crosses the RPC layer unchanged. The message says what was
 * wrong and where, in words a user can act on; it never holds secrets.
 * One translation function per outside library lives here too.
 */
#ifndef CEP_ERR_H
#define CEP_ERR_H

#include <stddef.h>

enum cep_code {
	CEP_OK = 0,
	CEP_CANCELLED = 1,
	CEP_UNKNOWN = 2,
	CEP_INVALID_ARGUMENT = 3,
	CEP_DEADLINE_EXCEEDED = 4,
	CEP_NOT_FOUND = 5,
	CEP_ALREADY_EXISTS = 6,
	CEP_PERMISSION_DENIED = 7,
	CEP_RESOURCE_EXHAUSTED = 8,
	CEP_FAILED_PRECONDITION = 9,
	CEP_ABORTED = 10,
	CEP_OUT_OF_RANGE = 11,
	CEP_UNIMPLEMENTED = 12,
	CEP_INTERNAL = 13,
	CEP_UNAVAILABLE = 14,
	CEP_DATA_LOSS = 15,
	CEP_UNAUTHENTICATED = 16,
};

#define CEP_ERR_MSG_MAX 512

typedef struct cep_err {
	int code;
	char msg[CEP_ERR_MSG_MAX];
} cep_err;

/* Sets err (if not NULL) and returns code, so error paths are one line:
 *     return cep_err_set(err, CEP_INVALID_ARGUMENT, "%s:%d: ...", f, l); */
int cep_err_set(cep_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message: "loading x.yaml: <old message>". */
int cep_err_wrap(cep_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void cep_err_clear(cep_err *err);

/* "INVALID_ARGUMENT", ... */
const char *cep_err_code_name(int code);

int cep_err_errno(cep_err *err, int errnum, const char *what);

#endif
