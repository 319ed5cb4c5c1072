/*
 * config.c - config/cep.yaml (appliance settings and the blast-radius
 * policy) of an appliance's home (lib/base/paths.c).
 *
 * The file is optional: every key has a default, so a fresh home works and
 * `cepctl init` only writes the commented defaults for operators to edit.
 * Whatever is in the file is strict: an unknown key or a bad value stops
 * the daemon with file:line:col, because a typo in a policy must not
 * silently widen what experiments may do. The format is documented in
 * docs/configuration.md.
 */
#define _GNU_SOURCE
#include "config.h"
#include "config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "metrics.h"
#include "files.h"
#include "yamldoc.h"
#include "yamlget.h"

/* ---- defaults ---- */

static const char *const default_deny[] = {"cep-*", "systemd*", "init", "sshd",
    "dbus-daemon", "journald", "kubelet", "containerd*", "dockerd", NULL};
static const char *const default_ns_deny[] = {"kube-system", "cep-system",
    NULL};

/* System directories: filling them breaks the host, not the target. */
static const char *const default_fill_deny[] = {"/", "/bin*", "/boot*", "/dev*",
    "/etc*", "/lib*", "/proc*", "/run*", "/sbin*", "/sys*", "/usr*",
    "/var/lib*", NULL};
static size_t fill_rules(char rules[][128], const char *const *src)
{
	size_t n = 0;
	for (; src[n] != NULL && n < CEP_POLICY_MAX_RULES; n++)
		snprintf(rules[n], 128, "%s", src[n]);
	return n;
}

/* The host name as an appliance name: first label, lowercase, [a-z0-9-]. */
static void default_appliance(char *buf, size_t len)
{
	char host[256] = "";
	size_t o = 0;
	if (gethostname(host, sizeof(host) - 1) != 0)
		host[0] = '\0';
	for (size_t i = 0;
	     host[i] != '\0' && host[i] != '.' && o + 1 < len && o < 63; i++) {
		char c = host[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-')
			buf[o++] = c;
	}
	buf[o] = '\0';
	if (o == 0)
		snprintf(buf, len, "cep");
}

void cep_config_defaults(cep_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	default_appliance(cfg->appliance, sizeof(cfg->appliance));
	snprintf(cfg->relay_listen, sizeof(cfg->relay_listen),
	    "tls+tcp://0.0.0.0:7443");
	snprintf(cfg->relay_advertise, sizeof(cfg->relay_advertise),
	    "tls+tcp://127.0.0.1:7443");
	snprintf(cfg->relay_metrics, sizeof(cfg->relay_metrics),
	    "127.0.0.1:9464");
	snprintf(cfg->delegate_metrics, sizeof(cfg->delegate_metrics),
	    "127.0.0.1:9465");
	cfg->relay_limits.max_conns = 4096;
	cfg->relay_limits.max_conns_per_peer = 2048;
	cfg->relay_limits.max_handshakes = 1024;
	cfg->relay_limits.handshake_timeout_ms = 10 * 1000;
	cfg->relay_limits.calls_per_sec = 1000;
	cfg->relay_limits.call_burst = 2000;
	cfg->relay_limits.log_interval_ms = 10 * 1000;
	cfg->runner_margin_ms = 2 * 60 * 1000;
	cfg->deadman_ms = 10 * 1000;
	cfg->state_reserve_bytes = 64LL << 20;
	cep_policy *pol = &cfg->policy;
	pol->max_duration_ms = 30 * 60 * 1000;
	pol->max_concurrent_runs = 10;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	pol->max_cpu_workers = cpus > 0 && cpus < 512 ? 2 * (int)cpus : 2;
	pol->max_memory_mib = 1024;
	pol->max_disk_fill_percent = 95;
	pol->n_fill_deny = fill_rules(pol->fill_deny, default_fill_deny);
	snprintf(pol->allow[0], sizeof(pol->allow[0]), "*");
	pol->n_allow = 1;
	pol->n_deny = fill_rules(pol->deny, default_deny);
	pol->n_ns_deny = fill_rules(pol->ns_deny, default_ns_deny);
	pol->kube_max_targets = 10;
	pol->allow_host_netns = false;
	cep_cp_opts_defaults(&cfg->cp);
	cfg->lease.duration_ms = 15 * 1000;
}

/* Loads to exactly cep_config_defaults() (test_config checks it). */
static const char default_yaml[] =
    "# cep appliance configuration (docs/configuration.md).\n"
    "# Every key is optional; commented-out keys show the default.\n"
    "# Unknown keys and bad values stop the daemons (file:line:col).\n"
    "\n"
    "# Names this appliance in runner identities; [a-z0-9-], <= 63.\n"
    "# Default: the host name.\n"
    "#appliance: lab-1\n"
    "\n"
    "relay:\n"
    "  # where cep-relay listens for runners (mutual TLS)\n"
    "  listen: tls+tcp://0.0.0.0:7443\n"
    "  # what runners dial; use an address targets can reach\n"
    "  advertise: tls+tcp://127.0.0.1:7443\n"
    "  # Prometheus metrics at http://HOST:PORT/metrics (docs/metrics.md);\n"
    "  # HOST an IP literal or localhost, port 0 = any free port (written\n"
    "  # to run/relay.metrics-port), \"\" = off\n"
    "  metrics: \"127.0.0.1:9464\"\n"
    "  # limits of the runners' port against hostile peers, 0 = none\n"
    "  # (docs/configuration.md); refusals: cep_relay_limited_total\n"
    "  #limits:\n"
    "  #  maxConnections: 4096\n"
    "  #  maxConnectionsPerPeer: 2048\n"
    "  #  maxHandshakes: 1024\n"
    "  #  handshakeTimeout: 10s\n"
    "  #  callsPerSecond: 1000\n"
    "  #  callBurst: 2000\n"
    "  #  logInterval: 10s\n"
    "\n"
    "delegate:\n"
    "  # as relay.metrics; port 0 writes run/delegate.metrics-port\n"
    "  metrics: \"127.0.0.1:9465\"\n"
    "  # new runs are refused while the state directory has less free\n"
    "  # space than this: what is left is for the running runs' reverts\n"
    "  # and final states (0 = off)\n"
    "  stateReserveMiB: 64\n"
    "  # take control-plane tasks only while holding this Kubernetes\n"
    "  # Lease (the jump-cluster form, docs/jump-cluster.md); off by\n"
    "  # default. namespace: default the credentials'; kubeconfig:\n"
    "  # default the Pod's service account (in-cluster)\n"
    "  #lease:\n"
    "  #  name: cep-delegate-leader\n"
    "  #  namespace: cep-system\n"
    "  #  duration: 15s\n"
    "  #  kubeconfig: jump.kubeconfig\n"
    "\n"
    "runner:\n"
    "  # a runner that cannot reach the relay this long reverts, exits\n"
    "  deadman: 10s\n"
    "  # how long a runner identity outlives the run's deadline\n"
    "  identityMargin: 2m\n"
    "\n"
    "# The blast radius: experiments outside it are refused before\n"
    "# anything is launched.\n"
    "policy:\n"
    "  maxDuration: 30m\n"
    "  maxConcurrentRuns: 10\n"
    "  # default: 2 x online CPUs\n"
    "  #maxCpuWorkers: 8\n"
    "  maxMemoryMiB: 1024\n"
    "  # disk-fill: the fullest a filesystem may be made, and directories\n"
    "  # never filled (globs on the path; [] allows system paths)\n"
    "  maxDiskFillPercent: 95\n"
    "  diskFillDeny: [\"/\", \"/bin*\", \"/boot*\", \"/dev*\", \"/etc*\", "
    "\"/lib*\",\n"
    "                 \"/proc*\", \"/run*\", \"/sbin*\", \"/sys*\", \"/usr*\", "
    "\"/var/lib*\"]\n"
    "  # host targets: process names (/proc/PID/comm) and cgroup\n"
    "  # paths, fnmatch globs; deny wins over allow\n"
    "  targets:\n"
    "    allow: [\"*\"]\n"
    "    deny: [\"cep-*\", \"systemd*\", \"init\", \"sshd\", "
    "\"dbus-daemon\", \"journald\",\n"
    "           \"kubelet\", \"containerd*\", \"dockerd\"]\n"
    "  # kubernetes targets: namespaces, fnmatch globs\n"
    "  namespaces:\n"
    "    deny: [\"kube-system\", \"cep-system\"]\n"
    "  kubernetes:\n"
    "    # the most objects (pods, nodes) one fault may act on in one\n"
    "    # round, whatever the runner's service account would allow\n"
    "    maxTargets: 10\n"
    "  network:\n"
    "    # network faults on the host's own network namespace (pid 1's).\n"
    "    # Risky: a partition there can cut the appliance off from its\n"
    "    # own relay and runners, and loss or latency there applies to\n"
    "    # every process of the host, not to one target. The runner\n"
    "    # still exempts its relay connection (docs/faults-network.md).\n"
    "    allowHostNetns: false\n"
    "\n"
    "# The control plane this appliance takes runs from and reports to\n"
    "# (docs/control-plane-api.md). Off unless url is set. Outbound HTTPS\n"
    "# only; relative paths are relative to this file's folder.\n"
    "#controlPlane:\n"
    "#  url: https://plane.example.net\n"
    "#  caFile: plane-ca.crt          # default: the system CAs\n"
    "#  # either a client certificate and its key ...\n"
    "#  clientCert: plane-client.crt\n"
    "#  clientKey: plane-client.key   # mode 0600\n"
    "#  # ... or a bearer token file (mode 0600, re-read at each call)\n"
    "#  #tokenFile: plane.token\n"
    "#  # the site's HTTP proxy (CONNECT); https_proxy & co are ignored\n"
    "#  proxy: http://proxy.example.net:3128\n"
    "#  noProxy: [\"internal.example.net\"]\n"
    "#  # the only hosts ever contacted (\".suffix\" = any subdomain);\n"
    "#  # default: the url's host\n"
    "#  allow: [\"plane.example.net\"]\n"
    "#  timeoutMs: 10000\n"
    "#  pollWaitMs: 20000\n"
    "#  spoolMiB: 64\n"
    "\n"
    "# Privilege separation (docs/privsep.md): the CA key in a signer\n"
    "# process, runners started with their faults' capabilities by a\n"
    "# launcher. \"\" = inside the delegate (the default of a --home);\n"
    "# installed, the defaults are the sockets below.\n"
    "#privsep:\n"
    "#  signer: ipc:///run/cep-signer/signer.sock\n"
    "#  launcher: ipc:///run/cep-launcher/launcher.sock\n";

const char *cep_config_default_yaml(void)
{
	return default_yaml;
}

/* ---- loading (lib/base/yamlget.h) ---- */

static bool valid_appliance(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static bool valid_tls_url(const char *s)
{
	static const char scheme[] = "tls+tcp://";
	if (strncmp(s, scheme, sizeof(scheme) - 1) != 0)
		return false;
	const char *hp = s + sizeof(scheme) - 1;
	const char *colon = strrchr(hp, ':');
	if (colon == NULL || colon == hp || colon[1] == '\0')
		return false;
	char *end = NULL;
	long port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535)
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return false;
	}
	return true;
}

/* pattern of a glob list: what fnmatch gets, within a rules row */
static bool valid_glob(const char *s)
{
	return s[0] != '\0' && strlen(s) <= 127;
}

/* A list of fnmatch globs; present replaces the default list, and null
 * empties it. */
static int get_globs(cep_yamlget *l, const cep_yaml_node *map, const char *key,
    char rules[][128], size_t *n)
{
	char exp[96];
	snprintf(exp, sizeof(exp),
	    "a list of at most %d glob patterns of "
	    "1..127 bytes",
	    CEP_POLICY_MAX_RULES);
	const struct cep_yamlget_list spec = {CEP_POLICY_MAX_RULES, valid_glob,
	    "bad pattern", exp};
	const cep_yaml_node *list;
	int rv = cep_yamlget_strings(l, map, key, &spec, &list);
	if (rv != CEP_OK || (list == NULL && cep_yamldoc_get(map, key) == NULL))
		return rv;
	for (size_t i = 0; i < cep_yamldoc_len(list); i++)
		snprintf(rules[i], 128, "%s",
		    cep_yamldoc_scalar(cep_yamldoc_at(list, i)));
	*n = cep_yamldoc_len(list);
	return CEP_OK;
}

/* "" (off) or what cep_metrics_serve accepts. */
static bool valid_metrics_addr(const char *s)
{
	return s[0] == '\0' || cep_metrics_addr_check(s, NULL) == CEP_OK;
}

static const char metrics_exp[] = "HOST:PORT with HOST an IP literal or "
                                  "localhost and PORT 0..65535, or \"\" (off)";

/* relay.limits (absent keys keep their defaults). */
static int load_relay_limits(cep_yamlget *l, const cep_yaml_node *relay,
    cep_config *cfg)
{
	static const char *const lk[] = {"maxConnections",
	    "maxConnectionsPerPeer", "maxHandshakes", "handshakeTimeout",
	    "callsPerSecond", "callBurst", "logInterval", NULL};
	const cep_yaml_node *s;
	int rv = cep_yamlget_section(l, relay, "limits", lk, &s);
	if (rv != CEP_OK || s == NULL)
		return rv;
	struct cep_config_limits *x = &cfg->relay_limits;
	if ((rv = cep_yamlget_int(l, s, "maxConnections", 0, 1000000,
	         &x->max_conns)) != CEP_OK ||
	    (rv = cep_yamlget_int(l, s, "maxConnectionsPerPeer", 0, 1000000,
	         &x->max_conns_per_peer)) != CEP_OK ||
	    (rv = cep_yamlget_int(l, s, "maxHandshakes", 0, 1000000,
	         &x->max_handshakes)) != CEP_OK ||
	    (rv = cep_yamlget_duration(l, s, "handshakeTimeout", 0, 600000,
	         &x->handshake_timeout_ms)) != CEP_OK ||
	    (rv = cep_yamlget_int(l, s, "callsPerSecond", 0, 1000000,
	         &x->calls_per_sec)) != CEP_OK ||
	    (rv = cep_yamlget_int(l, s, "callBurst", 0, 1000000,
	         &x->call_burst)) != CEP_OK)
		return rv;
	return cep_yamlget_duration(l, s, "logInterval", 1000, 3600000,
	    &x->log_interval_ms);
}

static int load_relay_runner(cep_yamlget *l, const cep_yaml_node *root,
    cep_config *cfg)
{
	static const char *const rk[] = {"listen", "advertise", "metrics",
	    "limits", NULL};
	static const char *const nk[] = {"deadman", "identityMargin", NULL};
	static const char url[] = "a URL such as tls+tcp://0.0.0.0:7443";
	const cep_yaml_node *s;
	int rv = cep_yamlget_section(l, root, "relay", rk, &s);
	if (rv == CEP_OK && s != NULL) {
		rv = cep_yamlget_string(l, s, "listen", valid_tls_url, url,
		    cfg->relay_listen, sizeof(cfg->relay_listen));
		if (rv == CEP_OK)
			rv = cep_yamlget_string(l, s, "advertise",
			    valid_tls_url, url, cfg->relay_advertise,
			    sizeof(cfg->relay_advertise));
		if (rv == CEP_OK)
			rv = cep_yamlget_string(l, s, "metrics",
			    valid_metrics_addr, metrics_exp, cfg->relay_metrics,
			    sizeof(cfg->relay_metrics));
		if (rv == CEP_OK)
			rv = load_relay_limits(l, s, cfg);
	}
	cep_yamlget_set_path(l, "");
	if (rv == CEP_OK)
		rv = cep_yamlget_section(l, root, "runner", nk, &s);
	if (rv == CEP_OK && s != NULL) {
		rv = cep_yamlget_duration(l, s, "deadman", 1000, 600000,
		    &cfg->deadman_ms);
		if (rv == CEP_OK)
			rv = cep_yamlget_duration(l, s, "identityMargin", 10000,
			    24LL * 3600000, &cfg->runner_margin_ms);
	}
	cep_yamlget_set_path(l, "");
	return rv;
}

/* The characters of a Kubernetes object name (a Lease) and of a
 * namespace; the API server checks the rest of RFC 1123 when the delegate
 * first reads the Lease, and its refusal names the object. */
static bool valid_lease_name(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && n <= 253 &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-.") == n;
}

static bool valid_namespace(const char *s)
{
	size_t n = strlen(s);
	return n <= 63 &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* delegate.lease; the name is required once the section is there. */
static int load_lease(cep_yamlget *l, const char *dir, const cep_yaml_node *del,
    cep_config *cfg)
{
	static const char *const lk[] = {"namespace", "name", "duration",
	    "kubeconfig", NULL};
	const cep_yaml_node *s;
	int rv = cep_yamlget_section(l, del, "lease", lk, &s);
	if (rv != CEP_OK || s == NULL)
		return rv;
	if (cep_yamldoc_get(s, "name") == NULL)
		return cep_yamlget_bad(l, s, "name", "missing",
		    "the Lease's name, such as cep-delegate-leader");
	rv = cep_yamlget_string(l, s, "name", valid_lease_name,
	    "a Kubernetes object name", cfg->lease.name,
	    sizeof(cfg->lease.name));
	if (rv == CEP_OK)
		rv = cep_yamlget_string(l, s, "namespace", valid_namespace,
		    "a Kubernetes namespace name", cfg->lease.ns,
		    sizeof(cfg->lease.ns));
	if (rv == CEP_OK)
		rv = cep_yamlget_duration(l, s, "duration", 1000, 300000,
		    &cfg->lease.duration_ms);
	if (rv == CEP_OK)
		rv = cep_config_get_file(l, dir, s, "kubeconfig",
		    cfg->lease.kubeconfig, sizeof(cfg->lease.kubeconfig));
	return rv;
}

static int load_delegate(cep_yamlget *l, const char *dir,
    const cep_yaml_node *root, cep_config *cfg)
{
	static const char *const dk[] = {"metrics", "stateReserveMiB", "lease",
	    NULL};
	const cep_yaml_node *s;
	int rv = cep_yamlget_section(l, root, "delegate", dk, &s);
	if (rv == CEP_OK && s != NULL)
		rv = cep_yamlget_string(l, s, "metrics", valid_metrics_addr,
		    metrics_exp, cfg->delegate_metrics,
		    sizeof(cfg->delegate_metrics));
	int mib = (int)(cfg->state_reserve_bytes >> 20);
	if (rv == CEP_OK && s != NULL &&
	    (rv = cep_yamlget_int(l, s, "stateReserveMiB", 0, 1048576, &mib)) ==
	        CEP_OK)
		cfg->state_reserve_bytes = (int64_t)mib << 20;
	if (rv == CEP_OK && s != NULL)
		rv = load_lease(l, dir, s, cfg);
	cep_yamlget_set_path(l, "");
	return rv;
}

/* ipc:///absolute/path, or "" (in the delegate). */
static bool valid_ipc_url(const char *s)
{
	static const char scheme[] = "ipc:///";
	if (s[0] == '\0')
		return true;
	if (strncmp(s, scheme, sizeof(scheme) - 1) != 0 ||
	    strlen(s) - (sizeof(scheme) - 2) >
	        sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
		return false;
	for (const char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return false;
	return true;
}

static int load_privsep(cep_yamlget *l, const cep_yaml_node *root,
    cep_config *cfg)
{
	static const char *const pk[] = {"signer", "launcher", NULL};
	static const char exp[] =
	    "an ipc:///absolute/socket/path URL (at "
	    "most 107 bytes of path) or \"\" (in the delegate)";
	const cep_yaml_node *s;
	int rv = cep_yamlget_section(l, root, "privsep", pk, &s);
	if (rv == CEP_OK && s != NULL)
		rv = cep_yamlget_string(l, s, "signer", valid_ipc_url, exp,
		    cfg->signer_url, sizeof(cfg->signer_url));
	if (rv == CEP_OK && s != NULL)
		rv = cep_yamlget_string(l, s, "launcher", valid_ipc_url, exp,
		    cfg->launcher_url, sizeof(cfg->launcher_url));
	cep_yamlget_set_path(l, "");
	return rv;
}

static int load_policy(cep_yamlget *l, const cep_yaml_node *root,
    cep_policy *pol)
{
	static const char *const pk[] = {"maxDuration", "maxConcurrentRuns",
	    "maxCpuWorkers", "maxMemoryMiB", "maxDiskFillPercent",
	    "diskFillDeny", "targets", "namespaces", "kubernetes", "network",
	    NULL};
	static const char *const tk[] = {"allow", "deny", NULL};
	static const char *const nk[] = {"deny", NULL};
	static const char *const kk[] = {"maxTargets", NULL};
	static const char *const wk[] = {"allowHostNetns", NULL};
	const cep_yaml_node *s, *t;
	int rv = cep_yamlget_section(l, root, "policy", pk, &s);
	if (rv != CEP_OK || s == NULL)
		return rv;
	if ((rv = cep_yamlget_duration(l, s, "maxDuration", 1000,
	         7LL * 24 * 3600000, &pol->max_duration_ms)) != CEP_OK ||
	    (rv = cep_yamlget_int(l, s, "maxConcurrentRuns", 1, 10000,
	         &pol->max_concurrent_runs)) != CEP_OK ||
	    (rv = cep_yamlget_int(l, s, "maxCpuWorkers", 1, 4096,
	         &pol->max_cpu_workers)) != CEP_OK ||
	    (rv = cep_yamlget_int(l, s, "maxMemoryMiB", 1, 1048576,
	         &pol->max_memory_mib)) != CEP_OK ||
	    (rv = cep_yamlget_int(l, s, "maxDiskFillPercent", 1, 100,
	         &pol->max_disk_fill_percent)) != CEP_OK ||
	    (rv = get_globs(l, s, "diskFillDeny", pol->fill_deny,
	         &pol->n_fill_deny)) != CEP_OK)
		return rv;
	if ((rv = cep_yamlget_section(l, s, "targets", tk, &t)) != CEP_OK)
		return rv;
	if (t != NULL &&
	    ((rv = get_globs(l, t, "allow", pol->allow, &pol->n_allow)) !=
	            CEP_OK ||
	        (rv = get_globs(l, t, "deny", pol->deny, &pol->n_deny)) !=
	            CEP_OK))
		return rv;
	cep_yamlget_set_path(l, "policy");
	if ((rv = cep_yamlget_section(l, s, "namespaces", nk, &t)) != CEP_OK)
		return rv;
	if (t != NULL)
		rv = get_globs(l, t, "deny", pol->ns_deny, &pol->n_ns_deny);
	cep_yamlget_set_path(l, "policy");
	if (rv == CEP_OK)
		rv = cep_yamlget_section(l, s, "kubernetes", kk, &t);
	if (rv == CEP_OK && t != NULL)
		rv = cep_yamlget_int(l, t, "maxTargets", 1, 1000,
		    &pol->kube_max_targets);
	cep_yamlget_set_path(l, "policy");
	if (rv == CEP_OK)
		rv = cep_yamlget_section(l, s, "network", wk, &t);
	if (rv == CEP_OK && t != NULL)
		rv = cep_yamlget_bool(l, t, "allowHostNetns",
		    &pol->allow_host_netns);
	return rv;
}

/* ---- controlPlane ---- */

/* scheme "://" then a host: no blanks, no credentials (they would end
 * up in logs). cep_cp_new parses it fully with curl's URL parser. */
static int load_doc(cep_yamlget *l, const char *dir, cep_config *cfg)
{
	static const char *const top[] = {"appliance", "relay", "delegate",
	    "runner", "policy", "controlPlane", "privsep", NULL};
	const cep_yaml_node *root = cep_yamldoc_root(l->doc);
	if (cep_yamldoc_kind(root) == CEP_YAML_NULL)
		return CEP_OK; /* all comments: all defaults */
	if (cep_yamldoc_kind(root) != CEP_YAML_MAP)
		return cep_yamldoc_error(l->err, l->doc, root,
		    "the configuration "
		    "is not a mapping, expected keys such as relay and policy");
	int rv = cep_yamlget_keys(l, root, top);
	if (rv == CEP_OK)
		rv = cep_yamlget_string(l, root, "appliance", valid_appliance,
		    "a name of [a-z0-9-], at most 63 bytes", cfg->appliance,
		    sizeof(cfg->appliance));
	if (rv == CEP_OK)
		rv = load_relay_runner(l, root, cfg);
	if (rv == CEP_OK)
		rv = load_delegate(l, dir, root, cfg);
	if (rv == CEP_OK)
		rv = load_policy(l, root, &cfg->policy);
	cep_yamlget_set_path(l, "");
	if (rv == CEP_OK)
		rv = cep_config_load_cp(l, dir, root, &cfg->cp);
	cep_yamlget_set_path(l, "");
	if (rv == CEP_OK)
		rv = load_privsep(l, root, cfg);
	return rv;
}

/* The installed layout's defaults, then the file's values. */
static void load_defaults(const cep_paths *p, cep_config *cfg)
{
	cep_config_defaults(cfg);
	if (p->installed) {
		snprintf(cfg->signer_url, sizeof(cfg->signer_url), "%s",
		    CEP_SIGNER_URL);
		snprintf(cfg->launcher_url, sizeof(cfg->launcher_url), "%s",
		    CEP_LAUNCHER_URL);
	}
}

int cep_config_load_text(const cep_paths *p, const char *text, size_t len,
    const char *fname, cep_config *cfg, cep_err *err)
{
	load_defaults(p, cfg);
	cep_yaml_doc *doc = NULL;
	int rv = cep_yamldoc_parse(text, len, fname, &doc, err);
	if (rv != CEP_OK)
		return rv;
	cep_yamlget l;
	cep_yamlget_init(&l, doc, err);
	cep_config tmp = *cfg;
	rv = load_doc(&l, p->config, &tmp);
	if (rv == CEP_OK)
		*cfg = tmp;
	cep_yamldoc_free(doc);
	return rv;
}

int cep_config_load(const cep_paths *p, cep_config *cfg, cep_err *err)
{
	load_defaults(p, cfg);
	char path[CEP_PATH_MAX];
	if (cep_files_path(path, sizeof(path), err, "%s/cep.yaml", p->config) !=
	    CEP_OK)
		return err ? err->code : CEP_INVALID_ARGUMENT;
	char *text = NULL;
	size_t len = 0;
	cep_err rerr = {0};
	int rv = cep_files_read(path, CEP_YAML_MAX_BYTES, &text, &len, &rerr);
	if (rv == CEP_NOT_FOUND)
		return CEP_OK; /* no file: the defaults */
	if (rv != CEP_OK)
		return cep_err_set(err, rv, "%s", rerr.msg);
	rv = cep_config_load_text(p, text, len, path, cfg, err);
	free(text);
	return rv;
}
