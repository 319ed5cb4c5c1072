/*
 * executor.h - how a runner is started, watched, stopped and cleaned up
 * after. One interface, several backends: local (a child process on the
 * appliance, executor_local.c) now, kubernetes (Secret + Pod) later.
 */
#ifndef CEP_EXECUTOR_H
#define CEP_EXECUTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* What names a launched runner. For local: pid + /proc start time (pid
 * reuse), child = started by this process (reaped with waitpid) or adopted
 * after a restart (polled by pid + start time). */
typedef struct cep_exec_handle {
	int pid;
	int64_t start;
	bool child;
} cep_exec_handle;

typedef struct cep_exec_launch {
	const char *run_id;
	const char *identity_dir;
	const char *relay_url;     /* what the runner dials */
	const char *server_name;   /* optional: name to check in the relay cert */
	const char *log_path;      /* runner stdout/stderr */
} cep_exec_launch;

enum cep_exec_status { CEP_EXEC_ALIVE, CEP_EXEC_EXITED };

typedef struct cep_executor_ops {
	const char *name;
	int (*launch)(void *impl, const cep_exec_launch *l, cep_exec_handle *h,
	    cep_err *err);
	/* ALIVE or EXITED; *what describes the exit ("status 3", "signal 9"). */
	enum cep_exec_status (*poll)(void *impl, const cep_exec_handle *h,
	    char *what, size_t len);
	void (*kill)(void *impl, const cep_exec_handle *h);
	/* Removes everything the run left; CEP_OK only when verified gone. */
	int (*undo)(void *impl, const char *run_id, cep_err *err);
	void (*free)(void *impl);
} cep_executor_ops;

typedef struct cep_executor cep_executor;

/* runner_bin: the cep-runner to exec. */
int cep_executor_local_new(const char *runner_bin, cep_executor **out,
    cep_err *err);
void cep_executor_free(cep_executor *ex);

const char *cep_executor_name(const cep_executor *ex);
int cep_executor_launch(cep_executor *ex, const cep_exec_launch *l,
    cep_exec_handle *h, cep_err *err);
enum cep_exec_status cep_executor_poll(cep_executor *ex,
    const cep_exec_handle *h, char *what, size_t len);
void cep_executor_kill(cep_executor *ex, const cep_exec_handle *h);
int cep_executor_undo(cep_executor *ex, const char *run_id, cep_err *err);

/* For backends: wraps ops + impl. */
cep_executor *cep_executor_wrap(const cep_executor_ops *ops, void *impl);

/* local backend helper, also used by tests: counts processes whose
 * command line is a cep-runner with --run-id run_id. */
int cep_executor_local_count(const char *run_id);

#endif
