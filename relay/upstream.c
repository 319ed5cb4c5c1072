/*
 * upstream.c - store-and-forward to the control plane (upstream.h).
 *
 * Order and exactly-once: batches enter the spool in the order the relay
 * acknowledged them and leave it only after UploadEvents returned 200;
 * a crash between the plane storing a batch and the commit here sends it
 * again, and the plane drops the duplicate (run_id, seq). The last command
 * handed to the delegate is remembered in <spool>/commands.seq, so a
 * restarted relay does not replay old aborts.
 */
#define _GNU_SOURCE
#include "upstream.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cp.h"
#include "log.h"
#include "spool.h"
#include "clock.h"
#include "files.h"

#define UPLOAD_MAX_BYTES (1024u * 1024u)
#define DELEGATE_TIMEOUT_MS 2000

struct cep_upstream {
	cep_cp *cp;
	cep_spool *spool;
	cep_rpc_client *delegate;
	char appliance[64];
	char dir[CEP_PATH_MAX];
	char seq_path[CEP_PATH_MAX];
	int poll_wait_ms, timeout_ms;
	int64_t cp_spool_max;
	atomic_bool stop;
	atomic_bool full;            /* in a spool-full episode */
	atomic_bool disk_full;       /* appends fail for want of disk */
	_Atomic int64_t disk_logged; /* monotonic ms of the last such log */
	pthread_t up_thr, cmd_thr;
	bool up_started, cmd_started;
	cep_metric *m_spool_bytes, *m_spool_age, *m_full, *m_calls, *m_lat,
	    *m_uploaded, *m_rejected, *m_write_err, *m_disk_full;
};

#define DISK_LOG_EVERY_MS (30 * 1000)

/* Sleeps ms in small steps, so stop is prompt. */
static void snooze(cep_upstream *u, int64_t ms)
{
	int64_t end = cep_clock_mono_ms() + ms;
	while (!atomic_load(&u->stop) && cep_clock_mono_ms() < end) {
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static int64_t backoff(int *attempt, int64_t retry_after)
{
	int ms = cep_rpc_backoff_ms((*attempt)++, 200, 10000);
	return retry_after > ms ? retry_after : ms;
}

/* One timed control-plane call, counted by method and result. */
static int call(cep_upstream *u, const char *method,
    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rdesc,
    ProtobufCMessage **rep, int timeout_ms, int64_t *retry, cep_err *err)
{
	int64_t t0 = cep_clock_mono_ms();
	int rv = cep_cp_call(u->cp, method, req, rdesc, rep, timeout_ms, retry,
	    err);
	const char *const lv[] = {method,
	    rv == CEP_OK ? "ok" : cep_err_code_name(rv), NULL};
	cep_metrics_add(u->m_calls, 1, lv);
	if (rv == CEP_OK) {
		const char *const mv[] = {method, NULL};
		cep_metrics_set(u->m_lat,
		    (double)(cep_clock_mono_ms() - t0) / 1000.0, mv);
	}
	return rv;
}

/* ---------------------------------------------------------------- upload */

/* A batch the plane refuses as invalid (400) would be refused forever and
 * hold up everything behind it: it is set aside in the spool folder as
 * rejected-<time>-<n>.pb (the packed EventBatch), logged and counted, and
 * the spool moves on. Kept, not dropped: someone can look at it. */
static int set_aside(cep_upstream *u, const Cep__V1__EventBatch *b,
    const cep_err *why)
{
	static atomic_uint n;
	char path[CEP_PATH_MAX + 64];
	cep_err err = {0};
	size_t len = cep__v1__event_batch__get_packed_size(b);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		return CEP_RESOURCE_EXHAUSTED;
	cep__v1__event_batch__pack(b, buf);
	int rv = cep_files_path(path, sizeof(path), &err,
	    "%s/rejected-%lld-%u.pb", u->dir, (long long)cep_clock_now_ms(),
	    atomic_fetch_add(&n, 1));
	if (rv == CEP_OK)
		rv = cep_files_write(path, (const char *)buf, len, 0600, &err);
	free(buf);
	if (rv != CEP_OK) {
		cep_log_error(b->run_id,
		    "upstream: setting aside a refused batch: "
		    "%s",
		    err.msg);
		return rv;
	}
	cep_metrics_inc(u->m_rejected);
	cep_log_error(b->run_id,
	    "upstream: the control plane refused %zu "
	    "event(s) as invalid (%s); kept in %s, the spool goes on",
	    b->n_events, why->msg, path);
	return CEP_OK;
}

static void *upload_main(void *arg)
{
	cep_upstream *u = arg;
	int attempt = 0, committing = 0; /* failed uploads, commits */
	bool one = false; /* after a 400: one record at a time, to find it */
	while (!atomic_load(&u->stop)) {
		Cep__V1__EventBatch **v = NULL;
		size_t n = 0;
		uint64_t token = 0;
		cep_err err = {0};
		int rv = relay_spool_peek(u->spool, one ? 1 : UPLOAD_MAX_BYTES,
		    500, &v, &n, &token, &err);
		if (rv != CEP_OK) {
			cep_log_error(NULL, "upstream: reading the spool: %s",
			    err.msg);
			snooze(u, 1000);
			continue;
		}
		if (n == 0)
			continue;
		Cep__V1__CpEventUpload up = CEP__V1__CP_EVENT_UPLOAD__INIT;
		up.appliance = u->appliance;
		up.batches = v;
		up.n_batches = n;
		size_t events = 0;
		for (size_t i = 0; i < n; i++)
			events += v[i]->n_events;
		ProtobufCMessage *rep = NULL;
		int64_t retry = 0;
		rv = call(u, "UploadEvents", &up.base,
		    &cep__v1__cp_upload_reply__descriptor, &rep, 0, &retry,
		    &err);
		if (rv == CEP_INVALID_ARGUMENT && n > 1) {
			one = true;
			cep_log_warn(NULL,
			    "upstream: the control plane refused an "
			    "upload as invalid (%s); sending record by record",
			    err.msg);
			relay_spool_batches_free(v, n);
			continue;
		}
		if (rv == CEP_INVALID_ARGUMENT &&
		    set_aside(u, v[0], &err) == CEP_OK)
			rv = CEP_OK;
		else if (rv == CEP_OK)
			one = false;
		relay_spool_batches_free(v, n);
		if (rv != CEP_OK) {
			int64_t wait = backoff(&attempt, retry);
			cep_log_warn(NULL,
			    "upstream: %zu event(s) kept in the spool "
			    "(%lld bytes): %s; retry in %lldms",
			    events, (long long)relay_spool_bytes(u->spool),
			    err.msg, (long long)wait);
			snooze(u, wait);
			continue;
		}
		attempt = 0;
		if (rep != NULL)
			protobuf_c_message_free_unpacked(rep, NULL);
		cep_metrics_add(u->m_uploaded, (double)events, NULL);
		if (relay_spool_commit(u->spool, token, &err) == CEP_OK) {
			committing = 0;
		} else {
			int64_t wait = backoff(&committing, 0);
			cep_log_error(NULL,
			    "upstream: committing the spool: %s "
			    "(the batch will be sent again; the plane drops "
			    "duplicates); retry in %lldms",
			    err.msg, (long long)wait);
			snooze(u, wait); /* not a resend per loop */
		}
	}
	return NULL;
}

/* -------------------------------------------------------------- commands */

static uint64_t load_seq(const char *path)
{
	char *data = NULL;
	size_t len = 0;
	uint64_t v = 0;
	if (cep_files_read(path, 32, &data, &len, NULL) == CEP_OK) {
		char *end = NULL;
		unsigned long long n = strtoull(data, &end, 10);
		v = end != data ? (uint64_t)n : 0;
	}
	free(data);
	return v;
}

static void save_seq(const char *path, uint64_t seq)
{
	char buf[32];
	cep_err err = {0};
	int len = snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)seq);
	if (cep_files_write(path, buf, (size_t)len, 0600, &err) != CEP_OK)
		cep_log_warn(NULL, "upstream: saving the command seq: %s",
		    err.msg);
}

/* Hands one command to the delegate, retrying while it is unavailable:
 * an abort must not be lost to a delegate restart. */
static void deliver(cep_upstream *u, const Cep__V1__CpCommand *c)
{
	for (int attempt = 0; !atomic_load(&u->stop);) {
		ProtobufCMessage *rep = NULL;
		cep_err err = {0};
		int rv = cep_rpc_invoke(u->delegate,
		    "cep.v1.Delegate/ControlCommand", &c->base,
		    &cep__v1__cp_ack__descriptor, &rep, DELEGATE_TIMEOUT_MS,
		    &err);
		if (rv == CEP_OK) {
			protobuf_c_message_free_unpacked(rep, NULL);
			cep_log_info(c->run_id && c->run_id[0] ? c->run_id :
			                                         NULL,
			    "control command %llu (%s) handed to the delegate",
			    (unsigned long long)c->seq,
			    c->kind == CEP__V1__CP_COMMAND__KIND__ABORT_ALL ?
			        "abort all" :
			        "abort run");
			return;
		}
		if (!cep_rpc_retryable(rv)) {
			cep_log_warn(NULL,
			    "control command %llu refused by the "
			    "delegate: %s",
			    (unsigned long long)c->seq, err.msg);
			return;
		}
		snooze(u, backoff(&attempt, 0));
	}
}

static void *commands_main(void *arg)
{
	cep_upstream *u = arg;
	uint64_t after = load_seq(u->seq_path);
	int attempt = 0;
	while (!atomic_load(&u->stop)) {
		Cep__V1__CpWatch w = CEP__V1__CP_WATCH__INIT;
		w.appliance = u->appliance;
		w.after_seq = after;
		w.wait_ms = (uint32_t)u->poll_wait_ms;
		ProtobufCMessage *rep = NULL;
		int64_t retry = 0;
		cep_err err = {0};
		int rv = call(u, "WatchCommands", &w.base,
		    &cep__v1__cp_commands__descriptor, &rep,
		    u->timeout_ms + u->poll_wait_ms, &retry, &err);
		if (rv != CEP_OK) {
			if (atomic_load(&u->stop))
				break;
			int64_t wait = backoff(&attempt, retry);
			cep_log_warn(NULL,
			    "upstream: watching commands: %s; retry "
			    "in %lldms",
			    err.msg, (long long)wait);
			snooze(u, wait);
			continue;
		}
		attempt = 0;
		const Cep__V1__CpCommands *cs = (const Cep__V1__CpCommands *)
		    rep;
		for (size_t i = 0; i < cs->n_commands; i++) {
			if (cs->commands[i]->seq <= after)
				continue;
			deliver(u, cs->commands[i]);
			after = cs->commands[i]->seq;
			save_seq(u->seq_path, after);
		}
		protobuf_c_message_free_unpacked(rep, NULL);
	}
	return NULL;
}

/* ---------------------------------------------------------------- spool */

void relay_upstream_collect(cep_upstream *u)
{
	if (u == NULL)
		return;
	cep_metrics_set(u->m_spool_bytes, (double)relay_spool_bytes(u->spool),
	    NULL);
	int64_t oldest = relay_spool_oldest_ms(u->spool);
	cep_metrics_set(u->m_spool_age,
	    oldest > 0 ? (double)(cep_clock_now_ms() - oldest) / 1000.0 : 0,
	    NULL);
}

int64_t relay_upstream_spool_bytes(cep_upstream *u)
{
	return u != NULL ? relay_spool_bytes(u->spool) : 0;
}

bool relay_upstream_room(cep_upstream *u, cep_err *err)
{
	/* Room for a typical batch (64 KiB): a larger one that does not fit
	 * fails its append, and the runner retries it like this refusal. */
	int64_t used = relay_spool_disk_bytes(u->spool);
	if (used + 65536 <= u->cp_spool_max) {
		if (atomic_exchange(&u->full, false))
			cep_log_info(NULL,
			    "upstream: spool has room again (%lld "
			    "bytes); runners go on",
			    (long long)used);
		return true;
	}
	cep_metrics_inc(u->m_full);
	if (!atomic_exchange(&u->full, true))
		cep_log_warn(NULL,
		    "upstream: spool full (%lld of %lld bytes): "
		    "runners are held back until the control plane takes "
		    "events again",
		    (long long)used, (long long)u->cp_spool_max);
	cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
	    "the relay's spool is full "
	    "(%lld bytes): retry later",
	    (long long)used);
	return false;
}

/* A refused append: for want of disk (ENOSPC, EDQUOT) counted and logged
 * once per interval, since runners retry every batch; anything else
 * logged each time. The first good append ends a disk-full episode. */
static void note_append(cep_upstream *u, int rv, const char *run_id,
    const cep_err *err)
{
	if (rv == CEP_OK) {
		if (atomic_exchange(&u->disk_full, false)) {
			cep_metrics_set(u->m_disk_full, 0, NULL);
			cep_log_info(NULL,
			    "upstream: the spool's disk has room again; "
			    "runner batches are taken");
		}
		return;
	}
	int e = relay_spool_last_errno(u->spool);
	bool nospace = e == ENOSPC || e == EDQUOT;
	if (e != 0)
		cep_metrics_inc1(u->m_write_err, nospace ? "nospace" : "io");
	if (!nospace) {
		cep_log_error(run_id, "spooling events: %s", err->msg);
		return;
	}
	atomic_store(&u->disk_full, true);
	cep_metrics_set(u->m_disk_full, 1, NULL);
	int64_t now = cep_clock_mono_ms(), last = atomic_load(&u->disk_logged);
	if ((last == 0 || now - last >= DISK_LOG_EVERY_MS) &&
	    atomic_compare_exchange_strong(&u->disk_logged, &last, now))
		cep_log_error(run_id,
		    "upstream: the spool's disk is full (%s): runner batches "
		    "are refused and retried; uploads go on and give the "
		    "space back",
		    err->msg);
}

int relay_upstream_spool(cep_upstream *u, const Cep__V1__EventBatch *b,
    uint64_t acked_seq, cep_err *err)
{
	Cep__V1__EventBatch copy = *b;
	Cep__V1__Event **v = calloc(b->n_events ? b->n_events : 1, sizeof(*v));
	if (v == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	size_t n = 0;
	for (size_t i = 0; i < b->n_events; i++)
		if (b->events[i]->seq <= acked_seq)
			v[n++] = b->events[i];
	copy.events = v;
	copy.n_events = n;
	size_t kept = 0; /* a re-sent batch: only what the spool lacks */
	int rv = n > 0 ? relay_spool_append_new(u->spool, &copy, &kept, err) :
	                 CEP_OK;
	free(v);
	note_append(u, rv, b->run_id, err);
	return rv;
}

static int init_metrics(cep_upstream *u, cep_metrics *m)
{
	static const char *const ml[] = {"method", "result", NULL};
	static const char *const mo[] = {"method", NULL};
	u->m_spool_bytes = cep_metrics_gauge(m, "cep_relay_spool_bytes",
	    "Bytes of events in the spool, not yet taken by the control plane.",
	    NULL);
	u->m_spool_age = cep_metrics_gauge(m, "cep_relay_spool_age_seconds",
	    "Age of the oldest event batch in the spool (0 when empty).", NULL);
	u->m_full = cep_metrics_counter(m, "cep_relay_spool_full_total",
	    "Runner batches held back because the spool was full.", NULL);
	u->m_calls = cep_metrics_counter(m, "cep_relay_upstream_calls_total",
	    "Calls to the control plane, by method and result.", ml);
	u->m_lat = cep_metrics_gauge(m, "cep_relay_upstream_latency_seconds",
	    "Duration of the last successful control-plane call, by method.",
	    mo);
	u->m_uploaded = cep_metrics_counter(m,
	    "cep_relay_upstream_events_total",
	    "Events the control plane has taken.", NULL);
	u->m_rejected = cep_metrics_counter(m,
	    "cep_relay_upstream_rejected_total",
	    "Spooled batches the control plane refused as invalid, set aside "
	    "in the spool folder.",
	    NULL);
	static const char *const rl[] = {"reason", NULL};
	u->m_write_err = cep_metrics_counter(m,
	    "cep_relay_spool_write_errors_total",
	    "Spool appends that failed, by reason (nospace: ENOSPC or EDQUOT; "
	    "io: any other error); the runner sends the batch again.",
	    rl);
	u->m_disk_full = cep_metrics_gauge(m, "cep_relay_spool_disk_full",
	    "1 while spool appends fail for want of disk, else 0.", NULL);
	static const char *const nospace[] = {"nospace", NULL};
	static const char *const io[] = {"io", NULL};
	cep_metrics_add(u->m_write_err, 0, nospace);
	cep_metrics_add(u->m_write_err, 0, io);
	return u->m_spool_bytes && u->m_spool_age && u->m_full && u->m_calls &&
	        u->m_lat && u->m_uploaded && u->m_rejected && u->m_write_err &&
	        u->m_disk_full ?
	    CEP_OK :
	    CEP_RESOURCE_EXHAUSTED;
}

int relay_upstream_start(const cep_config *cfg, const char *dir,
    cep_rpc_client *delegate, cep_metrics *m, cep_upstream **out, cep_err *err)
{
	*out = NULL;
	if (cfg->cp.url[0] == '\0')
		return CEP_OK;
	cep_upstream *u = calloc(1, sizeof(*u));
	if (u == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	u->delegate = delegate;
	snprintf(u->appliance, sizeof(u->appliance), "%s", cfg->appliance);
	u->poll_wait_ms = cfg->cp.poll_wait_ms;
	u->timeout_ms = cfg->cp.timeout_ms;
	u->cp_spool_max = cfg->cp.spool_max_bytes;
	int rv = cep_files_path(u->seq_path, sizeof(u->seq_path), err,
	    "%s/commands.seq", dir);
	if (rv == CEP_OK)
		rv = cep_files_path(u->dir, sizeof(u->dir), err, "%s", dir);
	if (rv == CEP_OK)
		rv = cep_cp_new(&cfg->cp, &u->cp, err);
	if (rv == CEP_OK)
		rv = relay_spool_open(dir, cfg->cp.spool_max_bytes, &u->spool,
		    err);
	if (rv == CEP_OK && m != NULL && init_metrics(u, m) != CEP_OK)
		rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "metrics");
	if (rv == CEP_OK && pthread_create(&u->up_thr, NULL, upload_main, u))
		rv = cep_err_set(err, CEP_INTERNAL, "starting a thread failed");
	u->up_started = rv == CEP_OK;
	if (rv == CEP_OK && pthread_create(&u->cmd_thr, NULL, commands_main, u))
		rv = cep_err_set(err, CEP_INTERNAL, "starting a thread failed");
	u->cmd_started = rv == CEP_OK;
	if (rv != CEP_OK) {
		relay_upstream_stop(u);
		return cep_err_wrap(err, "control plane upstream");
	}
	cep_log_info(NULL,
	    "upstream: control plane %s, spool %s (%lld bytes "
	    "waiting, at most %lld)",
	    cep_cp_host(u->cp), dir, (long long)relay_spool_bytes(u->spool),
	    (long long)cfg->cp.spool_max_bytes);
	*out = u;
	return CEP_OK;
}

void relay_upstream_stop(cep_upstream *u)
{
	if (u == NULL)
		return;
	atomic_store(&u->stop, true);
	if (u->cp != NULL)
		cep_cp_cancel(u->cp);
	if (u->spool != NULL)
		relay_spool_wake(u->spool);
	if (u->up_started)
		pthread_join(u->up_thr, NULL);
	if (u->cmd_started)
		pthread_join(u->cmd_thr, NULL);
	relay_spool_close(u->spool);
	cep_cp_free(u->cp);
	free(u);
}
