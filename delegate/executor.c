/* executor.c - the executor interface: dispatch to a backend's ops. */
#include "executor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secret.h"
#include "files.h"

struct cep_executor {
	const cep_executor_ops *ops;
	void *impl;
};

cep_executor *delegate_executor_wrap(const cep_executor_ops *ops, void *impl)
{
	cep_executor *ex = calloc(1, sizeof(*ex));
	if (ex == NULL)
		return NULL;
	ex->ops = ops;
	ex->impl = impl;
	return ex;
}

void delegate_executor_free(cep_executor *ex)
{
	if (ex == NULL)
		return;
	if (ex->ops->free != NULL)
		ex->ops->free(ex->impl);
	free(ex);
}

const char *delegate_executor_name(const cep_executor *ex)
{
	return ex->ops->name;
}

int delegate_executor_launch(cep_executor *ex, const cep_exec_launch *l,
    cep_exec_handle *h, cep_err *err)
{
	return ex->ops->launch(ex->impl, l, h, err);
}

enum cep_exec_status delegate_executor_poll(cep_executor *ex,
    const cep_exec_handle *h, char *what, size_t len)
{
	return ex->ops->poll(ex->impl, h, what, len);
}

void delegate_executor_kill(cep_executor *ex, const cep_exec_handle *h)
{
	ex->ops->kill(ex->impl, h);
}

enum cep_exec_state delegate_exec_state_of(int rv)
{
	return rv == CEP_OK ? CEP_EXEC_DONE : CEP_EXEC_FAILED;
}

enum cep_exec_state delegate_executor_undo(cep_executor *ex, const char *run_id,
    cep_err *err)
{
	return ex->ops->undo(ex->impl, run_id, err);
}

enum cep_exec_state delegate_executor_node_undo(cep_executor *ex,
    const char *run_id, const char *recs_json, char **undone, cep_err *err)
{
	*undone = NULL;
	if (ex->ops->node_undo == NULL)
		return delegate_exec_state_of(
		    cep_err_set(err, CEP_UNIMPLEMENTED,
		        "the %s executor cannot undo faults on a node",
		        ex->ops->name));
	return ex->ops->node_undo(ex->impl, run_id, recs_json, undone, err);
}

bool delegate_executor_split(cep_executor *ex, const char *run_id,
    cep_exec_split *out)
{
	memset(out, 0, sizeof(*out));
	return ex->ops->split != NULL && ex->ops->split(ex->impl, run_id, out);
}

int delegate_executor_adopt(cep_executor *ex, cep_exec_handle *h, cep_err *err)
{
	char what[128];
	if (ex->ops->adopt != NULL)
		return ex->ops->adopt(ex->impl, h, err);
	h->child = false;
	/* a process: alive when pid + start time still are, not a zombie */
	if (h->pid > 1 && h->start != 0 &&
	    ex->ops->poll(ex->impl, h, what, sizeof(what)) == CEP_EXEC_ALIVE)
		return CEP_OK;
	return cep_err_set(err, CEP_NOT_FOUND, "runner pid %d is gone", h->pid);
}

/* The defaults below are a process runner's on this host (local,
 * launcher); a backend whose runners live elsewhere sets its ops. */

void delegate_executor_place(const cep_executor *ex, const cep_exec_scope *run,
    cep_exec_scope *out)
{
	if (ex->ops->place != NULL) {
		ex->ops->place(run, out);
		return;
	}
	snprintf(out->connector, sizeof(out->connector), "local");
	snprintf(out->ns, sizeof(out->ns), "host");
}

int delegate_executor_pods(const cep_executor *ex, const char *spec_yaml,
    const char *spec_name, cep_exec_pods *pods, cep_err *err)
{
	memset(pods, 0, sizeof(*pods));
	if (ex->ops->pods == NULL || spec_yaml == NULL)
		return CEP_OK;
	return ex->ops->pods(spec_yaml, spec_name, pods, err);
}

void delegate_executor_describe(const cep_executor *ex,
    const cep_exec_handle *h, char *buf, size_t len)
{
	if (ex->ops->describe != NULL)
		ex->ops->describe(h, buf, len);
	else
		snprintf(buf, len, "pid %d", h->pid);
}

void delegate_executor_unverdicted(const cep_executor *ex, const char *what,
    char *buf, size_t len)
{
	if (ex->ops->unverdicted != NULL)
		ex->ops->unverdicted(what, buf, len);
	else
		snprintf(buf, len, "runner exited with %s before a verdict",
		    what);
}

void delegate_executor_grant(const cep_executor *ex, cep_exec_grant *g)
{
	if (ex->ops->grant != NULL) {
		ex->ops->grant(g);
		return;
	}
	g->ns = NULL;
	g->max_targets = 0;
}

/* For a backend's own functions beyond the ops (kubernetes collection). */
void *delegate_executor_impl(cep_executor *ex, const cep_executor_ops *ops)
{
	return ex != NULL && ex->ops == ops ? ex->impl : NULL;
}

#define IDENTITY_MAX (64 * 1024)

static int identity_file(const char *dir, const char *name, bool secret,
    char **out, cep_err *err)
{
	char path[4096];
	const cep_secret_opts o = {IDENTITY_MAX, !secret, false,
	    "the runner key"};
	cep_secret s;
	int rv = cep_files_path(path, sizeof(path), err, "%s/%s", dir, name);
	if (rv == CEP_OK)
		rv = cep_secret_read(path, &o, &s, err);
	if (rv == CEP_OK)
		*out = cep_secret_take(&s);
	return rv;
}

int delegate_exec_identity_read(const char *dir, char **ca, char **cert,
    char **key, cep_err *err)
{
	*ca = *cert = *key = NULL;
	int rv = identity_file(dir, "ca.crt", false, ca, err);
	if (rv == CEP_OK)
		rv = identity_file(dir, "runner.crt", false, cert, err);
	if (rv == CEP_OK)
		rv = identity_file(dir, "runner.key", true, key, err);
	if (rv != CEP_OK) {
		cep_secret_wipe_str(*ca);
		cep_secret_wipe_str(*cert);
		*ca = *cert = NULL;
	}
	return rv;
}
