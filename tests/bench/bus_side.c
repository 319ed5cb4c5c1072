/*
 * bus_side.c - the cep side of the bus benchmarks (bus_side.h): handlers,
 * the server, the calls as a caller makes them, the certificates.
 */
#define _GNU_SOURCE
#include "bus_side.h"

#include <stdlib.h>
#include <string.h>

#include "cep.pb-c.h"
#include "clock.h"
#include "pki.h"
#include "rpc.h"

#define CALL_MS 5000
/* Echo's reply: a nonce-sized answer, whatever the request's size. */
#define ECHO_REPLY_MAX 16

static void h_echo(cep_rpc_call *c, void *arg)
{
	(void)arg;
	const Cep__V1__ChallengeRequest *rq =
	    (const Cep__V1__ChallengeRequest *)cep_rpc_call_request(c);
	Cep__V1__ChallengeReply rep = CEP__V1__CHALLENGE_REPLY__INIT;
	size_t n = strlen(rq->run_id);
	rep.nonce.data = (uint8_t *)rq->run_id;
	rep.nonce.len = n < ECHO_REPLY_MAX ? n : ECHO_REPLY_MAX;
	cep_rpc_call_reply(c, &rep.base);
}

void bbus_ack_batch(cep_rpc_call *c, void *arg)
{
	(void)arg;
	const Cep__V1__EventBatch *b = (const Cep__V1__EventBatch *)
	    cep_rpc_call_request(c);
	Cep__V1__EventAck ack = CEP__V1__EVENT_ACK__INIT;
	if (b->n_events > 0)
		ack.acked_seq = b->events[b->n_events - 1]->seq;
	cep_rpc_call_reply(c, &ack.base);
}

static const cep_rpc_method methods[] = {
    {"cep.v1.Bench/Echo", &cep__v1__challenge_request__descriptor, h_echo},
    {"cep.v1.Bench/Push", &cep__v1__event_batch__descriptor, bbus_ack_batch},
};

int bbus_server_new(cep_rpc_server **out, cep_err *err)
{
	cep_rpc_server_opts o = {.name = "bench", .workers = 2};
	return cep_rpc_server_new(out, methods, 2, NULL, &o, err);
}

int bbus_echo(cep_rpc_client *c, const char *payload, cep_err *err)
{
	Cep__V1__ChallengeRequest rq = CEP__V1__CHALLENGE_REQUEST__INIT;
	rq.run_id = (char *)payload;
	ProtobufCMessage *rep = NULL;
	int rv = cep_rpc_invoke(c, "cep.v1.Bench/Echo", &rq.base,
	    &cep__v1__challenge_reply__descriptor, &rep, CALL_MS, err);
	if (rep != NULL)
		protobuf_c_message_free_unpacked(rep, NULL);
	return rv;
}

struct bbus_batch {
	Cep__V1__Event ev[BBUS_BATCH];
	Cep__V1__Event *evp[BBUS_BATCH];
	Cep__V1__EventBatch b;
	uint64_t seq;
};

bbus_batch *bbus_batch_new(void)
{
	static char text[] = BBUS_EVENT_TEXT;
	static char run_id[] = BBUS_RUN_ID;
	bbus_batch *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	for (int i = 0; i < BBUS_BATCH; i++) {
		cep__v1__event__init(&b->ev[i]);
		b->ev[i].run_id = run_id;
		b->ev[i].type = CEP__V1__EVENT_TYPE__EVENT_LOG;
		b->ev[i].text = text;
		b->evp[i] = &b->ev[i];
	}
	cep__v1__event_batch__init(&b->b);
	b->b.run_id = run_id;
	b->b.events = b->evp;
	b->b.n_events = BBUS_BATCH;
	return b;
}

void bbus_batch_free(bbus_batch *b)
{
	free(b);
}

int bbus_push(cep_rpc_client *c, bbus_batch *b, size_t *bytes, cep_err *err)
{
	for (int i = 0; i < BBUS_BATCH; i++) {
		b->ev[i].seq = ++b->seq;
		b->ev[i].time_ms = cep_clock_now_ms();
	}
	Cep__V1__EventAck *ack = NULL;
	int rv = cep_rpc_invoke(c, "cep.v1.Bench/Push", &b->b.base,
	    &cep__v1__event_ack__descriptor, (ProtobufCMessage **)&ack, CALL_MS,
	    err);
	if (rv != CEP_OK)
		return rv;
	if (ack->acked_seq != b->seq)
		rv = cep_err_set(err, CEP_INTERNAL,
		    "Push: acked %llu, sent %llu",
		    (unsigned long long)ack->acked_seq,
		    (unsigned long long)b->seq);
	cep__v1__event_ack__free_unpacked(ack, NULL);
	if (bytes != NULL)
		*bytes = cep__v1__event_batch__get_packed_size(&b->b);
	return rv;
}

int bbus_tls_make(const char *dir, bbus_tls *t, cep_err *err)
{
	static const char *const dns[] = {"localhost", NULL};
	cep_pki_ca *ca;
	memset(t, 0, sizeof(*t));
	if (cep_pki_ca_create(dir, "bench", err) != CEP_OK ||
	    cep_pki_ca_load(&ca, dir, err) != CEP_OK)
		return err->code;
	t->ca = strdup(cep_pki_ca_cert_pem(ca));
	cep_pki_issue_req s = {.cn = "relay",
	    .dns = dns,
	    .server = 1,
	    .not_after_ms = cep_clock_now_ms() + 3600000};
	cep_pki_issue_req c = {.cn = "runner",
	    .not_after_ms = cep_clock_now_ms() + 3600000};
	int rv = cep_pki_issue(ca, &s, &t->srv_cert, &t->srv_key, err);
	if (rv == CEP_OK)
		rv = cep_pki_issue(ca, &c, &t->cli_cert, &t->cli_key, err);
	cep_pki_ca_free(ca);
	if (rv == CEP_OK && t->ca == NULL)
		rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "no memory");
	return rv;
}

void bbus_tls_free(bbus_tls *t)
{
	free(t->ca);
	free(t->srv_cert);
	free(t->cli_cert);
	cep_pki_free_secret(t->srv_key);
	cep_pki_free_secret(t->cli_key);
	memset(t, 0, sizeof(*t));
}

int bbus_arg_int(int argc, char **argv, const char *flag, int def)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], flag) == 0) {
			char *end;
			long v = strtol(argv[i + 1], &end, 10);
			if (*end == '\0' && v > 0 && v < 1000000)
				return (int)v;
		}
	return def;
}
