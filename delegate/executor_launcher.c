/*
 * executor_launcher.c - host runners through cep-launcher (docs/privsep.md):
 * the delegate holds no capability, so it asks the launcher, over its ipc
 * socket, to start the runner with the capabilities of the run's faults,
 * to poll, signal and kill it, and to run a cleanup runner for the
 * node-level faults a dead runner left. Chosen when privsep.launcher is
 * set (the installed layout's default).
 *
 * The launcher may restart while a run goes on: its runners live on
 * (their own sessions), and it answers Poll for one it did not start by
 * pid + start time. While it cannot be reached, poll falls back to /proc
 * (pid + start time: readable without privilege), and undo and node_undo
 * answer CEP_EXEC_PENDING for up to UNREACHABLE_MS, so a launcher
 * restart costs a few seconds, not the run's cleanup.
 */
#define _GNU_SOURCE
#include "executor.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cep.pb-c.h"
#include "log.h"
#include "rpc.h"
#include "secret.h"
#include "clock.h"
#include "files.h"
#include "procfs.h"
#include "run_id.h"

/* The monitor thread makes these calls for every run, and systemd's
 * watchdog follows its ticks (lib/base/sdnotify.h, WatchdogSec=30s): a dead
 * launcher must cost a tick seconds, never the delegate its life. A
 * launch or undo takes milliseconds when the launcher is there. */
#define LAUNCH_TIMEOUT_MS 5000
#define CALL_TIMEOUT_MS 3000
#define UNDO_TIMEOUT_MS 5000
#define UNREACHABLE_MS 120000
#define PEM_MAX (64 * 1024)

/* Runs whose undo found the launcher unreachable: since when. */
typedef struct lwait {
	cep_run_id id;
	int64_t since;
	struct lwait *next;
} lwait;

typedef struct launcher_exec {
	cep_rpc_client *c;
	char url[512];
	lwait *waits; /* the monitor thread's only */
} launcher_exec;

typedef struct pems {
	char *ca, *cert, *key, *cp_ca;
} pems;

static void pems_free(pems *p)
{
	cep_secret_wipe_str(p->ca);
	cep_secret_wipe_str(p->cert);
	cep_secret_wipe_str(p->key);
	free(p->cp_ca);
}

static int pems_read(const cep_exec_launch *l, pems *p, cep_err *err)
{
	memset(p, 0, sizeof(*p));
	int rv = delegate_exec_identity_read(l->identity_dir, &p->ca, &p->cert,
	    &p->key, err);
	size_t len;
	if (rv == CEP_OK && l->cp_url != NULL && l->cp_url[0] != '\0' &&
	    l->cp_ca_file != NULL && l->cp_ca_file[0] != '\0')
		rv = cep_files_read(l->cp_ca_file, PEM_MAX, &p->cp_ca, &len,
		    err);
	return rv;
}

static int lx_launch(void *impl, const cep_exec_launch *l, cep_exec_handle *h,
    cep_err *err)
{
	launcher_exec *lx = impl;
	cep_run_id id;
	if (!cep_run_id_parse(&id, l->run_id))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "launcher: not a run id");
	pems p;
	int rv = pems_read(l, &p, err);
	if (rv != CEP_OK) {
		pems_free(&p);
		return cep_err_wrap(err, "the runner's identity");
	}
	Cep__V1__LaunchRequest req = CEP__V1__LAUNCH_REQUEST__INIT;
	req.run_id = (char *)l->run_id;
	req.fault_types = (char **)l->fault_types;
	req.n_fault_types = l->nfault_types;
	req.relay_url = (char *)l->relay_url;
	req.server_name = (char *)(l->server_name ? l->server_name : "");
	req.ca_pem = p.ca;
	req.cert_pem = p.cert;
	req.key_pem = p.key;
	req.cp_url = (char *)(l->cp_url ? l->cp_url : "");
	req.cp_ca_pem = p.cp_ca ? p.cp_ca : (char *)"";
	req.cp_proxy = (char *)(l->cp_url && l->cp_url[0] && l->cp_proxy ?
	        l->cp_proxy :
	        "");
	req.deadline_ms = l->not_after_ms;
	ProtobufCMessage *out = NULL;
	rv = cep_rpc_invoke(lx->c, "cep.v1.Launcher/Launch", &req.base,
	    &cep__v1__launch_reply__descriptor, &out, LAUNCH_TIMEOUT_MS, err);
	pems_free(&p);
	if (rv != CEP_OK)
		return cep_err_wrap(err, "launcher %s", lx->url);
	const Cep__V1__LaunchReply *rep = (const void *)out;
	memset(h, 0, sizeof(*h));
	h->pid = rep->pid;
	h->start = rep->start;
	h->run_id = id;
	cep_log_info(l->run_id,
	    "launcher started the runner: pid %d, "
	    "capabilities %s",
	    rep->pid, rep->caps[0] ? rep->caps : "none");
	protobuf_c_message_free_unpacked(out, NULL);
	return CEP_OK;
}

/* The launcher is unreachable: what /proc says (pid + start time). */
static enum cep_exec_status poll_local(const cep_exec_handle *h, char *what,
    size_t len)
{
	if (h->pid > 1 && cep_procfs_start_time(h->pid) == h->start &&
	    cep_procfs_state(h->pid) != 'Z')
		return CEP_EXEC_ALIVE;
	snprintf(what, len, "status unknown (the launcher could not be asked)");
	return CEP_EXEC_EXITED;
}

static enum cep_exec_status lx_poll(void *impl, const cep_exec_handle *h,
    char *what, size_t len)
{
	launcher_exec *lx = impl;
	Cep__V1__LauncherRun req = CEP__V1__LAUNCHER_RUN__INIT;
	req.run_id = (char *)h->run_id.s;
	req.pid = h->pid;
	req.start = h->start;
	ProtobufCMessage *out = NULL;
	cep_err err = {0};
	if (cep_rpc_invoke(lx->c, "cep.v1.Launcher/Poll", &req.base,
	        &cep__v1__launcher_poll_reply__descriptor, &out,
	        CALL_TIMEOUT_MS, &err) != CEP_OK) {
		cep_log_debug(h->run_id.s, "launcher poll: %s", err.msg);
		return poll_local(h, what, len);
	}
	const Cep__V1__LauncherPollReply *rep = (const void *)out;
	enum cep_exec_status st = rep->alive ? CEP_EXEC_ALIVE : CEP_EXEC_EXITED;
	if (!rep->alive)
		snprintf(what, len, "%s", rep->how);
	protobuf_c_message_free_unpacked(out, NULL);
	return st;
}

static void lx_kill(void *impl, const cep_exec_handle *h)
{
	launcher_exec *lx = impl;
	Cep__V1__LauncherSignal req = CEP__V1__LAUNCHER_SIGNAL__INIT;
	req.run_id = (char *)h->run_id.s;
	req.sig = CEP__V1__LAUNCHER_SIGNAL__SIG__KILL;
	cep_err err = {0};
	if (cep_rpc_invoke(lx->c, "cep.v1.Launcher/Signal", &req.base, NULL,
	        NULL, CALL_TIMEOUT_MS, &err) != CEP_OK)
		cep_log_warn(h->run_id.s, "launcher: killing the runner: %s",
		    err.msg);
}

/* A transport error: retry on the next tick while the launcher has been
 * unreachable for less than UNREACHABLE_MS (it may be restarting). */
static enum cep_exec_state unreachable(launcher_exec *lx, const char *run_id,
    int rv, cep_err *err)
{
	if (rv != CEP_UNAVAILABLE && rv != CEP_DEADLINE_EXCEEDED)
		return CEP_EXEC_FAILED;
	lwait *w = lx->waits;
	while (w != NULL && strcmp(w->id.s, run_id) != 0)
		w = w->next;
	if (w == NULL && (w = calloc(1, sizeof(*w))) != NULL) {
		cep_run_id_parse(&w->id, run_id); /* "" never matches */
		w->since = cep_clock_mono_ms();
		w->next = lx->waits;
		lx->waits = w;
		cep_log_warn(run_id, "launcher %s: %s; trying again for %d s",
		    lx->url, err->msg, UNREACHABLE_MS / 1000);
	}
	if (w != NULL && cep_clock_mono_ms() - w->since < UNREACHABLE_MS)
		return CEP_EXEC_PENDING;
	cep_err_wrap(err, "launcher %s unreachable", lx->url);
	return CEP_EXEC_FAILED;
}

static void forget_wait(launcher_exec *lx, const char *run_id)
{
	for (lwait **pp = &lx->waits; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->id.s, run_id) == 0) {
			lwait *w = *pp;
			*pp = w->next;
			free(w);
			return;
		}
}

static enum cep_exec_state lx_undo(void *impl, const char *run_id, cep_err *err)
{
	launcher_exec *lx = impl;
	Cep__V1__LauncherRun req = CEP__V1__LAUNCHER_RUN__INIT;
	req.run_id = (char *)run_id;
	int rv = cep_rpc_invoke(lx->c, "cep.v1.Launcher/Undo", &req.base, NULL,
	    NULL, UNDO_TIMEOUT_MS, err);
	enum cep_exec_state st = rv == CEP_OK ?
	    CEP_EXEC_DONE :
	    unreachable(lx, run_id, rv, err);
	if (st != CEP_EXEC_PENDING)
		forget_wait(lx, run_id);
	return st;
}

static char *undone_json(const Cep__V1__LauncherCleanupReply *rep)
{
	json_t *a = json_array();
	for (size_t i = 0; i < rep->n_undone; i++)
		json_array_append_new(a, json_string(rep->undone[i]));
	char *s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

static enum cep_exec_state lx_node_undo(void *impl, const char *run_id,
    const char *recs_json, char **undone, cep_err *err)
{
	launcher_exec *lx = impl;
	*undone = NULL;
	if (recs_json == NULL || strcmp(recs_json, "[]") == 0)
		return CEP_EXEC_DONE;
	Cep__V1__LauncherCleanup req = CEP__V1__LAUNCHER_CLEANUP__INIT;
	req.run_id = (char *)run_id;
	req.records_json = (char *)recs_json;
	ProtobufCMessage *out = NULL;
	int rv = cep_rpc_invoke(lx->c, "cep.v1.Launcher/Cleanup", &req.base,
	    &cep__v1__launcher_cleanup_reply__descriptor, &out, CALL_TIMEOUT_MS,
	    err);
	if (rv != CEP_OK) {
		enum cep_exec_state st = unreachable(lx, run_id, rv, err);
		if (st != CEP_EXEC_PENDING)
			forget_wait(lx, run_id);
		return st;
	}
	forget_wait(lx, run_id);
	const Cep__V1__LauncherCleanupReply *rep = (const void *)out;
	enum cep_exec_state st = CEP_EXEC_PENDING;
	if (rep->done) {
		*undone = undone_json(rep);
		st = rep->code == CEP_OK ?
		    CEP_EXEC_DONE :
		    delegate_exec_state_of(cep_err_set(err,
		        rep->code > 0 && rep->code <= 16 ? rep->code :
		                                           CEP_INTERNAL,
		        "%s", rep->error));
	}
	protobuf_c_message_free_unpacked(out, NULL);
	return st;
}

static void lx_free(void *impl)
{
	launcher_exec *lx = impl;
	cep_rpc_client_free(lx->c);
	while (lx->waits != NULL) {
		lwait *w = lx->waits;
		lx->waits = w->next;
		free(w);
	}
	free(lx);
}

static const cep_executor_ops launcher_ops = {
    .name = "launcher",
    .launch = lx_launch,
    .poll = lx_poll,
    .kill = lx_kill,
    .undo = lx_undo,
    .free = lx_free,
    .node_undo = lx_node_undo,
};

int delegate_executor_launcher_new(const char *url, cep_executor **out,
    cep_err *err)
{
	launcher_exec *lx = calloc(1, sizeof(*lx));
	if (lx == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	int rv = cep_files_path(lx->url, sizeof(lx->url), err, "%s", url);
	if (rv == CEP_OK)
		rv = cep_rpc_client_new(&lx->c, url, NULL, err);
	if (rv == CEP_OK &&
	    (*out = delegate_executor_wrap(&launcher_ops, lx)) == NULL)
		rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory");
	if (rv != CEP_OK) {
		cep_rpc_client_free(lx->c);
		free(lx);
		return cep_err_wrap(err, "the launcher executor");
	}
	return CEP_OK;
}
