/*
 * spool_int.h - what spool.c (append, peek, commit) and spool_open.c
 * (replay at open) share. Not for other modules.
 */
#ifndef CEP_SPOOL_INT_H
#define CEP_SPOOL_INT_H

#include <limits.h>
#include <pthread.h>

#include "spool.h"

/* A SpoolRecord is the batch plus a few bytes (time_ms, two tags, a length). */
#define SPOOL_REC_MAX (CEP_SPOOL_MAX_BATCH + 64u)
#define SPOOL_ROLL_MAX (4u * 1024u * 1024u)
#define SPOOL_ROLL_MIN 4096u
#define SPOOL_CURSOR "cursor"
#define SPOOL_CURSOR_LEN 20u
/* Slots of the per-run marks (a power of two): direct-mapped by a hash of
 * the run id; a collision forgets the other run's mark, which can only let
 * a re-sent batch through (the plane drops it), never hold an event back. */
#define SPOOL_MARKS 1024u
#define SPOOL_MARK_RUN 40u

struct spool_rec {
	uint64_t seg;
	uint64_t off;
	uint32_t len; /* framed: header + payload */
	int64_t time_ms;
};

/* The highest seq a run has had appended (or replayed) */
struct spool_mark {
	char run[SPOOL_MARK_RUN];
	uint64_t seq;
};

struct spool_seg {
	uint64_t id;
	uint64_t size; /* bytes of whole records */
};

struct cep_spool {
	/* mu guards everything below; appends hold it across write + fsync
	 * so records land in the order they were accepted. */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* an append or a wake, for peek */
	/* cmu serializes the consumer: segments are unlinked only under it,
	 * so peek can read them without mu and not block appends. */
	pthread_mutex_t cmu;
	int dirfd; /* flock()ed for our lifetime */
	char dir[PATH_MAX];
	int64_t max_bytes;
	uint64_t roll; /* segment size at which appends roll */

	struct spool_seg *segs; /* on disk, oldest first */
	size_t nsegs, capsegs;
	int afd; /* appends go here: segs[nsegs-1]; -1: none */
	uint64_t next_id;
	/* per run: the highest seq appended or replayed */
	struct spool_mark marks[SPOOL_MARKS];
	int64_t disk; /* sum of segs[].size */

	struct spool_rec *q; /* undelivered, oldest first: q[qhead..qlen) */
	size_t qhead, qlen, qcap;
	uint64_t head_seq; /* sequence number of q[qhead], for tokens */
	int64_t undelivered;
	uint64_t wake_gen;
	int last_errno; /* of the last failed append, 0 after a good one */
};

/* Raises b's run's mark to b's highest seq (caller holds mu, or replays:
 * replay marks every good record). */
void relay_spool_mark(cep_spool *s, const Cep__V1__EventBatch *b);
void relay_spool_seg_name(char *buf, size_t len, uint64_t id);
int relay_spool_push_rec(cep_spool *s, const struct spool_rec *r, cep_err *err);
int relay_spool_push_seg(cep_spool *s, uint64_t id, uint64_t size,
    cep_err *err);
/* Writes the cursor (atomically; in place when the disk is full). */
int relay_spool_write_cursor(cep_spool *s, uint64_t seg, uint64_t off,
    cep_err *err);
/* Replays the directory into s (segments, queue, next_id). */
int relay_spool_replay(cep_spool *s, cep_err *err);

#endif
