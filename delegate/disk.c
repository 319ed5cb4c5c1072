/*
 * disk.c - the state directory running out of space (docs/delegate.md,
 * "When the disk is full"). Three things live here:
 *
 * - the reserve new runs leave: a new run is refused while the state
 *   directory has less free space than delegate.stateReserveMiB, so what
 *   is left goes to the runs already running;
 * - each run's own reserve: its journal keeps CEP_RUN_JOURNAL_RESERVE
 *   bytes allocated past its end (cep_journal_reserve); events and new
 *   faults are journaled only while that reserve can be renewed, so when
 *   the disk fills - by us or by anyone - the records that must land
 *   (reverts, final states) still have room;
 * - the disk-full state: an append or reserve refused for want of space
 *   (ENOSPC, EDQUOT) leaves the journal as it was and is not acknowledged,
 *   so the runner keeps the events and sends them again; here it is
 *   counted, shown as a gauge and logged once per interval, never once
 *   per event. The first reserve that succeeds again ends it.
 *
 * Everything here runs with d->mu held.
 */
#define _GNU_SOURCE
#include "delegate_int.h"

#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>

#include "clock.h"
#include "log.h"

#define DISK_LOG_EVERY_MS (30 * 1000)
#define DISK_ROOM (-1) /* errnum of a reserve that succeeded */

void delegate_disk_init(cep_delegate *d, cep_metrics *m)
{
	static const char *const rl[] = {"reason", NULL};
	d->disk.m_errors = cep_metrics_counter(m,
	    "cep_journal_write_errors_total",
	    "Run journal appends that failed, by reason (nospace: ENOSPC or "
	    "EDQUOT; io: any other error); nothing of them was kept.",
	    rl);
	/* both series from the start: an alert's rate() needs the zero */
	static const char *const nospace[] = {"nospace", NULL};
	static const char *const io[] = {"io", NULL};
	cep_metrics_add(d->disk.m_errors, 0, nospace);
	cep_metrics_add(d->disk.m_errors, 0, io);
	d->disk.m_full = cep_metrics_gauge(m, "cep_delegate_disk_full",
	    "1 while journal appends fail for want of space in the state "
	    "directory, else 0.",
	    NULL);
	d->disk.m_free = cep_metrics_gauge(m, "cep_delegate_state_free_bytes",
	    "Free space in the state directory (statvfs f_bavail), read at "
	    "each scrape.",
	    NULL);
}

/* Free bytes in the state directory for us (f_bavail), -1 if unknown. */
static int64_t free_bytes(cep_delegate *d)
{
	struct statvfs v;
	if (statvfs(d->runs_dir, &v) != 0)
		return -1;
	return (int64_t)v.f_bavail * (int64_t)v.f_frsize;
}

void delegate_disk_collect(cep_delegate *d)
{
	int64_t f = free_bytes(d);
	cep_metrics_set(d->disk.m_free, f < 0 ? 0 : (double)f, NULL);
	cep_metrics_set(d->disk.m_full, d->disk.full ? 1 : 0, NULL);
}

int delegate_disk_room(cep_delegate *d, cep_err *err)
{
	int64_t want = d->cfg.state_reserve_bytes;
	int64_t have = free_bytes(d);
	if (want <= 0 || have < 0 || have >= want)
		return CEP_OK;
	return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
	    "the state directory %s has %lld KiB free, a new run needs at "
	    "least %lld KiB (delegate.stateReserveMiB, kept for the running "
	    "runs' reverts): free space there",
	    d->runs_dir, (long long)(have >> 10), (long long)(want >> 10));
}

/* A refusal for want of space: counted each time, logged when the
 * episode starts and then at most once per DISK_LOG_EVERY_MS. */
static void note_full(cep_delegate *d, cep_run *r, const cep_err *err)
{
	int64_t now = cep_clock_mono_ms();
	d->disk.failed++;
	cep_metrics_inc1(d->disk.m_errors, "nospace");
	if (d->disk.full && now - d->disk.logged_mono < DISK_LOG_EVERY_MS)
		return;
	cep_log_error(r->id.s,
	    "state directory %s is full: %s; %llu journal append(s) "
	    "refused so far, new runs are refused and runners keep their "
	    "events until there is room",
	    d->runs_dir, err->msg, (unsigned long long)d->disk.failed);
	d->disk.full = true;
	d->disk.logged_mono = now;
	cep_metrics_set(d->disk.m_full, 1, NULL);
}

void delegate_disk_note(cep_delegate *d, cep_run *r, int rv, int errnum,
    const cep_err *err)
{
	if (rv == CEP_OK) {
		/* an append may have gone into a journal's reserve: only a
		 * reserve made anew (delegate_disk_reserve) shows room */
		if (!d->disk.full || errnum != DISK_ROOM)
			return;
		d->disk.full = false;
		cep_metrics_set(d->disk.m_full, 0, NULL);
		cep_log_info(r->id.s,
		    "state directory %s has room again: journal appends go "
		    "on (%llu were refused)",
		    d->runs_dir, (unsigned long long)d->disk.failed);
		d->disk.failed = 0;
		return;
	}
	if (errnum == ENOSPC || errnum == EDQUOT) {
		note_full(d, r, err);
		return;
	}
	if (errnum != 0)
		cep_metrics_inc1(d->disk.m_errors, "io");
	cep_log_error(r->id.s, "journal append failed: %s", err->msg);
}

int delegate_disk_reserve(cep_delegate *d, cep_run *r, size_t bytes,
    cep_err *err)
{
	if (r->j == NULL)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "run %s is finished; its journal is closed", r->id.s);
	int rv = cep_journal_reserve(r->j, bytes + CEP_RUN_JOURNAL_RESERVE,
	    err);
	delegate_disk_note(d, r, rv,
	    rv == CEP_OK ? DISK_ROOM : cep_journal_last_errno(r->j), err);
	return rv;
}
