/*
 * cli.h - cepctl, the operator's CLI: shared pieces of its commands.
 *
 * Every command takes --home DIR (or $CEP_HOME); without either the
 * installed FHS layout is used. Commands talk to the delegate's Admin
 * service on <run>/admin.sock; `validate` and `init` work offline.
 * Exit codes: 0 success / experiment passed, 1 experiment failed (or an
 * invalid file for validate), 2 error.
 */
#ifndef CEPCTL_CLI_H
#define CEPCTL_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "cep.pb-c.h"
#include "config.h"
#include "err.h"
#include "rpc.h"
#include "run_id.h"
#include "runstate.h"

enum { CEPCTL_OK = 0, CEPCTL_FAIL = 1, CEPCTL_ERROR = 2 };

enum cepctl_output { CEPCTL_OUT_TEXT, CEPCTL_OUT_JSON, CEPCTL_OUT_JUNIT };

typedef struct cepctl_opts {
	const char *home;          /* --home, NULL = $CEP_HOME or FHS */
	enum cepctl_output output; /* --output */
	bool quiet;                /* no live progress */
	bool follow;               /* logs --follow */
	bool color;                /* stdout is a terminal */
	const char *report_html;   /* run --report FILE: the HTML report */
	const char *spec_yaml;     /* with it: the experiment submitted */
} cepctl_opts;

/* A connection to the delegate's Admin service. */
typedef struct cepctl_admin cepctl_admin;
int cepctl_admin_open(const cepctl_opts *o, cepctl_admin **out, cep_err *err);
void cepctl_admin_close(cepctl_admin *a);
/* One Admin call with a short retry while the delegate starts up;
 * the method name without the service prefix ("Submit"). */
int cepctl_admin_call(cepctl_admin *a, const char *method,
    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
    ProtobufCMessage **reply, int timeout_ms, cep_err *err);
/* Admin/Submit of an experiment (name: for messages); the new run's id
 * into *run_id (a reply without a valid run id is CEP_INTERNAL). */
int cepctl_admin_submit(cepctl_admin *a, const char *yaml, const char *name,
    cep_run_id *run_id, cep_err *err);
/* Waits up to timeout_ms until the delegate answers Status with the relay
 * reachable (a freshly started appliance). CEP_OK, or CEP_UNAVAILABLE. */
int cepctl_admin_wait_relay(cepctl_admin *a, int timeout_ms, cep_err *err);

/* Commands: argc/argv after the command name. */
int cepctl_cmd_init(const cepctl_opts *o, int argc, char **argv);
int cepctl_cmd_validate(const cepctl_opts *o, int argc, char **argv);
/* a Litmus ChaosEngine as the native experiment: cmd_convert.c */
int cepctl_cmd_convert(const cepctl_opts *o, int argc, char **argv);
int cepctl_cmd_run(const cepctl_opts *o, int argc, char **argv);
int cepctl_cmd_runs(const cepctl_opts *o, int argc, char **argv);
int cepctl_cmd_show(const cepctl_opts *o, int argc, char **argv);
int cepctl_cmd_logs(const cepctl_opts *o, int argc, char **argv);
int cepctl_cmd_abort(const cepctl_opts *o, int argc, char **argv);
int cepctl_cmd_status(const cepctl_opts *o, int argc, char **argv);
/* a past run's report from its journal: cmd_report.c */
int cepctl_cmd_report(const cepctl_opts *o, int argc, char **argv);
int cepctl_cmd_demo(const cepctl_opts *o, int argc, char **argv);
/* a first boot's configuration from a seed folder: cmd_seed.c */
int cepctl_cmd_seed(const cepctl_opts *o, int argc, char **argv);
/* Kubernetes: cmd_kube.c (offline from the delegate) */
int cepctl_cmd_connectors(const cepctl_opts *o, int argc, char **argv);
int cepctl_cmd_rbac(const cepctl_opts *o, int argc, char **argv);
int cepctl_cmd_check(const cepctl_opts *o, int argc, char **argv);
/* hidden helpers the demo runs as child processes */
int cepctl_cmd_demo_web(int argc, char **argv);
int cepctl_cmd_demo_supervise(int argc, char **argv);

/* Follows a run until it is final, printing progress (unless quiet) to
 * `progress`, then renders the report to stdout (and the HTML report to
 * o->report_html if set). Returns the exit code
 * for the run's outcome. Ctrl-C aborts the run and keeps following. */
int cepctl_follow_and_report(const cepctl_opts *o, cepctl_admin *a,
    const char *run_id, FILE *progress);

/* Exit code for a final run state. */
int cepctl_exit_for_state(int state);

/* `cepctl init` as a function: the demo and tests build homes with it. */
/* The init options: NULL = the default (cep_config_defaults). metrics
 * addresses: "" disables, "127.0.0.1:0" picks a free port (tests, demos). */
/* An existing CA: refused (cepctl init), kept (the demo reusing --keep
 * DIR), or replaced with a new CA and relay certificate (--force). */
enum cepctl_ca_mode { CEPCTL_CA_REFUSE = 0, CEPCTL_CA_KEEP, CEPCTL_CA_REPLACE };
typedef struct cepctl_init_opts {
	const char *appliance, *listen, *advertise;
	const char *relay_metrics, *delegate_metrics;
	/* controlPlane.url, caFile, tokenFile, proxy (docs/configuration.md) */
	const char *cp_url, *cp_ca, *cp_token, *cp_proxy;
	enum cepctl_ca_mode ca;
	/* nothing at all if the CA key exists (cep-firstboot.service) */
	bool first_boot;
	/* an existing cep.yaml: replace a value it has for a setting given,
	 * instead of refusing (--replace-config-keys, cfg_edit.h) */
	bool replace_config_keys;
} cepctl_init_opts;
/* What init did, for its one-line report. */
typedef struct cepctl_init_result {
	bool nothing; /* first boot, the CA exists */
	bool config_created, ca_created, ca_replaced, relay_issued;
	/* an existing cep.yaml and settings given: the keys added to it
	 * and those replaced ("" = none); credentials copied (installed) */
	bool config_checked, credentials_placed;
	char config_added[512], config_changed[512];
	char fingerprint[128]; /* SHA-256 of the CA certificate */
	char pki[CEP_PATH_MAX];
} cepctl_init_result;
int cepctl_init_run(const char *home, const cepctl_init_opts *io,
    cepctl_init_result *res, cep_err *err);
int cepctl_init_home(const char *home, const cepctl_init_opts *io,
    cep_err *err);

/* Program directory (of /proc/self/exe), for finding cep-relay & co. */
int cepctl_bindir(char *buf, size_t len, cep_err *err);

#endif
