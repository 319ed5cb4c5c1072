/*
 * test_spool_full.c - the relay's spool on a full disk (issue 13, item 3).
 *
 * The spool lives on a tmpfs of 256 KiB mounted in the test process's own
 * mount namespace (root: as another user the mount fails and so does the
 * test, never passing without having run). Appends are refused with the
 * errno told apart, refused appends leave no bytes and no empty segments
 * behind, every acknowledged batch is delivered in order, a commit still
 * works on the full disk (so delivery gives the space back), and appends
 * go on once there is room.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"
#include "testutil.h"

static char *mnt;
static char sdir[600], ballast[600];

static void setup(void)
{
	cep_log_set_level(CEP_LOG_ERROR);
	mnt = cep_test_tmpfs("spool-full", 256 * 1024);
	cr_assert_not_null(mnt, "mounting a tmpfs: %s (this test needs root)",
	    strerror(errno));
	snprintf(sdir, sizeof(sdir), "%s/spool", mnt);
	snprintf(ballast, sizeof(ballast), "%s/ballast", mnt);
}

static void teardown(void)
{
	cep_test_tmpfs_free(mnt);
	mnt = NULL;
}

/* One batch of one event with seq and pad bytes of text. */
static int append(cep_spool *s, uint64_t seq, size_t pad, cep_err *err)
{
	static char text[8192];
	memset(text, 'x', pad);
	text[pad] = '\0';
	Cep__V1__Event ev = CEP__V1__EVENT__INIT;
	Cep__V1__Event *evp = &ev;
	ev.run_id = (char *)"r-0123456789abcdef";
	ev.seq = seq;
	ev.text = text;
	Cep__V1__EventBatch b = CEP__V1__EVENT_BATCH__INIT;
	b.run_id = ev.run_id;
	b.n_events = 1;
	b.events = &evp;
	return relay_spool_append(s, &b, err);
}

/* Peeks and commits everything: the seqs must be want, want+1, ...;
 * returns the next seq expected. */
static uint64_t drain(cep_spool *s, uint64_t want)
{
	for (;;) {
		Cep__V1__EventBatch **v = NULL;
		size_t n = 0;
		uint64_t tok = 0;
		cep_err err = {0};
		cr_assert_eq(relay_spool_peek(s, 64 * 1024, 0, &v, &n, &tok,
		                 &err),
		    CEP_OK, "%s", err.msg);
		if (n == 0)
			return want;
		for (size_t i = 0; i < n; i++) {
			cr_assert_eq(v[i]->n_events, 1);
			cr_assert_eq(v[i]->events[0]->seq, want, "got %llu",
			    (unsigned long long)v[i]->events[0]->seq);
			want++;
		}
		relay_spool_batches_free(v, n);
		cr_assert_eq(relay_spool_commit(s, tok, &err), CEP_OK,
		    "commit: %s", err.msg);
	}
}

static int segments(void)
{
	DIR *d = opendir(sdir);
	cr_assert_not_null(d);
	int n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		n += strncmp(e->d_name, "seg-", 4) == 0;
	closedir(d);
	return n;
}

/* Appends until the disk refuses; then refuses some more. Returns the
 * first seq that was not acknowledged. */
static uint64_t fill_up(cep_spool *s, uint64_t seq)
{
	cep_err err = {0};
	int refused = 0;
	while (refused < 30) {
		int rv = append(s, seq, 3000, &err);
		if (rv == CEP_OK) {
			cr_assert_eq(refused, 0, "an append after a refusal");
			seq++;
			continue;
		}
		refused++;
		cr_assert_eq(rv, CEP_RESOURCE_EXHAUSTED, "%s", err.msg);
		cr_assert_eq(relay_spool_last_errno(s), ENOSPC, "%s", err.msg);
		cr_assert(strstr(err.msg, sdir) != NULL, "%s", err.msg);
	}
	/* refusals leave no empty segment each behind */
	cr_assert_leq(segments(), 2, "%d segments", segments());
	return seq;
}

Test(spool_full, delivery_gives_the_space_back, .init = setup, .fini = teardown)
{
	cep_spool *s;
	cep_err err = {0};
	cr_assert_eq(relay_spool_open(sdir, 4 << 20, &s, &err), CEP_OK, "%s",
	    err.msg);
	for (uint64_t q = 1; q <= 3; q++)
		cr_assert_eq(append(s, q, 1000, &err), CEP_OK, "%s", err.msg);
	cr_assert_eq(drain(s, 1), 4);     /* a cursor exists from here on */
	for (uint64_t q = 4; q <= 6; q++) /* what delivery will free */
		cr_assert_eq(append(s, q, 3000, &err), CEP_OK, "%s", err.msg);
	cr_assert_gt(cep_test_fill(ballast), 0);
	uint64_t next = fill_up(s, 7);
	/* the ballast stays: the commit must work on the full disk */
	cr_assert_eq(drain(s, 4), next);
	cr_assert_eq(relay_spool_records(s), 0);
	cr_assert_eq(append(s, next, 3000, &err), CEP_OK, "after delivery: %s",
	    err.msg);
	cr_assert_eq(relay_spool_last_errno(s), 0);
	relay_spool_close(s);
	/* reopened: just the one batch not yet delivered */
	cr_assert_eq(relay_spool_open(sdir, 4 << 20, &s, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(drain(s, next), next + 1);
	relay_spool_close(s);
}

Test(spool_full, appends_resume_when_space_returns, .init = setup,
    .fini = teardown)
{
	cep_spool *s;
	cep_err err = {0};
	cr_assert_eq(relay_spool_open(sdir, 4 << 20, &s, &err), CEP_OK, "%s",
	    err.msg);
	for (uint64_t q = 1; q <= 2; q++)
		cr_assert_eq(append(s, q, 1000, &err), CEP_OK, "%s", err.msg);
	cr_assert_gt(cep_test_fill(ballast), 0);
	uint64_t next = fill_up(s, 3);
	cr_assert_eq(unlink(ballast), 0);
	cr_assert_eq(append(s, next, 3000, &err), CEP_OK, "%s", err.msg);
	relay_spool_close(s);
	/* every acknowledged batch, in order, nothing torn in between */
	cr_assert_eq(relay_spool_open(sdir, 4 << 20, &s, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(drain(s, 1), next + 1);
	relay_spool_close(s);
}

/* No commit before the disk filled: the cursor written at open is there
 * to be overwritten, so delivery still frees the segments. */
Test(spool_full, first_commit_on_a_full_disk, .init = setup, .fini = teardown)
{
	cep_spool *s;
	cep_err err = {0};
	cr_assert_eq(relay_spool_open(sdir, 4 << 20, &s, &err), CEP_OK, "%s",
	    err.msg);
	for (uint64_t q = 1; q <= 3; q++)
		cr_assert_eq(append(s, q, 3000, &err), CEP_OK, "%s", err.msg);
	cr_assert_gt(cep_test_fill(ballast), 0);
	uint64_t next = fill_up(s, 4);
	cr_assert_eq(drain(s, 1), next);
	cr_assert_eq(append(s, next, 3000, &err), CEP_OK, "after delivery: %s",
	    err.msg);
	relay_spool_close(s);
}
