/*
 * journal.h - a run's append-only journal on disk.
 *
 * One file per run (state/runs/<run-id>/journal). A record is
 *   u32 length (little endian) | u32 crc32c of the payload | payload
 * where the payload is a serialized cep.v1.JournalRecord. Appends are
 * O_APPEND writes of whole records; sync=true fsyncs (state changes,
 * fault records: what must survive kill -9), with group commit. Replay stops at the first torn
 * or corrupt record and reports where; opening for append cuts such a torn
 * tail so later records are never hidden behind garbage. Nothing is ever
 * rewritten in place.
 */
#ifndef CEP_JOURNAL_H
#define CEP_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cep.pb-c.h"
#include "err.h"
#include "frame.h" /* the record format; cep_frame_crc32c */

#define CEP_JOURNAL_MAX_RECORD (8u * 1024u * 1024u)

typedef struct cep_journal cep_journal;

/* Creates dir (0700) and dir/journal (0600); ALREADY_EXISTS if present.
 * A handle may be shared by threads: appends are serialized. */
int cep_journal_create(const char *dir, cep_journal **out, cep_err *err);
/* Opens an existing journal for appending, after cutting a torn tail
 * (ftruncate + fsync, logged as a warning naming file and offset).
 * NOT_FOUND if there is no journal. */
int cep_journal_open(const char *dir, cep_journal **out, cep_err *err);
/* One whole record; RESOURCE_EXHAUSTED over CEP_JOURNAL_MAX_RECORD. A
 * failed write (a full disk: ENOSPC, EDQUOT) is cut back, never left as
 * half a record: the file is as it was, and the same record may be
 * appended again once there is room. With sync, a failed fsync fails the
 * call but leaves the record (cep_journal_sync). */
int cep_journal_append(cep_journal *j, const Cep__V1__JournalRecord *rec,
    bool sync, cep_err *err);
/* Makes sure the next `bytes` after the end are allocated on disk
 * (fallocate, FALLOC_FL_KEEP_SIZE: the file's size and its records do not
 * change), so that appends of that many bytes cannot fail for want of
 * space. RESOURCE_EXHAUSTED on a full disk. A caller reserves before the
 * records that may be refused (events) and lets those that must land
 * (reverts, final states) use the reserve. A filesystem without
 * fallocate reserves nothing and says OK. bytes 0 gives a reserve back
 * (a journal that will take no more records). */
int cep_journal_reserve(cep_journal *j, uint64_t bytes, cep_err *err);
/* The errno of the last failed append or reserve (ENOSPC, EDQUOT, EIO...),
 * 0 when the last one succeeded: how a caller tells a full disk from a bad
 * one without parsing messages. */
int cep_journal_last_errno(cep_journal *j);
/* recs[0..n) (n >= 1) in one write, without fsync; *end (may be NULL) is
 * the file's size after them, for cep_journal_sync. All or none: a record
 * over the cap or a failed write leaves the file as it was. */
int cep_journal_append_many(cep_journal *j,
    const Cep__V1__JournalRecord *const *recs, size_t n, uint64_t *end,
    cep_err *err);
/* Returns once the first end bytes are on disk (fsync), by this call's
 * fsync or by another's that started after they were written (group
 * commit: callers that arrive while an fsync runs share the next one).
 * An error when the fsync that was to cover them failed. */
int cep_journal_sync(cep_journal *j, uint64_t end, cep_err *err);
/* The size of the records written so far (what a sync must cover). */
uint64_t cep_journal_end(cep_journal *j);
/* One more reference: a thread that syncs outside its owner's lock holds
 * one, so a close meanwhile does not free the journal under it. */
void cep_journal_hold(cep_journal *j);
/* Drops a reference; the last one closes the file and frees j. */
void cep_journal_close(cep_journal *j);

typedef struct cep_journal_replay_info {
	size_t records;
	uint64_t valid_bytes; /* offset after the last good record */
	bool torn_tail;       /* an incomplete or corrupt record at the end */
	char detail[256];     /* what was wrong and at which offset */
} cep_journal_replay_info;

/* Calls cb (may be NULL) for every good record in order; cb returns 0 to
 * go on, anything else stops the replay with CEP_ABORTED. The record is
 * freed after cb returns. A torn or corrupt record is not an error: the
 * replay returns CEP_OK with info->torn_tail and info->detail set. NOT_FOUND
 * if there is no journal. info may be NULL. */
typedef int (*cep_journal_cb)(const Cep__V1__JournalRecord *rec, void *arg);
int cep_journal_replay(const char *dir, cep_journal_cb cb, void *arg,
    cep_journal_replay_info *info, cep_err *err);

#endif
