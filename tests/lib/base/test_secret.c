/* test_secret.c - the one secret-file reader: what it refuses (links,
 * FIFOs, folders, big files, loose modes), what it reads, and the wipe. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secret.h"
#include "testutil.h"
#include "files.h"

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "\"%s\" lacks \"%s\"", (s), (sub))

static char *dir;
static char path[4200];

static void setup(void)
{
	dir = cep_test_tmpdir("secret");
	snprintf(path, sizeof(path), "%s/key", dir);
	cep_err err;
	cr_assert_eq(cep_files_write(path, "s3cret\n", 7, 0600, &err), CEP_OK,
	    "%s", err.msg);
}

static void teardown(void)
{
	cep_test_rmdir(dir);
}

TestSuite(secret, .init = setup, .fini = teardown);

static int try_read(const char *p, const cep_secret_opts *o, cep_err *err)
{
	cep_secret s;
	int rv = cep_secret_read(p, o, &s, err);
	if (rv == CEP_OK)
		cep_secret_free(&s);
	else
		cr_assert_null(s.data);
	return rv;
}

Test(secret, reads_a_private_file)
{
	cep_secret s;
	cep_err err;
	cr_assert_eq(cep_secret_read(path, NULL, &s, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(s.len, 7);
	cr_assert_str_eq(s.data, "s3cret\n");
	cep_secret_free(&s);
	cr_assert_null(s.data);
	cr_assert_eq(s.len, 0);
	cep_secret_free(&s); /* twice: harmless */
	cep_secret_free(NULL);
	cr_assert_eq(chmod(path, 0400), 0);
	cr_assert_eq(try_read(path, NULL, &err), CEP_OK, "%s", err.msg);
}

Test(secret, loose_mode_is_refused_by_path_and_mode)
{
	static const cep_secret_opts o = {0, false, false, "the test key"};
	cep_err err;
	static const unsigned modes[] = {0644, 0640, 0604, 0660, 0610};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char m[8];
		cr_assert_eq(chmod(path, modes[i]), 0);
		cr_assert_eq(try_read(path, &o, &err), CEP_PERMISSION_DENIED,
		    "mode %04o", modes[i]);
		snprintf(m, sizeof(m), "%04o", modes[i]);
		assert_contains(err.msg, path);
		assert_contains(err.msg, m);
		assert_contains(err.msg, "the test key");
		assert_contains(err.msg, "it must be 0600");
		cr_assert_null(strstr(err.msg, "s3cret"), "content in: %s",
		    err.msg);
	}
	/* a systemd credential: its mode is systemd's business */
	static const cep_secret_opts cred = {0, true, false, NULL};
	cr_assert_eq(try_read(path, &cred, &err), CEP_OK, "%s", err.msg);
}

Test(secret, group_handover_needs_root_owner_and_our_group)
{
	struct stat st = {0};
	st.st_mode = S_IFREG | 0440;
	st.st_uid = 0;
	st.st_gid = getegid();
	/* as root the handover never applies: root reads its own 0400 */
	cr_assert_eq(cep_secret_mode_ok(&st), geteuid() != 0);
	st.st_mode = S_IFREG | 0460;
	cr_assert(!cep_secret_mode_ok(&st), "group write");
	st.st_mode = S_IFREG | 0444;
	cr_assert(!cep_secret_mode_ok(&st), "others read");
	st.st_mode = S_IFREG | 0440;
	st.st_uid = 12345;
	cr_assert(!cep_secret_mode_ok(&st), "another user's group handover");
	st.st_mode = S_IFREG | 0600;
	cr_assert(cep_secret_mode_ok(&st));
}

Test(secret, symlink_is_refused_unless_asked)
{
	char link[4300];
	cep_err err;
	snprintf(link, sizeof(link), "%s/link", dir);
	cr_assert_eq(symlink(path, link), 0);
	cr_assert_eq(try_read(link, NULL, &err), CEP_PERMISSION_DENIED);
	assert_contains(err.msg, link);
	assert_contains(err.msg, "symbolic link");
	/* a Kubernetes secret volume is links by design */
	static const cep_secret_opts follow = {0, false, true, NULL};
	cr_assert_eq(try_read(link, &follow, &err), CEP_OK, "%s", err.msg);
}

Test(secret, fifo_and_folder_are_refused)
{
	char fifo[4300], sub[4300];
	cep_err err;
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	cr_assert_eq(mkdir(sub, 0700), 0);
	/* no writer: a blocking open would hang here */
	cr_assert_eq(try_read(fifo, NULL, &err), CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "not a regular file");
	cr_assert_eq(try_read(sub, NULL, &err), CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "not a regular file");
	cr_assert_eq(try_read("/nonexistent/key", NULL, &err), CEP_NOT_FOUND);
	assert_contains(err.msg, "/nonexistent/key");
}

Test(secret, too_big_is_refused)
{
	static const cep_secret_opts o = {6, false, false, "the test key"};
	static const cep_secret_opts exact = {7, false, false, NULL};
	cep_err err;
	cr_assert_eq(try_read(path, &o, &err), CEP_RESOURCE_EXHAUSTED);
	assert_contains(err.msg, path);
	assert_contains(err.msg, "7 bytes");
	cr_assert_eq(try_read(path, &exact, &err), CEP_OK, "%s", err.msg);
}

Test(secret, take_hands_over_and_wipe_clears)
{
	cep_secret s;
	cep_err err;
	cr_assert_eq(cep_secret_read(path, NULL, &s, &err), CEP_OK);
	char *d = cep_secret_take(&s);
	cr_assert_null(s.data);
	cr_assert_str_eq(d, "s3cret\n");
	/* the wipe itself, on a buffer we can still look at */
	cep_secret_wipe(d, strlen(d));
	for (size_t i = 0; i < 7; i++)
		cr_assert_eq(d[i], 0, "byte %zu not wiped", i);
	cep_secret_wipe_str(d);
	cep_secret_wipe_str(NULL);
}
