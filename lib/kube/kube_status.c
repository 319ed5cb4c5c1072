/*
 * kube_status.c - the one place where what went wrong below the Kubernetes
 * client becomes a cep_err: an API Status (or any error body) by HTTP code
 * and reason, and a libcurl failure. Messages name the call ("create pods
 * shop/x"), quote the server's message with control characters blanked,
 * and are scrubbed of the handle's token.
 */
#define _GNU_SOURCE
#include "kube_int.h"
#include "http.h"

#include <stdio.h>
#include <string.h>

static const char *http_phrase(long http)
{
	switch (http) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 412: return "Precondition Failed";
	case 413: return "Request Entity Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "HTTP error";
	}
}

int cep_kube_status_code(long http, const char *reason)
{
	bool r = reason != NULL;
	if (r && strcmp(reason, "Expired") == 0)
		return CEP_OUT_OF_RANGE;
	if (http == 409)
		return r && strcmp(reason, "AlreadyExists") == 0 ?
		    CEP_ALREADY_EXISTS :
		    CEP_ABORTED;
	if (http == 504 || (r && strcmp(reason, "Timeout") == 0) || http == 408)
		return CEP_DEADLINE_EXCEEDED;
	switch (http) {
	case 400:
	case 415:
	case 422: return CEP_INVALID_ARGUMENT;
	case 401: return CEP_UNAUTHENTICATED;
	case 403: return CEP_PERMISSION_DENIED;
	case 404: return CEP_NOT_FOUND;
	case 405:
	case 501: return CEP_UNIMPLEMENTED;
	case 410: return CEP_OUT_OF_RANGE;
	case 412: return CEP_FAILED_PRECONDITION;
	case 413:
	case 429: return CEP_RESOURCE_EXHAUSTED;
	default: break;
	}
	if (http >= 500 && http <= 599)
		return CEP_UNAVAILABLE;
	return CEP_UNKNOWN;
}

void cep_kube_status_text(long http, json_t *body, char *buf, size_t len)
{
	const char *msg = NULL, *reason = NULL;
	if (json_is_object(body)) {
		msg = json_string_value(json_object_get(body, "message"));
		reason = json_string_value(json_object_get(body, "reason"));
	}
	char clean[400] = "";
	if (msg != NULL && msg[0] != '\0')
		cep_http_clean(clean, sizeof(clean), msg, strlen(msg));
	else if (reason != NULL)
		cep_http_clean(clean, sizeof(clean), reason, strlen(reason));
	if (clean[0] != '\0')
		snprintf(buf, len, "%ld %s: %s", http, http_phrase(http),
		    clean);
	else
		snprintf(buf, len, "%ld %s", http, http_phrase(http));
}

int cep_kube_http_err(cep_kube *k, cep_err *err, long http, const char *body,
    size_t len, const char *what)
{
	json_t *j = len > 0 ? json_loadb(body, len, 0, NULL) : NULL;
	char text[CEP_ERR_MSG_MAX];
	if (j != NULL || len == 0) {
		cep_kube_status_text(http, j, text, sizeof(text));
	} else {
		char raw[200];
		cep_http_clean(raw, sizeof(raw), body, len);
		snprintf(text, sizeof(text), "%ld %s: %s", http,
		    http_phrase(http), raw);
	}
	const char *reason = json_string_value(json_object_get(j, "reason"));
	int code = cep_kube_status_code(http, reason);
	json_decref(j);
	cep_err_set(err, code, "%s: %s", what, text);
	if (err != NULL)
		cep_kube_scrub(k, err->msg, sizeof(err->msg));
	return code;
}
