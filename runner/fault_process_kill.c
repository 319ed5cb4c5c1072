/*
 * fault_process_kill.c - `process-kill`: in `count` rounds, `interval`
 * apart, signal every process matching `process` (glob on
 * /proc/PID/comm), `pid`, or `cgroup` (its cgroup.procs). The first round
 * is at injection. Never signalled: pid 1, the runner, its parent, and its
 * own children (hog workers, probe commands). Nothing persists, so revert
 * only stops the rounds.
 *
 * `container-kill` is the same rounds on a pod's container (kubernetes
 * targets): every `interval` until the chaos phase ends, every process
 * of the container's cgroup, found again each round (the kubelet
 * restarts the container under a new id: fault_target.h). A round that
 * finds the container not running (restarting, in back-off) is skipped
 * and logged.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "fault_target.h"
#include "params.h"
#include "clock.h"
#include "files.h"
#include "procfs.h"

#define CGROUP_ROOT "/sys/fs/cgroup"
#define MAX_MATCH 1024
#define MAX_PROCS_FILE (4u * 1024u * 1024u)

typedef struct pk_sel {
	const char *glob;      /* or NULL */
	long pid;              /* or 0 */
	char cgroup[PATH_MAX]; /* cgroup.procs path, or "" */
} pk_sel;

typedef struct pk_state {
	pk_sel sel;
	char desc[300];
	int sig;
	const char *signame;
	int64_t count, done, interval_ms, next; /* count 0: until revert */
	const cep_exp_item *ctr; /* container-kill: resolved each round */
} pk_state;

static const struct {
	const char *name;
	int sig;
} sigs[] = {
    {"SIGKILL", SIGKILL},
    {"SIGTERM", SIGTERM},
    {"SIGINT", SIGINT},
    {"SIGHUP", SIGHUP},
    {"SIGQUIT", SIGQUIT},
    {"SIGUSR1", SIGUSR1},
    {"SIGUSR2", SIGUSR2},
    {"SIGSTOP", SIGSTOP},
    {"SIGCONT", SIGCONT},
};

static int parse_signal(const char *name, int *sig, const char **canon,
    cep_err *err)
{
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (strcmp(name, sigs[i].name) == 0 ||
		    strcmp(name, sigs[i].name + 3) == 0) {
			*sig = sigs[i].sig;
			*canon = sigs[i].name;
			return CEP_OK;
		}
	}
	return cep_err_set(err, CEP_INVALID_ARGUMENT,
	    "process-kill: unknown signal \"%.32s\"", name);
}

/* cgroup relative to /sys/fs/cgroup (or absolute under it), no "..". */
static int cgroup_procs_path(const char *cg, char *out, size_t len,
    cep_err *err)
{
	const char *rel = cg;
	if (strncmp(rel, CGROUP_ROOT "/", strlen(CGROUP_ROOT) + 1) == 0)
		rel += strlen(CGROUP_ROOT);
	while (*rel == '/')
		rel++;
	if (strstr(rel, "..") != NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "process-kill: cgroup \"%.200s\" must not contain \"..\"",
		    cg);
	return cep_files_path(out, len, err, "%s/%s%scgroup.procs", CGROUP_ROOT,
	    rel, *rel ? "/" : "");
}

static int read_sel(const cep_exp_item *it, pk_sel *sel, char *desc,
    size_t dlen, cep_err *err)
{
	memset(sel, 0, sizeof(*sel));
	const char *cg = runner_param_str(it, "cgroup", NULL);
	sel->glob = runner_param_str(it, "process", NULL);
	sel->pid = (long)runner_param_int(it, "pid", 0);
	if (sel->glob != NULL) {
		snprintf(desc, dlen, "process %s", sel->glob);
	} else if (sel->pid > 0) {
		snprintf(desc, dlen, "pid %ld", sel->pid);
	} else if (cg != NULL) {
		snprintf(desc, dlen, "cgroup %s", cg);
		return cgroup_procs_path(cg, sel->cgroup, sizeof(sel->cgroup),
		    err);
	} else {
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "process-kill: one of process, pid, cgroup is required");
	}
	return CEP_OK;
}

/* container-kill: the container's cgroup now (its v2 directory; the init
 * pid alone on a host without v2). */
static int container_sel(const cep_exp_item *it, pk_sel *sel, char *desc,
    size_t dlen, cep_err *err)
{
	int64_t pid = 0;
	cep_target *t = NULL;
	memset(sel, 0, sizeof(*sel));
	int rc = runner_fault_target_pid(it, &pid, err);
	if (rc == CEP_OK)
		rc = cep_target_resolve(pid, NULL, &t, err);
	if (rc != CEP_OK)
		return rc;
	const char *cg = cep_target_cgroup(t);
	snprintf(desc, dlen, "container %s of pod %s (pid %lld%s%.200s)",
	    runner_param_str(it, "container", "(the only one)"),
	    runner_param_str(it, "pod", "?"), (long long)pid,
	    cg[0] ? ", cgroup " : "", cg);
	if (cg[0] != '\0')
		rc = cgroup_procs_path(cg, sel->cgroup, sizeof(sel->cgroup),
		    err);
	else
		sel->pid = (long)pid;
	cep_target_free(t);
	return rc;
}

/* The processes a round must never touch. */
static bool protected_pid(long pid, long ppid)
{
	long self = (long)getpid();
	return pid <= 1 || pid == self || pid == (long)getppid() ||
	    ppid == self;
}

static bool parse_pid(const char *s, long *pid)
{
	char *end;
	errno = 0;
	*pid = strtol(s, &end, 10);
	return errno == 0 && end != s && (*end == '\0' || *end == '\n') &&
	    *pid > 0;
}

static bool in_cgroup(const char *procs, long pid)
{
	for (const char *p = procs; p != NULL && *p;) {
		long v;
		char *end;
		v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (v == pid)
			return true;
		p = end;
		while (*p == '\n' || *p == ' ')
			p++;
	}
	return false;
}

typedef struct pk_match {
	long pid;
	char comm[32];
} pk_match;

/* Scans /proc; fills up to MAX_MATCH matches. */
static size_t find_matches(const pk_sel *sel, const char *procs, pk_match *m)
{
	size_t n = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;
	while (d != NULL && n < MAX_MATCH && (de = readdir(d)) != NULL) {
		long pid;
		int ppid;
		char comm[32];
		if (!parse_pid(de->d_name, &pid) ||
		    !cep_procfs_info((int)pid, comm, sizeof(comm), &ppid) ||
		    protected_pid(pid, ppid))
			continue;
		bool hit = sel->glob != NULL ?
		    fnmatch(sel->glob, comm, 0) == 0 :
		    sel->pid > 0 ? pid == sel->pid :
		                   in_cgroup(procs, pid);
		if (hit) {
			m[n].pid = pid;
			snprintf(m[n].comm, sizeof(m[n].comm), "%s", comm);
			n++;
		}
	}
	if (d != NULL)
		closedir(d);
	return n;
}

/* cgroup.procs: a kernel file with st_size 0, so read until EOF, capped. */
static char *read_procs(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = f != NULL ? malloc(MAX_PROCS_FILE + 1) : NULL;
	size_t n = buf != NULL ? fread(buf, 1, MAX_PROCS_FILE, f) : 0;
	if (f != NULL)
		fclose(f);
	if (buf != NULL)
		buf[n] = '\0';
	return buf;
}

static void do_round(pk_state *s, const cep_fault_ctx *ctx)
{
	char *procs = NULL;
	cep_err e = {0};
	s->done++;
	if (s->ctr != NULL &&
	    container_sel(s->ctr, &s->sel, s->desc, sizeof(s->desc), &e) !=
	        CEP_OK) {
		runner_emit_log(ctx->sink, "%s: round %lld skipped: %s",
		    ctx->fault_id, (long long)s->done, e.msg);
		return;
	}
	if (s->sel.cgroup[0] != '\0')
		procs = read_procs(s->sel.cgroup);
	pk_match *m = calloc(MAX_MATCH, sizeof(*m));
	size_t n = m != NULL && (s->sel.cgroup[0] == '\0' || procs != NULL) ?
	    find_matches(&s->sel, procs, m) :
	    0;
	free(procs);
	char text[900];
	int off = s->count > 0 ?
	    snprintf(text, sizeof(text), "%s: round %lld/%lld: ", ctx->fault_id,
	        (long long)s->done, (long long)s->count) :
	    snprintf(text, sizeof(text), "%s: round %lld: ", ctx->fault_id,
	        (long long)s->done);
	if (n == 0)
		snprintf(text + off, sizeof(text) - (size_t)off,
		    "no process matches %s", s->desc);
	for (size_t i = 0; i < n; i++) {
		int rc = kill((pid_t)m[i].pid, s->sig);
		if (off >= 0 && (size_t)off < sizeof(text))
			off += snprintf(text + off, sizeof(text) - (size_t)off,
			    "%s%s to pid %ld (%s)%s", i ? ", " : "", s->signame,
			    m[i].pid, m[i].comm, rc != 0 ? " failed" : "");
	}
	free(m);
	runner_emit_log(ctx->sink, "%s", text);
}

static int pk_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	pk_sel sel;
	int sig;
	const char *canon;
	int rc = read_sel(it, &sel, target, tlen, err);
	if (rc == CEP_OK)
		rc = parse_signal(runner_param_str(it, "signal", "SIGKILL"),
		    &sig, &canon, err);
	if (rc == CEP_OK)
		*undo = json_object(); /* a signal cannot be taken back */
	return rc;
}

static int pk_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	pk_state *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "process-kill: no memory");
	int rc = read_sel(it, &s->sel, s->desc, sizeof(s->desc), err);
	if (rc == CEP_OK)
		rc = parse_signal(runner_param_str(it, "signal", "SIGKILL"),
		    &s->sig, &s->signame, err);
	if (rc != CEP_OK) {
		free(s);
		return rc;
	}
	s->count = runner_param_int(it, "count", 1);
	s->interval_ms = runner_param_ms(it, "interval", 1000);
	do_round(s, ctx);
	s->next = cep_clock_mono_ms() + s->interval_ms;
	*state = s;
	return CEP_OK;
}

static int64_t pk_next_tick(void *state)
{
	pk_state *s = state;
	return s->count == 0 || s->done < s->count ? s->next : INT64_MAX;
}

static void pk_tick(void *state, const cep_fault_ctx *ctx)
{
	pk_state *s = state;
	if (s->count > 0 && s->done >= s->count)
		return;
	do_round(s, ctx);
	s->next += s->interval_ms;
}

static int pk_revert(void *state, cep_err *err)
{
	(void)err;
	free(state);
	return CEP_OK;
}

const cep_fault_ops runner_fault_process_kill = {
    .type = "process-kill",
    .mechanism = "signal",
    .describe = pk_describe,
    .inject = pk_inject,
    .next_tick = pk_next_tick,
    .tick = pk_tick,
    .revert = pk_revert,
};

/* The target is checked at describe (the pod's container running on this
 * node), as the record names it; each round finds it again. */
static int ck_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	pk_sel sel;
	int sig;
	const char *canon = NULL;
	int rc = parse_signal(runner_param_str(it, "signal", "SIGKILL"), &sig,
	    &canon, err);
	if (rc == CEP_OK)
		rc = container_sel(it, &sel, target, tlen, err);
	if (rc != CEP_OK)
		return cep_err_wrap(err, "container-kill");
	/* a killed container is restarted by its kubelet: nothing to undo */
	*undo = json_pack("{s:s, s:s, s:s}", "pod",
	    runner_param_str(it, "pod", ""), "container",
	    runner_param_str(it, "container", ""), "signal", canon);
	return CEP_OK;
}

static int ck_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	pk_state *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "container-kill: no memory");
	int rc = parse_signal(runner_param_str(it, "signal", "SIGKILL"),
	    &s->sig, &s->signame, err);
	if (rc != CEP_OK) {
		free(s);
		return rc;
	}
	s->ctr = it;
	s->interval_ms = runner_param_ms(it, "interval", 10000);
	do_round(s, ctx);
	s->next = cep_clock_mono_ms() + s->interval_ms;
	*state = s;
	return CEP_OK;
}

const cep_fault_ops runner_fault_container_kill = {
    .type = "container-kill",
    .mechanism = "signal",
    .describe = ck_describe,
    .inject = ck_inject,
    .next_tick = pk_next_tick,
    .tick = pk_tick,
    .revert = pk_revert,
};
