/*
 * test_rpc_dup.c - cep_rpc_msg_dup, the one deep copy of a protobuf-c
 * message (the delegate's run table and the relay's registry keep copies
 * of what callers hand them): equal in content, sharing no memory.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "cep.pb-c.h"
#include "rpc.h"

Test(rpc_dup, deep_copy_shares_nothing)
{
	char run_id[] = "r-0123456789abcdef", text[] = "probe ok";
	char verdict[] = "Pass", reason[] = "all probes passed";
	Cep__V1__Verdict v = CEP__V1__VERDICT__INIT;
	v.verdict = verdict;
	v.score = 87.5;
	v.reason = reason;
	Cep__V1__Event ev = CEP__V1__EVENT__INIT;
	ev.run_id = run_id;
	ev.seq = 42;
	ev.text = text;
	ev.verdict = &v;
	Cep__V1__Event *c = (Cep__V1__Event *)cep_rpc_msg_dup(&ev.base);
	cr_assert_not_null(c);
	cr_assert_eq(c->base.descriptor, &cep__v1__event__descriptor);
	cr_assert_eq(c->seq, 42);
	cr_assert_not_null(c->verdict);
	cr_assert(c->verdict != &v && c->run_id != run_id && c->text != text,
	    "the copy points into the original");
	/* the original changes (or goes away): the copy does not */
	run_id[0] = 'X';
	text[0] = 'X';
	verdict[0] = 'X';
	v.score = 0;
	cr_assert_str_eq(c->run_id, "r-0123456789abcdef");
	cr_assert_str_eq(c->text, "probe ok");
	cr_assert_str_eq(c->verdict->verdict, "Pass");
	cr_assert_str_eq(c->verdict->reason, "all probes passed");
	cr_assert_float_eq(c->verdict->score, 87.5, 1e-9);
	/* owned as an unpacked message: freed like one (ASan checks) */
	cep__v1__event__free_unpacked(c, NULL);
}

Test(rpc_dup, empty_message)
{
	Cep__V1__Event ev = CEP__V1__EVENT__INIT;
	Cep__V1__Event *c = (Cep__V1__Event *)cep_rpc_msg_dup(&ev.base);
	cr_assert_not_null(c, "a message that packs to 0 bytes still copies");
	cr_assert_eq(c->seq, 0);
	cr_assert_null(c->verdict);
	cep__v1__event__free_unpacked(c, NULL);
}
