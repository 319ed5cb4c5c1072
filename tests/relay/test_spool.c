/*
 * test_spool.c - the relay's on-disk spool: order across appends, peeks and
 * commits; the size bound and its backpressure; reopening; torn and
 * corrupt segments; segments unlinked once delivered; kill -9 of an
 * appending child at random points; concurrent appenders and a consumer.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"
#include "testutil.h"

static char *dir;

static void setup(void)
{
	cep_log_set_level(CEP_LOG_ERROR);
	dir = cep_test_tmpdir("spool");
}

static void teardown(void)
{
	cep_test_rmdir(dir);
}

/* A batch for run `run` whose one event has seq `seq` and pad bytes. */
static void append(cep_spool *s, const char *run, uint64_t seq, size_t pad)
{
	char text[4096];
	memset(text, 'x', pad < sizeof(text) ? pad : sizeof(text) - 1);
	text[pad < sizeof(text) ? pad : sizeof(text) - 1] = '\0';
	Cep__V1__Event ev = CEP__V1__EVENT__INIT;
	Cep__V1__Event *evp = &ev;
	ev.run_id = (char *)run;
	ev.seq = seq;
	ev.text = text;
	Cep__V1__EventBatch b = CEP__V1__EVENT_BATCH__INIT;
	b.run_id = (char *)run;
	b.n_events = 1;
	b.events = &evp;
	cep_err err = {0};
	int rc = relay_spool_append(s, &b, &err);
	cr_assert_eq(rc, 0, "append %s/%llu: %s", run, (unsigned long long)seq,
	    err.msg);
}

static uint64_t seq_of(const Cep__V1__EventBatch *b)
{
	cr_assert_eq(b->n_events, 1);
	return b->events[0]->seq;
}

/* Peeks and commits everything, checking seqs are want, want+1, ... */
static uint64_t drain(cep_spool *s, uint64_t want, size_t peek_bytes)
{
	for (;;) {
		Cep__V1__EventBatch **v = NULL;
		size_t n = 0;
		uint64_t tok = 0;
		cep_err err = {0};
		cr_assert_eq(relay_spool_peek(s, peek_bytes, 0, &v, &n, &tok,
		                 &err),
		    0, "%s", err.msg);
		if (n == 0)
			return want;
		for (size_t i = 0; i < n; i++)
			cr_assert_eq(seq_of(v[i]), want++, "out of order");
		relay_spool_batches_free(v, n);
		cr_assert_eq(relay_spool_commit(s, tok, &err), 0, "%s",
		    err.msg);
	}
}

static size_t count_segments(void)
{
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, "seg-", 4) == 0;
	closedir(d);
	return n;
}

static cep_spool *open_spool(int64_t max)
{
	cep_spool *s = NULL;
	cep_err err = {0};
	cr_assert_eq(relay_spool_open(dir, max, &s, &err), 0, "%s", err.msg);
	return s;
}

TestSuite(spool, .init = setup, .fini = teardown);

Test(spool, order_across_peeks_and_commits)
{
	cep_spool *s = open_spool(16 << 20);
	uint64_t next = 1, want = 1;
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 50; i++)
			append(s, "r-1", next++, (size_t)(i * 37 % 500));
		/* a peek without commit returns the same records again */
		Cep__V1__EventBatch **v = NULL;
		size_t n = 0, n2 = 0;
		uint64_t tok = 0, tok2 = 0;
		cep_err err = {0};
		cr_assert_eq(relay_spool_peek(s, 2000, 0, &v, &n, &tok, &err),
		    0);
		cr_assert_gt(n, 0);
		uint64_t first = seq_of(v[0]);
		relay_spool_batches_free(v, n);
		cr_assert_eq(relay_spool_peek(s, 2000, 0, &v, &n2, &tok2, &err),
		    0);
		cr_assert_eq(n2, n);
		cr_assert_eq(tok2, tok);
		cr_assert_eq(seq_of(v[0]), first);
		relay_spool_batches_free(v, n2);
		want = drain(s, want, (size_t)(round * 300 + 1));
	}
	cr_assert_eq(want, next);
	cr_assert_eq(relay_spool_records(s), 0);
	cr_assert_eq(relay_spool_bytes(s), 0);
	cr_assert_eq(relay_spool_oldest_ms(s), 0);
	relay_spool_close(s);
}

Test(spool, bound_and_space_after_commit)
{
	cep_spool *s = open_spool(64 * 1024);
	cep_err err = {0};
	uint64_t seq = 1;
	Cep__V1__EventBatch b = CEP__V1__EVENT_BATCH__INIT;
	for (;; seq++) {
		Cep__V1__Event ev = CEP__V1__EVENT__INIT, *evp = &ev;
		char text[1000];
		memset(text, 'y', sizeof(text) - 1);
		text[sizeof(text) - 1] = '\0';
		ev.seq = seq;
		ev.text = text;
		b.n_events = 1;
		b.events = &evp;
		int rc = relay_spool_append(s, &b, &err);
		if (rc != 0) {
			cr_assert_eq(rc, CEP_RESOURCE_EXHAUSTED, "%s", err.msg);
			cr_assert(strstr(err.msg, "spool full") != NULL, "%s",
			    err.msg);
			cr_assert(strstr(err.msg, "of 65536 bytes") != NULL,
			    "%s", err.msg);
			break;
		}
		cr_assert_lt(seq, 1000, "the bound never bit");
	}
	cr_assert_leq(relay_spool_disk_bytes(s), 64 * 1024);
	cr_assert_gt(relay_spool_oldest_ms(s), 0);
	size_t had = relay_spool_records(s);
	cr_assert_eq(had, seq - 1);
	/* deliver all: the space comes back */
	cr_assert_eq(drain(s, 1, 10000), seq);
	cr_assert_eq(relay_spool_disk_bytes(s), 0);
	cr_assert_eq(count_segments(), 0);
	append(s, "r-1", seq, 1000);
	cr_assert_eq(relay_spool_records(s), 1);
	relay_spool_close(s);
}

Test(spool, oversize_batch_is_invalid)
{
	cep_spool *s = open_spool(64 << 20);
	size_t big = CEP_SPOOL_MAX_BATCH + 10;
	char *text = malloc(big + 1);
	memset(text, 'z', big);
	text[big] = '\0';
	Cep__V1__Event ev = CEP__V1__EVENT__INIT, *evp = &ev;
	ev.text = text;
	Cep__V1__EventBatch b = CEP__V1__EVENT_BATCH__INIT;
	b.n_events = 1;
	b.events = &evp;
	cep_err err = {0};
	cr_assert_eq(relay_spool_append(s, &b, &err), CEP_INVALID_ARGUMENT);
	free(text);
	cr_assert_eq(relay_spool_records(s), 0);
	relay_spool_close(s);
	/* and a batch larger than the whole spool could ever hold */
	s = open_spool(100);
	ev.text =
	    "0123456789012345678901234567890123456789012345678901234567890"
	    "123456789012345678901234567890123456789";
	cr_assert_eq(relay_spool_append(s, &b, &err), CEP_INVALID_ARGUMENT);
	relay_spool_close(s);
}

Test(spool, reopen_yields_undelivered)
{
	cep_spool *s = open_spool(1 << 20);
	for (uint64_t i = 1; i <= 300; i++)
		append(s, "r-1", i, 200);
	/* deliver the first 100 */
	uint64_t want = 1;
	while (want <= 100) {
		Cep__V1__EventBatch **v = NULL;
		size_t n = 0;
		uint64_t tok = 0;
		cep_err err = {0};
		cr_assert_eq(relay_spool_peek(s, 1, 0, &v, &n, &tok, &err), 0);
		cr_assert_eq(n, 1);
		cr_assert_eq(seq_of(v[0]), want++);
		relay_spool_batches_free(v, n);
		cr_assert_eq(relay_spool_commit(s, tok, &err), 0, "%s",
		    err.msg);
		cr_assert_eq(relay_spool_commit(s, tok, &err), 0,
		    "twice is a no-op");
	}
	cep_err err = {0};
	cr_assert_eq(relay_spool_commit(s, 1000000, &err),
	    CEP_INVALID_ARGUMENT);
	int64_t bytes = relay_spool_bytes(s);
	/* a second open of a spool in use is refused */
	cep_spool *other = NULL;
	cr_assert_eq(relay_spool_open(dir, 1 << 20, &other, &err),
	    CEP_FAILED_PRECONDITION);
	relay_spool_close(s);
	s = open_spool(1 << 20);
	cr_assert_eq(relay_spool_records(s), 200);
	cr_assert_eq(relay_spool_bytes(s), bytes);
	append(s, "r-1", 301, 10);
	cr_assert_eq(drain(s, 101, 5000), 302);
	relay_spool_close(s);
}

Test(spool, segments_unlinked_after_delivery)
{
	cep_spool *s = open_spool(64 * 1024); /* rolls every 8 KiB */
	for (uint64_t i = 1; i <= 40; i++)
		append(s, "r-1", i, 1000);
	size_t segs = count_segments();
	cr_assert_geq(segs, 4, "%zu segments", segs);
	/* half delivered: the segments before the cursor's are gone */
	uint64_t want = 1;
	while (want <= 20) {
		Cep__V1__EventBatch **v = NULL;
		size_t n = 0;
		uint64_t tok = 0;
		cep_err err = {0};
		cr_assert_eq(relay_spool_peek(s, 1, 0, &v, &n, &tok, &err), 0);
		want += n;
		relay_spool_batches_free(v, n);
		cr_assert_eq(relay_spool_commit(s, tok, &err), 0);
	}
	size_t half = count_segments();
	cr_assert_lt(half, segs);
	cr_assert_gt(half, 0);
	cr_assert_eq(drain(s, 21, 3000), 41);
	cr_assert_eq(count_segments(), 0);
	relay_spool_close(s);
	s = open_spool(64 * 1024);
	cr_assert_eq(relay_spool_records(s), 0);
	relay_spool_close(s);
}

/* The one segment file (the test makes only one) and its size. */
static void only_segment(char *path, size_t len, off_t *size)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	path[0] = '\0';
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "seg-", 4) == 0)
			snprintf(path, len, "%s/%s", dir, de->d_name);
	closedir(d);
	cr_assert(path[0] != '\0');
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	*size = st.st_size;
}

Test(spool, torn_tail_is_cut)
{
	cep_spool *s = open_spool(1 << 20);
	for (uint64_t i = 1; i <= 10; i++)
		append(s, "r-1", i, 100);
	int64_t bytes = relay_spool_bytes(s);
	relay_spool_close(s);
	char path[4096];
	off_t size;
	only_segment(path, sizeof(path), &size);
	cr_assert_eq(size, bytes);
	/* the last record is size/10 bytes; cut it in the middle */
	cr_assert_eq(truncate(path, size - (size / 10) / 2), 0);
	s = open_spool(1 << 20);
	cr_assert_eq(relay_spool_records(s), 9);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_size, size / 10 * 9, "the torn tail was cut");
	append(s, "r-1", 10, 100);
	cr_assert_eq(drain(s, 1, 100000), 11);
	relay_spool_close(s);
}

Test(spool, corrupt_byte_keeps_the_good_records)
{
	cep_spool *s = open_spool(1 << 20);
	for (uint64_t i = 1; i <= 10; i++)
		append(s, "r-1", i, 100);
	relay_spool_close(s);
	char path[4096];
	off_t size;
	only_segment(path, sizeof(path), &size);
	/* flip a payload byte of record 5 (records are equally long) */
	int fd = open(path, O_RDWR);
	off_t at = size / 10 * 4 + 20;
	unsigned char c;
	cr_assert_eq(pread(fd, &c, 1, at), 1);
	c ^= 0x40;
	cr_assert_eq(pwrite(fd, &c, 1, at), 1);
	close(fd);
	s = open_spool(1 << 20);
	cr_assert_eq(relay_spool_records(s), 4);
	cr_assert_eq(drain(s, 1, 100000), 5);
	relay_spool_close(s);
	/* garbage as a whole segment: nothing from it, no crash */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_eq(write(fd, "\xff\xff\xff\xff garbage", 12), 12);
	close(fd);
	s = open_spool(1 << 20);
	cr_assert_eq(relay_spool_records(s), 0);
	relay_spool_close(s);
}

static void *peek_forever(void *arg)
{
	cep_spool *s = arg;
	Cep__V1__EventBatch **v = NULL;
	size_t n = 1;
	uint64_t tok = 1;
	cep_err err = {0};
	int rc = relay_spool_peek(s, 100, -1, &v, &n, &tok, &err);
	return (void *)(intptr_t)(rc == 0 && n == 0 ? 1 : 0);
}

Test(spool, peek_waits_and_wakes)
{
	cep_spool *s = open_spool(1 << 20);
	Cep__V1__EventBatch **v = NULL;
	size_t n = 1;
	uint64_t tok = 1;
	cep_err err = {0};
	cr_assert_eq(relay_spool_peek(s, 100, 50, &v, &n, &tok, &err), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(tok, 0);
	cr_assert_eq(relay_spool_commit(s, tok, &err), 0);
	pthread_t t;
	void *ok = NULL;
	pthread_create(&t, NULL, peek_forever, s);
	usleep(50 * 1000);
	relay_spool_wake(s);
	pthread_join(t, &ok);
	cr_assert_eq((intptr_t)ok, 1, "a wake ends a peek without limit");
	relay_spool_close(s);
}

/* The child: appends seq, seq+1, ... and reports each after it returned. */
static void child_appender(int wfd, uint64_t seq)
{
	cep_spool *s = NULL;
	cep_err err = {0};
	if (relay_spool_open(dir, 256 * 1024, &s, &err) != 0)
		_exit(2);
	for (;; seq++) {
		Cep__V1__Event ev = CEP__V1__EVENT__INIT, *evp = &ev;
		Cep__V1__EventBatch b = CEP__V1__EVENT_BATCH__INIT;
		char text[300];
		memset(text, 'k', sizeof(text) - 1);
		text[seq % sizeof(text)] = '\0';
		ev.seq = seq;
		ev.text = text;
		b.n_events = 1;
		b.events = &evp;
		int rc = relay_spool_append(s, &b, &err);
		if (rc == CEP_RESOURCE_EXHAUSTED) {
			usleep(1000); /* the parent drains between kills */
			seq--;
			continue;
		}
		if (rc != 0 || write(wfd, &seq, sizeof(seq)) != sizeof(seq))
			_exit(3);
	}
}

Test(spool, kill_9_loses_no_acknowledged_append, .timeout = 240)
{
	uint64_t next = 1, first = 1; /* first undelivered seq */
	srand((unsigned)getpid());
	for (int round = 0; round < 20; round++) {
		int p[2];
		cr_assert_eq(pipe(p), 0);
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			close(p[0]);
			child_appender(p[1], next);
		}
		close(p[1]);
		usleep((useconds_t)(5000 + rand() % 60000));
		kill(pid, SIGKILL);
		int st;
		waitpid(pid, &st, 0);
		cr_assert(WIFSIGNALED(st), "the child failed: status %d", st);
		uint64_t seq, acked = next - 1;
		while (read(p[0], &seq, sizeof(seq)) == (ssize_t)sizeof(seq)) {
			cr_assert_eq(seq, acked + 1);
			acked = seq;
		}
		close(p[0]);
		/* every acknowledged append is there, in order; at most one more
		 * (fsynced, killed before it could report) */
		cep_spool *s = open_spool(256 * 1024);
		Cep__V1__EventBatch **v = NULL;
		size_t n = 0;
		uint64_t tok = 0;
		cep_err err = {0};
		cr_assert_eq(relay_spool_peek(s, SIZE_MAX, 0, &v, &n, &tok,
		                 &err),
		    0, "%s", err.msg);
		cr_assert_geq(first + n - 1, acked,
		    "round %d: %zu records from "
		    "%llu, %llu acknowledged",
		    round, n, (unsigned long long)first,
		    (unsigned long long)acked);
		cr_assert_leq(first + n - 1, acked + 1);
		for (size_t i = 0; i < n; i++)
			cr_assert_eq(seq_of(v[i]), first + i);
		relay_spool_batches_free(v, n);
		next = first + n;
		/* deliver some of them, so the cursor moves under the kills */
		if (round % 2 == 0 && n > 0) {
			cr_assert_eq(relay_spool_peek(s, (size_t)rand() % 20000,
			                 0, &v, &n, &tok, &err),
			    0);
			relay_spool_batches_free(v, n);
			cr_assert_eq(relay_spool_commit(s, tok, &err), 0, "%s",
			    err.msg);
			first += n;
		}
		relay_spool_close(s);
	}
	cr_assert_gt(next, 20, "the child appended almost nothing");
}

#define APPENDERS 4
#define PER_APPENDER 200

static void *appender(void *arg)
{
	cep_spool *s = *(cep_spool **)arg;
	int id = (int)(intptr_t)((cep_spool **)arg)[1];
	char run[16];
	snprintf(run, sizeof(run), "r-%d", id);
	for (uint64_t seq = 1; seq <= PER_APPENDER;) {
		Cep__V1__Event ev = CEP__V1__EVENT__INIT, *evp = &ev;
		Cep__V1__EventBatch b = CEP__V1__EVENT_BATCH__INIT;
		ev.run_id = run;
		ev.seq = seq;
		ev.text = "concurrent";
		b.run_id = run;
		b.n_events = 1;
		b.events = &evp;
		cep_err err = {0};
		int rc = relay_spool_append(s, &b, &err);
		if (rc == CEP_RESOURCE_EXHAUSTED) { /* backpressure */
			usleep(500);
			continue;
		}
		if (rc != 0)
			return NULL;
		seq++;
	}
	return arg;
}

Test(spool, concurrent_appenders_one_consumer, .timeout = 240)
{
	cep_spool *s = open_spool(16 * 1024); /* small: appenders must wait */
	pthread_t t[APPENDERS];
	void *args[APPENDERS][2];
	for (int i = 0; i < APPENDERS; i++) {
		args[i][0] = s;
		args[i][1] = (void *)(intptr_t)i;
		pthread_create(&t[i], NULL, appender, args[i]);
	}
	uint64_t want[APPENDERS];
	size_t total = 0;
	for (int i = 0; i < APPENDERS; i++)
		want[i] = 1;
	while (total < APPENDERS * PER_APPENDER) {
		Cep__V1__EventBatch **v = NULL;
		size_t n = 0;
		uint64_t tok = 0;
		cep_err err = {0};
		cr_assert_eq(relay_spool_peek(s, 1000, 2000, &v, &n, &tok,
		                 &err),
		    0);
		cr_assert_gt(n, 0, "no progress after %zu records", total);
		for (size_t i = 0; i < n; i++) {
			int id = v[i]->run_id[2] - '0';
			cr_assert(id >= 0 && id < APPENDERS);
			cr_assert_eq(seq_of(v[i]), want[id]++, "appender %d",
			    id);
		}
		total += n;
		relay_spool_batches_free(v, n);
		cr_assert_eq(relay_spool_commit(s, tok, &err), 0, "%s",
		    err.msg);
	}
	for (int i = 0; i < APPENDERS; i++) {
		void *rv = NULL;
		pthread_join(t[i], &rv);
		cr_assert_not_null(rv, "appender %d failed", i);
		cr_assert_eq(want[i], PER_APPENDER + 1);
	}
	cr_assert_eq(relay_spool_records(s), 0);
	relay_spool_close(s);
}

/* A batch of run `run` with events first..last. */
static size_t append_new(cep_spool *s, const char *run, uint64_t first,
    uint64_t last)
{
	Cep__V1__Event ev[16], *evp[16];
	Cep__V1__EventBatch b = CEP__V1__EVENT_BATCH__INIT;
	b.run_id = (char *)run;
	for (uint64_t q = first; q <= last; q++) {
		Cep__V1__Event *e = &ev[b.n_events];
		*e = (Cep__V1__Event)CEP__V1__EVENT__INIT;
		e->run_id = (char *)run;
		e->seq = q;
		evp[b.n_events++] = e;
	}
	b.events = evp;
	size_t kept = 99;
	cep_err err = {0};
	cr_assert_eq(relay_spool_append_new(s, &b, &kept, &err), 0, "%s",
	    err.msg);
	return kept;
}

/* Every seq of run in the spool, in order, into out; -> how many. */
static size_t spooled_seqs(cep_spool *s, const char *run, uint64_t *out,
    size_t cap)
{
	Cep__V1__EventBatch **v = NULL;
	size_t n = 0, k = 0;
	uint64_t tok = 0;
	cep_err err = {0};
	cr_assert_eq(relay_spool_peek(s, 1 << 20, 0, &v, &n, &tok, &err), 0);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < v[i]->n_events; j++)
			if (strcmp(v[i]->run_id, run) == 0 && k < cap)
				out[k++] = v[i]->events[j]->seq;
	relay_spool_batches_free(v, n);
	return k;
}

Test(spool, resent_batch_is_spooled_once_also_after_reopen)
{
	cep_spool *s = open_spool(1 << 20);
	cr_assert_eq(append_new(s, "r-0123456789abcdef", 1, 5), 5);
	cr_assert_eq(append_new(s, "r-fedcba9876543210", 1, 2), 2);
	/* the runner missed the ack of 3..5 and re-sends them with 6, 7 */
	cr_assert_eq(append_new(s, "r-0123456789abcdef", 3, 7), 2);
	cr_assert_eq(append_new(s, "r-0123456789abcdef", 1, 7), 0);
	/* the relay killed between the fsync and the reply: the runner
	 * re-sends to the next one, which knows the spool's records */
	relay_spool_close(s);
	s = open_spool(1 << 20);
	cr_assert_eq(append_new(s, "r-0123456789abcdef", 6, 9), 2);
	cr_assert_eq(append_new(s, "r-fedcba9876543210", 1, 3), 1);
	uint64_t got[32];
	size_t n = spooled_seqs(s, "r-0123456789abcdef", got, 32);
	cr_assert_eq(n, 9, "each seq once: %zu", n);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(got[i], i + 1);
	cr_assert_eq(spooled_seqs(s, "r-fedcba9876543210", got, 32), 3);
	relay_spool_close(s);
}
