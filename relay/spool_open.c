/*
 * spool_open.c - opening a spool: the lock, the cursor, and the replay of
 * the segments into the in-memory queue.
 *
 * Replay trusts nothing on disk. The cursor is believed only with a good
 * checksum; without one every segment is delivered again from its start
 * (duplicates, which the control plane drops, rather than a loss).
 * Segments below the cursor's are delivered (a crash came between the
 * cursor and the unlink) and go. A bad record cuts its segment there, so
 * nothing appended later is hidden behind it; appends after an open
 * always start a new segment, never extend a replayed one.
 */
#define _GNU_SOURCE
#include "spool_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frame.h"
#include "log.h"
#include "files.h"

static uint64_t get_le(const unsigned char *p, int bytes)
{
	uint64_t v = 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* 1 with *seg, *off from a good cursor file, 0 without one. */
static int read_cursor(cep_spool *s, uint64_t *seg, uint64_t *off)
{
	unsigned char b[SPOOL_CURSOR_LEN + 1];
	int fd = openat(s->dirfd, SPOOL_CURSOR,
	    O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno != ENOENT)
			cep_log_warn(NULL,
			    "spool %s/%s: %s; delivering every segment "
			    "from its start",
			    s->dir, SPOOL_CURSOR, strerror(errno));
		return 0;
	}
	ssize_t n = pread(fd, b, sizeof(b), 0);
	close(fd);
	if (n != (ssize_t)SPOOL_CURSOR_LEN ||
	    (uint32_t)get_le(b + 16, 4) != cep_frame_crc32c(b, 16)) {
		cep_log_warn(NULL,
		    "spool %s/%s: unreadable (%zd bytes or a bad "
		    "checksum); delivering every segment from its start",
		    s->dir, SPOOL_CURSOR, n);
		return 0;
	}
	*seg = get_le(b, 8);
	*off = get_le(b + 8, 8);
	return 1;
}

/* seg- and exactly 16 digits: anything else in the directory is not ours. */
static int parse_seg_name(const char *name, uint64_t *id)
{
	if (strncmp(name, "seg-", 4) != 0 || strlen(name) != 20)
		return 0;
	uint64_t v = 0;
	for (const char *p = name + 4; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*id = v;
	return 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The segment ids in the directory, ascending; stale cursor temp files
 * (a crash inside cep_files_write) are removed on the way. */
static int list_segments(cep_spool *s, uint64_t **ids, size_t *n, cep_err *err)
{
	int fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (d == NULL) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return cep_err_errno(err, e, s->dir);
	}
	uint64_t *v = NULL;
	size_t len = 0, cap = 0;
	int rv = CEP_OK;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		uint64_t id;
		if (strncmp(de->d_name, SPOOL_CURSOR ".tmp.", 11) == 0) {
			(void)unlinkat(s->dirfd, de->d_name, 0);
			continue;
		}
		if (!parse_seg_name(de->d_name, &id))
			continue;
		if (len == cap) {
			size_t nc = cap ? cap * 2 : 16;
			uint64_t *nv = realloc(v, nc * sizeof(*v));
			if (nv == NULL) {
				rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
				    "out of memory");
				break;
			}
			v = nv;
			cap = nc;
		}
		v[len++] = id;
	}
	closedir(d);
	if (rv != CEP_OK) {
		free(v);
		return rv;
	}
	if (len > 0)
		qsort(v, len, sizeof(*v), cmp_u64);
	*ids = v;
	*n = len;
	return CEP_OK;
}

/* Cuts a segment after its last good record, and says so. */
static int cut_segment(cep_spool *s, int fd, const char *name, uint64_t off,
    size_t good, const char *detail, cep_err *err)
{
	if (ftruncate(fd, (off_t)off) != 0 || fsync(fd) != 0)
		return cep_err_errno(err, errno, name);
	cep_log_warn(NULL,
	    "spool %s/%s: cut at offset %llu after %zu good "
	    "records (%s)",
	    s->dir, name, (unsigned long long)off, good, detail);
	return CEP_OK;
}

/* One record at off: 1 = queued, 0 = end, -1 = bad (detail), or a cep
 * code for out of memory as -code. */
static int replay_record(cep_spool *s, int fd, uint64_t id, uint64_t *off,
    uint64_t size, char *detail, size_t dlen, cep_err *err)
{
	unsigned char *buf = NULL;
	uint32_t len = 0;
	int r = cep_frame_read(fd, *off, size, SPOOL_REC_MAX, &buf, &len,
	    detail, dlen);
	if (r == CEP_FRAME_END)
		return 0;
	if (r == CEP_FRAME_BAD)
		return -1;
	if (r != CEP_FRAME_GOOD)
		return -cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	Cep__V1__SpoolRecord *rec = cep__v1__spool_record__unpack(NULL, len,
	    buf);
	free(buf);
	if (rec == NULL || rec->batch == NULL) {
		if (rec != NULL)
			cep__v1__spool_record__free_unpacked(rec, NULL);
		snprintf(detail, dlen,
		    "record at offset %llu: checksum good but "
		    "the payload is not a SpoolRecord with a batch",
		    (unsigned long long)*off);
		return -1;
	}
	struct spool_rec q = {id, *off, CEP_FRAME_HDR + len, rec->time_ms};
	relay_spool_mark(s, rec->batch);
	cep__v1__spool_record__free_unpacked(rec, NULL);
	int c = relay_spool_push_rec(s, &q, err);
	if (c != CEP_OK)
		return -c;
	*off += q.len;
	return 1;
}

/* Queues the records of segment id from offset start; a segment with none
 * left is delivered or empty, and goes. */
static int replay_segment(cep_spool *s, uint64_t id, uint64_t start,
    cep_err *err)
{
	char name[32], detail[256];
	relay_spool_seg_name(name, sizeof(name), id);
	int fd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		int e = fd < 0 ? errno : EINVAL;
		if (fd >= 0)
			close(fd);
		cep_err_errno(err, e, name);
		return cep_err_wrap(err, "spool %s", s->dir);
	}
	uint64_t size = (uint64_t)st.st_size, off = start;
	if (start > size) {
		cep_log_warn(NULL,
		    "spool %s/%s: the cursor (offset %llu) is past "
		    "the end (%llu bytes); nothing in it is undelivered",
		    s->dir, name, (unsigned long long)start,
		    (unsigned long long)size);
		off = size;
	}
	size_t good = 0;
	int r, rv = CEP_OK;
	while ((r = replay_record(s, fd, id, &off, size, detail, sizeof(detail),
	            err)) == 1)
		good++;
	if (r < -1)
		rv = -r;
	else if (r == -1 &&
	    (rv = cut_segment(s, fd, name, off, good, detail, err)) == CEP_OK)
		size = off;
	close(fd);
	if (rv != CEP_OK)
		return rv;
	if (good == 0) {
		if (unlinkat(s->dirfd, name, 0) != 0 && errno != ENOENT)
			return cep_err_errno(err, errno, name);
		return CEP_OK;
	}
	s->disk += (int64_t)size;
	return relay_spool_push_seg(s, id, size, err);
}

int relay_spool_replay(cep_spool *s, cep_err *err)
{
	uint64_t cseg = 0, coff = 0, *ids = NULL;
	size_t n = 0;
	int have = read_cursor(s, &cseg, &coff);
	int rv = list_segments(s, &ids, &n, err);
	if (rv != CEP_OK)
		return rv;
	uint64_t last = have ? cseg : 0;
	for (size_t i = 0; i < n && rv == CEP_OK; i++) {
		char name[32];
		if (ids[i] > last)
			last = ids[i];
		if (have && ids[i] < cseg) {
			relay_spool_seg_name(name, sizeof(name), ids[i]);
			if (unlinkat(s->dirfd, name, 0) != 0 && errno != ENOENT)
				rv = cep_err_errno(err, errno, name);
			continue;
		}
		rv = replay_segment(s, ids[i],
		    have && ids[i] == cseg ? coff : 0, err);
	}
	free(ids);
	if (rv == CEP_OK && n > 0 && fsync(s->dirfd) != 0)
		rv = cep_err_errno(err, errno, s->dir);
	s->next_id = last + 1;
	/* A cursor from the start, as none means: on a full disk a commit
	 * can then overwrite it in place (spool.c), where it could not
	 * create it. Best effort: without room now, the first commit tries. */
	cep_err ignored = {0};
	if (rv == CEP_OK && !have)
		(void)relay_spool_write_cursor(s,
		    s->nsegs ? s->segs[0].id : s->next_id, 0, &ignored);
	return rv;
}

int relay_spool_open(const char *dir, int64_t max_bytes, cep_spool **out,
    cep_err *err)
{
	*out = NULL;
	if (dir == NULL || dir[0] == '\0' || max_bytes <= 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "a spool needs a directory and a positive size");
	cep_spool *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->cmu, NULL);
	s->afd = -1;
	s->dirfd = -1;
	s->max_bytes = max_bytes;
	uint64_t roll = (uint64_t)max_bytes / 8;
	s->roll = roll < SPOOL_ROLL_MIN ? SPOOL_ROLL_MIN :
	    roll > SPOOL_ROLL_MAX       ? SPOOL_ROLL_MAX :
	                                  roll;
	int rv = cep_files_path(s->dir, sizeof(s->dir), err, "%s", dir);
	if (rv == CEP_OK)
		rv = cep_files_mkdirs(dir, 0700, err);
	if (rv == CEP_OK) {
		s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (s->dirfd < 0)
			rv = cep_err_errno(err, errno, dir);
	}
	/* two writers of one spool would interleave segments and cursors */
	if (rv == CEP_OK && flock(s->dirfd, LOCK_EX | LOCK_NB) != 0)
		rv = errno == EWOULDBLOCK ?
		    cep_err_set(err, CEP_FAILED_PRECONDITION,
		        "spool %s is in use by another process", dir) :
		    cep_err_errno(err, errno, dir);
	if (rv == CEP_OK)
		rv = relay_spool_replay(s, err);
	if (rv != CEP_OK) {
		relay_spool_close(s);
		return rv;
	}
	if (s->qlen > s->qhead)
		cep_log_info(NULL,
		    "spool %s: %zu undelivered records (%lld "
		    "bytes) in %zu segments",
		    dir, s->qlen - s->qhead, (long long)s->undelivered,
		    s->nsegs);
	*out = s;
	return CEP_OK;
}
