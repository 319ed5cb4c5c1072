/* admin_client.c - cepctl's connection to the delegate's Admin service. */
#define _GNU_SOURCE
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "run_id.h"

struct cepctl_admin {
	cep_rpc_client *rpc;
	char url[512];
};

int cepctl_admin_open(const cepctl_opts *o, cepctl_admin **out, cep_err *err)
{
	cep_paths p;
	int rv = cep_paths_resolve(o->home, &p, err);
	if (rv != CEP_OK)
		return rv;
	cepctl_admin *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	rv = cep_paths_url(&p, "admin.sock", a->url, sizeof(a->url), err);
	if (rv == CEP_OK)
		rv = cep_rpc_client_new(&a->rpc, a->url, NULL, err);
	if (rv != CEP_OK) {
		free(a);
		return rv;
	}
	*out = a;
	return CEP_OK;
}

void cepctl_admin_close(cepctl_admin *a)
{
	if (a == NULL)
		return;
	cep_rpc_client_free(a->rpc);
	free(a);
}

/* The client dials in the background: the first call after start may find
 * no connection yet, so UNAVAILABLE is retried for a moment. */
int cepctl_admin_call(cepctl_admin *a, const char *method,
    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
    ProtobufCMessage **reply, int timeout_ms, cep_err *err)
{
	char full[128];
	snprintf(full, sizeof(full), "cep.v1.Admin/%s", method);
	/* long enough to ride out a delegate restart or an ipc listener
	 * being re-created (lib/rpc/rpc_guard.c) */
	int64_t give_up = cep_clock_mono_ms() + 10000;
	for (int attempt = 0;; attempt++) {
		int rv = cep_rpc_invoke(a->rpc, full, req, reply_desc, reply,
		    timeout_ms, err);
		if (rv != CEP_UNAVAILABLE || cep_clock_mono_ms() > give_up) {
			if (rv == CEP_UNAVAILABLE) {
				char why[CEP_ERR_MSG_MAX];
				snprintf(why, sizeof(why), "%s", err->msg);
				cep_err_set(err, rv,
				    "cannot reach the delegate at "
				    "%s: is cep-delegate running? (%s)",
				    a->url, why);
			}
			return rv;
		}
		cep_clock_sleep_ms(cep_rpc_backoff_ms(attempt, 50, 400));
	}
}

int cepctl_admin_submit(cepctl_admin *a, const char *yaml, const char *name,
    cep_run_id *run_id, cep_err *err)
{
	Cep__V1__SubmitRequest req = CEP__V1__SUBMIT_REQUEST__INIT;
	req.spec_yaml = (char *)yaml;
	req.spec_name = (char *)name;
	Cep__V1__SubmitReply *rep = NULL;
	int rv = cepctl_admin_call(a, "Submit", &req.base,
	    &cep__v1__submit_reply__descriptor, (ProtobufCMessage **)&rep,
	    15000, err);
	if (rv != CEP_OK)
		return rv;
	bool ok = cep_run_id_parse(run_id, rep->run_id);
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	return ok ? CEP_OK :
	            cep_err_set(err, CEP_INTERNAL,
	                "the delegate "
	                "answered Submit without a valid run id");
}

int cepctl_admin_wait_relay(cepctl_admin *a, int timeout_ms, cep_err *err)
{
	Cep__V1__StatusRequest req = CEP__V1__STATUS_REQUEST__INIT;
	int64_t give_up = cep_clock_mono_ms() + timeout_ms;
	do {
		ProtobufCMessage *st = NULL;
		if (cepctl_admin_call(a, "Status", &req.base,
		        &cep__v1__status_reply__descriptor, &st, 2000,
		        err) == CEP_OK) {
			bool ok = ((Cep__V1__StatusReply *)st)->relay_ok;
			protobuf_c_message_free_unpacked(st, NULL);
			if (ok)
				return CEP_OK;
		}
		cep_clock_sleep_ms(100);
	} while (cep_clock_mono_ms() < give_up);
	return cep_err_set(err, CEP_UNAVAILABLE,
	    "the delegate or relay at %s "
	    "did not come up within %d ms",
	    a->url, timeout_ms);
}

int cepctl_bindir(char *buf, size_t len, cep_err *err)
{
	return cep_paths_beside_self(NULL, buf, len, err);
}
