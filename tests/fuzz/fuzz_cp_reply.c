/* fuzz_cp_reply.c - libFuzzer target: a control-plane answer as the client
 * reads it (cep_cp_reply_decode), without a network. The first two bytes pick
 * the HTTP status, the third the Content-Type, the fourth the reply type;
 * the rest is the body. Must never crash, leak or hang; an error always
 * names the method and host, and a message never holds control
 * characters (it reaches logs). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cep.pb-c.h"
#include "cp_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = {"application/x-protobuf",
	    "application/x-protobuf; charset=binary", "APPLICATION/X-PROTOBUF",
	    "text/html", "application/x-protobufx", NULL};
	static const ProtobufCMessageDescriptor *const descs[] =
	    {&cep__v1__cp_heartbeat_reply__descriptor,
	        &cep__v1__cp_tasks__descriptor,
	        &cep__v1__cp_commands__descriptor,
	        &cep__v1__cp_registered__descriptor};
	if (size < 4)
		return 0;
	/* mostly 200 and the mapped statuses, sometimes anything */
	long http = data[0] & 1 ? 200 :
	                          100 + (long)((data[0] << 8 | data[1]) % 500);
	const char *ct = types[data[2] % (sizeof(types) / sizeof(types[0]))];
	const ProtobufCMessageDescriptor *d = descs[data[3] % 4];
	ProtobufCMessage *m = NULL;
	cep_err err = {0};
	cep_cp_answer a = {.http = http,
	    .ctype = ct,
	    .body = data + 4,
	    .len = size - 4};
	int rc = cep_cp_reply_decode("Heartbeat", "plane.test:443", &a, d, &m,
	    &err);
	if (rc == CEP_OK) {
		if (m == NULL || http != 200)
			__builtin_trap();
		protobuf_c_message_free_unpacked(m, NULL);
		return 0;
	}
	if (m != NULL || strstr(err.msg, "Heartbeat") == NULL ||
	    strstr(err.msg, "plane.test:443") == NULL)
		__builtin_trap();
	for (const char *p = err.msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			__builtin_trap();
	return 0;
}
