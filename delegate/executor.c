/* executor.c - the executor interface: dispatch to a backend's ops. */
#include "executor.h"

#include <stdlib.h>

struct cep_executor {
	const cep_executor_ops *ops;
	void *impl;
};

cep_executor *cep_executor_wrap(const cep_executor_ops *ops, void *impl)
{
	cep_executor *ex = calloc(1, sizeof(*ex));
	if (ex == NULL)
		return NULL;
	ex->ops = ops;
	ex->impl = impl;
	return ex;
}

void cep_executor_free(cep_executor *ex)
{
	if (ex == NULL)
		return;
	if (ex->ops->free != NULL)
		ex->ops->free(ex->impl);
	free(ex);
}

const char *cep_executor_name(const cep_executor *ex)
{
	return ex->ops->name;
}

int cep_executor_launch(cep_executor *ex, const cep_exec_launch *l,
    cep_exec_handle *h, cep_err *err)
{
	return ex->ops->launch(ex->impl, l, h, err);
}

enum cep_exec_status cep_executor_poll(cep_executor *ex,
    const cep_exec_handle *h, char *what, size_t len)
{
	return ex->ops->poll(ex->impl, h, what, len);
}

void cep_executor_kill(cep_executor *ex, const cep_exec_handle *h)
{
	ex->ops->kill(ex->impl, h);
}

int cep_executor_undo(cep_executor *ex, const char *run_id, cep_err *err)
{
	return ex->ops->undo(ex->impl, run_id, err);
}

int cep_executor_node_undo(cep_executor *ex, const char *run_id,
    const char *recs_json, char **undone, cep_err *err)
{
	*undone = NULL;
	if (ex->ops->node_undo == NULL)
		return cep_err_set(err, CEP_UNIMPLEMENTED, "the %s executor "
		    "cannot undo faults on a node", ex->ops->name);
	return ex->ops->node_undo(ex->impl, run_id, recs_json, undone, err);
}

int cep_executor_adopt(cep_executor *ex, const cep_exec_handle *h,
    cep_err *err)
{
	if (ex->ops->adopt == NULL)
		return CEP_OK;
	return ex->ops->adopt(ex->impl, h, err);
}

/* For a backend's own functions beyond the ops (kubernetes collection). */
void *cep_executor_impl(cep_executor *ex, const cep_executor_ops *ops)
{
	return ex != NULL && ex->ops == ops ? ex->impl : NULL;
}
