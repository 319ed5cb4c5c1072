/*
 * test_rpc_dispatch.c - virtual calls (cep_rpc_server_dispatch): frames
 * that did not come over nng, as the relay's HTTPS tunnel hands them in.
 * The server needs no listener for these. Also the tunnel client's
 * envelope helpers (cep_rpc_request_pack, cep_rpc_reply_unpack).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cep.pb-c.h"
#include "rpc.h"
#include "testutil.h"
#include "clock.h"

/* Echo: what the handler saw of its caller, "<run_id>|<verified>|<peer>|
 * <pipe>", as the nonce of a ChallengeReply. */
static void h_echo(cep_rpc_call *c, void *arg)
{
	(void)arg;
	const Cep__V1__ChallengeRequest *rq =
	    (const Cep__V1__ChallengeRequest *)cep_rpc_call_request(c);
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "%s|%d|%s|%u", rq->run_id,
	    cep_rpc_call_peer_verified(c), cep_rpc_call_peer(c),
	    cep_rpc_call_pipe(c).id);
	Cep__V1__ChallengeReply rep = CEP__V1__CHALLENGE_REPLY__INIT;
	rep.nonce.data = (uint8_t *)buf;
	rep.nonce.len = (size_t)n;
	cep_rpc_call_reply(c, &rep.base);
}

/* Held: answered by the test (or by the server at free). */
static cep_rpc_call *_Atomic held;
static void h_hold(cep_rpc_call *c, void *arg)
{
	(void)arg;
	held = c;
}

static const cep_rpc_method methods[] = {
    {"cep.v1.Test/Echo", &cep__v1__challenge_request__descriptor, h_echo},
    {"cep.v1.Test/Hold", &cep__v1__challenge_request__descriptor, h_hold},
};

/* Where replies land: one slot, filled by out(). */
typedef struct sink {
	pthread_mutex_t mu;
	int calls;
	uint8_t *buf;
	size_t len;
} sink;

static void out(const uint8_t *frame, size_t len, void *arg)
{
	sink *k = arg;
	pthread_mutex_lock(&k->mu);
	k->calls++;
	free(k->buf);
	k->buf = malloc(len ? len : 1);
	memcpy(k->buf, frame, len);
	k->len = len;
	pthread_mutex_unlock(&k->mu);
}

static int sink_wait(sink *k, int n)
{
	int64_t until = cep_clock_mono_ms() + 10000;
	for (;;) {
		pthread_mutex_lock(&k->mu);
		int got = k->calls;
		pthread_mutex_unlock(&k->mu);
		if (got >= n || cep_clock_mono_ms() > until)
			return got;
		cep_clock_sleep_ms(5);
	}
}

static cep_rpc_server *server(void)
{
	cep_rpc_server *s = NULL;
	cep_err err;
	cep_rpc_server_opts o = {.name = "virtual", .workers = 2};
	cr_assert_eq(cep_rpc_server_new(&s, methods, 2, NULL, &o, &err), CEP_OK,
	    "%s", err.msg);
	return s;
}

/* The status and body of the reply in k, read as a client would. */
static int reply_of(sink *k, uint64_t id, Cep__V1__ChallengeReply **rep,
    cep_err *err)
{
	return cep_rpc_reply_unpack(k->buf, k->len, id, "test",
	    &cep__v1__challenge_reply__descriptor, (ProtobufCMessage **)rep,
	    err);
}

Test(rpc_dispatch, call_runs_with_the_given_pipe_and_peer)
{
	cep_rpc_server *s = server();
	Cep__V1__ChallengeRequest rq = CEP__V1__CHALLENGE_REQUEST__INIT;
	rq.run_id = "r-1";
	uint8_t *frame;
	size_t len;
	cep_err err;
	cr_assert_eq(cep_rpc_request_pack("cep.v1.Test/Echo", 77, 1000,
	                 &rq.base, &frame, &len, &err),
	    CEP_OK);
	sink k = {.mu = PTHREAD_MUTEX_INITIALIZER};
	cep_rpc_server_dispatch(s, (cep_pipe_id){5}, true, "tunnel:r-1", frame,
	    len, out, &k);
	free(frame);
	cr_assert_eq(sink_wait(&k, 1), 1);
	Cep__V1__ChallengeReply *rep = NULL;
	cr_assert_eq(reply_of(&k, 77, &rep, &err), CEP_OK, "%s", err.msg);
	char want[64];
	snprintf(want, sizeof(want), "r-1|1|tunnel:r-1|%u",
	    5u | CEP_RPC_VIRTUAL_PIPE);
	cr_assert_eq(rep->nonce.len, strlen(want));
	cr_assert(memcmp(rep->nonce.data, want, strlen(want)) == 0);
	cep__v1__challenge_reply__free_unpacked(rep, NULL);
	/* a wrong call id is the client's to notice */
	cr_assert_eq(reply_of(&k, 78, &rep, &err), CEP_INTERNAL);
	cep_rpc_stats st;
	cep_rpc_server_stats(s, &st);
	cr_assert_eq(st.calls, 1);
	cr_assert_eq(st.ok, 1);
	cep_rpc_server_free(s);
	free(k.buf);
}

/* Hostile frames are answered at once, from the dispatching thread, with
 * the same codes as over nng - and nothing reaches a handler. */
Test(rpc_dispatch, bad_frames_answered_at_once)
{
	cep_rpc_server *s = server();
	sink k = {.mu = PTHREAD_MUTEX_INITIALIZER};
	cep_err err;
	Cep__V1__ChallengeReply *rep = NULL;
	uint8_t junk[] = {0x0a, 0xff, 0x01};
	cep_rpc_server_dispatch(s, (cep_pipe_id){1}, true, "x", junk,
	    sizeof(junk), out, &k);
	cr_assert_eq(k.calls, 1);
	cr_assert_eq(reply_of(&k, 0, &rep, &err), CEP_INVALID_ARGUMENT);
	cr_assert_str_eq(err.msg, "malformed envelope");

	uint8_t *frame;
	size_t len;
	cr_assert_eq(cep_rpc_request_pack("cep.v1.Test/Nope", 3, 0, NULL,
	                 &frame, &len, &err),
	    CEP_OK);
	cep_rpc_server_dispatch(s, (cep_pipe_id){1}, true, "x", frame, len, out,
	    &k);
	free(frame);
	cr_assert_eq(k.calls, 2);
	cr_assert_eq(reply_of(&k, 3, &rep, &err), CEP_UNIMPLEMENTED);

	/* a body that is not the method's request */
	Cep__V1__Envelope env = CEP__V1__ENVELOPE__INIT;
	env.method = "cep.v1.Test/Echo";
	env.call_id = 4;
	env.body.data = junk;
	env.body.len = sizeof(junk);
	uint8_t buf[128];
	len = cep__v1__envelope__pack(&env, buf);
	cep_rpc_server_dispatch(s, (cep_pipe_id){1}, true, "x", buf, len, out,
	    &k);
	cr_assert_eq(k.calls, 3);
	cr_assert_eq(reply_of(&k, 4, &rep, &err), CEP_INVALID_ARGUMENT);

	/* oversized: refused before decoding */
	size_t big = CEP_RPC_MAX_MSG + 1;
	uint8_t *huge = calloc(1, big);
	cep_rpc_server_dispatch(s, (cep_pipe_id){1}, true, "x", huge, big, out,
	    &k);
	free(huge);
	cr_assert_eq(k.calls, 4);
	cr_assert_eq(reply_of(&k, 0, &rep, &err), CEP_RESOURCE_EXHAUSTED);
	cep_rpc_stats st;
	cep_rpc_server_stats(s, &st);
	cr_assert_eq(st.malformed, 2);
	cr_assert_eq(st.unknown_method, 1);
	cr_assert_eq(st.oversized, 1);
	cr_assert_eq(st.ok + st.failed, 0);
	cep_rpc_server_free(s);
	free(k.buf);
}

/* A held virtual call is answered later from another thread; one still
 * held when the server goes is answered UNAVAILABLE - out runs once. */
Test(rpc_dispatch, held_calls_answered_later_or_at_free)
{
	cep_rpc_server *s = server();
	sink k = {.mu = PTHREAD_MUTEX_INITIALIZER};
	cep_err err;
	Cep__V1__ChallengeRequest rq = CEP__V1__CHALLENGE_REQUEST__INIT;
	rq.run_id = "r-2";
	uint8_t *frame;
	size_t len;
	cr_assert_eq(cep_rpc_request_pack("cep.v1.Test/Hold", 9, 0, &rq.base,
	                 &frame, &len, &err),
	    CEP_OK);
	held = NULL;
	cep_rpc_server_dispatch(s, (cep_pipe_id){2}, false, "x", frame, len,
	    out, &k);
	int64_t until = cep_clock_mono_ms() + 10000;
	while (held == NULL && cep_clock_mono_ms() < until)
		cep_clock_sleep_ms(5);
	cr_assert_not_null(held);
	cr_assert_eq(k.calls, 0);
	cep_rpc_call_fail(held, CEP_ABORTED, "later");
	cr_assert_eq(k.calls, 1);
	Cep__V1__ChallengeReply *rep = NULL;
	cr_assert_eq(reply_of(&k, 9, &rep, &err), CEP_ABORTED);
	cr_assert_str_eq(err.msg, "later");

	held = NULL;
	cep_rpc_server_dispatch(s, (cep_pipe_id){2}, false, "x", frame, len,
	    out, &k);
	free(frame);
	until = cep_clock_mono_ms() + 10000;
	while (held == NULL && cep_clock_mono_ms() < until)
		cep_clock_sleep_ms(5);
	cr_assert_not_null(held);
	cep_rpc_server_free(s);
	cr_assert_eq(k.calls, 2);
	cr_assert_eq(reply_of(&k, 9, &rep, &err), CEP_UNAVAILABLE);
	free(k.buf);
}

/* A virtual pipe is never closed as if it were an nng pipe. */
/* Echo over a real ipc connection: the pipe id the server saw, 0 when
 * the call failed (a connection closing under it). */
static uint32_t try_echo_pipe(cep_rpc_client *c)
{
	Cep__V1__ChallengeRequest rq = CEP__V1__CHALLENGE_REQUEST__INIT;
	rq.run_id = "r-1";
	ProtobufCMessage *out = NULL;
	cep_err err;
	if (cep_rpc_invoke(c, "cep.v1.Test/Echo", &rq.base,
	        &cep__v1__challenge_reply__descriptor, &out, 2000,
	        &err) != CEP_OK)
		return 0;
	const Cep__V1__ChallengeReply *rep = (const void *)out;
	char text[256];
	snprintf(text, sizeof(text), "%.*s", (int)rep->nonce.len,
	    (const char *)rep->nonce.data);
	protobuf_c_message_free_unpacked(out, NULL);
	const char *bar = strrchr(text, '|');
	return bar != NULL ? (uint32_t)strtoul(bar + 1, NULL, 10) : 0;
}

/* Echo over a real ipc connection: the pipe id the server saw. */
static uint32_t echo_pipe(cep_rpc_client *c)
{
	Cep__V1__ChallengeRequest rq = CEP__V1__CHALLENGE_REQUEST__INIT;
	rq.run_id = "r-1";
	ProtobufCMessage *out = NULL;
	cep_err err;
	cr_assert_eq(cep_rpc_invoke(c, "cep.v1.Test/Echo", &rq.base,
	                 &cep__v1__challenge_reply__descriptor, &out, 5000,
	                 &err),
	    CEP_OK, "%s", err.msg);
	const Cep__V1__ChallengeReply *rep = (const void *)out;
	char text[256];
	snprintf(text, sizeof(text), "%.*s", (int)rep->nonce.len,
	    (const char *)rep->nonce.data);
	protobuf_c_message_free_unpacked(out, NULL);
	const char *bar = strrchr(text, '|');
	cr_assert_not_null(bar, "%s", text);
	return (uint32_t)strtoul(bar + 1, NULL, 10);
}

static uint32_t pipes_now(cep_rpc_server *s)
{
	cep_rpc_stats st;
	cep_rpc_server_stats(s, &st);
	return st.pipes;
}

/* A virtual id whose low bits name a real pipe must not close it (the
 * tunnel picks virtual ids; nng's are global); the real id does. */
Test(rpc_dispatch, close_pipe_ignores_virtual_ids)
{
	cep_rpc_server *s = server();
	char *dir = cep_test_tmpdir("rpcclose");
	char url[600];
	snprintf(url, sizeof(url), "ipc://%s/s.sock", dir);
	cep_err err;
	cr_assert_eq(cep_rpc_server_listen(s, url, NULL, &err), CEP_OK, "%s",
	    err.msg);
	cep_rpc_client *c = NULL;
	cr_assert_eq(cep_rpc_client_new(&c, url, NULL, &err), CEP_OK, "%s",
	    err.msg);
	uint32_t pipe = echo_pipe(c);
	cr_assert(pipe != 0 && (pipe & CEP_RPC_VIRTUAL_PIPE) == 0, "%u", pipe);
	cr_assert_eq(pipes_now(s), 1);
	cep_rpc_server_close_pipe(s,
	    (cep_pipe_id){pipe | CEP_RPC_VIRTUAL_PIPE});
	cep_clock_sleep_ms(200);
	cr_assert_eq(pipes_now(s), 1, "a virtual id closed a real pipe");
	cr_assert_eq(echo_pipe(c), pipe, "the connection was replaced");
	/* nng closes asynchronously and the client redials at once: the
	 * closed connection shows as calls answered on a new pipe */
	cep_rpc_server_close_pipe(s, (cep_pipe_id){pipe});
	uint32_t again = pipe;
	int64_t until = cep_clock_mono_ms() + 5000;
	while ((again == pipe || again == 0) && cep_clock_mono_ms() < until) {
		again = try_echo_pipe(c);
		if (again == pipe || again == 0)
			cep_clock_sleep_ms(20);
	}
	cep_rpc_client_free(c);
	cr_assert(again != pipe && again != 0,
	    "the real id did not close its pipe (%u)", again);
	cep_rpc_server_free(s);
	cep_test_rmdir(dir);
}

/* A reply's error text is the peer's: through the tunnel the control
 * plane could forge it, and it reaches logs (found by fuzz_cp_tunnel). */
Test(rpc_dispatch, reply_error_text_loses_control_characters)
{
	Cep__V1__Envelope env = CEP__V1__ENVELOPE__INIT;
	env.call_id = 5;
	env.code = CEP_PERMISSION_DENIED;
	env.error = "denied\x1b[2J\r\nlevel=info msg=forged\x7f";
	uint8_t buf[256];
	size_t len = cep__v1__envelope__pack(&env, buf);
	cep_err err;
	cr_assert_eq(cep_rpc_reply_unpack(buf, len, 5, "test", NULL, NULL,
	                 &err),
	    CEP_PERMISSION_DENIED);
	cr_assert_str_eq(err.msg, "denied [2J  level=info msg=forged ");
}
