/*
 * service.c - the Launcher calls (proto/cep.proto, "privsep: launcher";
 * docs/privsep.md). Each handler: peer uid, then every field (check.c),
 * then the run under l->mu. Refusals are logged with the run id and
 * answered with a status naming the field.
 */
#define _GNU_SOURCE
#include "launcher_int.h"

#include <jansson.h>
#include <nng/nng.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "cleanrun.h"
#include "forkexec.h"
#include "log.h"
#include "runproc.h"
#include "files.h"
#include "procfs.h"
#include "run_id.h"

#define CLEANUP_LIMIT_MS 120000

/* Only the delegate's uid (the kernel's word, SO_PEERCRED via nng). */
static bool peer_ok(cep_launcher *l, cep_rpc_call *c)
{
	nng_pipe p = NNG_PIPE_INITIALIZER;
	p.id = cep_rpc_call_pipe(c).id;
	uint64_t uid = UINT64_MAX;
	if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid) == 0 &&
	    uid == (uint64_t)l->allow_uid)
		return true;
	cep_log_warn(NULL,
	    "refused %s from peer uid %lld (only uid %u is "
	    "served)",
	    cep_rpc_call_method(c), uid == UINT64_MAX ? -1LL : (long long)uid,
	    (unsigned)l->allow_uid);
	cep_rpc_call_fail(c, CEP_PERMISSION_DENIED,
	    "peer uid is not the "
	    "delegate's");
	return false;
}

/* Answers a refused or failed call with err (and its status rv), logged
 * at lvl as "<what>: <why>" with the run id when run_id is one (a refused
 * request may carry anything there). */
static void refuse(cep_rpc_call *c, enum cep_log_level lvl, const char *run_id,
    const char *what, int rv, const cep_err *err)
{
	cep_log_write(lvl,
	    run_id != NULL && cep_run_id_valid(run_id) ? run_id : NULL,
	    "%s: %s", what, err->msg);
	cep_rpc_call_fail(c, rv, "%s", err->msg);
}

/* A request's field check (check.c) with the run id it names (NULL:
 * none) for the refusal's log line. */
typedef int (*check_fn)(const void *req, const char **run_id, unsigned *caps,
    cep_err *err);

static int check_launch(const void *req, const char **run_id, unsigned *caps,
    cep_err *err)
{
	*run_id = ((const Cep__V1__LaunchRequest *)req)->run_id;
	return launcher_check_launch(req, caps, err);
}

static int check_cleanup(const void *req, const char **run_id, unsigned *caps,
    cep_err *err)
{
	*run_id = ((const Cep__V1__LauncherCleanup *)req)->run_id;
	return launcher_check_cleanup(req, caps, err);
}

static int check_inspect(const void *req, const char **run_id, unsigned *caps,
    cep_err *err)
{
	(void)caps;
	*run_id = NULL;
	return launcher_check_inspect(req, err);
}

/* The call's request once the peer is the delegate and check passes
 * every field (*caps: what its faults need); NULL when refused, the call
 * answered and "<method> refused: <why>" logged. */
static const void *admit(cep_launcher *l, cep_rpc_call *c, check_fn check,
    unsigned *caps)
{
	if (!peer_ok(l, c))
		return NULL;
	const void *req = cep_rpc_call_request(c);
	const char *meth = cep_rpc_call_method(c), *run_id = NULL;
	const char *m = meth != NULL ? strrchr(meth, '/') : NULL;
	char what[64];
	snprintf(what, sizeof(what), "%s refused", m != NULL ? m + 1 : "call");
	cep_err err = {0};
	int rv = check(req, &run_id, caps, &err);
	if (rv == CEP_OK)
		return req;
	refuse(c, CEP_LOG_WARN, run_id, what, rv, &err);
	return NULL;
}

static int write_pem(const char *dir, const char *name, const char *pem,
    cep_err *err)
{
	char path[4200];
	int rv = cep_files_path(path, sizeof(path), err, "%s/%s", dir, name);
	return rv == CEP_OK ?
	    cep_files_write(path, pem, strlen(pem), 0600, err) :
	    rv;
}

/* <runs>/<id>/identity/{ca.crt,runner.crt,runner.key[,cp-ca.crt]},
 * root-only; *cp_ca: the cp-ca.crt path or "". */
static int write_identity(cep_launcher *l, const Cep__V1__LaunchRequest *r,
    char *dir, size_t dlen, char *cp_ca, size_t clen, cep_err *err)
{
	cep_err e = {0};
	cp_ca[0] = '\0';
	int rv = cep_files_path(dir, dlen, err, "%s/%s/identity", l->runs_dir,
	    r->run_id);
	if (rv == CEP_OK)
		(void)cep_files_rmtree(dir, &e); /* a stale one */
	if (rv == CEP_OK)
		rv = cep_files_mkdirs(dir, 0700, err);
	if (rv == CEP_OK)
		rv = write_pem(dir, "ca.crt", r->ca_pem, err);
	if (rv == CEP_OK)
		rv = write_pem(dir, "runner.crt", r->cert_pem, err);
	if (rv == CEP_OK)
		rv = write_pem(dir, "runner.key", r->key_pem, err);
	if (rv == CEP_OK && r->cp_ca_pem != NULL && r->cp_ca_pem[0] != '\0' &&
	    (rv = write_pem(dir, "cp-ca.crt", r->cp_ca_pem, err)) == CEP_OK)
		rv = cep_files_path(cp_ca, clen, err, "%s/cp-ca.crt", dir);
	return rv;
}

/* Writes the identity and starts the runner (l->mu held). */
static int start_runner(cep_launcher *l, const Cep__V1__LaunchRequest *r,
    unsigned caps, lrun *x, cep_err *err)
{
	char dir[4200], cp_ca[4300], log[4200];
	int rv = write_identity(l, r, dir, sizeof(dir), cp_ca, sizeof(cp_ca),
	    err);
	if (rv == CEP_OK)
		rv = cep_files_path(log, sizeof(log), err, "%s/%s/runner.log",
		    l->runs_dir, r->run_id);
	cep_launcher_privs privs;
	if (rv == CEP_OK)
		rv = launcher_privs_init(&privs, caps, l->set_caps, err);
	if (rv != CEP_OK)
		return rv;
	char *argv[CEP_RUNPROC_ARGV_MAX];
	cep_runproc_args a = {.bin = l->bin,
	    .relay_url = r->relay_url,
	    .identity_dir = dir,
	    .run_id = r->run_id,
	    .server_name = r->server_name,
	    .cp_url = r->cp_url,
	    .cp_ca_file = cp_ca,
	    .cp_proxy = r->cp_proxy};
	cep_runproc_argv(&a, argv);
	cep_forkexec_opts o = {.argv = argv,
	    .log_path = log,
	    .pre_exec = launcher_privs_apply,
	    .arg = &privs};
	pid_t pid;
	rv = cep_forkexec_run(&o, &pid, &x->start, err);
	if (rv != CEP_OK)
		return rv;
	x->pid = pid;
	x->child = true;
	x->exited = false;
	x->deadline_ms = r->deadline_ms;
	return CEP_OK;
}

/* Starts r's runner unless the run has one (takes l->mu); its pid and
 * start time into rep. */
static int launch(cep_launcher *l, const Cep__V1__LaunchRequest *r,
    unsigned caps, Cep__V1__LaunchReply *rep, cep_err *err)
{
	int rv = CEP_OK;
	pthread_mutex_lock(&l->mu);
	lrun *x = launcher_lr_find(l, r->run_id);
	if (l->stopping)
		rv = cep_err_set(err, CEP_UNAVAILABLE,
		    "the launcher is stopping");
	else if (x != NULL && x->pid > 0)
		rv = cep_err_set(err, CEP_ALREADY_EXISTS,
		    "run %s already has a "
		    "runner (pid %d)",
		    r->run_id, (int)x->pid);
	else if (x == NULL && (x = launcher_lr_add(l, r->run_id)) == NULL)
		rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory");
	if (rv == CEP_OK && (rv = start_runner(l, r, caps, x, err)) != CEP_OK &&
	    x->cr == NULL)
		launcher_lr_drop(l, x);
	if (rv == CEP_OK) {
		rep->pid = x->pid;
		rep->start = x->start;
	}
	pthread_mutex_unlock(&l->mu);
	return rv;
}

static void on_launch(cep_rpc_call *c, void *arg)
{
	unsigned caps = 0;
	const Cep__V1__LaunchRequest *r = admit(arg, c, check_launch, &caps);
	if (r == NULL)
		return;
	Cep__V1__LaunchReply rep = CEP__V1__LAUNCH_REPLY__INIT;
	cep_err err = {0};
	int rv = launch(arg, r, caps, &rep, &err);
	if (rv != CEP_OK) {
		refuse(c, CEP_LOG_ERROR, r->run_id, "launching the runner", rv,
		    &err);
		return;
	}
	char text[128];
	cep_caps_text(caps, text, sizeof(text));
	rep.caps = text;
	cep_log_info(r->run_id, "runner started: pid %d, capabilities %s",
	    rep.pid, text[0] ? text : "none");
	cep_rpc_call_reply(c, &rep.base);
}

/* A runner this launcher does not know (it restarted): pid + start time
 * and its command line naming the run. Adopted if so (l->mu held). */
static lrun *adopt_polled(cep_launcher *l, const Cep__V1__LauncherRun *q)
{
	cep_run_id id;
	bool cleanup = false;
	if (q->pid <= 1 || cep_procfs_start_time(q->pid) != q->start ||
	    cep_procfs_state(q->pid) == 'Z' ||
	    !cep_runproc_run_of(q->pid, &id, &cleanup) || cleanup ||
	    !cep_run_id_is(&id, q->run_id))
		return NULL;
	lrun *x = launcher_lr_add(l, q->run_id);
	if (x != NULL) {
		x->pid = q->pid;
		x->start = q->start;
		cep_log_info(q->run_id,
		    "adopted runner pid %d on the "
		    "delegate's word, checked in /proc",
		    (int)q->pid);
	}
	return x;
}

static void on_poll(cep_rpc_call *c, void *arg)
{
	cep_launcher *l = arg;
	if (!peer_ok(l, c))
		return;
	const Cep__V1__LauncherRun *q = (const void *)cep_rpc_call_request(c);
	if (!cep_run_id_valid(q->run_id)) {
		cep_rpc_call_fail(c, CEP_INVALID_ARGUMENT,
		    "run_id: not a run id");
		return;
	}
	Cep__V1__LauncherPollReply rep = CEP__V1__LAUNCHER_POLL_REPLY__INIT;
	char how[128] = "status unknown (not started by this launcher)";
	pthread_mutex_lock(&l->mu);
	lrun *x = launcher_lr_find(l, q->run_id);
	if (x == NULL || x->pid == 0)
		x = x == NULL ? adopt_polled(l, q) : x;
	if (x != NULL && x->pid > 0) {
		rep.alive = launcher_lr_alive(x);
		snprintf(how, sizeof(how), "%s", x->how);
	}
	pthread_mutex_unlock(&l->mu);
	rep.how = rep.alive ? (char *)"" : how;
	cep_rpc_call_reply(c, &rep.base);
}

static void on_signal(cep_rpc_call *c, void *arg)
{
	cep_launcher *l = arg;
	if (!peer_ok(l, c))
		return;
	const Cep__V1__LauncherSignal *q = (const void *)cep_rpc_call_request(
	    c);
	int sig = q->sig == CEP__V1__LAUNCHER_SIGNAL__SIG__TERM ? SIGTERM :
	    q->sig == CEP__V1__LAUNCHER_SIGNAL__SIG__KILL       ? SIGKILL :
	                                                          0;
	if (!cep_run_id_valid(q->run_id) || sig == 0) {
		cep_rpc_call_fail(c, CEP_INVALID_ARGUMENT,
		    "run_id and sig "
		    "(TERM or KILL) needed");
		return;
	}
	pthread_mutex_lock(&l->mu);
	lrun *x = launcher_lr_find(l, q->run_id);
	if (x != NULL && launcher_lr_alive(x)) {
		cep_log_info(q->run_id, "signal %d to runner pid %d", sig,
		    (int)x->pid);
		launcher_lr_signal(x, sig);
	}
	pthread_mutex_unlock(&l->mu);
	Cep__V1__LauncherAck ack = CEP__V1__LAUNCHER_ACK__INIT;
	cep_rpc_call_reply(c, &ack.base);
}

static void on_undo(cep_rpc_call *c, void *arg)
{
	cep_launcher *l = arg;
	if (!peer_ok(l, c))
		return;
	const Cep__V1__LauncherRun *q = (const void *)cep_rpc_call_request(c);
	if (!cep_run_id_valid(q->run_id)) {
		cep_rpc_call_fail(c, CEP_INVALID_ARGUMENT,
		    "run_id: not a run id");
		return;
	}
	cep_err err = {0};
	int rv = launcher_lr_kill_all(q->run_id, &err); /* sleeps: no lock */
	char dir[4200];
	if (rv == CEP_OK &&
	    (rv = cep_files_path(dir, sizeof(dir), &err, "%s/%s/identity",
	         l->runs_dir, q->run_id)) == CEP_OK)
		rv = cep_files_rmtree(dir, &err);
	pthread_mutex_lock(&l->mu);
	lrun *x = launcher_lr_find(l, q->run_id);
	if (rv == CEP_OK && x != NULL) {
		(void)launcher_lr_alive(x); /* reaps our child */
		if (x->cr == NULL)
			launcher_lr_drop(l, x);
		else
			x->pid = 0; /* its cleanup goes on */
	}
	pthread_mutex_unlock(&l->mu);
	if (rv != CEP_OK) {
		refuse(c, CEP_LOG_ERROR, q->run_id, "undo", rv, &err);
		return;
	}
	cep_log_info(q->run_id, "undo: no process of the run is left");
	Cep__V1__LauncherAck ack = CEP__V1__LAUNCHER_ACK__INIT;
	cep_rpc_call_reply(c, &ack.base);
}

/* Starts the run's cleanup runner with caps (l->mu held). */
static int start_cleanup(cep_launcher *l, lrun *x, const char *recs,
    unsigned caps, cep_err *err)
{
	char dir[4200], text[128];
	cep_launcher_privs privs;
	int rv = cep_files_path(dir, sizeof(dir), err, "%s/%s", l->runs_dir,
	    x->id.s);
	if (rv == CEP_OK)
		rv = cep_files_mkdirs(dir, 0700, err);
	if (rv == CEP_OK)
		rv = launcher_privs_init(&privs, caps, l->set_caps, err);
	cep_cleanrun_opts o = {.runner_bin = l->bin,
	    .dir = dir,
	    .run_id = x->id.s,
	    .recs_json = recs,
	    .limit_ms = CLEANUP_LIMIT_MS,
	    .pre_exec = launcher_privs_apply,
	    .arg = &privs};
	if (rv == CEP_OK)
		rv = cep_cleanrun_start(&o, &x->cr, err);
	if (rv != CEP_OK)
		return rv;
	cep_caps_text(caps, text, sizeof(text));
	cep_log_info(x->id.s, "cleanup runner started: pid %d, capabilities %s",
	    cep_cleanrun_pid(x->cr), text[0] ? text : "none");
	return CEP_OK;
}

/* The ids of a JSON array into rep->undone (freed by free_undone). */
static void set_undone(Cep__V1__LauncherCleanupReply *rep, const char *js)
{
	json_t *ids = js != NULL ? json_loads(js, 0, NULL) : NULL;
	size_t n = json_is_array(ids) ? json_array_size(ids) : 0;
	rep->undone = n > 0 ? calloc(n, sizeof(char *)) : NULL;
	for (size_t i = 0; rep->undone != NULL && i < n; i++) {
		const char *s = json_string_value(json_array_get(ids, i));
		if (s != NULL &&
		    (rep->undone[rep->n_undone] = strdup(s)) != NULL)
			rep->n_undone++;
	}
	json_decref(ids);
}

static void free_undone(Cep__V1__LauncherCleanupReply *rep)
{
	for (size_t i = 0; i < rep->n_undone; i++)
		free(rep->undone[i]);
	free(rep->undone);
}

/* Polls x's cleanup runner into rep (l->mu held). */
static void poll_cleanup(cep_launcher *l, lrun *x,
    Cep__V1__LauncherCleanupReply *rep, char *msg, size_t len)
{
	char *undone = NULL;
	cep_err err = {0};
	enum cep_cleanrun_state st = cep_cleanrun_poll(x->cr, &undone, &err);
	if (st == CEP_CLEANRUN_RUNNING)
		return;
	int rv = st == CEP_CLEANRUN_DONE ? CEP_OK : err.code;
	rep->done = true;
	rep->code = rv;
	snprintf(msg, len, "%s", rv == CEP_OK ? "" : err.msg);
	set_undone(rep, undone);
	cep_log_info(x->id.s, "cleanup runner ended: %zu fault(s) undone%s%s",
	    rep->n_undone, rv == CEP_OK ? "" : "; ", msg);
	free(undone);
	cep_cleanrun_free(x->cr);
	x->cr = NULL;
	if (x->pid == 0)
		launcher_lr_drop(l, x);
}

/* Polls the run's cleanup runner, or starts one for q's records (takes
 * l->mu); rep->done and msg when it has ended. */
static int cleanup(cep_launcher *l, const Cep__V1__LauncherCleanup *q,
    unsigned caps, Cep__V1__LauncherCleanupReply *rep, char *msg, size_t mlen,
    cep_err *err)
{
	int rv = CEP_OK;
	pthread_mutex_lock(&l->mu);
	lrun *x = launcher_lr_find(l, q->run_id);
	if (x != NULL && x->cr != NULL)
		poll_cleanup(l, x, rep, msg, mlen);
	else if (strcmp(q->records_json, "[]") == 0)
		rep->done = true;
	else if (l->stopping)
		rv = cep_err_set(err, CEP_UNAVAILABLE,
		    "the launcher is stopping");
	else if (x == NULL && (x = launcher_lr_add(l, q->run_id)) == NULL)
		rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory");
	else if ((rv = start_cleanup(l, x, q->records_json, caps, err)) !=
	        CEP_OK &&
	    x->pid == 0)
		launcher_lr_drop(l, x);
	pthread_mutex_unlock(&l->mu);
	return rv;
}

static void on_cleanup(cep_rpc_call *c, void *arg)
{
	unsigned caps = 0;
	const Cep__V1__LauncherCleanup *q = admit(arg, c, check_cleanup, &caps);
	if (q == NULL)
		return;
	Cep__V1__LauncherCleanupReply rep =
	    CEP__V1__LAUNCHER_CLEANUP_REPLY__INIT;
	char msg[512] = "";
	cep_err err = {0};
	int rv = cleanup(arg, q, caps, &rep, msg, sizeof(msg), &err);
	if (rv != CEP_OK) {
		refuse(c, CEP_LOG_ERROR, q->run_id, "cleanup", rv, &err);
		return;
	}
	rep.error = msg;
	cep_rpc_call_reply(c, &rep.base);
	free_undone(&rep);
}

/* Facts for the delegate's policy (inspect.c): read-only. */
static void on_inspect(cep_rpc_call *c, void *arg)
{
	unsigned caps = 0;
	const Cep__V1__LauncherInspect *q = admit(arg, c, check_inspect, &caps);
	if (q == NULL)
		return;
	cep_launcher_facts *f = malloc(sizeof(*f));
	if (f == NULL) {
		cep_rpc_call_fail(c, CEP_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	launcher_inspect(q, f);
	cep_log_debug(NULL, "Inspect: pid %d%s%s", (int)q->pid,
	    q->netns ? ", netns" : "", q->path.len > 0 ? ", path" : "");
	cep_rpc_call_reply(c, &f->rep.base);
	free(f);
}

static const cep_rpc_method launcher_methods[] = {
    {"cep.v1.Launcher/Launch", &cep__v1__launch_request__descriptor, on_launch},
    {"cep.v1.Launcher/Poll", &cep__v1__launcher_run__descriptor, on_poll},
    {"cep.v1.Launcher/Signal", &cep__v1__launcher_signal__descriptor,
        on_signal},
    {"cep.v1.Launcher/Undo", &cep__v1__launcher_run__descriptor, on_undo},
    {"cep.v1.Launcher/Cleanup", &cep__v1__launcher_cleanup__descriptor,
        on_cleanup},
    {"cep.v1.Launcher/Inspect", &cep__v1__launcher_inspect__descriptor,
        on_inspect},
};

int launcher_serve(cep_launcher *l, cep_err *err)
{
	cep_rpc_server_opts opts = {.name = "launcher"};
	int rv = cep_rpc_server_new(&l->srv, launcher_methods,
	    sizeof(launcher_methods) / sizeof(launcher_methods[0]), l, &opts,
	    err);
	if (rv == CEP_OK)
		rv = cep_rpc_server_listen(l->srv, l->url, NULL, err);
	return rv;
}
