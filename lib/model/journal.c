/*
 * journal.c - a run's append-only journal: append and replay.
 *
 * Record: a frame (lib/base/frame.h) whose payload is a packed
 * cep.v1.JournalRecord. A crash can leave the last record
 * short; a disk can flip bits. Replay trusts nothing it reads: the length
 * is checked against the cap and against the bytes the file really has
 * *before* anything is allocated, the checksum before anything is decoded.
 * It stops at the first bad record; cep_journal_open cuts the file there,
 * so what is appended afterwards is never hidden behind garbage.
 *
 * Appends from several threads share one handle: a mutex makes each record
 * (or batch of records) one uninterrupted write() loop, and a failed write
 * is cut back so it never leaves half a record in the file.
 *
 * Group commit: fsync runs outside the mutex. A caller that needs its
 * bytes on disk waits while another fsync runs; when that one covered its
 * bytes it is done without an fsync of its own, else the next fsync (one
 * for every caller that waited) covers them. So appends that arrive while
 * an fsync runs share the next one, and nobody is told "synced" before an
 * fsync that started after its write returned.
 */
#define _GNU_SOURCE
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "frame.h"
#include "log.h"
#include "run_id.h"

struct cep_journal {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* an fsync ended */
	int fd;
	int refs;         /* cep_journal_hold + 1; the last close frees */
	uint64_t size;    /* bytes of whole records in the file */
	uint64_t synced;  /* bytes an fsync has covered */
	bool syncing;     /* an fsync runs (without mu) */
	uint64_t bad_end; /* an fsync covering up to here failed ... */
	int bad_errno;    /* ... with this errno (0: none failed) */
	int last_errno;   /* of the last failed append, sync or reserve */
	char path[PATH_MAX];
	cep_run_id run; /* the run id (the dir's name) for log lines */
};

/* ---- small file helpers -------------------------------------------------- */

static int journal_path(char *buf, size_t len, const char *dir, cep_err *err)
{
	if (dir == NULL || dir[0] == '\0')
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "no journal directory");
	return cep_files_path(buf, len, err, "%s/journal", dir);
}

/* The run id, when the directory is named after one (state/runs/<id>);
 * else empty. */
static void run_of(const char *dir, cep_run_id *out)
{
	const char *slash = strrchr(dir, '/');
	cep_run_id_parse(out, slash ? slash + 1 : dir);
}

/* ---- replay ------------------------------------------------------------- */

/* One step of the scan: 1 = a good record in *rec and *offp moved past it,
 * 0 = clean end of file, -1 = a bad record (info->detail says why and
 * where), or a negated cep code < -1 when we ran out of memory. */
static int next_record(int fd, uint64_t *offp, uint64_t file_size,
    Cep__V1__JournalRecord **rec, cep_journal_replay_info *info)
{
	unsigned char *buf = NULL;
	uint32_t len = 0;
	uint64_t off = *offp;
	int r = cep_frame_read(fd, off, file_size, CEP_JOURNAL_MAX_RECORD, &buf,
	    &len, info->detail, sizeof(info->detail));
	if (r == CEP_FRAME_END)
		return 0;
	if (r == CEP_FRAME_BAD)
		return -1;
	if (r != CEP_FRAME_GOOD)
		return -CEP_RESOURCE_EXHAUSTED;
	*rec = cep__v1__journal_record__unpack(NULL, len, buf);
	free(buf);
	if (*rec == NULL) {
		snprintf(info->detail, sizeof(info->detail),
		    "record at offset %llu: checksum good but the payload is not "
		    "a JournalRecord",
		    (unsigned long long)off);
		return -1;
	}
	*offp = off + CEP_FRAME_HDR + len;
	return 1;
}

/* Walks fd from the start; shared by replay and open. */
static int scan(int fd, const char *path, cep_journal_cb cb, void *arg,
    cep_journal_replay_info *info, cep_err *err)
{
	memset(info, 0, sizeof(*info));
	struct stat st;
	if (fstat(fd, &st) != 0)
		return cep_err_errno(err, errno, path);
	uint64_t size = (uint64_t)st.st_size, off = 0;
	for (;;) {
		Cep__V1__JournalRecord *rec = NULL;
		int r = next_record(fd, &off, size, &rec, info);
		if (r == 0)
			return CEP_OK;
		if (r == -1) {
			info->torn_tail = true;
			return CEP_OK;
		}
		if (r < -1)
			return cep_err_set(err, -r, "%s: out of memory", path);
		int stop = cb ? cb(rec, arg) : 0;
		cep__v1__journal_record__free_unpacked(rec, NULL);
		info->records++;
		info->valid_bytes = off;
		if (stop != 0)
			return cep_err_set(err, CEP_ABORTED,
			    "%s: replay stopped by the caller after record %zu",
			    path, info->records);
	}
}

int cep_journal_replay(const char *dir, cep_journal_cb cb, void *arg,
    cep_journal_replay_info *info, cep_err *err)
{
	char path[PATH_MAX];
	cep_journal_replay_info local;
	if (info == NULL)
		info = &local;
	memset(info, 0, sizeof(*info));
	if (journal_path(path, sizeof(path), dir, err) != 0)
		return err ? err->code : CEP_INVALID_ARGUMENT;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return cep_err_errno(err, errno, path);
	int rv = scan(fd, path, cb, arg, info, err);
	close(fd);
	return rv;
}

/* ---- writing ------------------------------------------------------------ */

static int journal_new(const char *dir, const char *path, int fd, uint64_t size,
    cep_journal **out, cep_err *err)
{
	cep_journal *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		close(fd);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	}
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	j->fd = fd;
	j->refs = 1;
	j->size = size;
	/* synced 0: what open found may sit unsynced in the page cache
	 * (written before a kill -9): the first sync covers it too */
	snprintf(j->path, sizeof(j->path), "%s", path);
	run_of(dir, &j->run);
	*out = j;
	return CEP_OK;
}

int cep_journal_create(const char *dir, cep_journal **out, cep_err *err)
{
	char path[PATH_MAX];
	*out = NULL;
	if (journal_path(path, sizeof(path), dir, err) != 0)
		return err ? err->code : CEP_INVALID_ARGUMENT;
	int rv = cep_files_mkdirs(dir, 0700, err);
	if (rv != 0)
		return rv;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC,
	    0600);
	if (fd < 0)
		return cep_err_errno(err, errno, path);
	(void)fchmod(fd, 0600); /* whatever the umask */
	/* the file's name must survive a crash as much as its records */
	if (cep_files_fsync_dir(dir) != 0) {
		int e = errno;
		close(fd);
		return cep_err_errno(err, e, dir);
	}
	return journal_new(dir, path, fd, 0, out, err);
}

/* Cuts what follows the last good record, and says so. */
static int cut_tail(int fd, const char *path, const char *run,
    const cep_journal_replay_info *info, cep_err *err)
{
	if (ftruncate(fd, (off_t)info->valid_bytes) != 0 || fsync(fd) != 0)
		return cep_err_errno(err, errno, path);
	cep_log_warn(run[0] ? run : NULL,
	    "journal %s: cut a torn tail at offset %llu after %zu good records "
	    "(%s)",
	    path, (unsigned long long)info->valid_bytes, info->records,
	    info->detail);
	return CEP_OK;
}

int cep_journal_open(const char *dir, cep_journal **out, cep_err *err)
{
	char path[PATH_MAX];
	cep_run_id run;
	*out = NULL;
	if (journal_path(path, sizeof(path), dir, err) != 0)
		return err ? err->code : CEP_INVALID_ARGUMENT;
	int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return cep_err_errno(err, errno, path);
	cep_journal_replay_info info;
	int rv = scan(fd, path, NULL, NULL, &info, err);
	run_of(dir, &run);
	if (rv == 0 && info.torn_tail)
		rv = cut_tail(fd, path, run.s, &info, err);
	if (rv != 0) {
		close(fd);
		return rv;
	}
	return journal_new(dir, path, fd, info.valid_bytes, out, err);
}

/* One whole record into buf (header + payload). */
static int frame(const Cep__V1__JournalRecord *rec, unsigned char **buf,
    size_t *len, cep_err *err)
{
	size_t n = cep__v1__journal_record__get_packed_size(rec);
	if (n > CEP_JOURNAL_MAX_RECORD)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "journal record of %zu bytes exceeds the %u-byte limit", n,
		    CEP_JOURNAL_MAX_RECORD);
	return cep_frame_pack(&rec->base, n, buf, len, err);
}

/* Caller holds j->mu. A failed write (ENOSPC: half a record landed) is cut
 * back to j->size, so the caller may append the same records again later
 * (the delegate's runner resends what was not acknowledged) without them
 * appearing twice. A failed fsync is not cut back (cep_journal_sync: other
 * callers' records are past that point); it fails the callers it covered. */
static int write_locked(cep_journal *j, const unsigned char *buf, size_t len,
    cep_err *err)
{
	int e = cep_frame_write(j->fd, buf, len);
	j->last_errno = e;
	if (e != 0) {
		if (ftruncate(j->fd, (off_t)j->size) != 0)
			cep_log_error(j->run.s, /* "": no run */
			    "journal %s: cannot cut a failed append back to "
			    "offset %llu",
			    j->path, (unsigned long long)j->size);
		return cep_err_errno(err, e, j->path);
	}
	j->size += len;
	return CEP_OK;
}

int cep_journal_sync(cep_journal *j, uint64_t end, cep_err *err)
{
	if (j == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT, "no journal");
	pthread_mutex_lock(&j->mu);
	if (end > j->size)
		end = j->size;
	while (j->synced < end && j->syncing)
		pthread_cond_wait(&j->cv, &j->mu);
	if (j->synced >= end) {
		pthread_mutex_unlock(&j->mu);
		return CEP_OK;
	}
	if (j->bad_errno != 0 && j->bad_end >= end) {
		/* the fsync that covered ours failed: so did ours */
		int e = j->bad_errno;
		pthread_mutex_unlock(&j->mu);
		return cep_err_errno(err, e, j->path);
	}
	j->syncing = true;
	uint64_t target = j->size; /* covers every write so far */
	pthread_mutex_unlock(&j->mu);
	int e = fsync(j->fd) == 0 ? 0 : errno;
	pthread_mutex_lock(&j->mu);
	j->syncing = false;
	if (e == 0 && target > j->synced)
		j->synced = target;
	if (e != 0) {
		j->bad_end = target;
		j->bad_errno = e;
		j->last_errno = e;
	}
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	return e == 0 ? CEP_OK : cep_err_errno(err, e, j->path);
}

int cep_journal_append(cep_journal *j, const Cep__V1__JournalRecord *rec,
    bool sync, cep_err *err)
{
	uint64_t end = 0;
	int rv = cep_journal_append_many(j, &rec, rec ? 1 : 0, &end, err);
	if (rv == CEP_OK && sync)
		rv = cep_journal_sync(j, end, err);
	return rv;
}

/* recs[0..n) framed into one buffer: one write() for the lot. */
static int frame_all(const Cep__V1__JournalRecord *const *recs, size_t n,
    unsigned char **out, size_t *outlen, cep_err *err)
{
	if (n == 1)
		return frame(recs[0], out, outlen, err);
	size_t len = 0, cap = 0;
	unsigned char *all = NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char *buf = NULL;
		size_t blen = 0;
		int rv = frame(recs[i], &buf, &blen, err);
		if (rv == CEP_OK && len + blen > cap) {
			cap = (len + blen) * 2;
			unsigned char *grown = realloc(all, cap);
			if (grown == NULL)
				rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
				    "out of memory");
			else
				all = grown;
		}
		if (rv != CEP_OK) {
			free(buf);
			free(all);
			return rv;
		}
		memcpy(all + len, buf, blen);
		len += blen;
		free(buf);
	}
	*out = all;
	*outlen = len;
	return CEP_OK;
}

int cep_journal_append_many(cep_journal *j,
    const Cep__V1__JournalRecord *const *recs, size_t n, uint64_t *end,
    cep_err *err)
{
	bool ok = j != NULL && recs != NULL && n > 0;
	for (size_t i = 0; ok && i < n; i++)
		ok = recs[i] != NULL;
	if (!ok)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "no journal or record");
	unsigned char *buf = NULL;
	size_t len = 0;
	int rv = frame_all(recs, n, &buf, &len, err);
	if (rv != 0)
		return rv;
	pthread_mutex_lock(&j->mu);
	rv = write_locked(j, buf, len, err);
	if (end != NULL)
		*end = j->size;
	pthread_mutex_unlock(&j->mu);
	free(buf);
	return rv;
}

int cep_journal_reserve(cep_journal *j, uint64_t bytes, cep_err *err)
{
	if (j == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT, "no journal");
	pthread_mutex_lock(&j->mu);
	int e = 0;
	if (bytes == 0 && ftruncate(j->fd, (off_t)j->size) != 0)
		e = errno; /* the same size: frees what lies past the end */
	else if (bytes > 0 && bytes <= (uint64_t)INT64_MAX - j->size &&
	    fallocate(j->fd, FALLOC_FL_KEEP_SIZE, (off_t)j->size,
	        (off_t)bytes) != 0)
		e = errno;
	if (e == EOPNOTSUPP || e == ENOSYS)
		e = 0; /* no preallocation there: appends work as before */
	j->last_errno = e;
	pthread_mutex_unlock(&j->mu);
	return e ? cep_err_errno(err, e, j->path) : CEP_OK;
}

int cep_journal_last_errno(cep_journal *j)
{
	if (j == NULL)
		return 0;
	pthread_mutex_lock(&j->mu);
	int e = j->last_errno;
	pthread_mutex_unlock(&j->mu);
	return e;
}

uint64_t cep_journal_end(cep_journal *j)
{
	pthread_mutex_lock(&j->mu);
	uint64_t end = j->size;
	pthread_mutex_unlock(&j->mu);
	return end;
}

void cep_journal_hold(cep_journal *j)
{
	pthread_mutex_lock(&j->mu);
	j->refs++;
	pthread_mutex_unlock(&j->mu);
}

void cep_journal_close(cep_journal *j)
{
	if (j == NULL)
		return;
	pthread_mutex_lock(&j->mu);
	bool last = --j->refs == 0;
	pthread_mutex_unlock(&j->mu);
	if (!last)
		return;
	close(j->fd);
	pthread_cond_destroy(&j->cv);
	pthread_mutex_destroy(&j->mu);
	free(j);
}
