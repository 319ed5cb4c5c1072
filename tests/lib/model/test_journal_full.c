/*
 * test_journal_full.c - a journal on a full disk (issue 13, item 3).
 *
 * The journal lives on a tmpfs of 256 KiB mounted in the test process's own
 * mount namespace (root: mounting is the point of the test, so as another
 * user it fails, it never passes without having run). Appends go on until
 * the disk refuses them; then every record that was acknowledged must
 * replay, nothing else may (no half record, no torn tail), and once space
 * is freed the next append succeeds right after the last good record.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"
#include "testutil.h"

static char *mnt;
static char jdir[600], ballast[600];

static void setup(void)
{
	mnt = cep_test_tmpfs("journal-full", 256 * 1024);
	cr_assert_not_null(mnt, "mounting a tmpfs: %s (this test needs root)",
	    strerror(errno));
	snprintf(jdir, sizeof(jdir), "%s/runs/r-0123456789abcdef", mnt);
	snprintf(ballast, sizeof(ballast), "%s/ballast", mnt);
}

static void teardown(void)
{
	cep_test_tmpfs_free(mnt);
	mnt = NULL;
}

/* Record i: its number as the pid, and a text of a size that varies, so
 * some appends fit the slack of the file's last page and some are cut
 * short by the disk half way. */
static int append_one(cep_journal *j, int i, bool sync, cep_err *err)
{
	static char text[5000];
	size_t len = 100 + (size_t)(i * 337) % 4000;
	memset(text, 'a' + i % 26, len);
	text[len] = '\0';
	Cep__V1__JournalRecord r = CEP__V1__JOURNAL_RECORD__INIT;
	r.time_ms = 1000 + i;
	r.rec_case = CEP__V1__JOURNAL_RECORD__REC_RUNNER_PID;
	r.runner_pid = i;
	r.text = text;
	return cep_journal_append(j, &r, sync, err);
}

typedef struct seen {
	int n;
	int bad;
	int acked[256]; /* the pids acknowledged, in order */
	int nacked;
} seen;

static int check(const Cep__V1__JournalRecord *r, void *arg)
{
	seen *s = arg;
	if (s->n >= s->nacked || r->runner_pid != s->acked[s->n] ||
	    r->text[0] != 'a' + r->runner_pid % 26)
		s->bad++;
	s->n++;
	return 0;
}

static void replay_is(seen *s)
{
	cep_journal_replay_info info;
	cep_err err;
	s->n = s->bad = 0;
	cr_assert_eq(cep_journal_replay(jdir, check, s, &info, &err), CEP_OK,
	    "%s", err.msg);
	cr_assert(!info.torn_tail, "a torn tail after a full disk: %s",
	    info.detail);
	cr_assert_eq(s->bad, 0);
	cr_assert_eq(s->n, s->nacked, "replayed %d records, %d acknowledged",
	    s->n, s->nacked);
	struct stat st;
	char jfile[700];
	snprintf(jfile, sizeof(jfile), "%s/journal", jdir);
	cr_assert_eq(stat(jfile, &st), 0);
	cr_assert_eq(info.valid_bytes, (uint64_t)st.st_size,
	    "bytes after the last record: a failed append was left behind");
}

Test(journal_full, refused_appends_leave_the_file_whole, .init = setup,
    .fini = teardown)
{
	cep_journal *j;
	cep_err err;
	seen s = {0};
	cr_assert_eq(cep_journal_create(jdir, &j, &err), CEP_OK, "%s", err.msg);
	int i = 0;
	for (; i < 8; i++, s.nacked++) {
		cr_assert_eq(append_one(j, i, i % 2 == 0, &err), CEP_OK, "%s",
		    err.msg);
		s.acked[s.nacked] = i;
	}
	cr_assert_gt(cep_test_fill(ballast), 0);
	/* the disk is full: appends are refused (a few small ones may still
	 * fit the slack of the journal's last page: then they are acked) */
	int refused = 0;
	for (; i < 60; i++) {
		int rv = append_one(j, i, true, &err);
		if (rv == CEP_OK) {
			s.acked[s.nacked++] = i;
			continue;
		}
		refused++;
		cr_assert_eq(rv, CEP_RESOURCE_EXHAUSTED, "%s", err.msg);
		cr_assert_eq(cep_journal_last_errno(j), ENOSPC);
		cr_assert(strstr(err.msg, "journal") != NULL, "%s", err.msg);
	}
	cr_assert_gt(refused, 40, "only %d of 52 appends refused", refused);
	replay_is(&s);

	/* space returns: the next append lands after the last good record */
	cr_assert_eq(unlink(ballast), 0);
	cr_assert_eq(append_one(j, i, true, &err), CEP_OK, "%s", err.msg);
	s.acked[s.nacked++] = i++;
	cr_assert_eq(cep_journal_last_errno(j), 0);
	cep_journal_close(j);
	replay_is(&s);

	/* and the journal reopens as it is: nothing to cut */
	cr_assert_eq(cep_journal_open(jdir, &j, &err), CEP_OK, "%s", err.msg);
	cr_assert_eq(append_one(j, i, false, &err), CEP_OK, "%s", err.msg);
	s.acked[s.nacked++] = i;
	cep_journal_close(j);
	replay_is(&s);
}

/* What a reserve holds lands on a full disk; a reserve is refused there. */
Test(journal_full, a_reserve_holds_on_a_full_disk, .init = setup,
    .fini = teardown)
{
	cep_journal *j;
	cep_err err;
	seen s = {0};
	cr_assert_eq(cep_journal_create(jdir, &j, &err), CEP_OK, "%s", err.msg);
	cr_assert_eq(cep_journal_reserve(j, 32 * 1024, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_gt(cep_test_fill(ballast), 0);
	/* records 0..9 are 100..3133 bytes of text: 16 KiB in all */
	for (int i = 0; i < 10; i++, s.nacked++) {
		cr_assert_eq(append_one(j, i, true, &err), CEP_OK,
		    "record %d did not land in the reserve: %s", i, err.msg);
		s.acked[s.nacked] = i;
	}
	cr_assert_eq(cep_journal_reserve(j, 32 * 1024, &err),
	    CEP_RESOURCE_EXHAUSTED);
	cr_assert_eq(cep_journal_last_errno(j), ENOSPC);
	replay_is(&s);
	cr_assert_eq(unlink(ballast), 0);
	cr_assert_eq(cep_journal_reserve(j, 32 * 1024, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(cep_journal_last_errno(j), 0);
	/* and 0 gives it back: the file holds its records' pages only */
	struct stat st;
	char jfile[700];
	snprintf(jfile, sizeof(jfile), "%s/journal", jdir);
	cr_assert_eq(stat(jfile, &st), 0);
	cr_assert_geq((long long)st.st_blocks * 512, st.st_size + 32 * 1024);
	cr_assert_eq(cep_journal_reserve(j, 0, &err), CEP_OK, "%s", err.msg);
	cr_assert_eq(stat(jfile, &st), 0);
	cr_assert_lt((long long)st.st_blocks * 512, st.st_size + 4096);
	cep_journal_close(j);
	replay_is(&s);
}
