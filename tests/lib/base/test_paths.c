/* test_paths.c - an appliance's home: its paths and socket URLs. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "paths.h"

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "\"%s\" lacks \"%s\"", (s), (sub))

Test(paths, with_home)
{
	cep_paths p;
	cep_err err = {0};
	cr_assert_eq(cep_paths_resolve("/srv/cep-a/", &p, &err), CEP_OK);
	cr_assert_str_eq(p.config, "/srv/cep-a/config");
	cr_assert_str_eq(p.pki, "/srv/cep-a/pki");
	cr_assert_str_eq(p.state, "/srv/cep-a/state");
	cr_assert_str_eq(p.run, "/srv/cep-a/run");
	/* relative homes become absolute: sockets and children need that */
	cr_assert_eq(cep_paths_resolve("rel/home", &p, &err), CEP_OK);
	char cwd[CEP_PATH_MAX], want[CEP_PATH_MAX + 32];
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	snprintf(want, sizeof(want), "%s/rel/home/run", cwd);
	cr_assert_str_eq(p.run, want);
}

Test(paths, from_env_and_fhs)
{
	cep_paths p;
	cep_err err = {0};
	setenv("CEP_HOME", "/opt/appl", 1);
	cr_assert_eq(cep_paths_resolve(NULL, &p, &err), CEP_OK);
	cr_assert_str_eq(p.config, "/opt/appl/config");
	cr_assert_str_eq(p.run, "/opt/appl/run");
	/* an explicit home wins over the environment */
	cr_assert_eq(cep_paths_resolve("/x", &p, &err), CEP_OK);
	cr_assert_str_eq(p.pki, "/x/pki");
	cr_assert_str_eq(p.ca_cert, "/x/pki/ca.crt");
	cr_assert_str_eq(p.relay_pki, "/x/pki"); /* one user: one folder */
	unsetenv("CEP_HOME");
	cr_assert_eq(cep_paths_resolve(NULL, &p, &err), CEP_OK);
	cr_assert_str_eq(p.config, "/etc/cep");
	/* installed: the CA is cep-signer's; its certificate is public */
	cr_assert_str_eq(p.pki, "/var/lib/cep-signer");
	cr_assert_str_eq(p.ca_cert, "/etc/cep/ca.crt");
	/* installed: the relay's own folder, never the CA key's */
	cr_assert_str_eq(p.relay_pki, "/etc/cep/relay");
	cr_assert_str_eq(p.state, "/var/lib/cep");
	cr_assert_str_eq(p.run, "/run/cep");
	setenv("CEP_HOME", "", 1);
	cr_assert_eq(cep_paths_resolve(NULL, &p, &err), CEP_OK);
	cr_assert_str_eq(p.run, "/run/cep");
	unsetenv("CEP_HOME");
}

Test(paths, socket_urls_and_length_limit)
{
	cep_paths p;
	cep_err err = {0};
	char url[256];
	cr_assert_eq(cep_paths_resolve("/tmp/h", &p, &err), CEP_OK);
	cr_assert_eq(cep_paths_url(&p, "admin.sock", url, sizeof(url), &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_str_eq(url, "ipc:///tmp/h/run/admin.sock");
	/* 107 bytes of path fit in sun_path, 108 do not */
	char home[200];
	memset(home, 0, sizeof(home));
	home[0] = '/';
	/* "/<a...>" + "/run/" + "x.sock" (6) */
	size_t fill = 107 - strlen("/run/") - strlen("x.sock") - 1;
	memset(home + 1, 'a', fill);
	cr_assert_eq(cep_paths_resolve(home, &p, &err), CEP_OK);
	cr_assert_eq(cep_paths_url(&p, "x.sock", url, sizeof(url), &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(strlen(url), strlen("ipc://") + 107);
	home[fill + 1] = 'a';
	cr_assert_eq(cep_paths_resolve(home, &p, &err), CEP_OK);
	cr_assert_eq(cep_paths_url(&p, "x.sock", url, sizeof(url), &err),
	    CEP_INVALID_ARGUMENT);
	assert_contains(err.msg,
	    "is 108 bytes; unix socket paths are limited "
	    "to 107 bytes");
	/* the URL buffer is checked too, and names must be plain */
	cr_assert_eq(cep_paths_resolve("/tmp/h", &p, &err), CEP_OK);
	cr_assert_neq(cep_paths_url(&p, "admin.sock", url, 10, &err), CEP_OK);
	cr_assert_eq(cep_paths_url(&p, "../x.sock", url, sizeof(url), &err),
	    CEP_INVALID_ARGUMENT);
}

Test(paths, beside_self_is_in_the_test_programs_folder)
{
	char dir[CEP_PATH_MAX], runner[CEP_PATH_MAX], small[8];
	cep_err err = {0};
	cr_assert_eq(cep_paths_beside_self(NULL, dir, sizeof(dir), &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(cep_paths_beside_self("cep-runner", runner, sizeof(runner),
	                 &err),
	    CEP_OK, "%s", err.msg);
	cr_expect_eq(dir[0], '/');
	cr_expect(strncmp(runner, dir, strlen(dir)) == 0, "%s vs %s", runner,
	    dir);
	cr_expect_str_eq(runner + strlen(dir), "/cep-runner");
	/* the folder of this very program: it is in there */
	char self[CEP_PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	cr_assert_gt(n, 0);
	self[n] = '\0';
	cr_expect(strncmp(self, dir, strlen(dir)) == 0 &&
	        self[strlen(dir)] == '/',
	    "%s not in %s", self, dir);
	cr_expect_neq(cep_paths_beside_self("cep-runner", small, sizeof(small),
	                  &err),
	    CEP_OK, "a result that does not fit is an error");
}
