/*
 * launcherfix.c - the launcher fixture of tests/launcher/; see
 * launcherfix.h.
 */
#include "launcherfix.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "files.h"

void cep_test_launcher_setup(cep_test_launcher *t, const char *tag,
    const char *runner_script)
{
	memset(t, 0, sizeof(*t));
	t->dir = cep_test_tmpdir(tag);
	snprintf(t->bin, sizeof(t->bin), "%s/cep-runner", t->dir);
	snprintf(t->runs, sizeof(t->runs), "%s/runs", t->dir);
	snprintf(t->url, sizeof(t->url), "ipc://%s/launcher.sock", t->dir);
	cep_err err = {0};
	cr_assert_eq(cep_files_write(t->bin, runner_script,
	                 strlen(runner_script), 0755, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(cep_rpc_client_new(&t->C, t->url, NULL, &err), CEP_OK);
}

void cep_test_launcher_start(cep_test_launcher *t, uid_t allow, bool set_caps)
{
	cep_launcher_opts o = {.url = t->url,
	    .runner_bin = t->bin,
	    .runs_dir = t->runs,
	    .allow_uid = allow,
	    .stop_wait_ms = 2000,
	    .set_caps = set_caps};
	cep_err err = {0};
	cr_assert_eq(launcher_new(&o, &t->L, &err), CEP_OK, "%s", err.msg);
}

void cep_test_launcher_teardown(cep_test_launcher *t)
{
	launcher_free(t->L);
	t->L = NULL;
	cep_rpc_client_free(t->C);
	t->C = NULL;
	cep_test_rmdir(t->dir);
	t->dir = NULL;
}
