/* cleanrun.c - a cleanup runner as a local process (see cleanrun.h). */
#define _GNU_SOURCE
#include "cleanrun.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "forkexec.h"
#include "clock.h"
#include "files.h"
#include "procfs.h"
#include "run_id.h"

#define REPORT_MAX (64 * 1024)

struct cep_cleanrun {
	cep_run_id run_id;
	char recs[4096], report[4096];
	pid_t pid;
	int64_t end_mono;
	bool killed;
};

static int write_files(cep_cleanrun *c, const cep_cleanrun_opts *o, char *log,
    size_t loglen, cep_err *err)
{
	int rv = cep_files_path(c->recs, sizeof(c->recs), err,
	    "%s/cleanup.json", o->dir);
	if (rv == CEP_OK)
		rv = cep_files_path(c->report, sizeof(c->report), err,
		    "%s/cleanup-report.json", o->dir);
	if (rv == CEP_OK)
		rv = cep_files_path(log, loglen, err, "%s/cleanup.log", o->dir);
	if (rv == CEP_OK)
		rv = cep_files_write(c->recs, o->recs_json,
		    strlen(o->recs_json), 0600, err);
	/* the runner opens the report without O_CREAT (a Pod's
	 * /dev/termination-log exists): make it */
	if (rv == CEP_OK)
		rv = cep_files_write(c->report, "", 0, 0600, err);
	return rv;
}

int cep_cleanrun_start(const cep_cleanrun_opts *o, cep_cleanrun **out,
    cep_err *err)
{
	*out = NULL;
	cep_run_id id;
	if (!cep_run_id_parse(&id, o->run_id))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "cleanup runner: "
		    "not a run id");
	cep_cleanrun *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	c->run_id = id;
	char log[4096];
	int rv = write_files(c, o, log, sizeof(log), err);
	char *argv[] = {(char *)o->runner_bin, (char *)"--cleanup", c->recs,
	    (char *)"--run-id", c->run_id.s, (char *)"--report", c->report,
	    NULL};
	cep_forkexec_opts so = {.argv = argv,
	    .log_path = log,
	    .pre_exec = o->pre_exec,
	    .arg = o->arg};
	int64_t start = 0;
	if (rv == CEP_OK)
		rv = cep_forkexec_run(&so, &c->pid, &start, err);
	if (rv != CEP_OK) {
		c->pid = 0;
		cep_cleanrun_free(c);
		return cep_err_wrap(err, "starting the cleanup runner");
	}
	c->end_mono = cep_clock_mono_ms() +
	    (o->limit_ms > 0 ? o->limit_ms : 60000);
	*out = c;
	return CEP_OK;
}

bool cep_cleanrun_running(const cep_cleanrun *c)
{
	char st = c != NULL && c->pid > 0 ? cep_procfs_state(c->pid) : 0;
	return st != 0 && st != 'Z';
}

int cep_cleanrun_pid(const cep_cleanrun *c)
{
	return c != NULL ? (int)c->pid : 0;
}

/* The report: undone ids kept; the first failure named in err. */
static int read_report(cep_cleanrun *c, const char *what, char **undone,
    cep_err *err)
{
	char *data = NULL;
	size_t len = 0;
	cep_err e = {0};
	(void)cep_files_read(c->report, REPORT_MAX, &data, &len, &e);
	json_t *rep = data != NULL ? json_loadb(data, len, 0, NULL) : NULL;
	free(data);
	json_t *ids = json_object_get(rep, "undone");
	if (!json_is_array(ids)) {
		json_decref(rep);
		return cep_err_set(err, CEP_DATA_LOSS,
		    "cleanup runner of %s "
		    "(%s) gave no report",
		    c->run_id.s, what);
	}
	*undone = json_dumps(ids, JSON_COMPACT);
	int rv = CEP_OK;
	const char *key;
	json_t *v;
	json_object_foreach(json_object_get(rep, "failed"), key, v)
	{
		rv = cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "cleanup runner: "
		    "fault %.64s: %.300s",
		    key, json_is_string(v) ? json_string_value(v) : "failed");
		break;
	}
	json_decref(rep);
	return rv;
}

/* The child has ended (r == its pid) or is past its time limit (r == 0:
 * killed now): reaped, and its report read. */
static int reap(cep_cleanrun *c, pid_t r, int st, char **undone, cep_err *err)
{
	if (r == 0) {
		kill(-c->pid, SIGKILL); /* its own session (forkexec.h) */
		kill(c->pid, SIGKILL);
		c->killed = true;
		while ((r = waitpid(c->pid, &st, 0)) < 0 && errno == EINTR)
			;
	}
	if (r != c->pid) {
		c->pid = 0;
		return cep_err_errno(err, errno,
		    "waiting for the cleanup runner");
	}
	c->pid = 0;
	char what[64];
	cep_forkexec_describe(st, what, sizeof(what));
	if (c->killed)
		snprintf(what, sizeof(what), "killed after its time limit");
	return read_report(c, what, undone, err);
}

enum cep_cleanrun_state cep_cleanrun_poll(cep_cleanrun *c, char **undone,
    cep_err *err)
{
	*undone = NULL;
	if (c->pid <= 0) {
		cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "cleanup runner of "
		    "%s already reaped",
		    c->run_id.s);
		return CEP_CLEANRUN_FAILED;
	}
	int st = 0;
	pid_t r = waitpid(c->pid, &st, WNOHANG);
	if (r == 0 && cep_clock_mono_ms() < c->end_mono)
		return CEP_CLEANRUN_RUNNING;
	return reap(c, r, st, undone, err) == CEP_OK ? CEP_CLEANRUN_DONE :
	                                               CEP_CLEANRUN_FAILED;
}

void cep_cleanrun_free(cep_cleanrun *c)
{
	if (c == NULL)
		return;
	if (c->pid > 0) {
		kill(-c->pid, SIGKILL);
		kill(c->pid, SIGKILL);
		while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (c->recs[0] != '\0')
		(void)unlink(c->recs);
	if (c->report[0] != '\0')
		(void)unlink(c->report);
	free(c);
}
