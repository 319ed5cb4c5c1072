/*
 * test_relay.c - the relay between a fake delegate and test runners: the
 * happy path, every refusal (logged, counted, no effect on the delegate,
 * the relay still serving good runners afterwards), runs leaving, a
 * missing delegate, and start-up checks. Harness: relay_harness.c.
 */
#define _GNU_SOURCE
#include "relay_harness.c"

TestSuite(relay, .init = setup, .fini = teardown, .timeout = 60);

Test(relay, happy_path)
{
	cep_err err = {0};
	runner *rn = runner_new(1, E.ca, 0, 0);
	grant(rn);
	sync_grants();
	runner_connect(rn);
	cr_assert_eq(runner_prove(rn, false, &err), 0, "Prove: %s", err.msg);
	pthread_mutex_lock(&E.fd.mu);
	cr_assert_eq(E.fd.connected, 1);
	cr_assert_str_eq(E.fd.last_connected, rn->run_id);
	pthread_mutex_unlock(&E.fd.mu);

	Cep__V1__Assignment *asg = NULL;
	cr_assert_eq(get_assignment(rn, rn->run_id, &err, &asg), 0, "%s",
	    err.msg);
	cr_assert_str_eq(asg->run_id, rn->run_id);
	cr_assert(strncmp(asg->spec_name, "exp-", 4) == 0);
	cr_assert_eq(asg->deadman_ms, 10000);
	protobuf_c_message_free_unpacked(&asg->base, NULL);

	uint64_t acked = 0;
	cr_assert_eq(push(rn, rn->run_id, rn->run_id, 1, 3, &acked, &err), 0,
	    "%s", err.msg);
	cr_assert_eq(acked, 3, "the delegate's ack comes back as is");
	pthread_mutex_lock(&E.fd.mu);
	cr_assert_eq(E.fd.events, 3);
	cr_assert_eq(E.fd.seen[1][1] + E.fd.seen[1][2] + E.fd.seen[1][3], 3);
	pthread_mutex_unlock(&E.fd.mu);

	Cep__V1__FaultRecord fr = CEP__V1__FAULT_RECORD__INIT;
	fr.run_id = rn->run_id;
	fr.fault_id = "kill-web";
	fr.type = "process-kill";
	ProtobufCMessage *rep = NULL;
	cr_assert_eq(rcall(rn, "RecordFault", &fr.base,
	                 &cep__v1__fault_ack__descriptor, &rep, &err),
	    0, "%s", err.msg);
	cr_assert(((Cep__V1__FaultAck *)rep)->recorded);
	protobuf_c_message_free_unpacked(rep, NULL);
	cr_assert_eq(rcall(rn, "FaultReverted", &fr.base,
	                 &cep__v1__fault_ack__descriptor, NULL, &err),
	    0, "%s", err.msg);
	pthread_mutex_lock(&E.fd.mu);
	cr_assert_eq(E.fd.faults, 1);
	cr_assert_eq(E.fd.reverted, 1);
	pthread_mutex_unlock(&E.fd.mu);

	/* long-poll: parked until the ABORT arrives */
	uint64_t calls = stat_calls();
	watch_arg w = {.rn = rn, .after = 0, .timeout_ms = 20000};
	pthread_t t;
	pthread_create(&t, NULL, watch_thread, &w);
	while (stat_calls() <= calls)
		cep_clock_sleep_ms(5);
	cep_clock_sleep_ms(20);
	cr_assert_eq(w.t_done, 0, "WatchCommands answered without a command");
	int64_t t0 = cep_clock_mono_ms();
	cr_assert_eq(send_abort(rn->run_id, 1, &err), 0, "%s", err.msg);
	pthread_join(t, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.err);
	cr_assert_eq(w.n, 1);
	cr_assert_eq(w.seq, 1);
	cr_assert_eq(w.kind, CEP__V1__COMMAND__KIND__ABORT);
	cr_assert_lt(w.t_done - t0, 100, "ABORT took %" PRId64 " ms",
	    w.t_done - t0);

	/* a duplicate seq is ignored; nothing new: answered empty 500 ms
	 * before the caller's deadline */
	cr_assert_eq(send_abort(rn->run_id, 1, &err), 0, "%s", err.msg);
	w = (watch_arg){.rn = rn, .after = 1, .timeout_ms = 1500};
	t0 = cep_clock_mono_ms();
	watch_thread(&w);
	cr_assert_eq(w.rc, 0, "%s", w.err);
	cr_assert_eq(w.n, 0);
	cr_assert_geq(w.t_done - t0, 900);
	cr_assert_lt(w.t_done - t0, 1500);

	Cep__V1__RelayStats *st = stats();
	cr_assert_eq(st->runners_connected, 1);
	cr_assert_eq(st->events_in, 3);
	cr_assert_eq(st->refused, 0);
	protobuf_c_message_free_unpacked(&st->base, NULL);
	cr_assert_eq(log_lines("refused", NULL, NULL), 0);
}

/* A runner whose certificate comes from another appliance's CA: the TLS
 * layer admits it unverified; Prove names the reason; pipe closed. */
Test(relay, other_ca_refused)
{
	cep_err err = {0};
	char dir[PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/other-ca", E.home);
	cr_assert_eq(cep_files_mkdirs(dir, 0700, &err), 0, "%s", err.msg);
	cr_assert_eq(cep_pki_ca_create(dir, APPLIANCE, &err), 0, "%s", err.msg);
	cep_pki_ca *other = NULL;
	cr_assert_eq(cep_pki_ca_load(&other, dir, &err), 0, "%s", err.msg);
	runner *rn = runner_new(2, other, 0, 0);
	cep_pki_ca_free(other);
	grant(rn); /* even a granted run id does not help it */
	sync_grants();
	runner_connect(rn);
	fd_snap before = fd_snapshot();

	int rc = runner_prove(rn, false, &err);
	cr_assert_eq(rc, CEP_UNAUTHENTICATED, "got %d: %s", rc, err.msg);
	cr_assert(strstr(err.msg, "not signed by the appliance CA"), "%s",
	    err.msg);
	cr_assert_eq(refusals("cert_untrusted"), 1);
	cr_assert_eq(log_lines("refused Prove from 127.0.0.1:",
	                 "reason=cert_untrusted", rn->run_id),
	    1);
	assert_fd_unchanged(before);
	assert_good_runner_served(3);
}

Test(relay, expired_identity_refused)
{
	cep_err err = {0};
	int64_t now = cep_clock_now_ms();
	runner *rn = runner_new(4, E.ca, now - 7200000, now - 3600000);
	grant(rn);
	sync_grants();
	runner_connect(rn);
	fd_snap before = fd_snapshot();
	int rc = runner_prove(rn, false, &err);
	cr_assert_eq(rc, CEP_UNAUTHENTICATED, "got %d: %s", rc, err.msg);
	cr_assert(strstr(err.msg, "expired at"), "%s", err.msg);
	cr_assert_eq(refusals("cert_expired"), 1);
	cr_assert_eq(log_lines("refused Prove", "reason=cert_expired",
	                 "requested=r-"),
	    1);
	/* the pipe is unverified: nothing else is allowed on it either */
	rc = push(rn, rn->run_id, rn->run_id, 1, 1, NULL, &err);
	cr_assert(rc == CEP_UNAUTHENTICATED || rc == CEP_UNAVAILABLE,
	    "got %d: %s", rc, err.msg);
	assert_fd_unchanged(before);
	assert_good_runner_served(5);
}

Test(relay, finished_run_refused)
{
	cep_err err = {0};
	runner *rn = runner_new(6, E.ca, 0, 0);
	E.finished[E.nfinished++] = rn->run_id;
	sync_grants();
	runner_connect(rn);
	fd_snap before = fd_snapshot();
	int rc = runner_prove(rn, false, &err);
	cr_assert_eq(rc, CEP_PERMISSION_DENIED, "got %d: %s", rc, err.msg);
	cr_assert(strstr(err.msg, "finished"), "%s", err.msg);
	cr_assert_eq(refusals("run_finished"), 1);
	cr_assert_eq(log_lines("refused Prove", "reason=run_finished",
	                 rn->run_id),
	    1);

	/* never granted, never finished: unknown */
	runner *unk = runner_new(7, E.ca, 0, 0);
	runner_connect(unk);
	rc = runner_prove(unk, false, &err);
	cr_assert_eq(rc, CEP_PERMISSION_DENIED, "got %d: %s", rc, err.msg);
	cr_assert(strstr(err.msg, "unknown run"), "%s", err.msg);
	cr_assert_eq(refusals("unknown_run"), 1);
	assert_fd_unchanged(before);
	assert_good_runner_served(8);
}

Test(relay, wrong_run_refused)
{
	cep_err err = {0};
	runner *a = runner_new(10, E.ca, 0, 0), *b = runner_new(11, E.ca, 0, 0);
	grant(a);
	grant(b);
	sync_grants();
	runner_connect(a);
	cr_assert_eq(runner_prove(a, false, &err), 0, "%s", err.msg);
	fd_snap before = fd_snapshot();

	int rc = push(a, b->run_id, b->run_id, 1, 2, NULL, &err);
	cr_assert_eq(rc, CEP_PERMISSION_DENIED, "got %d: %s", rc, err.msg);
	char want[128];
	snprintf(want, sizeof(want), "runner of run %s may not act for run %s",
	    a->run_id, b->run_id);
	cr_assert_str_eq(err.msg, want);
	/* right batch run id, but one event speaks for b */
	rc = push(a, a->run_id, b->run_id, 1, 1, NULL, &err);
	cr_assert_eq(rc, CEP_PERMISSION_DENIED, "got %d: %s", rc, err.msg);
	Cep__V1__Assignment *asg = NULL;
	rc = get_assignment(a, b->run_id, &err, &asg);
	cr_assert_eq(rc, CEP_PERMISSION_DENIED, "got %d: %s", rc, err.msg);
	cr_assert_null(asg);
	/* nor watch b's commands */
	Cep__V1__WatchRequest wr = CEP__V1__WATCH_REQUEST__INIT;
	wr.run_id = b->run_id;
	rc = rcall(a, "WatchCommands", &wr.base,
	    &cep__v1__command_batch__descriptor, NULL, &err);
	cr_assert_eq(rc, CEP_PERMISSION_DENIED, "got %d: %s", rc, err.msg);

	cr_assert_eq(refusals("wrong_run"), 4);
	char bound[64], req[64];
	snprintf(bound, sizeof(bound), "bound=%s", a->run_id);
	snprintf(req, sizeof(req), "requested=%s", b->run_id);
	cr_assert_eq(log_lines("reason=wrong_run", bound, req), 4);
	cr_assert_eq(log_lines("refused PushEvents from 127.0.0.1:",
	                 "reason=wrong_run", NULL),
	    2);
	assert_fd_unchanged(before);
	/* a itself is still served */
	uint64_t acked = 0;
	cr_assert_eq(push(a, a->run_id, a->run_id, 1, 1, &acked, &err), 0, "%s",
	    err.msg);
	cr_assert_eq(acked, 1);
}

Test(relay, call_before_prove_refused)
{
	cep_err err = {0};
	runner *rn = runner_new(12, E.ca, 0, 0);
	grant(rn);
	sync_grants();
	runner_connect(rn);
	fd_snap before = fd_snapshot();
	int rc = push(rn, rn->run_id, rn->run_id, 1, 1, NULL, &err);
	cr_assert_eq(rc, CEP_UNAUTHENTICATED, "got %d: %s", rc, err.msg);
	cr_assert_str_eq(err.msg, "pipe not authenticated: call Prove first");
	Cep__V1__FaultRecord fr = CEP__V1__FAULT_RECORD__INIT;
	fr.run_id = rn->run_id;
	rc = rcall(rn, "RecordFault", &fr.base, &cep__v1__fault_ack__descriptor,
	    NULL, &err);
	cr_assert_eq(rc, CEP_UNAUTHENTICATED, "got %d: %s", rc, err.msg);
	cr_assert_eq(refusals("not_authenticated"), 2);
	cr_assert_eq(log_lines("reason=not_authenticated", "bound=-",
	                 rn->run_id),
	    2);
	assert_fd_unchanged(before);
	/* proving afterwards works on the same connection */
	cr_assert_eq(runner_prove(rn, false, &err), 0, "%s", err.msg);
	assert_good_runner_served(13);
}

Test(relay, wrong_signature_refused)
{
	cep_err err = {0};
	runner *rn = runner_new(14, E.ca, 0, 0);
	grant(rn);
	sync_grants();
	runner_connect(rn);
	fd_snap before = fd_snapshot();
	int rc = runner_prove(rn, true, &err);
	cr_assert_eq(rc, CEP_UNAUTHENTICATED, "got %d: %s", rc, err.msg);
	cr_assert(strstr(err.msg, "proof of possession failed"), "%s", err.msg);
	cr_assert_eq(refusals("bad_signature"), 1);
	cr_assert_eq(log_lines("refused Prove", "reason=bad_signature",
	                 rn->run_id),
	    1);

	/* the nonce was used up by the failed attempt: a replay of Prove
	 * without a new Challenge is refused */
	uint8_t nonce[32] = {0};
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	cr_assert_eq(cep_pki_sign_proof(rn->key_pem, nonce, 32, &sig, &sig_len,
	                 &err),
	    0);
	Cep__V1__ProveRequest pr = CEP__V1__PROVE_REQUEST__INIT;
	pr.run_id = rn->run_id;
	pr.cert_der = (ProtobufCBinaryData){rn->der_len, rn->der};
	pr.signature = (ProtobufCBinaryData){sig_len, sig};
	rc = rcall(rn, "Prove", &pr.base, &cep__v1__prove_reply__descriptor,
	    NULL, &err);
	cr_assert_eq(rc, CEP_UNAUTHENTICATED, "got %d: %s", rc, err.msg);
	cr_assert_eq(refusals("no_challenge"), 1);

	/* someone else's certificate with our key: the certificate names
	 * another run */
	runner *other = runner_new(15, E.ca, 0, 0);
	pr.cert_der = (ProtobufCBinaryData){other->der_len, other->der};
	rc = rcall(rn, "Prove", &pr.base, &cep__v1__prove_reply__descriptor,
	    NULL, &err);
	free(sig);
	cr_assert_eq(rc, CEP_PERMISSION_DENIED, "got %d: %s", rc, err.msg);
	cr_assert_eq(refusals("cert_run_mismatch"), 1);
	assert_fd_unchanged(before);
	/* the same runner, signing properly, is served */
	cr_assert_eq(runner_prove(rn, false, &err), 0, "%s", err.msg);
	assert_good_runner_served(16);
}

/* A run that leaves the registry: its parked long-poll is answered, its
 * pipe unbound, its later calls refused. */
Test(relay, run_leaves_registry)
{
	cep_err err = {0};
	runner *rn = runner_new(17, E.ca, 0, 0);
	grant(rn);
	sync_grants();
	runner_connect(rn);
	cr_assert_eq(runner_prove(rn, false, &err), 0, "%s", err.msg);
	uint64_t calls = stat_calls();
	watch_arg w = {.rn = rn, .after = 0, .timeout_ms = 20000};
	pthread_t t;
	pthread_create(&t, NULL, watch_thread, &w);
	while (stat_calls() <= calls)
		cep_clock_sleep_ms(5);
	cep_clock_sleep_ms(20);
	ungrant(rn);
	E.finished[E.nfinished++] = rn->run_id;
	int64_t t0 = cep_clock_mono_ms();
	sync_grants();
	pthread_join(t, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.err);
	cr_assert_eq(w.n, 0);
	cr_assert_lt(w.t_done - t0, 1000);

	Cep__V1__RelayStats *st = stats();
	cr_assert_eq(st->runners_connected, 0);
	protobuf_c_message_free_unpacked(&st->base, NULL);
	int rc = push(rn, rn->run_id, rn->run_id, 1, 1, NULL, &err);
	cr_assert_eq(rc, CEP_PERMISSION_DENIED, "got %d: %s", rc, err.msg);
	cr_assert(strstr(err.msg, "no longer active"), "%s", err.msg);
	cr_assert_eq(refusals("run_ended"), 1);
	rc = runner_prove(rn, false, &err);
	cr_assert_eq(rc, CEP_PERMISSION_DENIED, "got %d: %s", rc, err.msg);
	cr_assert_eq(refusals("run_finished"), 1);
	/* commands for it are refused too */
	cr_assert_eq(send_abort(rn->run_id, 2, &err), CEP_NOT_FOUND);
}

Test(relay, oversized_batch_refused)
{
	cep_err err = {0};
	runner *rn = runner_new(18, E.ca, 0, 0);
	grant(rn);
	sync_grants();
	runner_connect(rn);
	cr_assert_eq(runner_prove(rn, false, &err), 0, "%s", err.msg);
	fd_snap before = fd_snapshot();
	size_t n = 1001;
	Cep__V1__Event *ev = calloc(n, sizeof(*ev));
	Cep__V1__Event **evp = calloc(n, sizeof(*evp));
	for (size_t i = 0; i < n; i++) {
		cep__v1__event__init(&ev[i]);
		ev[i].run_id = rn->run_id;
		ev[i].seq = i + 1;
		evp[i] = &ev[i];
	}
	Cep__V1__EventBatch b = CEP__V1__EVENT_BATCH__INIT;
	b.run_id = rn->run_id;
	b.n_events = n;
	b.events = evp;
	int rc = rcall(rn, "PushEvents", &b.base,
	    &cep__v1__event_ack__descriptor, NULL, &err);
	free(ev);
	free(evp);
	cr_assert_eq(rc, CEP_INVALID_ARGUMENT, "got %d: %s", rc, err.msg);
	cr_assert_eq(refusals("bad_request"), 1);
	assert_fd_unchanged(before);
}

/* No delegate behind the relay: UNAVAILABLE (retryable), not a hang. */
Test(relay, delegate_down_unavailable)
{
	cep_err err = {0};
	runner *rn = runner_new(19, E.ca, 0, 0);
	grant(rn);
	sync_grants();
	runner_connect(rn);
	cr_assert_eq(runner_prove(rn, false, &err), 0, "%s", err.msg);
	cep_rpc_server_free(E.fd.srv);
	E.fd.srv = NULL;
	Cep__V1__Event ev = CEP__V1__EVENT__INIT, *evp = &ev;
	ev.run_id = rn->run_id;
	ev.seq = 1;
	Cep__V1__EventBatch b = CEP__V1__EVENT_BATCH__INIT;
	b.run_id = rn->run_id;
	b.n_events = 1;
	b.events = &evp;
	int64_t t0 = cep_clock_mono_ms();
	ProtobufCMessage *rep = NULL;
	int rc = cep_rpc_invoke(rn->cli, "cep.v1.Runner/PushEvents", &b.base,
	    &cep__v1__event_ack__descriptor, &rep, 1500, &err);
	cr_assert_eq(rc, CEP_UNAVAILABLE, "got %d: %s", rc, err.msg);
	cr_assert_lt(cep_clock_mono_ms() - t0, 1500);
}

/* A relay key others can read is refused before anything listens. */
Test(relay_start, key_readable_by_group_refused, .init = home_only,
    .fini = home_only_fini)
{
	char key[PATH_MAX + 16], sock[PATH_MAX + 16];
	snprintf(key, sizeof(key), "%s/relay.key", E.paths.pki);
	snprintf(sock, sizeof(sock), "%s/relay.sock", E.paths.run);
	cr_assert_eq(chmod(key, 0640), 0);
	cep_err err = {0};
	int rc = relay_new(&E.paths, &E.cfg, &E.relay, &err);
	cr_assert_eq(rc, CEP_PERMISSION_DENIED, "got %d: %s", rc, err.msg);
	cr_assert_null(E.relay);
	cr_assert(strstr(err.msg, "relay.key") && strstr(err.msg, "0640"), "%s",
	    err.msg);
	cr_assert_neq(access(sock, F_OK), 0,
	    "relay.sock exists after a "
	    "refused start");
	cr_assert_eq(chmod(key, 0600), 0);
	rc = relay_new(&E.paths, &E.cfg, &E.relay, &err);
	cr_assert_eq(rc, 0, "%s", err.msg);
	cr_assert_eq(access(sock, F_OK), 0);
	cr_assert_gt(relay_port(E.relay), 0);
}

/* Stopping the relay answers every parked long-poll before it closes. */
Test(relay, shutdown_answers_parked_calls)
{
	cep_err err = {0};
	runner *rn = runner_new(30, E.ca, 0, 0);
	grant(rn);
	sync_grants();
	runner_connect(rn);
	cr_assert_eq(runner_prove(rn, false, &err), 0, "%s", err.msg);
	uint64_t calls = stat_calls();
	watch_arg w = {.rn = rn, .after = 0, .timeout_ms = 20000};
	pthread_t t;
	pthread_create(&t, NULL, watch_thread, &w);
	while (stat_calls() <= calls)
		cep_clock_sleep_ms(5);
	cep_clock_sleep_ms(20);
	int64_t t0 = cep_clock_mono_ms();
	relay_free(E.relay);
	E.relay = NULL;
	pthread_join(t, NULL);
	cr_assert_eq(w.rc, 0, "parked call not answered: %d %s", w.rc, w.err);
	cr_assert_eq(w.n, 0);
	cr_assert_lt(w.t_done - t0, 5000);
}

static void tight_call_rate(cep_config *cfg)
{
	cfg->relay_limits.calls_per_sec = 1;
	cfg->relay_limits.call_burst = 6;
}
static void setup_tight_rate(void)
{
	setup_with(tight_call_rate);
}

/* relay.limits.callsPerSecond is the run identity's: once two
 * connections proved the same run they draw on one bucket, so a runner
 * cannot multiply its rate by connecting twice (per connection, they
 * would get 6 calls each before the first refusal). */
TestSuite(relay_rate, .init = setup_tight_rate, .fini = teardown,
    .timeout = 60);

Test(relay_rate, connections_of_one_run_share_its_rate)
{
	cep_err err = {0};
	runner *a = runner_new(40, E.ca, 0, 0), *b = runner_new(40, E.ca, 0, 0);
	grant(a);
	sync_grants();
	runner_connect(a);
	runner_connect(b);
	cr_assert_eq(runner_prove(a, false, &err), 0, "%s", err.msg);
	cr_assert_eq(runner_prove(b, false, &err), 0, "%s", err.msg);
	int ok = 0, refused = 0;
	int64_t t0 = cep_clock_mono_ms();
	for (int i = 0; i < 40 && refused < 2; i++) {
		runner *r = i % 2 ? b : a;
		Cep__V1__Assignment *asg = NULL;
		int rc = get_assignment(r, r->run_id, &err, &asg);
		if (asg != NULL)
			protobuf_c_message_free_unpacked(&asg->base, NULL);
		if (rc == CEP_OK)
			ok++;
		else if (rc == CEP_RESOURCE_EXHAUSTED)
			refused++;
		else
			cr_assert_fail("GetAssignment: %d %s", rc, err.msg);
	}
	int64_t secs = (cep_clock_mono_ms() - t0) / 1000;
	cr_assert_eq(refused, 2, "never refused: %d calls passed", ok);
	cr_assert_geq(ok, 6, "the burst");
	cr_assert_leq(ok, 6 + secs + 1,
	    "%d calls passed in %lld s: each connection had its own rate", ok,
	    (long long)secs);
	cr_assert(strstr(err.msg, "one run identity") != NULL, "%s", err.msg);
	/* another run is not held back by this one's rate */
	runner *c = runner_new(41, E.ca, 0, 0);
	grant(c);
	sync_grants();
	runner_connect(c);
	cr_assert_eq(runner_prove(c, false, &err), 0, "%s", err.msg);
	Cep__V1__Assignment *asg = NULL;
	cr_assert_eq(get_assignment(c, c->run_id, &err, &asg), CEP_OK, "%s",
	    err.msg);
	protobuf_c_message_free_unpacked(&asg->base, NULL);
}
