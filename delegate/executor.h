/*
 * executor.h - how a runner is started, watched, stopped and cleaned up
 * after. One interface, several backends: local (a child process on the
 * appliance, executor_local.c) and kubernetes (a Secret + a Pod per run in
 * the run's cluster, executor_kube.c; docs/kubernetes.md).
 *
 * Every op is called by the delegate's monitor thread and must return
 * quickly: a backend whose work is slow (network calls) does it on its own
 * threads and reports through poll() and CEP_EXEC_PENDING.
 */
#ifndef CEP_EXECUTOR_H
#define CEP_EXECUTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "run_id.h"

/* What names a launched runner. For local: pid + /proc start time (pid
 * reuse), child = started by this process (reaped with waitpid) or adopted
 * after a restart (polled by pid + start time). */
typedef struct cep_exec_handle {
	cep_run_id run_id; /* launcher: names the run to it */
	int pid;
	int64_t start;
	bool child;
	/* kubernetes: the runner pod (and its Secret, same name), derived from
	 * the run id and the run's spec so that recovery can rebuild it. */
	char pod[64]; /* cep-runner-<run-id> */
	char ns[64];
	char connector[64];
} cep_exec_handle;

/* Pod targets of a kubernetes run's node-level faults (docs/kubernetes.md,
 * "Pod targets"): the runner is placed on their node with the
 * capabilities the faults need. n == 0: an API-only runner. */
#define CEP_EXEC_MAX_PODS 8
typedef struct cep_exec_pods {
	size_t n;
	char pod[CEP_EXEC_MAX_PODS][254];
	char container[CEP_EXEC_MAX_PODS][64]; /* "" = the only one */
	/* pods chosen by the runner, by label selector: pod[i] is "", and
	 * count[i] or percent[i] of the Running matches (the largest asked
	 * when several faults share the selector) */
	char selector[CEP_EXEC_MAX_PODS][1025];
	int64_t count[CEP_EXEC_MAX_PODS], percent[CEP_EXEC_MAX_PODS];
	unsigned caps;  /* CEP_KCAP_* (kube_pod.h) */
	bool cgroupfs;  /* the node's cgroupfs */
	char node[254]; /* node targets (hogs with `node`); "" = none */
	/* hogs with `nodeSelector`: the runner Pod gets it as its
	 * spec.nodeSelector and the scheduler chooses the node; "" = none */
	char node_sel[1025];
	char nodefs[1025]; /* node io-stress: the node's directory */
} cep_exec_pods;

/* A label selector's share that no one node holds, chosen across nodes
 * (docs/kubernetes.md, "Pods by label selector"): the run becomes a
 * parent of one child run per node, node[i] taking count[i] of the
 * matches there (runs_split.h). */
#define CEP_EXEC_MAX_SPLIT 16
typedef struct cep_exec_split {
	size_t n;
	char selector[1025];
	size_t total; /* the pods chosen: the sum of count[] */
	char node[CEP_EXEC_MAX_SPLIT][254];
	uint32_t count[CEP_EXEC_MAX_SPLIT];
} cep_exec_split;

typedef struct cep_exec_launch {
	const char *run_id;
	const char *identity_dir;
	const char *relay_url;   /* what the runner dials */
	const char *server_name; /* optional: name to check in the relay cert */
	const char *log_path;    /* runner stdout/stderr (local only) */
	/* the control-plane fallback (controlPlane.url, caFile, proxy);
	 * cp_url NULL or "" = none. Local: --cp-* flags; kubernetes: the
	 * Secret and the pod's environment (kube_pod.h) */
	const char *cp_url, *cp_ca_file, *cp_proxy;
	/* kubernetes only */
	const char *connector;     /* connectors.d/<connector>.yaml */
	const char *ns;            /* the run's namespace */
	const char *appliance;     /* cep.io/appliance label */
	int64_t not_after_ms;      /* identity expiry: activeDeadlineSeconds */
	const cep_exec_pods *pods; /* NULL or n == 0: no pod target */
	/* launcher only: the run's fault types (distinct), from which the
	 * launcher computes the runner's capabilities (lib/proc/caps.h) */
	const char *const *fault_types;
	size_t nfault_types;
} cep_exec_launch;

/* ALIVE or EXITED. A runner that never started reports EXITED with
 * *what "launch failed: <why>" (an asynchronous launch). */
enum cep_exec_status { CEP_EXEC_ALIVE, CEP_EXEC_EXITED };

/* A run's target as the spec names it: connector and namespace ("" for a
 * host run). */
typedef struct cep_exec_scope {
	char connector[64];
	char ns[64];
} cep_exec_scope;

/* What the relay's grant lets a runner do beyond its spec (the policy's,
 * docs/faults-kubernetes.md, docs/faults-network.md). */
typedef struct cep_exec_grant {
	const char *ns;        /* the only namespace it acts in */
	uint32_t max_targets;  /* objects one Kubernetes fault acts on */
	bool allow_host_netns; /* the runner's second check */
} cep_exec_grant;

/* What undo() and node_undo() answer: DONE (verified), PENDING (the
 * cleanup was started or is still going: call again later - the monitor
 * does on its next tick, the run staying in CLEANUP), or FAILED (the
 * cep_err says what and where). */
enum cep_exec_state { CEP_EXEC_DONE, CEP_EXEC_PENDING, CEP_EXEC_FAILED };

/* For backends: DONE for CEP_OK, else FAILED (err already set). */
enum cep_exec_state delegate_exec_state_of(int rv);
/* For backends that hand the runner's identity on (a Pod's Secret, the
 * launcher): dir's ca.crt, runner.crt and runner.key, all through the one
 * secret reader (lib/base/secret.h; the certificates without its mode
 * rule). Wipe each string with cep_secret_wipe_str. On an error nothing
 * is left allocated. */
int delegate_exec_identity_read(const char *dir, char **ca, char **cert,
    char **key, cep_err *err);

/* Is run_id live (known and not final)? For a backend's start-time
 * collection of what earlier delegates left behind. */
typedef bool (*cep_exec_live_fn)(void *arg, const char *run_id);

typedef struct cep_executor_ops {
	const char *name;
	int (*launch)(void *impl, const cep_exec_launch *l, cep_exec_handle *h,
	    cep_err *err);
	/* ALIVE or EXITED; *what describes the exit ("status 3", "signal 9"). */
	enum cep_exec_status (*poll)(void *impl, const cep_exec_handle *h,
	    char *what, size_t len);
	void (*kill)(void *impl, const cep_exec_handle *h);
	/* Removes everything the run left; DONE only when verified gone,
	 * PENDING while an asynchronous cleanup goes on. */
	enum cep_exec_state (
	    *undo)(void *impl, const char *run_id, cep_err *err);
	/* Optional: takes over a runner an earlier delegate launched (after a
	 * restart), so that poll/kill/undo know it. h comes with run_id,
	 * connector, ns and the journaled pid + start; the backend fills what
	 * it derives from them. CEP_OK: the runner is live and ours again;
	 * an error: it is gone (the run is cleaned up). NULL: a process
	 * runner, live when its pid + start time still are (poll). */
	int (*adopt)(void *impl, cep_exec_handle *h, cep_err *err);
	void (*free)(void *impl);
	/* Optional (kubernetes): undoes node-level fault records (a JSON
	 * array of FaultRecord fields, lib/undo/undo.h cep_undo_on_node) with a
	 * cleanup runner on the node the run's runner ran on. Call after
	 * undo() was DONE (also with "[]": it forgets the run's placement);
	 * PENDING while it runs, then DONE when every record was undone, or
	 * FAILED with an error naming what is left. *undone
	 * (malloc'd JSON array of fault ids, or NULL) lists what the cleanup
	 * runner reported undone, whatever the result. */
	enum cep_exec_state (*node_undo)(void *impl, const char *run_id,
	    const char *recs_json, char **undone, cep_err *err);

	/* What differs between backends beyond the runner's lifecycle; each
	 * optional, NULL = a process on this host (local, launcher). */
	/* Where the runner acts, for its identity URI: the run's (connector,
	 * namespace); default ("local", "host"). */
	void (*place)(const cep_exec_scope *run, cep_exec_scope *out);
	/* The pod targets of a run's spec (placement of the runner);
	 * default none. */
	int (*pods)(const char *spec_yaml, const char *spec_name,
	    cep_exec_pods *pods, cep_err *err);
	/* Names the runner for logs: default "pid 12". */
	void (*describe)(const cep_exec_handle *h, char *buf, size_t len);
	/* The final reason of a run whose runner ended (*what, as poll said)
	 * before a verdict; default "runner exited with <what> before a
	 * verdict". */
	void (*unverdicted)(const char *what, char *buf, size_t len);
	/* Clears the parts of the grant that do not apply to its runners:
	 * default (host) keeps allow_host_netns only. */
	void (*grant)(cep_exec_grant *g);
	/* Optional (kubernetes): after poll said EXITED, was the launch
	 * instead a share split across nodes (no runner was created)?
	 * true and *out filled if so; default false. */
	bool (*split)(void *impl, const char *run_id, cep_exec_split *out);
} cep_executor_ops;

typedef struct cep_executor cep_executor;

/* runner_bin: the cep-runner to exec; runs_dir: <state>/runs, where each
 * run's directory takes its cleanup runner's files (node_undo). */
int delegate_executor_local_new(const char *runner_bin, const char *runs_dir,
    cep_executor **out, cep_err *err);
void delegate_executor_free(cep_executor *ex);

const char *delegate_executor_name(const cep_executor *ex);
int delegate_executor_launch(cep_executor *ex, const cep_exec_launch *l,
    cep_exec_handle *h, cep_err *err);
enum cep_exec_status delegate_executor_poll(cep_executor *ex,
    const cep_exec_handle *h, char *what, size_t len);
void delegate_executor_kill(cep_executor *ex, const cep_exec_handle *h);
enum cep_exec_state delegate_executor_undo(cep_executor *ex, const char *run_id,
    cep_err *err);
int delegate_executor_adopt(cep_executor *ex, cep_exec_handle *h, cep_err *err);
void delegate_executor_place(const cep_executor *ex, const cep_exec_scope *run,
    cep_exec_scope *out);
int delegate_executor_pods(const cep_executor *ex, const char *spec_yaml,
    const char *spec_name, cep_exec_pods *pods, cep_err *err);
void delegate_executor_describe(const cep_executor *ex,
    const cep_exec_handle *h, char *buf, size_t len);
void delegate_executor_unverdicted(const cep_executor *ex, const char *what,
    char *buf, size_t len);
void delegate_executor_grant(const cep_executor *ex, cep_exec_grant *g);
/* ops->split; false for a backend without it. */
bool delegate_executor_split(cep_executor *ex, const char *run_id,
    cep_exec_split *out);
/* ops->node_undo; FAILED (UNIMPLEMENTED) for a backend without it. */
enum cep_exec_state delegate_executor_node_undo(cep_executor *ex,
    const char *run_id, const char *recs_json, char **undone, cep_err *err);

/* For backends: wraps ops + impl; impl back when ex is of those ops. */
cep_executor *delegate_executor_wrap(const cep_executor_ops *ops, void *impl);
void *delegate_executor_impl(cep_executor *ex, const cep_executor_ops *ops);

/* The launcher backend (host runs when privsep.launcher is set): url is
 * the launcher's ipc:// socket. */
int delegate_executor_launcher_new(const char *url, cep_executor **out,
    cep_err *err);

/*
 * The kubernetes backend: one executor for every connector of cs
 * (borrowed; must outlive the executor). A connector's API client is made
 * on its first use and shared by its runs. relay_default: what runners
 * dial when the connector names no relay (relay.advertise).
 */
typedef struct cep_connectors cep_connectors;
int delegate_executor_kube_new(const cep_connectors *cs, const char *appliance,
    const char *relay_default, cep_executor **out, cep_err *err);

/* The API client of a connector (made on first use, shared, owned by the
 * executor): the delegate's own undo of Kubernetes faults uses it. */
typedef struct cep_kube cep_kube;
int delegate_executor_kube_client(cep_executor *ex, const char *connector,
    cep_kube **out, cep_err *err);

/* How long undo() keeps trying before "cleanup incomplete" (default 5
 * min; tests shorten it). */
void delegate_executor_kube_set_undo_limit(cep_executor *ex, int64_t ms);

/* A (connector, namespace) where runner objects may be left. */
typedef struct cep_exec_place {
	char connector[64];
	char ns[64];
} cep_exec_place;

/*
 * Start-time collection, in the background (returns at once): for each
 * connector, lists the pods and secrets labelled managed-by=cep and
 * cep.io/appliance=<appliance> in its exactly named namespaces plus
 * places[] (namespaces known from the journals), and deletes those whose
 * run is not live(arg, run_id). Live runs' objects are left to the
 * adopted runs. A dead cluster delays nothing but its own collection.
 * Joined by delegate_executor_free.
 */
int delegate_executor_kube_collect(cep_executor *ex,
    const cep_exec_place *places, size_t nplaces, cep_exec_live_fn live,
    void *arg, cep_err *err);
/* For tests: has the collection of every connector ended? */
bool delegate_executor_kube_collect_done(cep_executor *ex);

/* local backend helper, also used by tests: counts processes whose
 * command line is a cep-runner with --run-id run_id. */
int delegate_executor_local_count(const char *run_id);

#endif
