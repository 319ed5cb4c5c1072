/* test_cfg_edit.c - cepctl init's settings added to (or, asked to,
 * replaced in) an existing cep.yaml as text (appliance/cfg_edit.c): the
 * comments stay, the result loads with the daemons' loader, conflicts name
 * file:line:col, and a file that would not load is never written. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg_edit.h"
#include "config.h"
#include "testutil.h"
#include "files.h"

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "\"%s\" lacks \"%s\"", (s), (sub))

static char *home;
static cep_paths paths;
static char cfgpath[CEP_PATH_MAX + 16];

static void setup(void)
{
	cep_err err = {0};
	home = cep_test_tmpdir("cfgedit");
	cr_assert_eq(cep_paths_resolve(home, &paths, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(cep_files_mkdirs(paths.config, 0755, &err), CEP_OK, "%s",
	    err.msg);
	snprintf(cfgpath, sizeof(cfgpath), "%s/cep.yaml", paths.config);
}

static void teardown(void)
{
	cep_test_rmdir(home);
}

TestSuite(cfg_edit, .init = setup, .fini = teardown);

static void put(const char *text)
{
	cep_err err = {0};
	cr_assert_eq(cep_files_write(cfgpath, text, strlen(text), 0644, &err),
	    CEP_OK, "%s", err.msg);
}

static char *get(void)
{
	char *text = NULL;
	size_t len = 0;
	cep_err err = {0};
	cr_assert_eq(cep_files_read(cfgpath, 1 << 20, &text, &len, &err),
	    CEP_OK, "%s", err.msg);
	return text;
}

/* Plans and commits want[]; the result code, err filled. */
static int edit(const char *const want[CEPCTL_SET_N], bool replace,
    cep_err *err, char *added, char *changed)
{
	cepctl_cfg_edit *e = NULL;
	int rv = cepctl_cfg_edit_plan(&paths, want, replace, &e, err);
	if (rv == CEP_OK) {
		if (added != NULL)
			snprintf(added, 512, "%s", cepctl_cfg_edit_added(e));
		if (changed != NULL)
			snprintf(changed, 512, "%s",
			    cepctl_cfg_edit_changed(e));
		rv = cepctl_cfg_edit_commit(e, err);
	}
	cepctl_cfg_edit_free(e);
	return rv;
}

static void load(cep_config *c)
{
	cep_err err = {0};
	cr_assert_eq(cep_config_load(&paths, c, &err), CEP_OK, "%s", err.msg);
}

/* No temporary file of an edit (cep.yaml.cepctl-XXXXXX) is left. */
static void assert_no_temp(void)
{
	DIR *d = opendir(paths.config);
	cr_assert_not_null(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		cr_assert_null(strstr(de->d_name, "cepctl-"), "left: %s",
		    de->d_name);
	closedir(d);
}

Test(cfg_edit, default_file_gets_a_control_plane_block, .timeout = 10)
{
	const char *def = cep_config_default_yaml();
	put(def);
	const char *want[CEPCTL_SET_N] = {0};
	want[CEPCTL_SET_CP_URL] = "https://plane.example.net:8443";
	want[CEPCTL_SET_CP_TOKEN] = "/etc/cep/credentials/cp-token";
	want[CEPCTL_SET_CP_PROXY] = "http://proxy.site:3128";
	char added[512], changed[512];
	cep_err err = {0};
	cr_assert_eq(edit(want, false, &err, added, changed), CEP_OK, "%s",
	    err.msg);
	cr_assert_str_eq(added,
	    "controlPlane.url, controlPlane.tokenFile, "
	    "controlPlane.proxy");
	cr_assert_str_eq(changed, "");
	char *text = get();
	/* the old file, comments and all, then the new block */
	cr_assert_eq(strncmp(text, def, strlen(def)), 0);
	cr_assert_str_eq(text + strlen(def),
	    "controlPlane:\n"
	    "  url: https://plane.example.net:8443\n"
	    "  tokenFile: /etc/cep/credentials/cp-token\n"
	    "  proxy: http://proxy.site:3128\n");
	free(text);
	cep_config c;
	load(&c);
	cr_assert_str_eq(c.cp.url, "https://plane.example.net:8443");
	cr_assert_str_eq(c.cp.token_file, "/etc/cep/credentials/cp-token");
	cr_assert_str_eq(c.cp.proxy, "http://proxy.site:3128");
	assert_no_temp();
}

Test(cfg_edit, same_values_change_nothing, .timeout = 10)
{
	put("relay:\n  listen: tls+tcp://0.0.0.0:7443 # mine\n"
	    "controlPlane:\n  url: https://p.example\n");
	struct stat before, after;
	cr_assert_eq(stat(cfgpath, &before), 0);
	const char *want[CEPCTL_SET_N] = {0};
	want[CEPCTL_SET_LISTEN] = "tls+tcp://0.0.0.0:7443";
	want[CEPCTL_SET_CP_URL] = "https://p.example";
	char added[512], changed[512];
	cep_err err = {0};
	cr_assert_eq(edit(want, false, &err, added, changed), CEP_OK, "%s",
	    err.msg);
	cr_assert_str_eq(added, "");
	cr_assert_str_eq(changed, "");
	cr_assert_eq(stat(cfgpath, &after), 0);
	cr_assert_eq(before.st_ino, after.st_ino, "the file was replaced");
}

Test(cfg_edit, conflict_names_the_key_and_writes_nothing, .timeout = 10)
{
	const char *text = "# mine\nrelay:\n  # where\n"
	                   "  advertise: tls+tcp://127.0.0.1:7443\n";
	put(text);
	const char *want[CEPCTL_SET_N] = {0};
	want[CEPCTL_SET_ADVERTISE] = "tls+tcp://10.0.0.5:7443";
	want[CEPCTL_SET_CP_URL] = "https://p.example"; /* would be added */
	cep_err err = {0};
	cr_assert_eq(edit(want, false, &err, NULL, NULL), CEP_INVALID_ARGUMENT);
	char where[CEP_PATH_MAX + 32];
	snprintf(where, sizeof(where), "%s:4:3: relay.advertise", cfgpath);
	assert_contains(err.msg, where);
	assert_contains(err.msg, "tls+tcp://10.0.0.5:7443");
	assert_contains(err.msg, "--relay-advertise");
	assert_contains(err.msg, "--replace-config-keys");
	char *now = get();
	cr_assert_str_eq(now, text);
	free(now);
}

Test(cfg_edit, key_added_into_its_section_keeps_comments, .timeout = 10)
{
	put("relay:\n  # where cep-relay listens\n"
	    "  listen: tls+tcp://0.0.0.0:7443\n# end\n");
	const char *want[CEPCTL_SET_N] = {0};
	want[CEPCTL_SET_ADVERTISE] = "tls+tcp://10.0.0.5:7443";
	want[CEPCTL_SET_APPLIANCE] = "lab-2";
	cep_err err = {0};
	cr_assert_eq(edit(want, false, &err, NULL, NULL), CEP_OK, "%s",
	    err.msg);
	char *text = get();
	cr_assert_str_eq(text,
	    "relay:\n"
	    "  advertise: tls+tcp://10.0.0.5:7443\n"
	    "  # where cep-relay listens\n"
	    "  listen: tls+tcp://0.0.0.0:7443\n# end\n"
	    "appliance: lab-2\n");
	free(text);
	cep_config c;
	load(&c);
	cr_assert_str_eq(c.appliance, "lab-2");
	cr_assert_str_eq(c.relay_advertise, "tls+tcp://10.0.0.5:7443");
}

Test(cfg_edit, indented_root_and_crlf, .timeout = 10)
{
	put("  relay:\r\n    listen: tls+tcp://0.0.0.0:7443\r\n");
	const char *want[CEPCTL_SET_N] = {0};
	want[CEPCTL_SET_ADVERTISE] = "tls+tcp://10.0.0.5:7443";
	want[CEPCTL_SET_DELEGATE_METRICS] = "";
	cep_err err = {0};
	cr_assert_eq(edit(want, false, &err, NULL, NULL), CEP_OK, "%s",
	    err.msg);
	cep_config c;
	load(&c);
	cr_assert_str_eq(c.relay_advertise, "tls+tcp://10.0.0.5:7443");
	cr_assert_str_eq(c.delegate_metrics, "");
	char *text = get();
	assert_contains(text, "  delegate:\n    metrics: \"\"\n");
	free(text);
}

Test(cfg_edit, comments_only_file, .timeout = 10)
{
	put("# nothing set\n#controlPlane:\n#  url: x");
	const char *want[CEPCTL_SET_N] = {0};
	want[CEPCTL_SET_CP_URL] = "https://p.example";
	cep_err err = {0};
	cr_assert_eq(edit(want, false, &err, NULL, NULL), CEP_OK, "%s",
	    err.msg);
	char *text = get();
	cr_assert_str_eq(text,
	    "# nothing set\n#controlPlane:\n#  url: x\n"
	    "controlPlane:\n  url: https://p.example\n");
	free(text);
}

Test(cfg_edit, replace_keeps_comments_and_quotes_right, .timeout = 10)
{
	put("relay:\n  listen: \"tls+tcp://0.0.0.0:7443\"   # c1\n"
	    "  advertise: 'tls+tcp://1.1.1.1:1' # it's\n"
	    "  metrics: 127.0.0.1:9464 # c3\n");
	const char *want[CEPCTL_SET_N] = {0};
	want[CEPCTL_SET_LISTEN] = "tls+tcp://0.0.0.0:8443";
	want[CEPCTL_SET_ADVERTISE] = "tls+tcp://2.2.2.2:2";
	want[CEPCTL_SET_RELAY_METRICS] = "";
	char added[512], changed[512];
	cep_err err = {0};
	cr_assert_eq(edit(want, true, &err, added, changed), CEP_OK, "%s",
	    err.msg);
	cr_assert_str_eq(added, "");
	cr_assert_str_eq(changed,
	    "relay.listen, relay.advertise, "
	    "relay.metrics");
	char *text = get();
	cr_assert_str_eq(text,
	    "relay:\n  listen: tls+tcp://0.0.0.0:8443   # c1\n"
	    "  advertise: tls+tcp://2.2.2.2:2 # it's\n"
	    "  metrics: \"\" # c3\n");
	free(text);
}

Test(cfg_edit, replace_refuses_a_value_on_its_own_line, .timeout = 10)
{
	const char *text = "relay:\n  listen:\n    tls+tcp://0.0.0.0:7443\n";
	put(text);
	const char *want[CEPCTL_SET_N] = {0};
	want[CEPCTL_SET_LISTEN] = "tls+tcp://0.0.0.0:8443";
	cep_err err = {0};
	cr_assert_neq(edit(want, true, &err, NULL, NULL), CEP_OK);
	assert_contains(err.msg, ":3:5: relay.listen: not a one-line value");
	char *now = get();
	cr_assert_str_eq(now, text);
	free(now);
}

Test(cfg_edit, flow_and_empty_sections_are_refused, .timeout = 10)
{
	const char *want[CEPCTL_SET_N] = {0};
	want[CEPCTL_SET_ADVERTISE] = "tls+tcp://10.0.0.5:7443";
	cep_err err = {0};
	put("relay: {listen: \"tls+tcp://0.0.0.0:7443\"}\n");
	cr_assert_neq(edit(want, false, &err, NULL, NULL), CEP_OK);
	assert_contains(err.msg, ":1:1: relay is not a block mapping");
	put("policy:\n  maxDuration: 1m\nrelay:\n");
	cr_assert_neq(edit(want, false, &err, NULL, NULL), CEP_OK);
	assert_contains(err.msg, ":3:1: relay has no keys");
}

Test(cfg_edit, a_result_that_would_not_load_is_not_written, .timeout = 10)
{
	const char *text = "controlPlane:\n  url: https://p.example\n"
	                   "  clientCert: c.crt\n  clientKey: c.key\n";
	put(text);
	const char *want[CEPCTL_SET_N] = {0};
	want[CEPCTL_SET_CP_TOKEN] = "/etc/cep/credentials/cp-token";
	cep_err err = {0};
	cr_assert_neq(edit(want, false, &err, NULL, NULL), CEP_OK);
	assert_contains(err.msg, "not written");
	assert_contains(err.msg, "tokenFile and clientCert exclude each other");
	char *now = get();
	cr_assert_str_eq(now, text);
	free(now);
	assert_no_temp();
	/* a file that does not load now is not edited at all */
	put("relay:\n  advertize: tls+tcp://1.2.3.4:1\n");
	want[CEPCTL_SET_CP_TOKEN] = NULL;
	want[CEPCTL_SET_CP_URL] = "https://p.example";
	cr_assert_neq(edit(want, false, &err, NULL, NULL), CEP_OK);
	assert_contains(err.msg, "unknown key 'advertize'");
	assert_contains(err.msg, "does not load; fix it first");
}

Test(cfg_edit, mode_is_kept, .timeout = 10)
{
	put("appliance: a1\n");
	cr_assert_eq(chmod(cfgpath, 0640), 0);
	const char *want[CEPCTL_SET_N] = {0};
	want[CEPCTL_SET_CP_URL] = "https://p.example";
	cep_err err = {0};
	cr_assert_eq(edit(want, false, &err, NULL, NULL), CEP_OK, "%s",
	    err.msg);
	struct stat st;
	cr_assert_eq(stat(cfgpath, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0640);
}
