/* test_journal_sync.c - group commit: cep_journal_sync returns only after
 * an fsync that started once the caller's records were written; callers
 * that arrive while an fsync runs share the next one; a failed fsync fails
 * the callers it was to cover; nothing acknowledged is lost to a kill -9.
 *
 * fsync is interposed (this program's definition wins over libc's for the
 * journal linked into it): it notes the file's size when it starts, runs
 * the real one, sleeps a little so that others pile up behind it, and
 * only then publishes what it covered. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "testutil.h"

static _Atomic uint64_t covered; /* the largest size a finished fsync saw */
static atomic_int fsyncs, fail_next;

int fsync(int fd)
{
	struct stat st;
	uint64_t size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	if (syscall(SYS_fsync, fd) != 0)
		return -1;
	struct timespec ts = {0, 3 * 1000 * 1000};
	nanosleep(&ts, NULL);
	atomic_fetch_add(&fsyncs, 1);
	if (atomic_exchange(&fail_next, 0)) {
		errno = EIO;
		return -1;
	}
	uint64_t old = atomic_load(&covered);
	while (S_ISREG(st.st_mode) && size > old &&
	    !atomic_compare_exchange_weak(&covered, &old, size))
		;
	return 0;
}

static char *dir;
static char jdir[512];

static void setup(void)
{
	dir = cep_test_tmpdir("journal-sync");
	snprintf(jdir, sizeof(jdir), "%s/runs/r-0123456789abcdef", dir);
	atomic_store(&covered, 0);
	atomic_store(&fsyncs, 0);
	atomic_store(&fail_next, 0);
}

static void teardown(void)
{
	cep_test_rmdir(dir);
	dir = NULL;
}

#define THREADS 16
#define ROUNDS 20
#define BATCH 8

typedef struct appender {
	cep_journal *j;
	int id;
	int early; /* syncs that returned before an fsync covered them */
	int failed;
	int fd; /* -1, or where to write the ids of acked batches */
} appender;

/* A batch of BATCH records, then its sync: the test's "ack". */
static int append_batch(appender *a, int round, uint64_t *end, cep_err *err)
{
	Cep__V1__JournalRecord recs[BATCH];
	const Cep__V1__JournalRecord *ptrs[BATCH];
	char text[64];
	snprintf(text, sizeof(text), "appender %d round %d", a->id, round);
	for (int i = 0; i < BATCH; i++) {
		cep__v1__journal_record__init(&recs[i]);
		recs[i].rec_case = CEP__V1__JOURNAL_RECORD__REC_RUNNER_PID;
		recs[i].runner_pid = a->id * 100000 + round * BATCH + i;
		recs[i].text = text;
		ptrs[i] = &recs[i];
	}
	int rv = cep_journal_append_many(a->j, ptrs, BATCH, end, err);
	return rv == CEP_OK ? cep_journal_sync(a->j, *end, err) : rv;
}

static void *appender_main(void *arg)
{
	appender *a = arg;
	for (int round = 0; a->fd >= 0 || round < ROUNDS; round++) {
		uint64_t end = 0;
		cep_err err = {0};
		if (append_batch(a, round, &end, &err) != CEP_OK) {
			a->failed++;
			continue;
		}
		a->early += atomic_load(&covered) < end;
		int id = a->id * 100000 + round * BATCH;
		if (a->fd >= 0 && write(a->fd, &id, sizeof(id)) != sizeof(id))
			break;
	}
	return NULL;
}

static void run_appenders(cep_journal *j, appender *a, int fd)
{
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) {
		a[i] = (appender){.j = j, .id = i, .fd = fd};
		cr_assert_eq(pthread_create(&t[i], NULL, appender_main, &a[i]),
		    0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
}

/* A new journal and one appender (no pipe) on it. */
static cep_journal *fresh(appender *a)
{
	cep_journal *j;
	cep_err err;
	cr_assert_eq(cep_journal_create(jdir, &j, &err), CEP_OK, "%s", err.msg);
	*a = (appender){.j = j, .fd = -1};
	return j;
}

Test(journal_sync, acked_only_after_an_fsync_covered_it, .init = setup,
    .fini = teardown)
{
	cep_journal *j;
	cep_err err;
	cr_assert_eq(cep_journal_create(jdir, &j, &err), CEP_OK, "%s", err.msg);
	atomic_store(&fsyncs, 0); /* the directory's fsync at create */
	appender a[THREADS];
	run_appenders(j, a, -1);
	cep_journal_close(j);
	for (int i = 0; i < THREADS; i++) {
		cr_assert_eq(a[i].failed, 0);
		cr_assert_eq(a[i].early, 0,
		    "appender %d: %d syncs returned before an fsync covered "
		    "their records",
		    i, a[i].early);
	}
	/* group commit: far fewer fsyncs than synced batches */
	int n = atomic_load(&fsyncs);
	cr_assert_lt(n, THREADS * ROUNDS / 2, "%d fsyncs for %d batches", n,
	    THREADS * ROUNDS);
	cep_journal_replay_info info;
	cr_assert_eq(cep_journal_replay(jdir, NULL, NULL, &info, &err), CEP_OK);
	cr_assert_eq(info.records, (size_t)(THREADS * ROUNDS * BATCH));
	cr_assert(!info.torn_tail);
}

Test(journal_sync, synced_bytes_need_no_second_fsync, .init = setup,
    .fini = teardown)
{
	appender a;
	cep_journal *j = fresh(&a);
	cep_err err;
	uint64_t end = 0;
	cr_assert_eq(append_batch(&a, 0, &end, &err), CEP_OK, "%s", err.msg);
	int n = atomic_load(&fsyncs);
	cr_assert_eq(cep_journal_sync(j, end, &err), CEP_OK);
	cr_assert_eq(cep_journal_sync(j, 0, &err), CEP_OK);
	cr_assert_eq(atomic_load(&fsyncs), n);
	cr_assert_eq(cep_journal_end(j), end);
	cep_journal_close(j);
}

Test(journal_sync, failed_fsync_fails_its_callers, .init = setup,
    .fini = teardown)
{
	appender a;
	cep_journal *j = fresh(&a);
	cep_err err;
	uint64_t end = 0;
	atomic_store(&fail_next, 1);
	cr_assert_neq(append_batch(&a, 0, &end, &err), CEP_OK);
	cr_assert(strstr(err.msg, "journal") != NULL, "%s", err.msg);
	/* the same bytes again: no fsync since covered them, so it fails */
	cr_assert_neq(cep_journal_sync(j, end, &err), CEP_OK);
	/* new bytes: a new fsync, which works, covers the old ones too */
	uint64_t end2 = 0;
	cr_assert_eq(append_batch(&a, 1, &end2, &err), CEP_OK, "%s", err.msg);
	cr_assert_eq(cep_journal_sync(j, end, &err), CEP_OK, "%s", err.msg);
	cep_journal_close(j);
}

Test(journal_sync, hold_keeps_the_journal_past_close, .init = setup,
    .fini = teardown)
{
	appender a;
	cep_journal *j = fresh(&a);
	cep_err err;
	cep_journal_hold(j);
	cep_journal_close(j); /* the owner's close: a sync still runs */
	uint64_t end = 0;
	cr_assert_eq(append_batch(&a, 0, &end, &err), CEP_OK, "%s", err.msg);
	cep_journal_close(j); /* the holder's: frees (ASan checks) */
}

/* Records of acked batches that are not in the journal. */
typedef struct acked {
	uint8_t *want; /* want[id]: acked, not yet seen */
	size_t cap;
} acked;

static int strike(const Cep__V1__JournalRecord *r, void *arg)
{
	acked *k = arg;
	if (r->runner_pid >= 0 && (size_t)r->runner_pid < k->cap)
		k->want[r->runner_pid] = 0;
	return 0;
}

Test(journal_sync, nothing_acked_is_lost_to_kill9, .init = setup,
    .fini = teardown)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		cep_journal *j;
		cep_err err;
		if (cep_journal_create(jdir, &j, &err) != CEP_OK)
			_exit(2);
		appender a[THREADS];
		run_appenders(j, a, p[1]); /* until killed */
		_exit(0);
	}
	close(p[1]);
	acked k = {.cap = THREADS * 100000};
	k.want = calloc(k.cap, 1);
	int id, n = 0;
	while (n < 400 && read(p[0], &id, sizeof(id)) == sizeof(id)) {
		cr_assert(id >= 0 && (size_t)id < k.cap);
		k.want[id] = 1; /* the batch's first record */
		n++;
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	while (read(p[0], &id, sizeof(id)) == sizeof(id))
		if (id >= 0 && (size_t)id < k.cap)
			k.want[id] = 1;
	close(p[0]);
	cr_assert_eq(n, 400, "the child acked only %d batches", n);
	cep_err err;
	cep_journal_replay_info info;
	cr_assert_eq(cep_journal_replay(jdir, strike, &k, &info, &err), CEP_OK,
	    "%s", err.msg);
	size_t lost = 0;
	for (size_t i = 0; i < k.cap; i++)
		lost += k.want[i];
	free(k.want);
	cr_assert_eq(lost, 0, "%zu acked batches not in the journal", lost);
}
