/*
 * relay_app.h - bench_relay's appliance: a scratch home made by `cepctl
 * init`, the real cep-relay and cep-delegate started in it, the admin and
 * delegate sockets, the stand-in runner processes the delegate launches,
 * /proc figures and the journal accounting. Test code (tests/bench/).
 */
#ifndef BENCH_RELAY_APP_H
#define BENCH_RELAY_APP_H

#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "rpc.h"

/* The stand-in runner: the delegate execs CEP_RUNNER_BIN = bench_relay
 * with the runner's arguments; with this variable set (a folder) it writes
 * <folder>/<run-id> holding its --identity folder and sleeps until the
 * delegate (its parent) kills it or exits. */
#define BAPP_STUB_ENV "CEP_BENCH_STUBS"

typedef struct bapp {
	char home[256];
	char bindir[2048];
	char self[2048]; /* this executable: the stand-in runner */
	char stubs[300];
	char url[64]; /* the relay's runner listener */
	pid_t relay, delegate;
	cep_rpc_client *admin; /* <run>/admin.sock */
	cep_rpc_client *dlg;   /* <run>/delegate.sock: the direct path */
	char state[2048];      /* <home>/state: runs/<id>/journal */
} bapp;

typedef struct bproc {
	long rss_kib, threads, fds;
	double cpu_s; /* user + system */
} bproc;

/* Stand-in runner mode when argv is a runner's and BAPP_STUB_ENV is set:
 * never returns then. Returns otherwise. */
void bapp_stub_main(int argc, char **argv);

/* A fresh home under /tmp (removed by bapp_stop) made by `cepctl init`
 * of bindir, policy.maxConcurrentRuns = max_runs. */
int bapp_init(bapp *a, const char *bindir, int max_runs, cep_err *err);
/* Starts cep-relay / cep-delegate (the delegate with the stand-in runner)
 * and waits until the delegate says the relay is up. */
int bapp_start_all(bapp *a, cep_err *err);
int bapp_start_relay(bapp *a, cep_err *err);
void bapp_kill9_relay(bapp *a);
/* Submits a host run (no faults, no probes, 30m): *run_id. */
int bapp_submit(bapp *a, char *run_id, size_t len, cep_err *err);
/* Waits for the run's stand-in runner and returns its identity folder. */
int bapp_identity_dir(bapp *a, const char *run_id, char *dir, size_t len,
    int timeout_ms, cep_err *err);
/* Delegate/ControlCommand ABORT_ALL (the control plane's abort): every
 * active run at once. */
int bapp_abort_all(bapp *a, cep_err *err);
/* Reads the run's journal on disk: *lost = seqs 1..acked not journalled,
 * *dups = seqs journalled more than once, *events = event records. */
int bapp_journal_check(bapp *a, const char *run_id, uint64_t acked,
    uint64_t *lost, uint64_t *dups, uint64_t *events, cep_err *err);
/* Unless keep, closes the sockets first; SIGTERM to both daemons, waits;
 * unless keep, removes the home (kept: sockets and home are left, for a
 * look and to the exit - a stuck nng dialer can make closing hang). */
void bapp_stop(bapp *a, int keep);

int bproc_read(pid_t pid, bproc *out);
int64_t bapp_now_us(void);

#endif
