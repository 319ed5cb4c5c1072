/*
 * launcher_int.h - the launcher's insides, shared by its files:
 * launcher.c (runs, tick, stop), service.c (the Launcher calls),
 * check.c (request checks), privs.c (capabilities in the child),
 * inspect.c (read-only host facts for the delegate's policy).
 */
#ifndef CEP_LAUNCHER_INT_H
#define CEP_LAUNCHER_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "launcher.h"
#include "rpc.h"
#include "run_id.h"

typedef struct cep_cleanrun cep_cleanrun;

/* One run (l->mu). */
typedef struct lrun {
	cep_run_id id;
	pid_t pid; /* 0: no runner (a Cleanup only) */
	int64_t start;
	bool child; /* ours (waitpid), else adopted */
	bool exited;
	char how[128];
	int64_t deadline_ms; /* 0: unknown (adopted) */
	bool backstop;       /* killed past its deadline */
	cep_cleanrun *cr;    /* a cleanup runner, at most one */
	struct lrun *next;
} lrun;

struct cep_launcher {
	char bin[4096], runs_dir[4096], url[512];
	uid_t allow_uid;
	int64_t stop_wait_ms;
	bool set_caps;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	lrun *runs;
	bool stopping, closing;
	pthread_t tick;
	bool tick_started;
	cep_rpc_server *srv;
};

lrun *launcher_lr_find(cep_launcher *l, const char *id);
/* NULL when id is not a run id (or out of memory). */
lrun *launcher_lr_add(cep_launcher *l, const char *id);
void launcher_lr_drop(cep_launcher *l, lrun *r);
bool launcher_lr_alive(lrun *r);
void launcher_lr_signal(lrun *r, int sig);
int launcher_lr_kill_all(const char *run_id, cep_err *err);

/* service.c: serves l->url. */
int launcher_serve(cep_launcher *l, cep_err *err);

#endif
