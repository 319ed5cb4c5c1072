/*
 * spool.h - the relay's bounded on-disk spool of event batches
 * (store-and-forward to the control plane).
 *
 * RPC handler threads append batches; one uploader thread peeks the oldest
 * ones, sends them, and commits them once the control plane has them. An
 * append returns only after its record is written and fsynced, so a
 * kill -9 of the relay loses nothing an append acknowledged.
 *
 * On disk (dir, 0700):
 *   seg-%016llu  segment files of frames (lib/base/frame.h) whose payloads are
 *                cep.v1.SpoolRecord; appended only, never rewritten, rolled
 *                at min(4 MiB, max(max_bytes / 8, 4 KiB)) and unlinked once
 *                every record in them is delivered
 *   cursor       (segment, offset) of the first undelivered record: u64 LE
 *                segment | u64 LE offset | u32 LE crc32c of the 16 bytes,
 *                replaced atomically (tmp + fsync + rename + fsync dir)
 * The directory is flock()ed: one process per spool.
 *
 * Delivery is at least once: a record sent but not yet committed when the
 * relay dies is sent again after the restart. The control plane
 * deduplicates by (run_id, seq) of the events.
 *
 * Opening replays what is there; a torn or corrupt record (a crash
 * mid-append, a flipped bit) cuts its segment at that offset - logged as a
 * warning naming the file, the offset and what was wrong - and the good
 * records before it, and those of later segments, are kept in order.
 */
#ifndef CEP_SPOOL_H
#define CEP_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "cep.pb-c.h"
#include "err.h"

/* The largest batch, packed, an append accepts. */
#define CEP_SPOOL_MAX_BATCH (8u * 1024u * 1024u)

typedef struct cep_spool cep_spool;

/* Creates dir (0700) if missing and replays it. max_bytes bounds the
 * segment files' bytes on disk, delivered bytes of a segment not yet
 * unlinked included. FAILED_PRECONDITION if another process has it open. */
int relay_spool_open(const char *dir, int64_t max_bytes, cep_spool **out,
    cep_err *err);
/* No peek may be running (stop the uploader first). NULL is fine. */
void relay_spool_close(cep_spool *s);

/* Appends b durably (write + fsync) or fails with nothing appended (a
 * full disk: RESOURCE_EXHAUSTED naming the segment, nothing left of it).
 * RESOURCE_EXHAUSTED "spool full: N of M bytes" when it would pass
 * max_bytes: the caller applies backpressure, it never drops. A batch over
 * CEP_SPOOL_MAX_BATCH packed, or one that could never fit max_bytes, is
 * INVALID_ARGUMENT. Any number of threads. */
int relay_spool_append(cep_spool *s, const Cep__V1__EventBatch *b,
    cep_err *err);
/* The same for the events of b (all of b's run) above the highest seq the
 * spool has held for that run: appended, or replayed at open. A runner
 * that re-sends a batch whose ack it missed (the relay was killed between
 * its fsync and the reply, or the reply was lost) does not put it in the
 * spool twice. Delivered records are gone after a restart, and so is their
 * mark: a re-send of those still reaches the plane again (it drops it).
 * *kept: the events appended (0: none new, CEP_OK). */
int relay_spool_append_new(cep_spool *s, const Cep__V1__EventBatch *b,
    size_t *kept, cep_err *err);

/* The oldest records not yet committed, in append order: as many as fit
 * max_bytes (framed sizes), at least one. Copies: free them with
 * relay_spool_batches_free. *token names what was returned, for commit;
 * peeking again without a commit returns the same records. When the spool
 * is empty it waits up to wait_ms (< 0: without limit) for an append or
 * relay_spool_wake, and returns CEP_OK with *n == 0 if none came.
 * DATA_LOSS if a segment changed under us. One consumer thread. */
int relay_spool_peek(cep_spool *s, size_t max_bytes, int wait_ms,
    Cep__V1__EventBatch ***out, size_t *n, uint64_t *token, cep_err *err);
/* The records of that peek (and all before them) are delivered: moves the
 * cursor durably past them, then unlinks segments wholly delivered. A
 * token already committed is a no-op; one never returned is
 * INVALID_ARGUMENT. */
int relay_spool_commit(cep_spool *s, uint64_t token, cep_err *err);
void relay_spool_batches_free(Cep__V1__EventBatch **v, size_t n);

/* For metrics and logs. */
int64_t relay_spool_bytes(cep_spool *s);      /* undelivered framed bytes */
int64_t relay_spool_disk_bytes(cep_spool *s); /* what max_bytes bounds */
int64_t relay_spool_oldest_ms(cep_spool *s);  /* oldest undelivered, 0: none */
size_t relay_spool_records(cep_spool *s);     /* undelivered records */
/* The errno of the last failed append (ENOSPC, EDQUOT...), 0 after a
 * good one: a full disk told from a full spool (max_bytes). */
int relay_spool_last_errno(cep_spool *s);
/* Wakes a peek that waits on an empty spool (shutdown). */
void relay_spool_wake(cep_spool *s);

#endif
