/*
 * executor_kube_int.h - what the files of the kubernetes executor share:
 * executor_kube.c (the ops: launch, poll, kill, undo, adopt) on top of
 * executor_kube_watch.c (the pod's watch), executor_kube_cleanup.c
 * (cleanup runners), executor_kube_collect.c (start-time collection),
 * executor_kube_place.c (the runner's node), executor_kube_op.c (the
 * kill and undo thread), and
 * executor_kube_run.c (helpers all of them use). Calls go down only. Not
 * for use outside these files.
 *
 * Locking: kx->mu guards the run list and each krun's phase, what and op
 * fields; it is never held across a network call. kconn->mu guards the
 * lazy creation of that connector's client and its list of pod watches
 * (executor_kube_watch.c says how those lock).
 */
#ifndef CEP_EXECUTOR_KUBE_INT_H
#define CEP_EXECUTOR_KUBE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "connector.h"
#include "executor.h"
#include "kube.h"

typedef struct khub khub; /* executor_kube_watch.c */

typedef struct kconn {
	const cep_connector *c;
	pthread_mutex_t mu;
	cep_kube *k; /* made on first use, shared */
	khub *hubs;  /* mu: its pod watches, one per namespace */
} kconn;

enum kphase { KP_LAUNCHING, KP_RUNNING, KP_ENDED };
enum kop { OP_NONE, OP_KILL, OP_UNDO };

struct kube_exec;

typedef struct krun {
	struct kube_exec *kx;
	cep_run_id id;
	char pod[64], ns[64], conn[64];
	kconn *kc; /* NULL: connector not configured */
	char relay[256], server_name[256];
	int64_t not_after_ms;
	cep_exec_pods pods;              /* pod targets (launch) */
	char node[254];                  /* their node, once resolved */
	cep_exec_split split;            /* n > 0: split, no pod created */
	char *ca, *cert, *key;           /* until the Secret exists; wiped */
	char cp_url[512], cp_proxy[512]; /* control-plane fallback, "" none */
	char *cp_ca;                     /* the plane's CA (PEM) or NULL */
	bool adopted;                    /* launched by an earlier delegate */
	atomic_bool stop;                /* the watcher ends */
	atomic_bool kill_asked;          /* no more creating: being killed */
	atomic_bool launched;            /* creating is over (done or not) */
	/* kx->mu */
	enum kphase phase;
	char what[512];
	pthread_t watcher, op;
	bool watcher_started, watcher_done;
	bool op_started, op_done;
	enum kop op_kind;
	bool undo_started, undo_done;
	int undo_rv;
	char undo_msg[512];
	struct krun *next;
	/* the pod watch it joined (executor_kube_watch.c), kept after it
	 * left; the rest under that hub's mu */
	khub *_Atomic hub;
	struct krun *hub_next;
	pthread_cond_t wcv; /* an event for it, or stop (CLOCK_MONOTONIC) */
	bool wdone;         /* the pod ended, or watching it was refused */
	char waiting[256];  /* why a Pending pod waits */
} krun;

typedef struct kcollect kcollect;
typedef struct kclean kclean; /* executor_kube_cleanup.c */

typedef struct kube_exec {
	char appliance[64], relay[256];
	pthread_mutex_t mu;
	kconn *conns;
	size_t nconns;
	krun *runs;
	atomic_bool stopping;
	int64_t undo_limit_ms;
	kcollect *coll; /* start-time collection */
	kclean *cleans; /* kx->mu: placements, cleanups */
} kube_exec;

/* executor_kube_run.c: a connector's client, made on first use. */
int delegate_kx_client(kconn *kc, cep_kube **out, cep_err *err);

#define WATCH_SLICE_MS 60000 /* re-check the pod by GET this often */
#define RETRY_PAUSE_MS 1000  /* after a failed API call */

/* executor_kube_run.c, for the watcher: the runner is over as far as this
 * executor can tell (first word wins); the run's threads should end;
 * o[a][b] as a string or NULL. */
void delegate_kx_ended(krun *kr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool delegate_kx_stop_asked(krun *kr);
const char *delegate_kx_obj_str(json_t *o, const char *a, const char *b);
/* executor_kube_watch.c: join the connector's watch of the run's
 * namespace (before the Pod is created), follow the created (or adopted)
 * Pod to its end, leave (always, joined or not); free a connector's
 * watches (at executor free, the runs gone). */
int delegate_kx_watch_join(krun *kr, cep_kube *k, cep_err *err);
void delegate_kx_watch_pod(krun *kr, cep_kube *k);
void delegate_kx_watch_leave(krun *kr);
/* After kr->stop was set, with no lock held: the watcher sees it now. */
void delegate_kx_watch_wake(krun *kr);
void delegate_kx_hubs_free(kconn *kc);
/* executor_kube_op.c: kx->mu held. Starts kr's op thread (kill or undo)
 * when none runs; false if one does (or it could not start). */
bool delegate_kx_start_op(krun *kr, enum kop kind);
/* executor_kube_cleanup.c. stash: remembers where a pod-target run's
 * runner ran (kx->mu held; nothing for API-only runs). node_undo: the
 * op. free_all: joins and frees every cleanup (at executor free). */
void delegate_kx_clean_stash(kube_exec *kx, const krun *kr);
enum cep_exec_state delegate_kx_node_undo(void *impl, const char *run_id,
    const char *recs_json, char **undone, cep_err *err);
void delegate_kx_clean_free_all(kube_exec *kx);

/* executor_kube_place.c: the node of a pod-target run's runner into
 * kr->node (named pods and node targets fix it; label selectors leave a
 * choice among the nodes holding their share), or, for one selector whose
 * share no one node holds, the split across nodes into kr->split. The
 * place table is the pure part: per node, the Running matches of each
 * selector; pick keeps a fixed *node (checking it holds every share) or
 * chooses among the nodes that do, rnd picking one; FAILED_PRECONDITION
 * naming the selector and the count on each node when none does. */
int delegate_kx_resolve_node(krun *kr, cep_kube *k, cep_err *err);
typedef struct kx_place {
	size_t nsel;
	const char *sel[CEP_EXEC_MAX_PODS];
	size_t want[CEP_EXEC_MAX_PODS], total[CEP_EXEC_MAX_PODS];
	size_t nnodes;
	struct kx_place_node *nodes;
} kx_place;
void delegate_kx_place_init(kx_place *p);
int delegate_kx_place_add(kx_place *p, size_t sel, const char *node,
    cep_err *err);
int delegate_kx_place_pick(const kx_place *p, char *node, size_t len,
    uint32_t rnd, cep_err *err);
/* The share of the one selector of p (want[0] of total[0]) chosen
 * uniformly among every match on every node, rnd drawing; *out names
 * each node with its count (> 0), in p's node order, the counts summing
 * to want[0], each at most that node's matches. FAILED_PRECONDITION when
 * the pods fall on more than CEP_EXEC_MAX_SPLIT nodes. */
typedef uint32_t (*kx_rand_fn)(void *arg);
int delegate_kx_place_split(const kx_place *p, kx_rand_fn rnd, void *arg,
    cep_exec_split *out, cep_err *err);
void delegate_kx_place_free(kx_place *p);

/* executor_kube_collect.c: starts one collection thread per connector
 * (delegate_executor_kube_collect); are they all done; waits for them (they
 * check kx->stopping). */
int delegate_kx_collect_start(kube_exec *kx, const cep_exec_place *places,
    size_t nplaces, cep_exec_live_fn live, void *arg, cep_err *err);
bool delegate_kx_collect_done(kube_exec *kx);
void delegate_kx_collect_join(kube_exec *kx);

#endif
