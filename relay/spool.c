/*
 * spool.c - the spool at run time: append, peek, commit.
 *
 * The queue in memory holds where each undelivered record is (segment,
 * offset, framed length) and its time, not the record: peek reads the
 * records back from their segments. Appends hold mu across write + fsync,
 * so they reach the disk in the order they were accepted and an append
 * that returned is on the disk. A failed append retires its segment
 * (later appends start a new one), so a half-written record can only ever
 * sit at the end of a segment, where replay cuts it.
 *
 * Commit writes the cursor first and unlinks afterwards: a crash in
 * between leaves delivered segments that the next open removes, never a
 * cursor pointing before records that are gone.
 */
#define _GNU_SOURCE
#include "spool_int.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "log.h"
#include "clock.h"
#include "files.h"

void relay_spool_seg_name(char *buf, size_t len, uint64_t id)
{
	snprintf(buf, len, "seg-%016llu", (unsigned long long)id);
}

int relay_spool_push_rec(cep_spool *s, const struct spool_rec *r, cep_err *err)
{
	if (s->qlen == s->qcap && s->qhead > 0) {
		/* slide the delivered slots out before growing */
		memmove(s->q, s->q + s->qhead,
		    (s->qlen - s->qhead) * sizeof(*s->q));
		s->qlen -= s->qhead;
		s->qhead = 0;
	}
	if (s->qlen == s->qcap) {
		size_t nc = s->qcap ? s->qcap * 2 : 64;
		struct spool_rec *nq = realloc(s->q, nc * sizeof(*nq));
		if (nq == NULL)
			return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
			    "out of memory");
		s->q = nq;
		s->qcap = nc;
	}
	s->q[s->qlen++] = *r;
	s->undelivered += r->len;
	return CEP_OK;
}

int relay_spool_push_seg(cep_spool *s, uint64_t id, uint64_t size, cep_err *err)
{
	if (s->nsegs == s->capsegs) {
		size_t nc = s->capsegs ? s->capsegs * 2 : 16;
		struct spool_seg *ns = realloc(s->segs, nc * sizeof(*ns));
		if (ns == NULL)
			return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
			    "out of memory");
		s->segs = ns;
		s->capsegs = nc;
	}
	s->segs[s->nsegs++] = (struct spool_seg){id, size};
	return CEP_OK;
}

/* ---- append ------------------------------------------------------------- */

/* Starts a new segment for appends; the previous one is already synced. */
static int roll_locked(cep_spool *s, cep_err *err)
{
	char name[32];
	if (s->afd >= 0) {
		close(s->afd);
		s->afd = -1;
	}
	uint64_t id = s->next_id++;
	relay_spool_seg_name(name, sizeof(name), id);
	int fd = openat(s->dirfd, name,
	    O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0) {
		s->last_errno = errno;
		return cep_err_errno(err, errno, name);
	}
	/* the name must survive a crash as much as the records in it */
	int rv = fsync(s->dirfd) == 0 ? relay_spool_push_seg(s, id, 0, err) :
	                                cep_err_errno(err, errno, s->dir);
	if (rv != CEP_OK) {
		close(fd);
		(void)unlinkat(s->dirfd, name, 0);
		return rv;
	}
	s->afd = fd;
	return CEP_OK;
}

/* A failed append (ENOSPC: part of the record may have landed): the
 * segment is cut back and retired, so nothing is ever appended after bytes
 * we could not account for. A segment left empty goes, else a disk that
 * stays full would collect an empty segment per refused append. */
static int failed_locked(cep_spool *s, struct spool_seg *seg, int e,
    cep_err *err)
{
	char name[32];
	relay_spool_seg_name(name, sizeof(name), seg->id);
	if (ftruncate(s->afd, (off_t)seg->size) != 0)
		cep_log_error(NULL,
		    "spool %s/%s: cannot cut a failed append "
		    "back to offset %llu; replay will",
		    s->dir, name, (unsigned long long)seg->size);
	close(s->afd);
	s->afd = -1;
	if (seg->size == 0 && seg == &s->segs[s->nsegs - 1] &&
	    unlinkat(s->dirfd, name, 0) == 0)
		s->nsegs--;
	cep_err_errno(err, e, name);
	return cep_err_wrap(err, "spool %s", s->dir);
}

static int append_locked(cep_spool *s, const unsigned char *buf, size_t len,
    int64_t time_ms, cep_err *err)
{
	s->last_errno = 0;
	if (s->disk + (int64_t)len > s->max_bytes)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "spool full: %lld of %lld bytes", (long long)s->disk,
		    (long long)s->max_bytes);
	struct spool_seg *seg = s->nsegs ? &s->segs[s->nsegs - 1] : NULL;
	if (s->afd < 0 || (seg->size > 0 && seg->size + len > s->roll)) {
		int rv = roll_locked(s, err);
		if (rv != CEP_OK)
			return rv;
		seg = &s->segs[s->nsegs - 1];
	}
	/* queued first so that out of memory cannot strike after the write */
	struct spool_rec r = {seg->id, seg->size, (uint32_t)len, time_ms};
	int rv = relay_spool_push_rec(s, &r, err);
	if (rv != CEP_OK)
		return rv;
	int e = cep_frame_write(s->afd, buf, len);
	if (e == 0 && fsync(s->afd) != 0)
		e = errno;
	s->last_errno = e;
	if (e != 0) {
		s->qlen--;
		s->undelivered -= (int64_t)len;
		return failed_locked(s, seg, e, err);
	}
	seg->size += len;
	s->disk += (int64_t)len;
	return CEP_OK;
}

/* ---- per-run marks ------------------------------------------------------ */

static struct spool_mark *mark_slot(cep_spool *s, const char *run)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *p = run; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return &s->marks[h & (SPOOL_MARKS - 1)];
}

void relay_spool_mark(cep_spool *s, const Cep__V1__EventBatch *b)
{
	if (b->run_id == NULL || strlen(b->run_id) >= SPOOL_MARK_RUN)
		return;
	uint64_t top = 0;
	for (size_t i = 0; i < b->n_events; i++)
		if (b->events[i]->seq > top)
			top = b->events[i]->seq;
	struct spool_mark *m = mark_slot(s, b->run_id);
	if (strcmp(m->run, b->run_id) != 0) {
		snprintf(m->run, sizeof(m->run), "%s", b->run_id);
		m->seq = 0;
	}
	if (top > m->seq)
		m->seq = top;
}

static uint64_t mark_get(cep_spool *s, const char *run)
{
	if (run == NULL || strlen(run) >= SPOOL_MARK_RUN)
		return 0;
	struct spool_mark *m = mark_slot(s, run);
	return strcmp(m->run, run) == 0 ? m->seq : 0;
}

/* ---- append --------------------------------------------------------------- */

/* Packs b as a SpoolRecord, appends it and marks its run; holds mu. */
static int append_batch_locked(cep_spool *s, const Cep__V1__EventBatch *b,
    cep_err *err)
{
	size_t bn = cep__v1__event_batch__get_packed_size(b);
	if (bn > CEP_SPOOL_MAX_BATCH)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "a batch of %zu bytes "
		    "exceeds the spool's %u-byte limit",
		    bn, CEP_SPOOL_MAX_BATCH);
	Cep__V1__SpoolRecord rec = CEP__V1__SPOOL_RECORD__INIT;
	rec.time_ms = cep_clock_now_ms();
	rec.batch = (Cep__V1__EventBatch *)b; /* only read by pack */
	unsigned char *buf = NULL;
	size_t len = 0;
	int rv = cep_frame_pack(&rec.base,
	    cep__v1__spool_record__get_packed_size(&rec), &buf, &len, err);
	if (rv != CEP_OK)
		return rv;
	if ((int64_t)len > s->max_bytes) {
		free(buf);
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "a batch of %zu "
		    "bytes can never fit a spool of %lld bytes",
		    len, (long long)s->max_bytes);
	}
	rv = append_locked(s, buf, len, rec.time_ms, err);
	if (rv == CEP_OK) {
		relay_spool_mark(s, b);
		pthread_cond_broadcast(&s->cv);
	}
	free(buf);
	return rv;
}

int relay_spool_append(cep_spool *s, const Cep__V1__EventBatch *b, cep_err *err)
{
	if (s == NULL || b == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "no spool or batch");
	pthread_mutex_lock(&s->mu);
	int rv = append_batch_locked(s, b, err);
	pthread_mutex_unlock(&s->mu);
	return rv;
}

int relay_spool_append_new(cep_spool *s, const Cep__V1__EventBatch *b,
    size_t *kept, cep_err *err)
{
	*kept = 0;
	if (s == NULL || b == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "no spool or batch");
	Cep__V1__Event **v = calloc(b->n_events ? b->n_events : 1, sizeof(*v));
	if (v == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	Cep__V1__EventBatch copy = *b;
	copy.events = v;
	copy.n_events = 0;
	int rv = CEP_OK;
	/* filter and append under one lock: a retry racing its original
	 * cannot slip past the mark */
	pthread_mutex_lock(&s->mu);
	uint64_t last = mark_get(s, b->run_id);
	for (size_t i = 0; i < b->n_events; i++)
		if (b->events[i]->seq > last)
			v[copy.n_events++] = b->events[i];
	if (copy.n_events > 0)
		rv = append_batch_locked(s, &copy, err);
	pthread_mutex_unlock(&s->mu);
	if (rv == CEP_OK)
		*kept = copy.n_events;
	free(v);
	return rv;
}

/* ---- peek and commit ---------------------------------------------------- */

/* Waits on an empty spool until an append, a wake or the deadline. */
static void wait_locked(cep_spool *s, int wait_ms)
{
	uint64_t gen = s->wake_gen;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (wait_ms > 0) {
		ts.tv_sec += wait_ms / 1000;
		ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
	}
	while (s->qhead == s->qlen && s->wake_gen == gen && wait_ms != 0) {
		if (wait_ms < 0)
			pthread_cond_wait(&s->cv, &s->mu);
		else if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) ==
		    ETIMEDOUT)
			break;
	}
}

/* Reads the batch of one queued record back from its segment. The caller
 * keeps one descriptor (*fd, of segment *fd_seg) across the records. */
static int read_batch(cep_spool *s, const struct spool_rec *r, int *fd,
    uint64_t *fd_seg, Cep__V1__EventBatch **out, cep_err *err)
{
	char name[32], detail[256];
	relay_spool_seg_name(name, sizeof(name), r->seg);
	if (*fd < 0 || *fd_seg != r->seg) {
		if (*fd >= 0)
			close(*fd);
		*fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		*fd_seg = r->seg;
		if (*fd < 0)
			return cep_err_set(err, CEP_DATA_LOSS,
			    "spool %s/%s: %s", s->dir, name, strerror(errno));
	}
	unsigned char *buf = NULL;
	uint32_t len = 0;
	int fr = cep_frame_read(*fd, r->off, r->off + r->len, SPOOL_REC_MAX,
	    &buf, &len, detail, sizeof(detail));
	if (fr == CEP_FRAME_NOMEM)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	if (fr != CEP_FRAME_GOOD || CEP_FRAME_HDR + len != r->len) {
		free(buf);
		return cep_err_set(err, CEP_DATA_LOSS,
		    "spool %s/%s: changed "
		    "under the spool: %s",
		    s->dir, name,
		    fr == CEP_FRAME_GOOD ? "a record of another length" :
		                           detail);
	}
	Cep__V1__SpoolRecord *rec = cep__v1__spool_record__unpack(NULL, len,
	    buf);
	free(buf);
	if (rec == NULL || rec->batch == NULL) {
		if (rec != NULL)
			cep__v1__spool_record__free_unpacked(rec, NULL);
		return cep_err_set(err, CEP_DATA_LOSS,
		    "spool %s/%s: record at "
		    "offset %llu no longer decodes",
		    s->dir, name, (unsigned long long)r->off);
	}
	/* protobuf-c allocates each sub-message on its own: take the batch */
	*out = rec->batch;
	rec->batch = NULL;
	cep__v1__spool_record__free_unpacked(rec, NULL);
	return CEP_OK;
}

int relay_spool_peek(cep_spool *s, size_t max_bytes, int wait_ms,
    Cep__V1__EventBatch ***out, size_t *n, uint64_t *token, cep_err *err)
{
	*out = NULL;
	*n = 0;
	*token = 0;
	pthread_mutex_lock(&s->cmu);
	pthread_mutex_lock(&s->mu);
	wait_locked(s, wait_ms);
	size_t k = 0, sum = 0;
	while (s->qhead + k < s->qlen) {
		size_t len = s->q[s->qhead + k].len;
		if (k > 0 && sum + len > max_bytes)
			break;
		sum += len;
		k++;
	}
	struct spool_rec *recs = k ? malloc(k * sizeof(*recs)) : NULL;
	if (recs != NULL)
		memcpy(recs, s->q + s->qhead, k * sizeof(*recs));
	uint64_t first = s->head_seq;
	pthread_mutex_unlock(&s->mu);
	/* no lock from here: only commit, under cmu, unlinks segments */
	int rv = CEP_OK;
	Cep__V1__EventBatch **v = NULL;
	if (k > 0 && (recs == NULL || (v = calloc(k, sizeof(*v))) == NULL))
		rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory");
	int fd = -1;
	uint64_t fd_seg = 0;
	for (size_t i = 0; i < k && rv == CEP_OK; i++)
		rv = read_batch(s, &recs[i], &fd, &fd_seg, &v[i], err);
	if (fd >= 0)
		close(fd);
	pthread_mutex_unlock(&s->cmu);
	free(recs);
	if (rv != CEP_OK) {
		relay_spool_batches_free(v, k);
		return rv;
	}
	*out = v;
	*n = k;
	*token = k ? first + k : 0;
	return CEP_OK;
}

void relay_spool_batches_free(Cep__V1__EventBatch **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		if (v[i] != NULL)
			cep__v1__event_batch__free_unpacked(v[i], NULL);
	free(v);
}

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

/* On a full disk the cursor cannot be a new file, and without a new
 * cursor no delivered segment may go, so the spool could never give the
 * space back: the cursor is then overwritten in place (its 20 bytes need
 * no new block). A torn overwrite fails the checksum at the next open,
 * which delivers the segments left from their start again: duplicates,
 * which the plane drops, never a loss. */
static int overwrite_cursor(cep_spool *s, const unsigned char *b,
    const char *path, cep_err *err)
{
	int fd = openat(s->dirfd, SPOOL_CURSOR,
	    O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return err->code; /* no cursor yet: the first error stands */
	ssize_t n = pwrite(fd, b, SPOOL_CURSOR_LEN, 0);
	int e = n < 0 ? errno : n != SPOOL_CURSOR_LEN ? EIO : 0;
	if (e == 0 && fsync(fd) != 0)
		e = errno;
	close(fd);
	return e ? cep_err_errno(err, e, path) : CEP_OK;
}

int relay_spool_write_cursor(cep_spool *s, uint64_t seg, uint64_t off,
    cep_err *err)
{
	char path[PATH_MAX];
	unsigned char b[SPOOL_CURSOR_LEN];
	put_le(b, seg, 8);
	put_le(b + 8, off, 8);
	put_le(b + 16, cep_frame_crc32c(b, 16), 4);
	int rv = cep_files_path(path, sizeof(path), err, "%s/%s", s->dir,
	    SPOOL_CURSOR);
	if (rv == CEP_OK)
		rv = cep_files_write(path, b, sizeof(b), 0600, err);
	if (rv == CEP_RESOURCE_EXHAUSTED)
		rv = overwrite_cursor(s, b, path, err);
	return rv;
}

/* Drops k delivered records from the queue and takes the segments they
 * emptied off the list (ids into gone[], at most s->nsegs of them). */
static size_t drop_locked(cep_spool *s, size_t k, uint64_t cseg, uint64_t coff,
    uint64_t *gone)
{
	for (size_t i = 0; i < k; i++)
		s->undelivered -= s->q[s->qhead + i].len;
	s->qhead += k;
	s->head_seq += k;
	if (s->qhead == s->qlen)
		s->qhead = s->qlen = 0;
	size_t g = 0;
	while (g < s->nsegs) {
		struct spool_seg *seg = &s->segs[g];
		bool active = g == s->nsegs - 1 && s->afd >= 0;
		if (seg->id > cseg || (seg->id == cseg && coff < seg->size))
			break;
		/* the active segment goes only when nothing is behind the
		 * cursor: the next append starts a new one */
		if (active && s->qhead != s->qlen)
			break;
		if (active) {
			close(s->afd);
			s->afd = -1;
		}
		s->disk -= (int64_t)seg->size;
		gone[g++] = seg->id;
	}
	memmove(s->segs, s->segs + g, (s->nsegs - g) * sizeof(*s->segs));
	s->nsegs -= g;
	return g;
}

int relay_spool_commit(cep_spool *s, uint64_t token, cep_err *err)
{
	pthread_mutex_lock(&s->cmu);
	pthread_mutex_lock(&s->mu);
	size_t queued = s->qlen - s->qhead;
	uint64_t head = s->head_seq;
	struct spool_rec last = {0, 0, 0, 0};
	if (token > head && token - head <= queued)
		last = s->q[s->qhead + (token - head) - 1];
	pthread_mutex_unlock(&s->mu);
	int rv = CEP_OK;
	if (token <= head) /* nothing, or already committed */
		goto out;
	if (token - head > queued) {
		rv = cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "spool %s: token %llu was never returned by a peek", s->dir,
		    (unsigned long long)token);
		goto out;
	}
	/* durable before anything is dropped: a crash repeats, never loses */
	uint64_t coff = last.off + last.len;
	rv = relay_spool_write_cursor(s, last.seg, coff, err);
	if (rv != CEP_OK)
		goto out;
	pthread_mutex_lock(&s->mu);
	uint64_t *gone = malloc((s->nsegs ? s->nsegs : 1) * sizeof(*gone));
	if (gone == NULL) { /* delivered anyway; the next open unlinks them */
		pthread_mutex_unlock(&s->mu);
		rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	size_t g = drop_locked(s, (size_t)(token - head), last.seg, coff, gone);
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < g; i++) {
		char name[32];
		relay_spool_seg_name(name, sizeof(name), gone[i]);
		if (unlinkat(s->dirfd, name, 0) != 0 && errno != ENOENT)
			cep_log_warn(NULL,
			    "spool %s/%s: delivered but cannot "
			    "remove it: %s",
			    s->dir, name, strerror(errno));
	}
	free(gone);
out:
	pthread_mutex_unlock(&s->cmu);
	return rv;
}

/* ---- the rest ----------------------------------------------------------- */

void relay_spool_wake(cep_spool *s)
{
	pthread_mutex_lock(&s->mu);
	s->wake_gen++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

#define SPOOL_GET(type, expr)         \
	pthread_mutex_lock(&s->mu);   \
	type v_ = (expr);             \
	pthread_mutex_unlock(&s->mu); \
	return v_

int64_t relay_spool_bytes(cep_spool *s)
{
	SPOOL_GET(int64_t, s->undelivered);
}
int relay_spool_last_errno(cep_spool *s)
{
	SPOOL_GET(int, s->last_errno);
}
int64_t relay_spool_disk_bytes(cep_spool *s)
{
	SPOOL_GET(int64_t, s->disk);
}
size_t relay_spool_records(cep_spool *s)
{
	SPOOL_GET(size_t, s->qlen - s->qhead);
}
int64_t relay_spool_oldest_ms(cep_spool *s)
{
	SPOOL_GET(int64_t, s->qhead < s->qlen ? s->q[s->qhead].time_ms : 0);
}

void relay_spool_close(cep_spool *s)
{
	if (s == NULL)
		return;
	if (s->afd >= 0)
		close(s->afd);
	if (s->dirfd >= 0)
		close(s->dirfd); /* and the flock with it */
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->cmu);
	free(s->segs);
	free(s->q);
	free(s);
}
