/*
 * demo_kube.h - `cepctl demo --kubernetes`: the demo against the
 * Kubernetes API test server (tests/kubeapi) instead of a local process.
 */
#ifndef CEPCTL_DEMO_KUBE_H
#define CEPCTL_DEMO_KUBE_H

#include <sys/types.h>

#include "cli.h"

/* Runs the Kubernetes demo in home (created, empty) with the cep binaries
 * of bindir. Starts and stops the test server, relay and delegate itself.
 * Returns a cepctl exit code: 0 only when the run passed and no object
 * carrying the cep labels is left. */
int cepctl_demo_kube(cepctl_opts *o, const char *home, const char *bindir);

/* Both demos, once their appliance is started: waits up to wait_ms for
 * the relay (cepctl_admin_wait_relay), submits yaml as name, follows the
 * run to its report. A cepctl exit code; what failed is said on stderr. */
int cepctl_demo_submit_follow(cepctl_opts *o, cepctl_admin *a, const char *yaml,
    const char *name, int wait_ms);

/* Both demos: starts file (a path, or a name looked up in PATH) with
 * argv, stdin /dev/null, output appended to home/log/<logname>.log; it
 * dies with cepctl. The child's pid, -1 if fork failed (errno). */
pid_t cepctl_demo_spawn(const char *file, char *const argv[], const char *home,
    const char *logname);

/* Both demos: initialises home for a demo appliance (its relay on a
 * free loopback port, url gets its URL; no metrics ports) and creates
 * home/log. -1 after saying what failed. */
int cepctl_demo_init_home(const char *home, char *url, size_t len);

/* A loopback TCP port free just now (-1: none), for a demo's listeners. */
int cepctl_demo_free_port(void);

/* Can the demo run here: the test server found (its path in script),
 * root? -1 after saying what is missing. */
int cepctl_demo_kube_ready(char *script, size_t len);

/* Where kubeapi.py is: $CEP_KUBEAPI, else BINDIR/../share/cep/kubeapi
 * (a build tree links it there), else /usr/share/cep/kubeapi/kubeapi.py. false (buf = what was tried)
 * when none exists. */
bool cepctl_demo_kubeapi_path(char *buf, size_t len);

#endif
