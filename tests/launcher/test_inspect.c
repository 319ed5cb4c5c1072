/*
 * test_inspect.c - the launcher's Inspect call (launcher/inspect.c,
 * check.c): every field refused by name, the facts over real ipc (a
 * process's comm, a namespace's identity, a filesystem's figures and the
 * path with symlinks resolved), a path under a pid's root that cannot
 * walk out of it, a FIFO given as a namespace that is not opened, and the
 * peer uid gate.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launcher.h"
#include "launcherfix.h"
#include "rpc.h"
#include "testutil.h"
#include "clock.h"
#include "files.h"
#include "procfs.h"

static const char fake_runner[] = "#!/bin/sh\nexit 0\n";

static cep_test_launcher T;

static void start(uid_t allow)
{
	cep_test_launcher_start(&T, allow, false);
}

static void setup(void)
{
	cep_test_launcher_setup(&T, "inspect", fake_runner);
}

static void teardown(void)
{
	cep_test_launcher_teardown(&T);
}

TestSuite(inspect, .init = setup, .fini = teardown, .timeout = 60);

static ProtobufCBinaryData text(const char *s)
{
	ProtobufCBinaryData b = {strlen(s), (uint8_t *)s};
	return b;
}

static void refused(Cep__V1__LauncherInspect *q, const char *field)
{
	cep_err err = {0};
	cr_assert_eq(launcher_check_inspect(q, &err), CEP_INVALID_ARGUMENT,
	    "%s accepted", field);
	cr_assert(strstr(err.msg, field) != NULL, "\"%s\" not in \"%s\"", field,
	    err.msg);
}

Test(inspect, check_refuses_each_bad_field)
{
	Cep__V1__LauncherInspect q = CEP__V1__LAUNCHER_INSPECT__INIT;
	cep_err err = {0};
	cr_assert_eq(launcher_check_inspect(&q, &err), CEP_OK,
	    "nothing "
	    "asked is fine: %s",
	    err.msg);
	q.pid = 4194304;
	q.netns = true;
	q.path = text("/var/lib");
	cr_assert_eq(launcher_check_inspect(&q, &err), CEP_OK, "%s", err.msg);
	q.pid = -1;
	refused(&q, "pid");
	q.pid = 4194305;
	refused(&q, "pid");
	q.pid = 0;
	q.netns_name = text("blue");
	cr_assert_eq(launcher_check_inspect(&q, &err), CEP_OK, "%s", err.msg);
	q.netns_name = text("/run/netns/blue");
	cr_assert_eq(launcher_check_inspect(&q, &err), CEP_OK, "%s", err.msg);
	q.netns_name = text("");
	refused(&q, "netns_name"); /* netns asked of nothing */
	const char *bad_names[] = {"..", ".", "a/b", NULL};
	for (size_t i = 0; bad_names[i] != NULL; i++) {
		q.netns_name = text(bad_names[i]);
		refused(&q, "netns_name");
	}
	static const uint8_t nul_name[] = {'b', 0, 'x'};
	q.netns_name.data = (uint8_t *)nul_name;
	q.netns_name.len = sizeof(nul_name);
	refused(&q, "netns_name");
	q.netns_name = text("blue");
	q.pid = 42;
	refused(&q, "netns_name"); /* a pid's namespace is the pid's */
	q.pid = 0;
	q.netns = false;
	refused(&q, "netns_name"); /* a name without netns asked */
	q.netns_name = text("");
	q.path = text("var/lib");
	refused(&q, "path");
	static const uint8_t nul_path[] = {'/', 't', 'm', 'p', 0, '/', 'x'};
	q.path.data = (uint8_t *)nul_path;
	q.path.len = sizeof(nul_path);
	refused(&q, "path");
	static char longp[CEP_LAUNCHER_MAX_PATH + 2];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	q.path = text(longp);
	refused(&q, "path");
}

static int inspect(Cep__V1__LauncherInspect *q, Cep__V1__LauncherFacts **f,
    cep_err *err)
{
	ProtobufCMessage *out = NULL;
	int rv = cep_rpc_invoke(T.C, "cep.v1.Launcher/Inspect", &q->base,
	    &cep__v1__launcher_facts__descriptor, &out, 5000, err);
	*f = (Cep__V1__LauncherFacts *)out;
	return rv;
}

static void facts_free(Cep__V1__LauncherFacts *f)
{
	protobuf_c_message_free_unpacked(&f->base, NULL);
}

/* A pid that does not exist (nothing is at pid_max-ish values here). */
static int32_t free_pid(void)
{
	for (int32_t p = 4194000; p > 4000000; p--)
		if (kill(p, 0) != 0 && errno == ESRCH)
			return p;
	cr_assert_fail("no free pid");
	return 0;
}

Test(inspect, a_process_its_namespace_and_a_filesystem)
{
	start(getuid());
	pid_t child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		execlp("sleep", "sleep", "30", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) { /* until the exec shows */
		char comm[64] = "";
		if (cep_procfs_info(child, comm, sizeof(comm), NULL) &&
		    strcmp(comm, "sleep") == 0)
			break;
		cep_clock_sleep_ms(10);
	}
	char link[4200], target[4200];
	snprintf(link, sizeof(link), "%s/via-link", T.dir);
	cr_assert_eq(symlink(T.dir, link), 0);
	Cep__V1__LauncherInspect q = CEP__V1__LAUNCHER_INSPECT__INIT;
	q.pid = child;
	q.netns = true;
	Cep__V1__LauncherFacts *f = NULL;
	cep_err err = {0};
	cr_assert_eq(inspect(&q, &f, &err), CEP_OK, "%s", err.msg);
	cr_expect(f->exists);
	cr_expect_str_eq(f->comm, "sleep");
	struct stat st;
	cr_assert_eq(stat("/proc/self/ns/net", &st), 0);
	cr_expect_eq(f->netns_dev, (uint64_t)st.st_dev);
	cr_expect_eq(f->netns_ino, (uint64_t)st.st_ino);
	cr_expect(f->netns_host, "our namespace is the launcher's own");
	cr_expect_str_eq(f->netns_error, "");
	facts_free(f);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);

	Cep__V1__LauncherInspect p = CEP__V1__LAUNCHER_INSPECT__INIT;
	p.path = text(link);
	cr_assert_eq(inspect(&p, &f, &err), CEP_OK, "%s", err.msg);
	struct statvfs sv;
	cr_assert_eq(statvfs(T.dir, &sv), 0);
	cr_expect_eq(f->path_errno, 0);
	cr_expect_eq(f->f_blocks, sv.f_blocks);
	cr_expect_eq(f->f_frsize, sv.f_frsize);
	cr_assert(realpath(T.dir, target) != NULL);
	cr_expect_str_eq(f->real_path, target, "symlinks resolved");
	facts_free(f);
}

Test(inspect, what_is_not_there_is_said_per_field)
{
	start(getuid());
	Cep__V1__LauncherInspect q = CEP__V1__LAUNCHER_INSPECT__INIT;
	q.pid = free_pid();
	Cep__V1__LauncherFacts *f = NULL;
	cep_err err = {0};
	cr_assert_eq(inspect(&q, &f, &err), CEP_OK, "%s", err.msg);
	cr_expect_not(f->exists);
	cr_expect_str_eq(f->comm, "");
	facts_free(f);

	Cep__V1__LauncherInspect n = CEP__V1__LAUNCHER_INSPECT__INIT;
	n.netns = true;
	n.netns_name = text("cep-inspect-no-such-ns");
	n.path = text("/cep-inspect/no/such/dir");
	cr_assert_eq(inspect(&n, &f, &err), CEP_OK, "%s", err.msg);
	cr_expect(strstr(f->netns_error, "/run/netns/cep-inspect-no-such-ns") !=
	        NULL,
	    "%s", f->netns_error);
	cr_expect_neq(f->netns_code, CEP_OK);
	cr_expect_eq(f->path_errno, ENOENT);
	cr_expect_eq(f->f_blocks, 0);
	facts_free(f);
}

/* A FIFO given as a namespace path: never opened for reading (which
 * would block the launcher until a writer came). */
Test(inspect, a_fifo_is_not_a_namespace_and_is_not_opened, .timeout = 10)
{
	start(getuid());
	char fifo[4200];
	snprintf(fifo, sizeof(fifo), "%s/fifo", T.dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	Cep__V1__LauncherInspect q = CEP__V1__LAUNCHER_INSPECT__INIT;
	q.netns = true;
	q.netns_name = text(fifo);
	Cep__V1__LauncherFacts *f = NULL;
	cep_err err = {0};
	cr_assert_eq(inspect(&q, &f, &err), CEP_OK, "%s", err.msg);
	cr_expect(strstr(f->netns_error, "is not a network namespace") != NULL,
	    "%s", f->netns_error);
	facts_free(f);
}

/* A process in <dir>/jail (chroot; as non-root inside a user namespace of
 * its own): paths are resolved in its root, and neither ".." nor an
 * absolute symlink walks out of it. */
static pid_t jailed(const char *jail)
{
	int ready[2];
	cr_assert_eq(pipe(ready), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if ((geteuid() != 0 && unshare(CLONE_NEWUSER) != 0) ||
		    chroot(jail) != 0 || chdir("/") != 0)
			_exit(1);
		(void)!write(ready[1], "1", 1);
		pause();
		_exit(0);
	}
	char c = 0;
	close(ready[1]);
	cr_assert_eq(read(ready[0], &c, 1), 1, "the jailed child failed");
	close(ready[0]);
	return pid;
}

Test(inspect, a_path_under_a_pids_root_stays_in_it)
{
	start(getuid());
	char jail[4200], inner[4300], esc[4300];
	snprintf(jail, sizeof(jail), "%s/jail", T.dir);
	snprintf(inner, sizeof(inner), "%s/data", jail);
	snprintf(esc, sizeof(esc), "%s/escape", jail);
	cep_err err = {0};
	cr_assert_eq(cep_files_mkdirs(inner, 0755, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(symlink("/etc", esc), 0);
	pid_t pid = jailed(jail);
	static const char *const cases[][2] = {
	    {"/data", "0"},                 /* inside: there */
	    {"/etc", "ENOENT"},             /* the host's, not the jail's */
	    {"/../../../../etc", "ENOENT"}, /* ".." stops at the jail's root */
	    {"/escape", "ENOENT"},          /* -> "/etc" inside the jail */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Cep__V1__LauncherInspect q = CEP__V1__LAUNCHER_INSPECT__INIT;
		q.pid = pid;
		q.path = text(cases[i][0]);
		Cep__V1__LauncherFacts *f = NULL;
		cr_assert_eq(inspect(&q, &f, &err), CEP_OK, "%s", err.msg);
		int want = strcmp(cases[i][1], "0") == 0 ? 0 : ENOENT;
		cr_expect_eq(f->path_errno, want, "%s: errno %d", cases[i][0],
		    (int)f->path_errno);
		cr_expect_str_eq(f->real_path, "", "no host path under a pid");
		facts_free(f);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* The walk used where openat2 is missing (systemd-nspawn 252's seccomp
 * filter answers ENOSYS): the same answers as RESOLVE_IN_ROOT. */
Test(inspect, the_walk_without_openat2_stays_in_its_root)
{
	char jail[4200], p[4300];
	snprintf(jail, sizeof(jail), "%s/jail", T.dir);
	snprintf(p, sizeof(p), "%s/data/deep", jail);
	cep_err err = {0};
	cr_assert_eq(cep_files_mkdirs(p, 0755, &err), CEP_OK, "%s", err.msg);
	static const char *const links[][2] = {{"escape", "/etc"},
	    {"up", "../../../.."}, {"in", "/data"}, {"loop", "loop"},
	    {"data/deep/back", "../../in/deep"}};
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", jail, links[i][0]);
		cr_assert_eq(symlink(links[i][1], p), 0, "%s", p);
	}
	struct stat want;
	snprintf(p, sizeof(p), "%s/data/deep", jail);
	cr_assert_eq(stat(p, &want), 0);
	int root = open(jail, O_PATH | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(root, 0);
	static const struct {
		const char *path;
		int err;
		bool deep;
	} cases[] = {
	    {"/data/deep", 0, true},
	    {"/in/deep", 0, true},        /* absolute link: in the root */
	    {"/data/deep/back", 0, true}, /* relative link, then "in" */
	    {"/data/./deep/", 0, true},
	    {"/etc", ENOENT, false},
	    {"/../../../../etc", ENOENT, false},
	    {"/escape", ENOENT, false}, /* -> "/etc" inside the root */
	    {"/up/etc", ENOENT, false}, /* "../../.." stops at the root */
	    {"/loop", ELOOP, false},
	    {"/data/deep/none/x", ENOENT, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		errno = 0;
		int fd = launcher_walk(root, cases[i].path);
		int e = fd < 0 ? errno : 0;
		cr_expect_eq(e, cases[i].err, "%s: errno %d", cases[i].path, e);
		struct stat st;
		if (fd >= 0 && cases[i].deep) {
			cr_expect_eq(fstat(fd, &st), 0);
			cr_expect(st.st_ino == want.st_ino &&
			        st.st_dev == want.st_dev,
			    "%s: not data/deep", cases[i].path);
		}
		if (fd >= 0)
			close(fd);
	}
	close(root);
}

Test(inspect, refused_over_the_wire_by_field_and_by_peer)
{
	start(getuid());
	Cep__V1__LauncherInspect q = CEP__V1__LAUNCHER_INSPECT__INIT;
	q.path = text("relative/path");
	Cep__V1__LauncherFacts *f = NULL;
	cep_err err = {0};
	cr_assert_eq(inspect(&q, &f, &err), CEP_INVALID_ARGUMENT);
	cr_expect(strstr(err.msg, "path: not absolute") != NULL, "%s", err.msg);
	launcher_free(T.L);
	T.L = NULL;
	start(getuid() + 1);
	q.path = text("/");
	cr_assert_eq(inspect(&q, &f, &err), CEP_PERMISSION_DENIED, "%s",
	    err.msg);
	cr_expect(strstr(err.msg, "uid") != NULL, "%s", err.msg);
}
