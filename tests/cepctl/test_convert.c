/* test_convert.c - `cepctl convert FILE` (appliance/cmd_convert.c): the
 * native experiment it prints is accepted by `cepctl validate`, and reads
 * as the same faults and probes as the ChaosEngine itself (which validate
 * accepts too); a refused engine prints its messages, nothing on stdout. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "exp.h"
#include "files.h"
#include "testutil.h"

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "\"%s\" lacks \"%s\"", (s), (sub))

static char *dir;

static void setup(void)
{
	dir = cep_test_tmpdir("convert");
}

static void teardown(void)
{
	cep_test_rmdir(dir);
}

/* Runs a cepctl command with stdout (and stderr) into files; returns its
 * exit code, *out and *errout the text. */
static int run(int (*cmd)(const cepctl_opts *, int, char **), const char *arg,
    char **out, char **errout)
{
	char opath[512], epath[512];
	snprintf(opath, sizeof(opath), "%s/out", dir);
	snprintf(epath, sizeof(epath), "%s/err", dir);
	fflush(stdout);
	fflush(stderr);
	int so = dup(1), se = dup(2);
	int fo = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int fe = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert(so >= 0 && se >= 0 && fo >= 0 && fe >= 0);
	dup2(fo, 1);
	dup2(fe, 2);
	cepctl_opts o = {.quiet = true};
	char *argv[] = {"cmd", (char *)arg, NULL}; /* argv[0]: the command */
	int rv = cmd(&o, 2, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	close(fo);
	close(fe);
	size_t len;
	cep_err err;
	cr_assert_eq(cep_files_read(opath, 1 << 20, out, &len, &err), CEP_OK);
	cr_assert_eq(cep_files_read(epath, 1 << 20, errout, &len, &err),
	    CEP_OK);
	return rv;
}

static cep_exp *parse_file(const char *path)
{
	char *text = NULL;
	size_t len;
	cep_err err;
	cr_assert_eq(cep_files_read(path, 1 << 20, &text, &len, &err), CEP_OK,
	    "%s", err.msg);
	cep_exp *e = NULL;
	cr_assert_eq(cep_exp_parse(text, len, path, &e, NULL, &err), CEP_OK,
	    "%s: %s", path, err.msg);
	free(text);
	return e;
}

static void same_item(const cep_exp_item *a, const cep_exp_item *b,
    const cep_exp_param_spec *ps)
{
	cr_assert_str_eq(cep_exp_item_name(a), cep_exp_item_name(b));
	cr_assert_str_eq(cep_exp_item_type(a), cep_exp_item_type(b));
	for (; ps != NULL && ps->key != NULL; ps++) {
		cr_assert_eq(cep_exp_has(a, ps->key), cep_exp_has(b, ps->key),
		    "%s", ps->key);
		const char *sa = cep_exp_str(a, ps->key);
		const char *sb = cep_exp_str(b, ps->key);
		cr_assert_str_eq(sa ? sa : "", sb ? sb : "", "%s", ps->key);
		cr_assert_eq(cep_exp_int(a, ps->key), cep_exp_int(b, ps->key));
		cr_assert_eq(cep_exp_num(a, ps->key), cep_exp_num(b, ps->key));
		cr_assert_eq(cep_exp_bool(a, ps->key),
		    cep_exp_bool(b, ps->key));
		size_t n = cep_exp_list_len(a, ps->key);
		cr_assert_eq(n, cep_exp_list_len(b, ps->key));
		for (size_t i = 0; i < n; i++)
			cr_assert_str_eq(cep_exp_list_at(a, ps->key, i),
			    cep_exp_list_at(b, ps->key, i));
	}
}

static void same_experiment(const cep_exp *a, const cep_exp *b)
{
	cr_assert_str_eq(cep_exp_name(a), cep_exp_name(b));
	cr_assert_str_eq(cep_exp_connector(a), cep_exp_connector(b));
	cr_assert_str_eq(cep_exp_namespace(a), cep_exp_namespace(b));
	cr_assert_eq(cep_exp_duration_ms(a), cep_exp_duration_ms(b));
	cr_assert_eq(cep_exp_nfaults(a), cep_exp_nfaults(b));
	cr_assert_eq(cep_exp_nprobes(a), cep_exp_nprobes(b));
	for (size_t i = 0; i < cep_exp_nfaults(a); i++) {
		const cep_exp_item *f = cep_exp_fault(a, i);
		same_item(f, cep_exp_fault(b, i),
		    cep_exp_fault_spec(cep_exp_item_type(f))->params);
	}
	for (size_t i = 0; i < cep_exp_nprobes(a); i++) {
		const cep_exp_item *p = cep_exp_probe(a, i);
		same_item(p, cep_exp_probe(b, i),
		    cep_exp_probe_spec(cep_exp_item_type(p))->params);
		same_item(p, cep_exp_probe(b, i), cep_exp_probe_common());
	}
}

/* Every ChaosEngine of examples/litmus/ and tests/e2e/litmus/. */
static void each_example(const char *sub)
{
	static const char *const names[] = {"pod-delete.yaml",
	    "pod-network-latency.yaml", "pod-cpu-hog.yaml",
	    "pod-network-loss.yaml", "node-taint.yaml", "node-drain.yaml",
	    NULL};
	const char *src = getenv("CEP_SRC_DIR");
	cr_assert_not_null(src, "CEP_SRC_DIR is not set");
	int seen = 0;
	for (size_t i = 0; names[i] != NULL; i++) {
		char path[1024], native[600];
		snprintf(path, sizeof(path), "%s/%s/%s", src, sub, names[i]);
		if (access(path, R_OK) != 0)
			continue;
		seen++;
		char *out = NULL, *errout = NULL;
		cr_assert_eq(run(cepctl_cmd_convert, path, &out, &errout),
		    CEPCTL_OK, "%s: %s", path, errout);
		assert_contains(out, "apiVersion: cep.io/v1");
		snprintf(native, sizeof(native), "%s/native.yaml", dir);
		cep_err err;
		cr_assert_eq(cep_files_write(native, out, strlen(out), 0600,
		                 &err),
		    CEP_OK, "%s", err.msg);
		free(out);
		free(errout);
		/* validate accepts both the output and the engine itself */
		cr_assert_eq(run(cepctl_cmd_validate, native, &out, &errout),
		    CEPCTL_OK, "%s", out);
		assert_contains(out, "valid: experiment");
		free(out);
		free(errout);
		cr_assert_eq(run(cepctl_cmd_validate, path, &out, &errout),
		    CEPCTL_OK, "%s", out);
		free(out);
		free(errout);
		cep_exp *a = parse_file(path), *b = parse_file(native);
		same_experiment(a, b);
		cep_exp_free(a);
		cep_exp_free(b);
	}
	cr_assert_geq(seen, 3, "only %d files found under %s", seen, sub);
}

Test(convert, examples_validate_and_match, .init = setup, .fini = teardown)
{
	each_example("examples/litmus");
}

Test(convert, e2e_engines_validate_and_match, .init = setup, .fini = teardown)
{
	each_example("tests/e2e/litmus");
}

Test(convert, refused_engine_prints_messages_only, .init = setup,
    .fini = teardown)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/stop.yaml", dir);
	const char *t = "apiVersion: litmuschaos.io/v1alpha1\n"
	                "kind: ChaosEngine\n"
	                "metadata: {name: t}\n"
	                "spec:\n"
	                "  engineState: stop\n"
	                "  appinfo: {appns: shop, applabel: app=web}\n"
	                "  experiments: [{name: node-restart}]\n";
	cep_err err;
	cr_assert_eq(cep_files_write(path, t, strlen(t), 0600, &err), CEP_OK);
	char *out = NULL, *errout = NULL;
	cr_assert_eq(run(cepctl_cmd_convert, path, &out, &errout), CEPCTL_FAIL);
	cr_assert_str_eq(out, "");
	assert_contains(errout,
	    "stop.yaml:5:16: spec.engineState: the engine "
	    "is stopped");
	assert_contains(errout,
	    "stop.yaml:7:24: name: experiment node-restart "
	    "is not supported");
	free(out);
	free(errout);
	cr_assert_eq(run(cepctl_cmd_validate, path, &out, &errout),
	    CEPCTL_FAIL);
	assert_contains(out, "spec.engineState");
	free(out);
	free(errout);
}
