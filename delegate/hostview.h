/*
 * hostview.h - what the blast-radius policy (policy.c) needs to know about
 * the host before a run exists: a process's command name, the network
 * namespace a target resolves to, a filesystem's size. The policy decides;
 * a host view only answers.
 *
 * Two backends, one interface (docs/privsep.md "Host facts for the
 * policy"):
 * - direct: the delegate reads /proc, opens the namespace, calls statvfs
 *   itself (a home, privsep.launcher ""; the delegate runs as the
 *   operator and sees what its runners will see);
 * - launcher: cep-launcher's Inspect call (privsep.launcher set). The
 *   installed delegate has no capability, ProtectProc=invisible and its
 *   own mount namespace: it cannot see a root process's /proc, ptrace
 *   into its namespace, or reach a path under ProtectHome. The launcher,
 *   which starts the runners, sees what they will see.
 * Both give the same facts in the same words, so the policy's messages
 * do not depend on the backend.
 */
#ifndef CEP_HOSTVIEW_H
#define CEP_HOSTVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "netns.h"

typedef struct cep_hostview cep_hostview;

typedef struct cep_hostview_fs {
	uint64_t blocks, bavail, frsize; /* statvfs f_blocks, f_bavail, ... */
	char real[4096]; /* pid 0: the path, symlinks resolved; "" unknown */
} cep_hostview_fs;

/* The direct view: stateless, shared; delegate_hostview_free ignores it. */
cep_hostview *delegate_hostview_direct(void);
/* The launcher's view at url (ipc://...). The client dials in the
 * background: creating it never waits for the launcher. */
int delegate_hostview_launcher_new(const char *url, cep_hostview **out,
    cep_err *err);
/* NULL-safe. */
void delegate_hostview_free(cep_hostview *hv);
/* "direct" or "launcher". */
const char *delegate_hostview_name(const cep_hostview *hv);

/* A process: CEP_OK with its command name (/proc/PID/comm); CEP_NOT_FOUND
 * when it does not exist; anything else: the view could not be asked. */
int delegate_hostview_comm(cep_hostview *hv, int64_t pid, char *comm,
    size_t len, cep_err *err);
/* A network target as cep_netns_open resolves it (pid > 0: the pid's,
 * else netns: a name under /run/netns or an absolute path): CEP_OK with
 * its identity and whether it is the host's (pid 1's or the appliance's
 * own: the delegate's, and with the launcher backend the launcher's too);
 * else err says why not. */
int delegate_hostview_netns(cep_hostview *hv, int64_t pid, const char *netns,
    cep_netns_id *id, bool *is_host, cep_err *err);
/* The filesystem of path (absolute; under the root of pid when pid > 0):
 * CEP_OK with its figures; else err's message is what failed (the
 * system's words for an errno, or why the view could not be asked). */
int delegate_hostview_fs_of(cep_hostview *hv, int64_t pid, const char *path,
    cep_hostview_fs *fs, cep_err *err);

#endif
