/* test_config.c - cep.yaml loading (the home's paths: base/test_paths.c). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "testutil.h"
#include "files.h"

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "\"%s\" lacks \"%s\"", (s), (sub))

/* A home with config/cep.yaml holding text; caller frees with rmdir. */
static char *home_with(const char *text, cep_paths *p)
{
	char *home = cep_test_tmpdir("config");
	cep_err err = {0};
	cr_assert_eq(cep_paths_resolve(home, p, &err), CEP_OK, "%s", err.msg);
	cr_assert_eq(cep_files_mkdirs(p->config, 0755, &err), CEP_OK, "%s",
	    err.msg);
	if (text != NULL) {
		char path[CEP_PATH_MAX + 16];
		snprintf(path, sizeof(path), "%s/cep.yaml", p->config);
		cr_assert_eq(cep_files_write(path, text, strlen(text), 0644,
		                 &err),
		    CEP_OK, "%s", err.msg);
	}
	return home;
}

static void assert_defaults(const cep_config *c)
{
	cr_assert_gt(strlen(c->appliance), 0);
	cr_assert_eq(strspn(c->appliance,
	                 "abcdefghijklmnopqrstuvwxyz0123456789-"),
	    strlen(c->appliance));
	cr_assert_str_eq(c->relay_listen, "tls+tcp://0.0.0.0:7443");
	cr_assert_str_eq(c->relay_advertise, "tls+tcp://127.0.0.1:7443");
	cr_assert_str_eq(c->relay_metrics, "127.0.0.1:9464");
	cr_assert_str_eq(c->delegate_metrics, "127.0.0.1:9465");
	cr_assert_eq(c->deadman_ms, 10000);
	cr_assert_eq(c->runner_margin_ms, 120000);
	cr_assert_eq(c->relay_limits.max_conns, 4096);
	cr_assert_eq(c->relay_limits.max_conns_per_peer, 2048);
	cr_assert_eq(c->relay_limits.max_handshakes, 1024);
	cr_assert_eq(c->relay_limits.handshake_timeout_ms, 10000);
	cr_assert_eq(c->relay_limits.calls_per_sec, 1000);
	cr_assert_eq(c->relay_limits.call_burst, 2000);
	cr_assert_eq(c->relay_limits.log_interval_ms, 10000);
	cr_assert_eq(c->state_reserve_bytes, 64LL << 20);
	const cep_policy *p = &c->policy;
	cr_assert_eq(p->max_duration_ms, 30 * 60000);
	cr_assert_eq(p->max_concurrent_runs, 10);
	cr_assert_eq(p->max_cpu_workers, 2 * sysconf(_SC_NPROCESSORS_ONLN));
	cr_assert_eq(p->max_memory_mib, 1024);
	cr_assert_eq(p->n_allow, 1);
	cr_assert_str_eq(p->allow[0], "*");
	cr_assert_eq(p->n_deny, 9);
	cr_assert_str_eq(p->deny[0], "cep-*");
	cr_assert_str_eq(p->deny[8], "dockerd");
	cr_assert_eq(p->n_ns_deny, 2);
	cr_assert_str_eq(p->ns_deny[0], "kube-system");
	/* no control plane unless configured */
	cr_assert_str_eq(c->cp.url, "");
	cr_assert_eq(c->cp.n_allow, 0);
	cr_assert_eq(c->cp.timeout_ms, 10000);
	cr_assert_eq(c->cp.poll_wait_ms, 20000);
	cr_assert_eq(c->cp.spool_max_bytes, 64LL << 20);
	cr_assert_str_eq(p->ns_deny[1], "cep-system");
	cr_assert_not(p->allow_host_netns,
	    "policy.network.allowHostNetns must default to false");
	/* no Lease: the delegate takes tasks on its own */
	cr_assert_str_eq(c->lease.name, "");
	cr_assert_eq(c->lease.duration_ms, 15000);
}

Test(config, defaults_and_missing_file)
{
	cep_config c;
	cep_config_defaults(&c);
	assert_defaults(&c);
	cep_paths p;
	char *home = home_with(NULL, &p);
	cep_err err = {0};
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_OK, "%s", err.msg);
	assert_defaults(&c);
	cep_test_rmdir(home);
}

Test(config, default_yaml_loads_to_defaults)
{
	cep_paths p;
	char *home = home_with(cep_config_default_yaml(), &p);
	cep_config c;
	cep_err err = {0};
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_OK, "%s", err.msg);
	assert_defaults(&c);
	cep_test_rmdir(home);
}

Test(config, load_values)
{
	cep_paths p;
	char *home = home_with(
	    "appliance: lab-1\n"
	    "relay:\n"
	    "  listen: tls+tcp://127.0.0.1:17443\n"
	    "  advertise: tls+tcp://cep.example:17443\n"
	    "runner: {deadman: 5s, identityMargin: 1m}\n"
	    "policy:\n"
	    "  maxDuration: 5m\n"
	    "  maxConcurrentRuns: 2\n"
	    "  maxCpuWorkers: 3\n"
	    "  maxMemoryMiB: 64\n"
	    "  targets:\n"
	    "    allow: [\"demo-*\", \"/sys/fs/cgroup/demo.slice/*\"]\n"
	    "  namespaces:\n"
	    "    deny: []\n",
	    &p);
	cep_config c;
	cep_err err = {0};
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_OK, "%s", err.msg);
	cr_assert_str_eq(c.appliance, "lab-1");
	cr_assert_str_eq(c.relay_listen, "tls+tcp://127.0.0.1:17443");
	cr_assert_str_eq(c.relay_advertise, "tls+tcp://cep.example:17443");
	cr_assert_eq(c.deadman_ms, 5000);
	cr_assert_eq(c.runner_margin_ms, 60000);
	cr_assert_eq(c.policy.max_duration_ms, 300000);
	cr_assert_eq(c.policy.max_concurrent_runs, 2);
	cr_assert_eq(c.policy.max_cpu_workers, 3);
	cr_assert_eq(c.policy.max_memory_mib, 64);
	cr_assert_eq(c.policy.n_allow, 2);
	cr_assert_str_eq(c.policy.allow[1], "/sys/fs/cgroup/demo.slice/*");
	/* deny was not given: the default list stays */
	cr_assert_eq(c.policy.n_deny, 9);
	cr_assert_eq(c.policy.n_ns_deny, 0);
	cep_test_rmdir(home);
}

static void expect_load_error(const char *text, const char *want)
{
	cep_paths p;
	char *home = home_with(text, &p);
	cep_config c;
	cep_err err = {0};
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_INVALID_ARGUMENT,
	    "loaded: %s", text);
	char path[CEP_PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/cep.yaml:%s", p.config, want);
	assert_contains(err.msg, path);
	/* a failed load leaves the defaults, not a half-read file */
	assert_defaults(&c);
	cep_test_rmdir(home);
}

Test(config, errors_have_positions)
{
	expect_load_error("relay:\n  listen: tls+tcp://0.0.0.0:7443\n"
	                  "  advertize: x\n",
	    "3:3: unknown key 'advertize' in relay (expected one of: listen, "
	    "advertise, metrics, limits)");
	expect_load_error("polcy: {}\n",
	    "1:1: unknown key 'polcy' in the top "
	    "level");
	expect_load_error("policy:\n  targets:\n    allow: [\"*\"]\n"
	                  "    denied: []\n",
	    "4:5: unknown key 'denied' in policy.targets");
	expect_load_error("policy:\n  maxDuration: forever\n",
	    "2:16: policy.maxDuration: not a duration, expected a duration");
	expect_load_error("policy:\n  maxConcurrentRuns: 0\n",
	    "2:22: policy.maxConcurrentRuns: out of range, expected an "
	    "integer 1..10000");
	expect_load_error("policy: {maxMemoryMiB: \"64\"}\n",
	    "1:24: policy.maxMemoryMiB: not an integer");
	expect_load_error("appliance: Lab_1\n",
	    "1:12: appliance: not valid, "
	    "expected a name");
	expect_load_error("relay: {listen: \"http://0.0.0.0:80\"}\n",
	    "1:17: relay.listen: not valid, expected a URL such as tls+tcp://");
	expect_load_error("runner: {deadman: 1h}\n",
	    "1:19: runner.deadman: out of range");
	expect_load_error("policy:\n  namespaces:\n    deny: [\"\"]\n",
	    "3:12: policy.namespaces.deny: bad pattern");
	expect_load_error("relay: [a]\n", "1:8: relay: not a mapping");
	expect_load_error("a: b: c\n", "1:5: mapping values are not allowed");
	expect_load_error("- 1\n", "1:1: the configuration is not a mapping");
}

Test(config, allow_host_netns_parsed)
{
	cep_paths p;
	char *home =
	    home_with("policy:\n  network:\n    allowHostNetns: true\n", &p);
	cep_config c;
	cep_err err = {0};
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_OK, "%s", err.msg);
	cr_assert(c.policy.allow_host_netns);
	/* the rest of the policy keeps its defaults */
	cr_assert_eq(c.policy.n_deny, 9);
	cep_test_rmdir(home);
	home = home_with("policy: {network: {allowHostNetns: false}}\n", &p);
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_OK, "%s", err.msg);
	cr_assert_not(c.policy.allow_host_netns);
	cep_test_rmdir(home);
	/* the default file says false and what it risks */
	const char *y = cep_config_default_yaml();
	assert_contains(y, "allowHostNetns: false");
	assert_contains(y, "cut the appliance off from its");
	assert_contains(y, "every process of the host");
}

Test(config, allow_host_netns_bad_values_have_positions)
{
	expect_load_error("policy:\n  network:\n    allowHostNetns: yes\n",
	    "3:21: policy.network.allowHostNetns: not a boolean, expected "
	    "true or false");
	expect_load_error("policy:\n  network:\n    allowHostNetns: \"true\"\n",
	    "3:21: policy.network.allowHostNetns: not a boolean");
	expect_load_error("policy:\n  network:\n    allowHostNetns: [true]\n",
	    "3:21: policy.network.allowHostNetns: not a boolean");
	expect_load_error("policy:\n  network:\n    allowHostNetn: true\n",
	    "3:5: unknown key 'allowHostNetn' in policy.network (expected one "
	    "of: allowHostNetns)");
	expect_load_error("policy: {network: true}\n",
	    "1:19: policy.network: not a mapping");
}

Test(config, empty_file_is_defaults)
{
	cep_paths p;
	char *home = home_with("# nothing yet\n", &p);
	cep_config c;
	cep_err err = {0};
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_OK, "%s", err.msg);
	assert_defaults(&c);
	cep_test_rmdir(home);
}

Test(config, metrics_addresses)
{
	cep_paths p;
	char *home = home_with("relay:\n  metrics: \"[::1]:0\"\n"
	                       "delegate:\n  metrics: \"\"\n",
	    &p);
	cep_config c;
	cep_err err = {0};
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_OK, "%s", err.msg);
	cr_assert_str_eq(c.relay_metrics, "[::1]:0");
	cr_assert_str_eq(c.delegate_metrics, "", "\"\" turns it off");
	cep_test_rmdir(home);
	home = home_with("relay: {metrics: localhost:9999}\n"
	                 "delegate: {metrics: 0.0.0.0:0}\n",
	    &p);
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_OK, "%s", err.msg);
	cr_assert_str_eq(c.relay_metrics, "localhost:9999");
	cr_assert_str_eq(c.delegate_metrics, "0.0.0.0:0");
	cep_test_rmdir(home);
	const char *y = cep_config_default_yaml();
	assert_contains(y, "metrics: \"127.0.0.1:9464\"");
	assert_contains(y, "delegate:\n  # as relay.metrics");
}

Test(config, relay_limits)
{
	cep_paths p;
	char *home = home_with("relay:\n  limits:\n    maxConnections: 10\n"
	                       "    maxConnectionsPerPeer: 0\n"
	                       "    maxHandshakes: 3\n"
	                       "    handshakeTimeout: 2s\n"
	                       "    callsPerSecond: 5\n    callBurst: 7\n"
	                       "    logInterval: 1m\n",
	    &p);
	cep_config c;
	cep_err err = {0};
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_OK, "%s", err.msg);
	cr_assert_eq(c.relay_limits.max_conns, 10);
	cr_assert_eq(c.relay_limits.max_conns_per_peer, 0, "0 = no limit");
	cr_assert_eq(c.relay_limits.max_handshakes, 3);
	cr_assert_eq(c.relay_limits.handshake_timeout_ms, 2000);
	cr_assert_eq(c.relay_limits.calls_per_sec, 5);
	cr_assert_eq(c.relay_limits.call_burst, 7);
	cr_assert_eq(c.relay_limits.log_interval_ms, 60000);
	cep_test_rmdir(home);
	expect_load_error("relay:\n  limits:\n    maxHandshakes: -1\n",
	    "3:20: relay.limits.maxHandshakes: out of range");
	expect_load_error("relay:\n  limits: {maxConns: 1}\n",
	    "2:12: unknown key 'maxConns' in relay.limits");
}

Test(config, delegate_lease)
{
	cep_paths p;
	char *home = home_with("delegate:\n  lease:\n    name: cep-leader\n"
	                       "    namespace: cep-system\n    duration: 3s\n"
	                       "    kubeconfig: jump.kubeconfig\n",
	    &p);
	cep_config c;
	cep_err err = {0};
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_OK, "%s", err.msg);
	cr_assert_str_eq(c.lease.name, "cep-leader");
	cr_assert_str_eq(c.lease.ns, "cep-system");
	cr_assert_eq(c.lease.duration_ms, 3000);
	char want[CEP_PATH_MAX + 32];
	snprintf(want, sizeof(want), "%s/jump.kubeconfig", p.config);
	cr_assert_str_eq(c.lease.kubeconfig, want, "relative to the config");
	cep_test_rmdir(home);
	/* only the name: the credentials' namespace, in-cluster */
	home = home_with("delegate: {lease: {name: l1}}\n", &p);
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_OK, "%s", err.msg);
	cr_assert_str_eq(c.lease.name, "l1");
	cr_assert_str_eq(c.lease.ns, "");
	cr_assert_str_eq(c.lease.kubeconfig, "");
	cr_assert_eq(c.lease.duration_ms, 15000);
	cep_test_rmdir(home);
	expect_load_error("delegate:\n  lease: {namespace: x}\n",
	    "2:10: delegate.lease.name: missing");
	expect_load_error("delegate:\n  lease: {name: A_b}\n",
	    "2:17: delegate.lease.name: not valid, expected a Kubernetes "
	    "object name");
	expect_load_error("delegate:\n  lease: {name: l, namespace: a.b}\n",
	    "2:31: delegate.lease.namespace: not valid");
	expect_load_error("delegate:\n  lease: {name: l, duration: 500ms}\n",
	    "2:30: delegate.lease.duration:");
	expect_load_error("delegate:\n  lease: {name: l, kubeconfig: \"\"}\n",
	    "2:32: delegate.lease.kubeconfig: empty");
	expect_load_error("delegate:\n  lease: {name: l, holder: me}\n",
	    "2:20: unknown key 'holder' in delegate.lease");
}

Test(config, metrics_bad_values_have_positions)
{
	expect_load_error("relay:\n  metrics: example.com:9464\n",
	    "2:12: relay.metrics: not valid, expected HOST:PORT with HOST an "
	    "IP literal or localhost");
	expect_load_error("delegate:\n  metrics: \"127.0.0.1:65536\"\n",
	    "2:12: delegate.metrics: not valid");
	expect_load_error("delegate:\n  metrics: \"127.0.0.1\"\n",
	    "2:12: delegate.metrics: not valid");
	expect_load_error("delegate:\n  metrics: \"[::1:80\"\n",
	    "2:12: delegate.metrics: not valid");
	expect_load_error("delegate:\n  metric: \"\"\n",
	    "2:3: unknown key 'metric' in delegate (expected one of: metrics, "
	    "stateReserveMiB, lease)");
	expect_load_error("delegate: [1]\n", "1:11: delegate: not a mapping");
}

Test(config, state_reserve)
{
	cep_paths p;
	char *home = home_with("delegate:\n  stateReserveMiB: 3\n", &p);
	cep_config c;
	cep_err err = {0};
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_OK, "%s", err.msg);
	cr_assert_eq(c.state_reserve_bytes, 3LL << 20);
	cep_test_rmdir(home);
	home = home_with("delegate:\n  stateReserveMiB: 0\n", &p);
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_OK, "%s", err.msg);
	cr_assert_eq(c.state_reserve_bytes, 0);
	cep_test_rmdir(home);
	expect_load_error("delegate:\n  stateReserveMiB: -1\n",
	    "2:20: delegate.stateReserveMiB");
}

Test(config, control_plane_values)
{
	cep_paths p;
	char *home =
	    home_with("controlPlane:\n"
	              "  url: https://plane.example.net:8443/cp\n"
	              "  caFile: plane-ca.crt\n"
	              "  clientCert: /etc/cep/plane.crt\n"
	              "  clientKey: keys/plane.key\n"
	              "  proxy: http://proxy.example.net:3128\n"
	              "  noProxy: [internal.example.net, 10.0.0.1]\n"
	              "  allow: [plane.example.net, .cdn.example.net]\n"
	              "  timeoutMs: 5000\n"
	              "  pollWaitMs: 30000\n"
	              "  spoolMiB: 128\n",
	        &p);
	cep_config c;
	cep_err err = {0};
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_OK, "%s", err.msg);
	cr_assert_str_eq(c.cp.url, "https://plane.example.net:8443/cp");
	char want[CEP_PATH_MAX + 32];
	snprintf(want, sizeof(want), "%s/plane-ca.crt", p.config);
	cr_assert_str_eq(c.cp.ca_file, want);
	cr_assert_str_eq(c.cp.cert_file, "/etc/cep/plane.crt");
	snprintf(want, sizeof(want), "%s/keys/plane.key", p.config);
	cr_assert_str_eq(c.cp.key_file, want);
	cr_assert_str_eq(c.cp.token_file, "");
	cr_assert_str_eq(c.cp.proxy, "http://proxy.example.net:3128");
	cr_assert_str_eq(c.cp.no_proxy, "internal.example.net,10.0.0.1");
	cr_assert_eq(c.cp.n_allow, 2);
	cr_assert_str_eq(c.cp.allow[1], ".cdn.example.net");
	cr_assert_eq(c.cp.timeout_ms, 5000);
	cr_assert_eq(c.cp.poll_wait_ms, 30000);
	cr_assert_eq(c.cp.spool_max_bytes, 128LL << 20);
	cep_test_rmdir(home);

	home = home_with("controlPlane:\n  url: https://p.example\n"
	                 "  tokenFile: plane.token\n",
	    &p);
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_OK, "%s", err.msg);
	snprintf(want, sizeof(want), "%s/plane.token", p.config);
	cr_assert_str_eq(c.cp.token_file, want);
	cr_assert_eq(c.cp.n_allow, 0);
	cep_test_rmdir(home);
}

Test(config, control_plane_errors_have_positions)
{
	expect_load_error("controlPlane:\n  url: http://plane.example\n",
	    "2:8: controlPlane.url: not valid, expected an https:// URL");
	expect_load_error("controlPlane:\n  uri: https://p\n",
	    "2:3: unknown key 'uri' in controlPlane");
	expect_load_error("controlPlane:\n  proxy: socks5://p:1080\n",
	    "2:10: controlPlane.proxy: not valid, expected an http://");
	expect_load_error("controlPlane:\n  url: https://user:pw@p\n",
	    "2:8: controlPlane.url: not valid");
	expect_load_error("controlPlane:\n  allow: plane.example\n",
	    "2:10: controlPlane.allow: not a list or too long");
	expect_load_error("controlPlane:\n  noProxy: [\"a b\"]\n",
	    "2:13: controlPlane.noProxy: bad host name");
	expect_load_error("controlPlane:\n  timeoutMs: 10s\n",
	    "2:14: controlPlane.timeoutMs: not an integer");
	expect_load_error("controlPlane:\n  spoolMiB: 0\n",
	    "2:13: controlPlane.spoolMiB: out of range");
	expect_load_error("controlPlane:\n  caFile: \"\"\n",
	    "2:11: controlPlane.caFile: empty");
	expect_load_error("controlPlane:\n  clientCert: a.crt\n",
	    "2:3: controlPlane: clientCert and clientKey go together");
	expect_load_error("controlPlane:\n  clientCert: a.crt\n"
	                  "  clientKey: a.key\n  tokenFile: t\n",
	    "2:3: controlPlane: tokenFile and clientCert exclude each other");
}

Test(config, privsep_defaults_by_layout)
{
	cep_paths p;
	cep_err err = {0};
	/* a home: signer and launcher inside the delegate */
	char *home = home_with(NULL, &p);
	cr_assert_not(p.installed);
	cep_config c;
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_OK, "%s", err.msg);
	cr_assert_str_eq(c.signer_url, "");
	cr_assert_str_eq(c.launcher_url, "");
	cep_test_rmdir(home);
	/* installed: the privsep daemons' sockets (no /etc/cep/cep.yaml
	 * needed: a missing file is the defaults) */
	unsetenv("CEP_HOME");
	cr_assert_eq(cep_paths_resolve(NULL, &p, &err), CEP_OK);
	cr_assert(p.installed);
	snprintf(p.config, sizeof(p.config), "/nonexistent-cep-test");
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_OK, "%s", err.msg);
	cr_assert_str_eq(c.signer_url, CEP_SIGNER_URL);
	cr_assert_str_eq(c.launcher_url, CEP_LAUNCHER_URL);
}

Test(config, privsep_values_and_errors)
{
	cep_paths p;
	char *home = home_with("privsep:\n  signer: ipc:///tmp/s.sock\n"
	                       "  launcher: \"\"\n",
	    &p);
	cep_config c;
	cep_err err = {0};
	cr_assert_eq(cep_config_load(&p, &c, &err), CEP_OK, "%s", err.msg);
	cr_assert_str_eq(c.signer_url, "ipc:///tmp/s.sock");
	cr_assert_str_eq(c.launcher_url, "");
	cep_test_rmdir(home);
	expect_load_error("privsep:\n  signer: tcp://1.2.3.4:5\n",
	    "2:11: privsep.signer: not valid, expected an ipc:///absolute");
	expect_load_error("privsep:\n  launcher: ipc://rel/x.sock\n",
	    "2:13: privsep.launcher: not valid");
	expect_load_error("privsep:\n  signers: \"\"\n",
	    "2:3: unknown key 'signers' in privsep (expected one of: signer, "
	    "launcher)");
}

/* cepctl init checks an edited cep.yaml before writing it: the same
 * loader, the name it is given in messages, paths relative to the home. */
Test(config, load_text)
{
	cep_paths p;
	char *home = home_with(NULL, &p);
	cep_config c;
	cep_err err = {0};
	const char ok[] = "controlPlane:\n  url: https://p.example\n"
	                  "  tokenFile: plane.token\n";
	cr_assert_eq(cep_config_load_text(&p, ok, strlen(ok), "edited.yaml", &c,
	                 &err),
	    CEP_OK, "%s", err.msg);
	char want[CEP_PATH_MAX + 16];
	snprintf(want, sizeof(want), "%s/plane.token", p.config);
	cr_assert_str_eq(c.cp.token_file, want);
	const char bad[] = "relay:\n  advertize: x\n";
	cr_assert_eq(cep_config_load_text(&p, bad, strlen(bad), "edited.yaml",
	                 &c, &err),
	    CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "edited.yaml:2:3: unknown key 'advertize'");
	cep_test_rmdir(home);
}
