/* test_log.c - logfmt fields (run, conn), the process run id, and the
 * journal chosen only when stderr is the stream JOURNAL_STREAM names. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "testutil.h"
#include "files.h"

static char *dir;
static char path[4096];

/* stderr into a file the test reads */
static void setup(void)
{
	dir = cep_test_tmpdir("log");
	snprintf(path, sizeof(path), "%s/stderr", dir);
	cr_assert_not_null(freopen(path, "w", stderr));
	unsetenv("JOURNAL_STREAM");
	cep_log_set_run(NULL);
}

static void teardown(void)
{
	cep_test_rmdir(dir);
}

static char *logged(void)
{
	fflush(stderr);
	char *data = NULL;
	size_t len = 0;
	cep_err err;
	cr_assert_eq(cep_files_read(path, 1 << 20, &data, &len, &err), CEP_OK);
	return data;
}

TestSuite(log, .init = setup, .fini = teardown);

Test(log, run_and_connector_fields)
{
	cep_log_init("delegate");
	cep_log_conn(CEP_LOG_INFO, "r-1a2b", "prod east", "pod %s", "p-1");
	cep_log_info(NULL, "no run here");
	cep_log_conn(CEP_LOG_WARN, "", "", "empty fields");
	char *t = logged();
	cr_assert(strstr(t,
	              "comp=delegate run=r-1a2b conn=\"prod east\" "
	              "msg=\"pod p-1\"") != NULL,
	    "%s", t);
	cr_assert(strstr(t, "comp=delegate msg=\"no run here\"") != NULL, "%s",
	    t);
	cr_assert(strstr(t, "comp=delegate msg=\"empty fields\"") != NULL,
	    "empty fields must be left out: %s", t);
	free(t);
}

Test(log, a_runner_tags_every_line_with_its_run)
{
	cep_log_init("runner");
	cep_log_set_run("r-77");
	cep_log_info(NULL, "from lib");
	cep_log_info("r-other", "explicit");
	char *t = logged();
	cr_assert(strstr(t, "run=r-77 msg=\"from lib\"") != NULL, "%s", t);
	cr_assert(strstr(t, "run=r-other msg=explicit") != NULL, "%s", t);
	free(t);
}

Test(log, journal_only_when_stderr_is_its_stream)
{
	struct stat st;
	cr_assert_eq(fstat(STDERR_FILENO, &st), 0);
	/* inherited from a parent whose stderr was the journal: not ours, so
	 * the line goes to the file (and to the journal, absent here) */
	setenv("JOURNAL_STREAM", "1:2", 1);
	cep_log_init("runner");
	cep_log_info("r-1", "to the file");
	char buf[64];
	snprintf(buf, sizeof(buf), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", buf, 1);
	cep_log_init("runner");
	cep_log_info("r-1", "to the journal");
	char *t = logged();
	cr_assert(strstr(t, "to the file") != NULL, "%s", t);
	cr_assert(strstr(t, "to the journal") == NULL, "%s", t);
	free(t);
}
