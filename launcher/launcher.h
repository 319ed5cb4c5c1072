/*
 * launcher.h - cep-launcher: the one privileged process of the appliance
 * (docs/privsep.md). It starts host runners with exactly the Linux
 * capabilities their faults need (lib/proc/caps.h), watches, signals and kills
 * them, and runs cleanup runners for what a dead runner left on the node.
 * It also answers read-only facts about the host for the delegate's policy
 * (Inspect: a pid's comm, a netns identity, a filesystem's size), which
 * the unprivileged delegate cannot read itself.
 * It serves the Launcher service (proto/cep.proto, "privsep: launcher")
 * on an ipc socket to one peer uid (the delegate's), and never runs a
 * command, a path or a capability it was given: the runner is its own
 * configured binary, the flags are fixed, the capabilities are computed
 * from the fault types through the table, unknown types are refused.
 */
#ifndef CEP_LAUNCHER_H
#define CEP_LAUNCHER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cep.pb-c.h"
#include "err.h"

typedef struct cep_launcher cep_launcher;

typedef struct cep_launcher_opts {
	const char *url;        /* ipc:// to serve */
	const char *runner_bin; /* the cep-runner it starts (absolute) */
	const char *runs_dir;   /* <runs>/<run-id>/: identity, logs (0700) */
	uid_t allow_uid;        /* the only peer uid served */
	int64_t stop_wait_ms;   /* SIGTERM -> SIGKILL at stop; 0 = 10 s */
	/* false (tests as non-root): start runners without touching the
	 * capability sets (they get none anyway) */
	bool set_caps;
} cep_launcher_opts;

/* Serves at once; adopts the runners a previous launcher left (found in
 * /proc by command line, polled by pid + start time). */
int launcher_new(const cep_launcher_opts *o, cep_launcher **out, cep_err *err);
/* The graceful stop: SIGTERM to every runner (they revert), up to
 * stop_wait_ms for them to exit, then SIGKILL. */
void launcher_stop(cep_launcher *l);
/* Stops serving, frees. NULL-safe. */
void launcher_free(cep_launcher *l);
/* Runs it knows (started or adopted) and not yet undone. */
size_t launcher_nruns(cep_launcher *l);

/* ---- request checks (check.c), each naming the field it refuses ---- */

#define CEP_LAUNCHER_MAX_FAULTS 64
#define CEP_LAUNCHER_MAX_PEM (64 * 1024)
#define CEP_LAUNCHER_MAX_URL 512
#define CEP_LAUNCHER_MAX_RECS (256 * 1024)

/* Every field of a Launch; *caps: the union of its fault types'. */
int launcher_check_launch(const Cep__V1__LaunchRequest *r, unsigned *caps,
    cep_err *err);
/* A Cleanup's records: a JSON array (at most 64) of objects of run_id
 * whose mechanisms are node mechanisms; *caps: their union. */
int launcher_check_cleanup(const Cep__V1__LauncherCleanup *r, unsigned *caps,
    cep_err *err);

/* ---- host facts for the delegate's policy (inspect.c) ---- */

#define CEP_LAUNCHER_MAX_PATH 4095   /* PATH_MAX less its NUL */
#define CEP_LAUNCHER_MAX_PID 4194304 /* the kernel's PID_MAX_LIMIT */

/* An Inspect: pid 0 or 1..CEP_LAUNCHER_MAX_PID; netns_name only without
 * a pid and only when netns is asked, a name under /run/netns (no '/',
 * not "." or "..", <= 255 bytes) or an absolute path; path "" or
 * absolute; both without NUL and at most CEP_LAUNCHER_MAX_PATH bytes. */
int launcher_check_inspect(const Cep__V1__LauncherInspect *q, cep_err *err);

/* The reply and the storage its strings point into. */
typedef struct cep_launcher_facts {
	Cep__V1__LauncherFacts rep;
	char comm[64], netns_error[512];
	char real_path[CEP_LAUNCHER_MAX_PATH + 1];
} cep_launcher_facts;

/* Reads the facts a checked request asks for; each that cannot be read
 * says why in its own field (netns_error, path_errno, exists false).
 * Opens nothing for writing, follows nothing out of a pid's root. */
void launcher_inspect(const Cep__V1__LauncherInspect *q, cep_launcher_facts *f);

/* path resolved under root (an O_PATH directory fd) as openat2 with
 * RESOLVE_IN_ROOT would, for where openat2 is missing: component by
 * component, O_PATH|O_NOFOLLOW, ".." never above root, symlinks read as
 * text and resolved in root (at most 40). An O_PATH fd, or -1 with
 * errno. */
int launcher_walk(int root, const char *path);

/* ---- the runner's privileges (privs.c) ---- */

/* What a child needs to set its capabilities before execv: computed in
 * the parent (it reads /proc), applied in the child (async-signal-safe). */
typedef struct cep_launcher_privs {
	uint64_t mask; /* CAP_x bits (cep_caps_linux_mask) */
	int last_cap;  /* /proc/sys/kernel/cap_last_cap */
	bool set_caps;
} cep_launcher_privs;

int launcher_privs_init(cep_launcher_privs *p, unsigned caps, bool set_caps,
    cep_err *err);
/* forkexec.h pre_exec: gid 0 and no supplementary groups, every
 * capability outside mask dropped from the bounding set, permitted =
 * effective = inheritable = ambient = mask, PR_SET_NO_NEW_PRIVS. */
int launcher_privs_apply(void *arg);

#endif
