/* test_cred.c - systemd credentials first, the configured path else. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cred.h"
#include "testutil.h"
#include "files.h"

static char *dir;

static void setup(void)
{
	dir = cep_test_tmpdir("cred");
	unsetenv("CREDENTIALS_DIRECTORY");
}

static void teardown(void)
{
	unsetenv("CREDENTIALS_DIRECTORY");
	cep_test_rmdir(dir);
}

static void put(const char *name, const char *text)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	cep_err err;
	cr_assert_eq(cep_files_write(p, text, strlen(text), 0400, &err), CEP_OK,
	    "%s", err.msg);
}

TestSuite(cred, .init = setup, .fini = teardown);

Test(cred, configured_path_without_systemd)
{
	put("cep_cp-token", "t");
	char out[4096];
	cr_assert(
	    !cep_cred_path("/etc/cep/credentials/cp-token", out, sizeof(out)));
	cr_assert_str_eq(out, "/etc/cep/credentials/cp-token");
}

Test(cred, credential_by_file_name)
{
	put("cep_cp-token", "t");
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	char out[4096], want[4096];
	snprintf(want, sizeof(want), "%s/cep_cp-token", dir);
	cr_assert(
	    cep_cred_path("/etc/cep/credentials/cp-token", out, sizeof(out)));
	cr_assert_str_eq(out, want);
	/* in place, as lib/cp/cp.c calls it */
	char inplace[4096] = "cp-token";
	cr_assert(cep_cred_path(inplace, inplace, sizeof(inplace)));
	cr_assert_str_eq(inplace, want);
}

Test(cred, the_units_own_folder_first_then_the_shared_one)
{
	put("cep-shared_cp-token", "shared");
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	char out[4096], want[4096];
	snprintf(want, sizeof(want), "%s/cep-shared_cp-token", dir);
	cr_assert(
	    cep_cred_path("/etc/cep/credentials/cp-token", out, sizeof(out)));
	cr_assert_str_eq(out, want);
	put("cep_cp-token", "own");
	snprintf(want, sizeof(want), "%s/cep_cp-token", dir);
	cr_assert(
	    cep_cred_path("/etc/cep/credentials/cp-token", out, sizeof(out)));
	cr_assert_str_eq(out, want);
}

Test(cred, missing_credential_falls_back)
{
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	char out[4096];
	cr_assert(!cep_cred_path("/etc/cep/relay/relay.key", out, sizeof(out)));
	cr_assert_str_eq(out, "/etc/cep/relay/relay.key");
	cr_assert(!cep_cred_path("", out, sizeof(out)));
	cr_assert_str_eq(out, "");
	cr_assert(!cep_cred_path("/etc/cep/", out, sizeof(out)));
}

Test(cred, only_regular_files_of_an_absolute_directory)
{
	put("target", "t");
	char link[4096], target[4096];
	snprintf(target, sizeof(target), "%s/target", dir);
	snprintf(link, sizeof(link), "%s/cep_relay.key", dir);
	cr_assert_eq(symlink(target, link), 0);
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	char out[4096];
	cr_assert(!cep_cred_path("/x/relay.key", out, sizeof(out)),
	    "a symlink is not something systemd put there");
	put("cep_tok", "t");
	cr_assert(chdir(dir) == 0);
	setenv("CREDENTIALS_DIRECTORY", ".", 1);
	cr_assert(!cep_cred_path("/x/tok", out, sizeof(out)));
	cr_assert_str_eq(out, "/x/tok");
}

Test(cred, too_small_a_buffer_keeps_the_configured_path)
{
	put("cep_tok", "t");
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	char out[8];
	cr_assert(!cep_cred_path("tok", out, sizeof(out)));
	cr_assert_str_eq(out, "tok");
}
