/* test_exp.c - experiment model: examples, defaults, every kind of error
 * with its position, collected diagnostics. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp.h"
#include "files.h"

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "\"%s\" lacks \"%s\"", (s), (sub))

static cep_exp *parse_ok(const char *text)
{
	cep_exp *e = NULL;
	cep_exp_diags d;
	cep_err err = {0};
	int rv = cep_exp_parse(text, strlen(text), "e.yaml", &e, &d, &err);
	cr_assert_eq(rv, CEP_OK, "parse failed: %s", err.msg);
	cr_assert_eq(d.n, 0);
	cr_assert_not_null(e);
	return e;
}

/* Expects failure; all messages land in *d. */
static void parse_bad(const char *text, cep_exp_diags *d)
{
	cep_exp *e = NULL;
	cep_err err = {0};
	int rv = cep_exp_parse(text, strlen(text), "e.yaml", &e, d, &err);
	cr_assert_eq(rv, CEP_INVALID_ARGUMENT, "rv %d: %s", rv, err.msg);
	cr_assert_null(e);
	cr_assert_gt(d->n, 0);
	cr_assert_str_eq(err.msg, d->msgs[0]);
}

/* Exactly one problem, containing want. */
static void expect_one(const char *text, const char *want)
{
	cep_exp_diags d;
	parse_bad(text, &d);
	cr_assert_eq(d.n, 1, "%zu messages, first: %s", d.n, d.msgs[0]);
	assert_contains(d.msgs[0], want);
}

#define HEAD                      \
	"apiVersion: cep.io/v1\n" \
	"kind: Experiment\n"      \
	"metadata:\n"             \
	"  name: t\n"             \
	"spec:\n"                 \
	"  duration: 30s\n"
/* line numbers below: HEAD is 6 lines, "  faults:" is line 7, the first
 * item starts on line 8 at column 7 ("name") */

Test(exp, examples_validate)
{
	const char *src = getenv("CEP_SRC_DIR");
	cr_assert_not_null(src, "CEP_SRC_DIR not set");
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/examples", src);
	DIR *dp = opendir(dir);
	cr_assert_not_null(dp, "no %s", dir);
	const char *must[] = {"process-kill.yaml", "cpu-hog.yaml",
	    "memory-hog.yaml", "http-probe.yaml", "cmd-probe.yaml"};
	size_t found = 0, total = 0;
	struct dirent *de;
	while ((de = readdir(dp)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".yaml") != 0)
			continue;
		char path[8192];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		char *text = NULL;
		size_t len = 0;
		cep_err err = {0};
		cr_assert_eq(cep_files_read(path, 1 << 20, &text, &len, &err),
		    CEP_OK, "%s", err.msg);
		cep_exp *e = NULL;
		cep_exp_diags d;
		int rv = cep_exp_parse(text, len, de->d_name, &e, &d, &err);
		cr_assert_eq(rv, CEP_OK, "%s: %s", de->d_name, err.msg);
		cr_assert_str_eq(cep_exp_source(e), text);
		/* host examples and the k8s-*.yaml ones */
		cr_assert_str_eq(cep_exp_target_kind(e),
		    strncmp(de->d_name, "k8s-", 4) == 0 ? "kubernetes" :
		                                          "host");
		cr_assert_gt(cep_exp_nfaults(e) + cep_exp_nprobes(e), 0);
		for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
			found += strcmp(must[i], de->d_name) == 0;
		total++;
		cep_exp_free(e);
		free(text);
	}
	closedir(dp);
	cr_assert_eq(found, 5, "missing examples (found %zu of 5)", found);
	cr_assert_geq(total, 5);
}

Test(exp, frame_and_defaults)
{
	cep_exp *e = parse_ok(HEAD "  faults:\n"
	                           "    - name: kill-web\n"
	                           "      type: process-kill\n"
	                           "      process: \"nginx*\"\n"
	                           "    - name: burn\n"
	                           "      type: cpu-hog\n"
	                           "  probes:\n"
	                           "    - name: up\n"
	                           "      type: http\n"
	                           "      mode: continuous\n"
	                           "      url: http://127.0.0.1:8080/\n"
	                           "    - name: cmd\n"
	                           "      type: cmd\n"
	                           "      mode: edge\n"
	                           "      command: [/bin/true, -x]\n"
	                           "      minSuccess: \"30%\"\n"
	                           "      weight: 2.5\n");
	cr_assert_str_eq(cep_exp_name(e), "t");
	cr_assert_str_eq(cep_exp_target_kind(e), "host");
	cr_assert_str_eq(cep_exp_connector(e), "local");
	cr_assert_str_eq(cep_exp_namespace(e), "");
	cr_assert_eq(cep_exp_duration_ms(e), 30000);
	cr_assert_eq(cep_exp_deadman_ms(e), 10000);
	cr_assert_eq(cep_exp_nlabels(e), 0);
	cr_assert_eq(cep_exp_nfaults(e), 2);
	const cep_exp_item *k = cep_exp_fault(e, 0);
	cr_assert_str_eq(cep_exp_item_name(k), "kill-web");
	cr_assert_str_eq(cep_exp_item_type(k), "process-kill");
	cr_assert_eq(cep_exp_item_line(k), 8);
	cr_assert_str_eq(cep_exp_str(k, "process"), "nginx*");
	cr_assert(!cep_exp_has(k, "pid"));
	cr_assert(!cep_exp_has(k, "cgroup"));
	cr_assert_str_eq(cep_exp_str(k, "signal"), "SIGKILL");
	cr_assert_eq(cep_exp_int(k, "interval"), 1000);
	cr_assert_eq(cep_exp_int(k, "count"), 1);
	cr_assert(!cep_exp_has(k, "nonsense"));
	const cep_exp_item *h = cep_exp_fault(e, 1);
	cr_assert_eq(cep_exp_int(h, "workers"), 1);
	cr_assert_eq(cep_exp_int(h, "load"), 100);
	cr_assert_eq(cep_exp_int(h, "duration"), 30000);
	cr_assert_null(cep_exp_fault(e, 2));
	const cep_exp_item *p = cep_exp_probe(e, 0);
	cr_assert_eq(cep_exp_probe_mode(p), CEP_PROBE_CONTINUOUS);
	cr_assert_str_eq(cep_exp_str(p, "method"), "GET");
	cr_assert_eq(cep_exp_int(p, "expectStatus"), 200);
	cr_assert_eq(cep_exp_int(p, "timeout"), 2000);
	cr_assert_eq(cep_exp_int(p, "interval"), 1000);
	cr_assert_eq(cep_exp_int(p, "attempts"), 1);
	cr_assert_eq(cep_exp_int(p, "initialDelay"), 0);
	cr_assert(!cep_exp_bool(p, "stopOnFailure"));
	cr_assert(cep_exp_has(p, "stopOnFailure"));
	cr_assert_float_eq(cep_exp_num(p, "weight"), 1.0, 1e-9);
	cr_assert_eq(cep_exp_int(p, "minSuccess"), 100);
	cr_assert(!cep_exp_has(p, "bodyMatch"));
	cr_assert(!cep_exp_has(p, "latencyBudget"));
	const cep_exp_item *c = cep_exp_probe(e, 1);
	cr_assert_eq(cep_exp_probe_mode(c), CEP_PROBE_EDGE);
	cr_assert_eq(cep_exp_list_len(c, "command"), 2);
	cr_assert_str_eq(cep_exp_list_at(c, "command", 0), "/bin/true");
	cr_assert_str_eq(cep_exp_list_at(c, "command", 1), "-x");
	cr_assert_null(cep_exp_list_at(c, "command", 2));
	cr_assert_eq(cep_exp_int(c, "expectExit"), 0);
	cr_assert_eq(cep_exp_int(c, "minSuccess"), 30);
	cr_assert_float_eq(cep_exp_num(c, "weight"), 2.5, 1e-9);
	cep_exp_free(e);
}

Test(exp, labels_target_deadman)
{
	cep_exp *e = parse_ok(
	    "apiVersion: cep.io/v1\n"
	    "kind: Experiment\n"
	    "metadata:\n"
	    "  name: shop-pods\n"
	    "  labels: {team: web, tier: \"1\"}\n"
	    "spec:\n"
	    "  target: {kind: kubernetes, connector: prod, namespace: shop}\n"
	    "  duration: 1m30s\n"
	    "  deadman: 30s\n");
	cr_assert_str_eq(cep_exp_target_kind(e), "kubernetes");
	cr_assert_str_eq(cep_exp_connector(e), "prod");
	cr_assert_str_eq(cep_exp_namespace(e), "shop");
	cr_assert_eq(cep_exp_duration_ms(e), 90000);
	cr_assert_eq(cep_exp_deadman_ms(e), 30000);
	cr_assert_eq(cep_exp_nlabels(e), 2);
	cr_assert_str_eq(cep_exp_label_key(e, 1), "tier");
	cr_assert_str_eq(cep_exp_label_val(e, 1), "1");
	cr_assert_null(cep_exp_label_key(e, 2));
	cr_assert_eq(cep_exp_nfaults(e), 0);
	cep_exp_free(e);
}

Test(exp, unknown_key_in_item)
{
	expect_one(HEAD "  faults:\n"
	                "    - name: kill-web\n"
	                "      type: process-kill\n"
	                "      process: nginx\n"
	                "      intervall: 2s\n",
	    "e.yaml:11:7: spec.faults[0].intervall: unknown key 'intervall' in "
	    "fault 'kill-web' (expected one of: name, type, process, pid, "
	    "cgroup, signal, interval, count)");
}

Test(exp, unknown_fault_type)
{
	expect_one(HEAD "  faults:\n"
	                "    - name: burn\n"
	                "      type: cpu-hogg\n",
	    "e.yaml:9:13: spec.faults[0].type: unknown fault type \"cpu-hogg\" "
	    "(expected one of: process-kill, cpu-hog, memory-hog, io-stress, "
	    "disk-fill"); /* more types follow (network faults) */
	expect_one(HEAD "  probes:\n"
	                "    - {name: x, type: tcp, mode: edge}\n",
	    "e.yaml:8:23: spec.probes[0].type: unknown probe type \"tcp\" "
	    "(expected one of: http, cmd, k8s, prometheus)");
}

Test(exp, fault_duration_longer_than_experiment)
{
	expect_one(HEAD "  faults:\n"
	                "    - name: hold\n"
	                "      type: memory-hog\n"
	                "      mib: 10\n"
	                "      duration: 1m\n",
	    "e.yaml:11:17: spec.faults[0].duration: 1m is longer than the "
	    "experiment's duration 30s, expected at most 30s");
}

Test(exp, exactly_one_selector)
{
	expect_one(HEAD "  faults:\n"
	                "    - name: k\n"
	                "      type: process-kill\n"
	                "      process: nginx\n"
	                "      pid: 1234\n",
	    "e.yaml:11:12: spec.faults[0].pid: both 'process' and 'pid' given, "
	    "expected exactly one of process, pid, cgroup");
	expect_one(HEAD "  faults:\n"
	                "    - name: k\n"
	                "      type: process-kill\n",
	    "e.yaml:8:7: spec.faults[0]: none of process, pid, cgroup given, "
	    "expected exactly one of them");
}

Test(exp, value_errors_with_positions)
{
	struct {
		const char *item, *want;
	} cases[] = {
	    {"{name: k, type: process-kill, pid: 1}",
	        "e.yaml:8:42: spec.faults[0].pid: 1 is out of range, expected "
	        "an integer 2..4194304"},
	    {"{name: k, type: process-kill, pid: \"12\"}",
	        "spec.faults[0].pid: \"12\" is not an integer"},
	    {"{name: k, type: process-kill, process: x, signal: SIGFOO}",
	        "e.yaml:8:57: spec.faults[0].signal: \"SIGFOO\" is not a known "
	        "value, expected one of: SIGKILL, SIGTERM"},
	    {"{name: k, type: process-kill, process: x, interval: 10ms}",
	        "spec.faults[0].interval: 10ms is out of range, expected a "
	        "duration 100ms..24h"},
	    {"{name: k, type: process-kill, process: x, interval: 5}",
	        "spec.faults[0].interval: 5 is not a duration"},
	    {"{name: k, type: process-kill, process: x, count: 0}",
	        "spec.faults[0].count: 0 is out of range"},
	    {"{name: k, type: process-kill, cgroup: /etc/passwd}",
	        "spec.faults[0].cgroup: \"/etc/passwd\" is not valid, expected a "
	        "cgroup path"},
	    {"{name: k, type: process-kill, cgroup: ../../x}",
	        "spec.faults[0].cgroup: \"../../x\" is not valid"},
	    {"{name: k, type: cpu-hog, load: 101%}",
	        "spec.faults[0].load: 101% is out of range, expected a "
	        "percentage 1..100"},
	    {"{name: k, type: cpu-hog, workers: [1]}",
	        "spec.faults[0].workers: got a list, expected an integer 1..256"},
	    {"{name: k, type: memory-hog}",
	        "e.yaml:8:7: spec.faults[0]: missing required key 'mib' in "
	        "fault 'k', expected an integer 1..65536"},
	    {"{name: Kill, type: cpu-hog}",
	        "spec.faults[0].name: \"Kill\" is not a valid name"},
	    {"{type: cpu-hog}", "spec.faults[0]: missing required key 'name'"},
	    {"just-a-string",
	        "e.yaml:8:7: spec.faults[0]: got a scalar, expected a fault"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[1024];
		snprintf(text, sizeof(text), "%s  faults:\n    - %s\n", HEAD,
		    cases[i].item);
		expect_one(text, cases[i].want);
	}
}

Test(exp, probe_value_errors)
{
	struct {
		const char *item, *want;
	} cases[] = {
	    {"{name: p, type: http, mode: edge, url: ftp://x/}",
	        "spec.probes[0].url: \"ftp://x/\" is not valid, expected an "
	        "http:// or https:// URL"},
	    {"{name: p, type: http, url: http://x/}",
	        "spec.probes[0]: missing required key 'mode' in probe 'p', "
	        "expected one of: start-of-test, end-of-test, edge, "
	        "continuous, on-chaos"},
	    {"{name: p, type: http, mode: always, url: http://x/}",
	        "spec.probes[0].mode: \"always\" is not a known value"},
	    {"{name: p, type: http, mode: edge, url: http://x/, body: hi}",
	        "spec.probes[0].body: body is only used with method POST"},
	    {"{name: p, type: http, mode: edge, url: http://x/, "
	     "expectStatus: 600}",
	        "spec.probes[0].expectStatus: 600 is out of range"},
	    {"{name: p, type: http, mode: edge, url: http://x/, weight: 0}",
	        "spec.probes[0].weight: 0 is out of range, expected a number > 0"},
	    {"{name: p, type: http, mode: edge, url: http://x/, "
	     "stopOnFailure: yes}",
	        "spec.probes[0].stopOnFailure: yes is not a boolean"},
	    {"{name: p, type: http, mode: edge, url: http://x/, interval: 10ms}",
	        "spec.probes[0].interval: 10ms is out of range"},
	    {"{name: p, type: http, mode: edge, url: http://x/, attempts: 21}",
	        "spec.probes[0].attempts: 21 is out of range"},
	    {"{name: p, type: cmd, mode: edge, command: []}",
	        "spec.probes[0].command: got a list of 0 items, expected a list "
	        "of 1..256 non-empty strings"},
	    {"{name: p, type: cmd, mode: edge, command: echo hi}",
	        "spec.probes[0].command: got a scalar, expected a list"},
	    {"{name: p, type: cmd, mode: edge, command: [\"\"]}",
	        "spec.probes[0].command[0]: empty or over-long item"},
	    {"{name: p, type: cmd, mode: edge, command: [a, [b]]}",
	        "spec.probes[0].command[1]: got a list, expected a non-empty "
	        "string"},
	    {"{name: p, type: cmd, mode: edge, command: [x], expectExit: 256}",
	        "spec.probes[0].expectExit: 256 is out of range"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[1024];
		snprintf(text, sizeof(text), "%s  probes:\n    - %s\n", HEAD,
		    cases[i].item);
		expect_one(text, cases[i].want);
	}
}

Test(exp, frame_errors)
{
	expect_one("", "e.yaml:1:1: empty document, expected an Experiment");
	expect_one("- a\n", "e.yaml:1:1: got a list, expected an Experiment");
	expect_one(
	    "apiVersion: cep.io/v2\nkind: Experiment\nmetadata: {name: t}\n"
	    "spec: {duration: 1s}\n",
	    "e.yaml:1:13: apiVersion: \"cep.io/v2\" is not supported, expected "
	    "cep.io/v1");
	expect_one(
	    "apiVersion: cep.io/v1\nkind: Experiment\nmetadata: {name: t}\n"
	    "spec: {duration: 0s}\n",
	    "e.yaml:4:18: spec.duration: 0s is out of range");
	expect_one(
	    "apiVersion: cep.io/v1\nkind: Experiment\nmetadata: {name: t}\n"
	    "spec: {duration: 1s, deadman: 11m}\n",
	    "spec.deadman: 11m is out of range, expected a duration 1s..10m");
	expect_one(
	    "apiVersion: cep.io/v1\nkind: Experiment\nmetadata: {name: t}\n"
	    "spec: {duration: 1s, target: {namespace: x}}\n",
	    "spec.target.namespace: a namespace is given for a host target");
	expect_one(
	    "apiVersion: cep.io/v1\nkind: Experiment\nmetadata: {name: t}\n"
	    "spec: {duration: 1s, target: {kind: kubernetes, connector: c}}\n",
	    "e.yaml:4:30: spec.target: missing required key 'namespace'");
	expect_one(
	    "apiVersion: cep.io/v1\nkind: Experiment\nmetadata: {name: t}\n"
	    "spec: {duration: 1s}\nextra: 1\n",
	    "e.yaml:5:1: unknown key 'extra' in the experiment (expected one "
	    "of: apiVersion, kind, metadata, spec)");
	expect_one(
	    "apiVersion: cep.io/v1\nkind: Experiment\nmetadata: {name: t}\n"
	    "spec: {duration: 1s, fault: []}\n",
	    "e.yaml:4:22: spec: unknown key 'fault' in spec");
	expect_one("apiVersion: cep.io/v1\nkind: Experiment\nmetadata:\n"
	           "  name: t\n  labels: {a: [1]}\nspec: {duration: 1s}\n",
	    "e.yaml:5:15: metadata.labels.a: got a list, expected a string");
	/* YAML errors come through with their position */
	expect_one("a: b: c\n", "e.yaml:1:5: mapping values are not allowed");
}

Test(exp, duplicate_names)
{
	expect_one(HEAD "  faults:\n"
	                "    - {name: a, type: cpu-hog}\n"
	                "    - {name: a, type: cpu-hog}\n",
	    "e.yaml:9:14: spec.faults[1].name: duplicate fault name 'a' (first "
	    "at line 8), expected a unique name");
	/* a fault and a probe may share a name */
	cep_exp *e = parse_ok(HEAD
	    "  faults: [{name: a, type: cpu-hog}]\n"
	    "  probes: [{name: a, type: cmd, mode: edge, command: [x]}]\n");
	cep_exp_free(e);
}

Test(exp, too_many_items)
{
	char text[8192];
	size_t off = (size_t)snprintf(text, sizeof(text), "%s  faults:\n",
	    HEAD);
	for (int i = 0; i < 17; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
		    "    - {name: f%d, type: cpu-hog}\n", i);
	expect_one(text,
	    "e.yaml:8:5: spec.faults: got a list of 17 items, "
	    "expected a list of at most 16 faults");
}

Test(exp, multiple_errors_collected)
{
	cep_exp_diags d;
	parse_bad("apiVersion: cep.io/v1\n"
	          "kind: Experimen\n"
	          "metadata:\n"
	          "  name: Bad_Name\n"
	          "spec:\n"
	          "  duration: 30\n"
	          "  faults:\n"
	          "    - name: k\n"
	          "      type: process-kill\n"
	          "      pid: 1\n"
	          "      signal: KILL\n"
	          "  probes:\n"
	          "    - name: p\n"
	          "      type: http\n"
	          "      url: gopher://x\n",
	    &d);
	const char *want[] = {
	    "e.yaml:2:7: kind: \"Experimen\" is not supported",
	    "e.yaml:4:9: metadata.name: \"Bad_Name\" is not a valid name",
	    "e.yaml:6:13: spec.duration: \"30\" is not a duration",
	    "e.yaml:10:12: spec.faults[0].pid: 1 is out of range",
	    "e.yaml:11:15: spec.faults[0].signal: \"KILL\" is not a known",
	    "e.yaml:13:7: spec.probes[0]: missing required key 'mode'",
	    "e.yaml:15:12: spec.probes[0].url: \"gopher://x\" is not valid",
	};
	cr_assert_eq(d.n, sizeof(want) / sizeof(want[0]), "got %zu: %s ...",
	    d.n, d.msgs[0]);
	for (size_t i = 0; i < d.n; i++)
		assert_contains(d.msgs[i], want[i]);
	cr_assert_eq(d.dropped, 0);
}

Test(exp, diags_cap_at_32)
{
	char text[16384];
	size_t off = (size_t)snprintf(text, sizeof(text), "%s  probes:\n",
	    HEAD);
	for (int i = 0; i < 20; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
		    "    - {name: p%d, type: cmd, mode: x, command: []}\n", i);
	cep_exp_diags d;
	parse_bad(text, &d);
	cr_assert_eq(d.n, 32);
	cr_assert_eq(d.dropped, 8);
	/* without diags the first error still arrives */
	cep_exp *e = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_exp_parse(text, strlen(text), "e.yaml", &e, NULL,
	                 &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_str_eq(err.msg, d.msgs[0]);
}

Test(exp, schema_tables_consistent)
{
	const char *const *f = cep_exp_fault_types();
	size_t n = 0;
	for (; f[n] != NULL; n++)
		cr_assert_not_null(cep_exp_fault_spec(f[n]), "%s", f[n]);
	cr_assert_geq(n, 5); /* process-kill, hogs, io-stress, disk-fill, ... */
	const char *const *p = cep_exp_probe_types();
	for (n = 0; p[n] != NULL; n++)
		cr_assert_not_null(cep_exp_probe_spec(p[n]), "%s", p[n]);
	cr_assert_eq(n, 4); /* http, cmd, k8s, prometheus */
	cr_assert_null(cep_exp_fault_spec("nope"));
	cr_assert_str_eq(cep_exp_probe_mode_name(CEP_PROBE_ONCHAOS),
	    "on-chaos");
	/* every default in the table is valid for its own parameter */
	cep_exp *e = parse_ok(HEAD
	    "  faults: [{name: a, type: process-kill, pid: 2},\n"
	    "           {name: b, type: cpu-hog}, {name: c, type: memory-hog, "
	    "mib: 1}]\n"
	    "  probes: [{name: a, type: cmd, mode: edge, command: [x]},\n"
	    "           {name: b, type: http, mode: edge, url: \"https://h\"}]\n");
	for (size_t i = 0; i < cep_exp_nfaults(e); i++) {
		const cep_exp_item *it = cep_exp_fault(e, i);
		const cep_exp_type_spec *ts = cep_exp_fault_spec(
		    cep_exp_item_type(it));
		for (const cep_exp_param_spec *ps = ts->params; ps->key; ps++)
			cr_assert(!ps->def || cep_exp_has(it, ps->key), "%s.%s",
			    ts->type, ps->key);
	}
	for (size_t i = 0; i < cep_exp_nprobes(e); i++) {
		const cep_exp_item *it = cep_exp_probe(e, i);
		for (const cep_exp_param_spec *ps = cep_exp_probe_common();
		     ps->key; ps++)
			cr_assert(!ps->def || cep_exp_has(it, ps->key), "%s",
			    ps->key);
	}
	cep_exp_free(e);
}

Test(exp, source_is_a_copy)
{
	char text[] = HEAD;
	cep_exp *e = parse_ok(text);
	text[0] = 'X';
	cr_assert_eq(strncmp(cep_exp_source(e), "apiVersion", 10), 0);
	cep_exp_free(e);
	cep_exp_free(NULL);
}
