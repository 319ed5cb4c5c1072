/*
 * config.h - what an appliance allows: config/cep.yaml of its home
 * (lib/base/paths.h) holds the appliance settings and the blast-radius
 * policy; `cepctl init` writes a commented default.
 */
#ifndef CEP_CONFIG_H
#define CEP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cp.h"
#include "err.h"
#include "paths.h"

#define CEP_POLICY_MAX_RULES 32

typedef struct cep_policy {
	int64_t max_duration_ms; /* default 30m */
	int max_concurrent_runs; /* default 10 */
	int max_cpu_workers;     /* default 2 x cores */
	int max_memory_mib;      /* default 1024 */
	/* disk-fill: how full it may make a filesystem (default 95), and
	 * directories it may never fill (absolute-path globs) */
	int max_disk_fill_percent;
	size_t n_fill_deny;
	char fill_deny[CEP_POLICY_MAX_RULES][128];
	/* host targets: process names / cgroup paths, glob patterns (fnmatch) */
	size_t n_allow, n_deny;
	char allow[CEP_POLICY_MAX_RULES][128];
	char deny[CEP_POLICY_MAX_RULES][128];
	/* kubernetes namespaces experiments may not target, glob patterns */
	size_t n_ns_deny;
	char ns_deny[CEP_POLICY_MAX_RULES][128];
	/* kubernetes: the most objects (pods, nodes) one fault may act on
	 * in one round, whatever the runner's service account allows;
	 * default 10 (policy.kubernetes.maxTargets) */
	int kube_max_targets;
	/* network faults on the host's network namespace (pid 1's, which
	 * is the appliance's own when it runs on the host): refused unless
	 * policy.network.allowHostNetns is true; default false */
	bool allow_host_netns;
} cep_policy;

typedef struct cep_config {
	char appliance[64];     /* names the appliance in identities */
	char relay_listen[256]; /* tls+tcp://0.0.0.0:7443 */
	char relay_advertise
	    [256]; /* what runners dial: tls+tcp://127.0.0.1:7443 */
	/* Prometheus endpoints (docs/metrics.md): "HOST:PORT", HOST an IP
	 * literal or localhost, port 0 = any (written to run/<daemon>.
	 * metrics-port); "" = off. Defaults 127.0.0.1:9464 and :9465. */
	char relay_metrics[64];
	char delegate_metrics[64];
	/* relay.limits: the runners' port against hostile peers (docs/
	 * configuration.md; lib/rpc cep_rpc_limits). 0 = no such limit. */
	struct cep_config_limits {
		int max_conns;                /* maxConnections, default 4096 */
		int max_conns_per_peer;       /* maxConnectionsPerPeer, 1024 */
		int max_handshakes;           /* maxHandshakes, 512 */
		int64_t handshake_timeout_ms; /* handshakeTimeout, 10s */
		int calls_per_sec; /* callsPerSecond (per run identity), 1000 */
		int call_burst;    /* callBurst, 2000 */
		int64_t log_interval_ms; /* logInterval, 10s */
	} relay_limits;
	int64_t runner_margin_ms; /* identity lifetime beyond deadline: 2m */
	int64_t deadman_ms;       /* default dead-man interval: 10s */
	/* delegate.stateReserveMiB: new runs are refused while the state
	 * directory has less free space, so that running runs can still
	 * journal their reverts and final states; default 64 MiB, 0 = off */
	int64_t state_reserve_bytes;
	cep_policy policy;
	/* controlPlane: (docs/control-plane-api.md); url "" = none, the
	 * default. Relative paths are made absolute (the config folder). */
	cep_cp_opts cp;
	/* privsep: (docs/privsep.md) the ipc:// URLs of the signer (holds
	 * the CA key, signs runner identities) and of the launcher (starts
	 * runners with the capabilities their faults need). "" = in the
	 * delegate itself, the default of a home; the installed layout
	 * defaults to CEP_SIGNER_URL and CEP_LAUNCHER_URL. */
	char signer_url[256];
	char launcher_url[256];
	/* delegate.lease: (docs/jump-cluster.md) take control-plane tasks
	 * only while holding this coordination.k8s.io/v1 Lease. name "" =
	 * off, the default; ns "" = the credentials' namespace; kubeconfig
	 * "" = in-cluster (the Pod's service account). */
	struct {
		char ns[64];
		char name[254];
		char kubeconfig[CEP_PATH_MAX];
		int64_t duration_ms; /* default 15s */
	} lease;
} cep_config;

#define CEP_SIGNER_URL "ipc:///run/cep-signer/signer.sock"
#define CEP_LAUNCHER_URL "ipc:///run/cep-launcher/launcher.sock"

/* Loads paths->config/cep.yaml; missing keys take defaults; unknown keys
 * and bad values are errors with file:line:col. */
int cep_config_load(const cep_paths *p, cep_config *cfg, cep_err *err);
/* The same for a text not (yet) in a file: cepctl init checks an edited
 * cep.yaml with it before it replaces the file. fname names it in
 * messages; relative paths resolve against p->config as for the file. */
int cep_config_load_text(const cep_paths *p, const char *text, size_t len,
    const char *fname, cep_config *cfg, cep_err *err);
void cep_config_defaults(cep_config *cfg);
/* The commented default file `cepctl init` writes. */
const char *cep_config_default_yaml(void);

#endif
