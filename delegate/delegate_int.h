/*
 * delegate_int.h - what the delegate's files share: the run table, the
 * delegate object, and the functions one file offers the others. Not for
 * use outside delegate/ (tests use delegate.h and the RPC services).
 *
 * Locking: one mutex (d->mu) guards the run table and every run. Journal
 * appends happen under it (they are short; fsync at state changes only).
 * Slow work - minting keys, fork/exec, undo, relay calls - is done by the
 * monitor and relay-link threads outside the lock.
 */
#ifndef CEP_DELEGATE_INT_H
#define CEP_DELEGATE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cep.pb-c.h"
#include "runstate.h"
#include "config.h"
#include "connector.h"
#include "delegate.h"
#include "executor.h"
#include "hostview.h"
#include "journal.h"
#include "metrics.h"
#include "pki.h"
#include "rpc.h"
#include "signer.h"

#define CEP_RUN_SETUP_MS 60000  /* deadline = now + duration + this */
#define CEP_ABORT_GRACE_MS 5000 /* abort -> kill + undo */
#define CEP_ABORT_RESEND_MS 2000
#define CEP_SYNC_EVERY_MS 1000
#define CEP_RUN_MAX_EVENTS 100000 /* per run; a flood is refused */
#define CEP_RUN_MAX_FAULTS 256
/* Bytes each run's journal keeps allocated past its end for the records
 * that must land on a full disk: reverts and final states (disk.c). */
#define CEP_RUN_JOURNAL_RESERVE (64u * 1024u)
#define CEP_FINISHED_KEEP 256 /* finished ids told to the relay */
#define CEP_EVENT_MAX_TEXT 65536
#define CEP_EVENT_MAX_BYTES (80u * 1024u)             /* one packed event */
#define CEP_RUN_MAX_EVENT_BYTES (64u * 1024u * 1024u) /* all of a run's */

typedef struct cep_run_fault {
	Cep__V1__FaultRecord *rec; /* owned copy */
	int64_t injected_ms, reverted_ms;
	char reverted_by[16]; /* runner, delegate */
} cep_run_fault;

/* A child run of a parent whose selector share was split across nodes
 * (runs_split.c). */
typedef struct cep_run_child {
	cep_run_id id;
	char node[254];
	uint32_t count;
} cep_run_child;

typedef struct cep_run {
	cep_run_id id;
	char name[128];
	char spec_name[256];
	char task_id[64];                 /* control-plane task, "" if none */
	Cep__V1__RunState reported_state; /* last told the control plane */
	char *spec_yaml;
	Cep__V1__RunState state;
	char reason[512];
	int64_t created_ms, ended_ms, deadline_ms, not_after_ms, deadman_ms;
	char verdict[16];
	char verdict_reason[256];
	double score;
	char identity_uri[256];
	uint64_t last_seq;
	Cep__V1__Event **events; /* owned copies, seq 1..nevents */
	size_t nevents, events_cap;
	size_t event_bytes; /* packed size of events[] */
	cep_run_fault *faults;
	size_t nfaults;
	cep_journal *j; /* NULL once final (read-only) */
	cep_exec_handle h;
	bool has_runner; /* h names a launched runner */
	bool aborting;
	int64_t abort_mono, abort_sent_mono;
	char abort_reason[256];
	bool killed;
	bool launch_failed; /* exit_what holds why */
	bool orphan;        /* recovered, runner gone: clean up */
	bool cleaning;      /* CLEANUP: undo in progress, retry */
	/* The target, from the spec (delegate_run_load_target). */
	bool target_known;
	bool kube; /* kind kubernetes: d->kex runs it;
	                                * read by delegate_run_executor only */
	char connector[64];
	char ns[64];
	char exit_what[640];
	/* A split (runs_split.c): a parent runs no runner, its children
	 * each one, on node; both from the journal. */
	bool split;
	cep_run_child *children;
	size_t nchildren;
	char parent[sizeof(cep_run_id)]; /* a child: its parent's id */
	char node[254];                  /* a child: where its runner goes */
	struct cep_run *next;            /* newest first */
} cep_run;

/* What the run table announces to its subscribers (delegate_run_subscribe):
 * CHANGED after every change (a run's state, an abort), EVENTS when a run
 * has new events (for parked Follow calls: the monitor and the links have
 * nothing to do for them), TIME on each monitor turn for those whose
 * answers fall due with time (parked Follow calls). */
enum cep_run_news {
	CEP_RUN_NEWS_CHANGED,
	CEP_RUN_NEWS_TIME,
	CEP_RUN_NEWS_EVENTS
};
typedef void (
    *cep_run_listener)(cep_delegate *d, enum cep_run_news news, void *arg);
#define CEP_RUN_MAX_LISTENERS 4

typedef struct cep_parked {
	cep_rpc_call *call;
	cep_run_id run_id;
	uint64_t after_seq;
	uint32_t max;
	int64_t reply_by_mono;
	struct cep_parked *next;
} cep_parked;

struct cep_delegate {
	cep_paths paths;
	cep_config cfg;
	cep_signer *signer;    /* the CA: in-process or cep-signer */
	cep_executor *ex;      /* local: host targets */
	cep_hostview *hv;      /* the policy's facts about the host */
	cep_executor *kex;     /* kubernetes: every connector */
	cep_connectors *conns; /* connectors.d, read at start */
	char runs_dir[4096];
	int64_t started_ms;

	pthread_mutex_t mu;
	pthread_cond_t mon_cv, relay_cv;
	cep_run *runs;
	size_t nruns;
	cep_parked *parked;
	char finished[CEP_FINISHED_KEEP][24];
	size_t nfinished, finished_next;
	bool stopping;                 /* threads end */
	bool draining;                 /* delegate_stop: no new runs */
	uint64_t sync_gen, synced_gen; /* sync_gen: the table's changes */
	/* runs.c calls these on news and calls nothing else above it */
	struct {
		cep_run_listener fn;
		void *arg;
	} listeners[CEP_RUN_MAX_LISTENERS];
	size_t nlisteners;
	bool relay_ok;

	pthread_t monitor, relay_thr;
	bool monitor_started, relay_started;
	_Atomic uint64_t mon_ticks; /* monitor turns: the watchdog's liveness */
	cep_rpc_client *relay;
	cep_rpc_server *admin_srv, *deleg_srv;
	struct cep_cp_link *cpl; /* cp_link.c; NULL without a plane */
	struct cep_lease *lease; /* lease.c; NULL without delegate.lease */

	/* Prometheus (docs/metrics.md); served by main.c */
	cep_metrics *metrics;
	cep_metric *m_active, *m_runs, *m_launches, *m_launch_fail, *m_events;

	/* disk.c: the state directory running out of space */
	struct {
		bool full; /* the last append failed for want of space */
		int64_t logged_mono; /* last "is full" log line */
		uint64_t failed;     /* appends refused in this episode */
		cep_metric *m_errors, *m_full, *m_free;
	} disk;
};

/* runs.c: the table and the changes that journal (d->mu held). */
cep_run *delegate_run_find(cep_delegate *d, const char *id);
size_t delegate_run_active_count(cep_delegate *d);
cep_run *delegate_run_alloc(void);
void delegate_run_free(cep_run *r);
void delegate_run_insert(cep_delegate *d, cep_run *r);
/* Appends rec to r's journal; a failure is counted and logged by disk.c. */
int delegate_run_journal(cep_delegate *d, cep_run *r,
    Cep__V1__JournalRecord *rec, bool sync, cep_err *err);
void delegate_run_set_state(cep_delegate *d, cep_run *r, Cep__V1__RunState st,
    const char *reason);
/* The same without the fsync for a state that is not final: the caller
 * syncs the journal (cep_journal_sync, after d->mu is released) before it
 * answers anyone outside the process. */
void delegate_run_set_state_nosync(cep_delegate *d, cep_run *r,
    Cep__V1__RunState st, const char *reason);
/* evs[0..n) as event records in one write, without fsync (the caller
 * syncs: cep_journal_sync), then added to the run. */
int delegate_run_journal_events(cep_delegate *d, cep_run *r,
    Cep__V1__Event *const *evs, size_t n, cep_err *err);
int delegate_run_add_event(cep_run *r, const Cep__V1__Event *ev);
enum cep_run_fault_add {
	CEP_RUN_FAULT_ADDED,
	CEP_RUN_FAULT_KNOWN,   /* its fault id was recorded before */
	CEP_RUN_FAULT_NO_ROOM, /* CEP_RUN_MAX_FAULTS, or no memory */
};
enum cep_run_fault_add delegate_run_add_fault(cep_run *r,
    const Cep__V1__FaultRecord *rec, int64_t when);
void delegate_run_mark_reverted(cep_run *r, const char *fault_id, int64_t when,
    const char *by);
void delegate_run_finished(cep_delegate *d, cep_run *r);
void delegate_run_request_abort(cep_delegate *d, cep_run *r,
    const char *reason);
int delegate_run_dir(cep_delegate *d, const char *id, const char *sub,
    char *buf, size_t len, cep_err *err);
/* Bumps the change counter (d->sync_gen) and tells every listener. */
void delegate_changed(cep_delegate *d);
/* A run has new events: EVENTS news, not CHANGED. Nothing the relay is
 * granted changed (no SyncRuns of every run's grant) and the monitor has
 * nothing to do (no scan of every run). Before, every batch of every
 * runner did both. */
void delegate_events_added(cep_delegate *d);
/* Tells every listener that time passed (the monitor's turn). */
void delegate_run_announce_time(cep_delegate *d);
/* Fills r's target fields from its spec (once). */
void delegate_run_load_target(cep_run *r);
/* The executor that runs r: d->kex for kubernetes targets, else d->ex. */
cep_executor *delegate_run_executor(cep_delegate *d, cep_run *r);
/* Where r's runner acts (its identity URI), as its executor says. */
void delegate_run_place(cep_delegate *d, cep_run *r, cep_exec_scope *out);
/* Subscribes fn(d, news, arg), called with d->mu held; before the
 * threads start (setup). CEP_RESOURCE_EXHAUSTED when the table is full. */
int delegate_run_subscribe(cep_delegate *d, cep_run_listener fn, void *arg,
    cep_err *err);

/* disk.c: the reserve of free space new runs leave, and the disk-full
 * state (d->mu held). */
void delegate_disk_init(cep_delegate *d, cep_metrics *m);
void delegate_disk_collect(cep_delegate *d);
/* RESOURCE_EXHAUSTED, naming the state directory and the space a new run
 * needs, while it has less free space than delegate.stateReserveMiB. */
int delegate_disk_room(cep_delegate *d, cep_err *err);
/* The result of one journal append (errnum: cep_journal_last_errno). */
void delegate_disk_note(cep_delegate *d, cep_run *r, int rv, int errnum,
    const cep_err *err);
/* Before records that may be refused (events, a new fault): bytes for
 * them plus CEP_RUN_JOURNAL_RESERVE allocated past the journal's end, or
 * RESOURCE_EXHAUSTED and nothing written. */
int delegate_disk_reserve(cep_delegate *d, cep_run *r, size_t bytes,
    cep_err *err);

/* runs_submit.c */
/* task_id NULL or "": a run of its own (cepctl). A task id already held
 * by a run answers that run's id: one run per task, ever. */
int delegate_submit(cep_delegate *d, const char *yaml, size_t len,
    const char *spec_name, const char *task_id, cep_run_id *run_id,
    cep_err *err);
/* The run carrying task_id, or NULL (d->mu held). */
cep_run *delegate_run_find_task(cep_delegate *d, const char *task_id);
/* d->mu held: a child run of parent, yaml its experiment, its runner on
 * node; not held to policy.maxActiveRuns (the parent was, and was checked
 * as a whole: runs_split.c). */
int delegate_submit_child(cep_delegate *d, const cep_run *parent,
    const char *yaml, const char *node, cep_run_id *run_id, cep_err *err);

/* runs_split.c: a selector share split across nodes (docs/kubernetes.md,
 * "Pods by label selector"). d->mu held. start: the parent r, whose
 * launch ended in sp, becomes a parent of one child per node (policy
 * first; journaled); an error leaves no child. tick: passes an abort on
 * to the children; true when every child is final, r's verdict then set
 * to the worst of theirs. */
int delegate_split_start(cep_delegate *d, cep_run *r, const cep_exec_split *sp,
    cep_err *err);
bool delegate_split_tick(cep_delegate *d, cep_run *r);
/* The worst of the children's final states (FAILED > ABORTED, ERROR >
 * PASSED) as a verdict, for tests: which child decides. */
size_t delegate_split_worst(const Cep__V1__RunState *st, size_t n);

/* run_info.c: RunInfo views pointing into a run (d->mu held while used). */
typedef struct cep_run_view {
	Cep__V1__RunInfo info;
	Cep__V1__FaultInfo *fi;
	Cep__V1__FaultInfo **fip;
	Cep__V1__RunChild *ch; /* a parent's children */
	Cep__V1__RunChild **chp;
} cep_run_view;
void delegate_run_view_init(cep_run_view *v, const cep_run *r);
void delegate_run_view_fini(cep_run_view *v);

/* monitor_undo.c: undoes each fault of r recorded but not reverted and
 * journals it (d->mu held, dropped while undoing); node-level faults go
 * to a cleanup runner through the executor first: PENDING while it runs
 * (call again), FAILED with *uerr naming the first fault left. */
enum cep_exec_state delegate_undo_faults(cep_delegate *d, cep_run *r,
    cep_err *uerr);

/* monitor.c */
int delegate_monitor_start(cep_delegate *d, cep_err *err);
void delegate_monitor_join(cep_delegate *d);

/* relay_link.c */
int delegate_relay_link_start(cep_delegate *d, cep_err *err);
void delegate_relay_link_join(cep_delegate *d);
int delegate_service_start(cep_delegate *d, cep_err *err);
/* Waits (d->mu held) until the relay holds generation gen, or timeout. */
bool delegate_relay_wait_synced(cep_delegate *d, uint64_t gen,
    int64_t timeout_ms);

/* cp_link.c: the control plane (controlPlane.url), if configured */
int delegate_cp_link_start(cep_delegate *d, cep_err *err);
void delegate_cp_link_join(cep_delegate *d);
/* For Admin/Status (d->mu held); st points into the link: reply and drop
 * it under the lock. Empty when no control plane is configured. */
void delegate_cp_link_status(cep_delegate *d, Cep__V1__ControlPlaneStatus *st);

/* lease.c: leader election (delegate.lease), if configured. Start before
 * delegate_cp_link_start; join after delegate_cp_link_join (gives the Lease up). */
int delegate_lease_start(cep_delegate *d, cep_err *err);
void delegate_lease_join(cep_delegate *d);
/* d->mu held: may tasks be taken now? (always, without a Lease) */
bool delegate_lease_may_take(cep_delegate *d);
/* d->mu held: a PollTasks wait that ends while the Lease is still ours. */
int64_t delegate_lease_cap_wait(cep_delegate *d, int64_t wait_ms);

/* admin.c */
/* Serves Admin and subscribes its parked Follow calls to the run table. */
int delegate_admin_start(cep_delegate *d, cep_err *err);

/* recover.c */
int delegate_recover(cep_delegate *d, cep_err *err);
/* Starts the background collection of leftover runner objects (after
 * delegate_recover; never waits for a cluster). */
int delegate_recover_collect(cep_delegate *d, cep_err *err);

#endif
