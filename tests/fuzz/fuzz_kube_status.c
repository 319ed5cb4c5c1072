/* fuzz_kube_status.c - libFuzzer target: what an API server sends back
 * when things go wrong, as the client reads it: an error body (Status or
 * anything) -> message and code, and a watch stream line -> event. The
 * first two bytes are the HTTP status. Must never crash, leak or hang, and
 * a message never holds control characters (it reaches logs). */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kube_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	long http = 100 + (long)((data[0] << 8 | data[1]) % 500);
	const char *body = (const char *)data + 2;
	size_t len = size - 2;

	json_t *j = json_loadb(body, len, 0, NULL);
	char text[CEP_ERR_MSG_MAX];
	cep_kube_status_text(http, j, text, sizeof(text));
	for (const char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20)
			__builtin_trap();
	const char *reason = json_string_value(json_object_get(j, "reason"));
	int code = cep_kube_status_code(http, reason);
	if (code <= CEP_OK || code > CEP_UNAUTHENTICATED)
		__builtin_trap();
	json_decref(j);

	cep_err err;
	int rc = cep_kube_http_err(NULL, &err, http, body, len, "fuzz");
	if (rc == CEP_OK || strncmp(err.msg, "fuzz: ", 6) != 0)
		__builtin_trap();
	for (const char *p = err.msg; *p; p++)
		if ((unsigned char)*p < 0x20)
			__builtin_trap();

	json_t *ev = NULL, *obj = NULL;
	const char *type = NULL;
	if (cep_kube_watch_event_parse(body, len, &ev, &type, &obj, &err) ==
	    CEP_OK) {
		if (type == NULL || !json_is_object(obj))
			__builtin_trap();
		json_decref(ev);
	}
	return 0;
}
