/*
 * test_launcher.c - cep-launcher's core: request checks (check.c), and the
 * Launcher service over real ipc with a stand-in cep-runner (a shell
 * script of that name): launch, poll, signal, undo, cleanup, the peer uid
 * check, adoption by a restarted launcher, and - as root - the runner's
 * capability sets in /proc.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caps.h"
#include "launcher.h"
#include "launcherfix.h"
#include "rpc.h"
#include "runproc.h"
#include "testutil.h"
#include "clock.h"
#include "files.h"
#include "procfs.h"

#define RUN "r-0123456789abcdef"
#define PEM "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

/* A stand-in runner: sleeps (its command line names the run), or in
 * cleanup mode reports every record of the file undone. */
static const char fake_runner[] =
    "#!/bin/sh\n"
    "if [ \"$1\" = --cleanup ]; then\n"
    "  printf '{\"undone\":[\"f1\"],\"failed\":{}}' > \"$6\"\n"
    "  exit 0\n"
    "fi\n"
    "trap 'exit 0' TERM\n"
    "sleep 30 &\n"
    "wait\n";

static cep_test_launcher T;

static void start(uid_t allow)
{
	cep_test_launcher_start(&T, allow, geteuid() == 0);
}

static void setup(void)
{
	cep_test_launcher_setup(&T, "launcher", fake_runner);
}

static void teardown(void)
{
	cep_test_launcher_teardown(&T);
}

TestSuite(launcher, .init = setup, .fini = teardown, .timeout = 60);

static Cep__V1__LaunchRequest request(char **types, size_t n)
{
	Cep__V1__LaunchRequest r = CEP__V1__LAUNCH_REQUEST__INIT;
	r.run_id = (char *)RUN;
	r.fault_types = types;
	r.n_fault_types = n;
	r.relay_url = (char *)"tls+tcp://127.0.0.1:7443";
	r.server_name = (char *)"localhost";
	r.ca_pem = r.cert_pem = r.key_pem = (char *)PEM;
	r.deadline_ms = cep_clock_now_ms() + 60000;
	return r;
}

/* ---- checks ---- */

Test(launcher, check_launch_accepts_and_computes_caps)
{
	char *types[] = {"network-loss", "cpu-hog"};
	Cep__V1__LaunchRequest r = request(types, 2);
	unsigned caps = 0;
	cep_err err = {0};
	cr_assert_eq(launcher_check_launch(&r, &caps, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(caps,
	    CEP_CAP_NET_ADMIN | CEP_CAP_SYS_ADMIN | CEP_CAP_SYS_PTRACE |
	        CEP_CAP_DAC_OVERRIDE);
	r.n_fault_types = 0;
	cr_assert_eq(launcher_check_launch(&r, &caps, &err), CEP_OK);
	cr_assert_eq(caps, 0, "no fault, no capability");
}

static void refused(Cep__V1__LaunchRequest *r, int code, const char *field)
{
	unsigned caps = 99;
	cep_err err = {0};
	cr_assert_eq(launcher_check_launch(r, &caps, &err), code, "%s: %s",
	    field, err.msg);
	cr_assert(strstr(err.msg, field) != NULL, "\"%s\" not in \"%s\"", field,
	    err.msg);
}

Test(launcher, check_launch_refuses_each_bad_field)
{
	char *types[] = {"network-loss"},
	     *bad_types[] = {"network-loss", "format-disk"};
	Cep__V1__LaunchRequest r = request(bad_types, 2);
	refused(&r, CEP_PERMISSION_DENIED, "fault_types");
	r = request(types, 1);
	r.run_id = (char *)"../../etc";
	refused(&r, CEP_INVALID_ARGUMENT, "run_id");
	r = request(types, 1);
	r.relay_url = (char *)"tcp://127.0.0.1:7443";
	refused(&r, CEP_INVALID_ARGUMENT, "relay_url");
	r.relay_url = (char *)"--help";
	refused(&r, CEP_INVALID_ARGUMENT, "relay_url");
	r.relay_url = (char *)"tls+tcp://a b";
	refused(&r, CEP_INVALID_ARGUMENT, "relay_url");
	r = request(types, 1);
	r.server_name = (char *)"-x";
	refused(&r, CEP_INVALID_ARGUMENT, "server_name");
	r = request(types, 1);
	r.key_pem = (char *)"not a key";
	refused(&r, CEP_INVALID_ARGUMENT, "key_pem");
	char *big = malloc(CEP_LAUNCHER_MAX_PEM + 100);
	memset(big, 'A', CEP_LAUNCHER_MAX_PEM + 99);
	memcpy(big, "-----BEGIN ", 11);
	big[CEP_LAUNCHER_MAX_PEM + 99] = '\0';
	r.key_pem = big;
	refused(&r, CEP_INVALID_ARGUMENT, "key_pem");
	free(big);
	r = request(types, 1);
	r.deadline_ms = cep_clock_now_ms() - 1;
	refused(&r, CEP_INVALID_ARGUMENT, "deadline_ms");
	r = request(types, 1);
	r.cp_proxy = (char *)"http://proxy:3128";
	refused(&r, CEP_INVALID_ARGUMENT, "cp_url");
	r.cp_url = (char *)"http://plane";
	refused(&r, CEP_INVALID_ARGUMENT, "cp_url");
	r.cp_url = (char *)"https://plane";
	r.cp_proxy = (char *)"socks5://proxy";
	refused(&r, CEP_INVALID_ARGUMENT, "cp_proxy");
}

static int cleanup_check(const char *run, const char *js, unsigned *caps,
    cep_err *err)
{
	Cep__V1__LauncherCleanup q = CEP__V1__LAUNCHER_CLEANUP__INIT;
	q.run_id = (char *)run;
	q.records_json = (char *)js;
	return launcher_check_cleanup(&q, caps, err);
}

#define REC(run, mech)                                                \
	"{\"run_id\":\"" run "\",\"fault_id\":\"f1\","                \
	"\"type\":\"t\",\"target\":\"x\",\"mechanism\":\"" mech "\"," \
	"\"undo\":\"{}\"}"

Test(launcher, check_cleanup)
{
	unsigned caps = 0;
	cep_err err = {0};
	cr_assert_eq(cleanup_check(RUN,
	                 "[" REC(RUN, "nftables") "," REC(RUN, "disk-fill") "]",
	                 &caps, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(caps,
	    CEP_CAP_NET_ADMIN | CEP_CAP_SYS_ADMIN | CEP_CAP_SYS_PTRACE |
	        CEP_CAP_DAC_OVERRIDE);
	cr_assert_eq(cleanup_check(RUN, "[]", &caps, &err), CEP_OK);
	cr_assert_eq(caps, 0);
	cr_assert_eq(cleanup_check(RUN,
	                 "[" REC("r-ffffffffffffffff", "nftables") "]", &caps,
	                 &err),
	    CEP_PERMISSION_DENIED);
	cr_assert_eq(caps, 0);
	cr_assert_eq(cleanup_check(RUN, "[" REC(RUN, "k8s-scale") "]", &caps,
	                 &err),
	    CEP_NOT_FOUND);
	cr_assert_eq(cleanup_check(RUN, "{}", &caps, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cleanup_check(RUN, "[1]", &caps, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cleanup_check(RUN, "[{\"run_id\":\"" RUN "\"}]", &caps,
	                 &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cleanup_check("x", "[]", &caps, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cleanup_check(RUN, "", &caps, &err), CEP_INVALID_ARGUMENT);
}

/* ---- the service ---- */

static int launch(char **types, size_t n, Cep__V1__LaunchReply **rep,
    cep_err *err)
{
	Cep__V1__LaunchRequest r = request(types, n);
	return cep_rpc_invoke(T.C, "cep.v1.Launcher/Launch", &r.base,
	    &cep__v1__launch_reply__descriptor, (ProtobufCMessage **)rep, 10000,
	    err);
}

static bool poll_alive(char *how, size_t len)
{
	Cep__V1__LauncherRun q = CEP__V1__LAUNCHER_RUN__INIT;
	q.run_id = (char *)RUN;
	Cep__V1__LauncherPollReply *rep = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_rpc_invoke(T.C, "cep.v1.Launcher/Poll", &q.base,
	                 &cep__v1__launcher_poll_reply__descriptor,
	                 (ProtobufCMessage **)&rep, 5000, &err),
	    CEP_OK, "%s", err.msg);
	bool alive = rep->alive;
	snprintf(how, len, "%s", rep->how);
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	return alive;
}

static int call(const char *method, const ProtobufCMessage *req, cep_err *err)
{
	return cep_rpc_invoke(T.C, method, req, NULL, NULL, 10000, err);
}

static uint64_t status_hex(int pid, const char *field)
{
	char path[64], data[8192];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r"); /* procfs: no size to read by */
	cr_assert_not_null(f);
	size_t n = fread(data, 1, sizeof(data) - 1, f);
	fclose(f);
	data[n] = '\0';
	const char *p = strstr(data, field);
	cr_assert_not_null(p, "%s", field);
	return strtoull(p + strlen(field) + 1, NULL, 16);
}

Test(launcher, launch_poll_signal_undo)
{
	start(getuid());
	char *types[] = {"network-loss", "process-kill"};
	Cep__V1__LaunchReply *rep = NULL;
	cep_err err = {0};
	cr_assert_eq(launch(types, 2, &rep, &err), CEP_OK, "%s", err.msg);
	int pid = rep->pid;
	cr_assert_gt(pid, 1);
	cr_assert_eq(rep->start, cep_procfs_start_time(pid));
	cr_assert_str_eq(rep->caps, "NET_ADMIN,SYS_ADMIN,SYS_PTRACE,KILL");
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	if (geteuid() == 0) {
		uint64_t want = cep_caps_linux_mask(CEP_CAP_NET_ADMIN |
		    CEP_CAP_SYS_ADMIN | CEP_CAP_SYS_PTRACE | CEP_CAP_KILL);
		for (int i = 0; i < 50 && status_hex(pid, "CapBnd:") != want;
		     i++)
			cep_clock_sleep_ms(20); /* until execv happened */
		cr_assert_eq(status_hex(pid, "CapEff:"), want);
		cr_assert_eq(status_hex(pid, "CapBnd:"), want);
		cr_assert_eq(status_hex(pid, "CapAmb:"), want);
	}
	char key[4300];
	struct stat st;
	snprintf(key, sizeof(key), "%s/" RUN "/identity/runner.key", T.runs);
	cr_assert_eq(stat(key, &st), 0, "the identity is written");
	cr_assert_eq(st.st_mode & 0777, 0600);
	char how[128];
	cr_assert(poll_alive(how, sizeof(how)));
	cr_assert_eq(launch(types, 2, &rep, &err), CEP_ALREADY_EXISTS);

	Cep__V1__LauncherSignal sig = CEP__V1__LAUNCHER_SIGNAL__INIT;
	sig.run_id = (char *)RUN;
	sig.sig = CEP__V1__LAUNCHER_SIGNAL__SIG__KILL;
	cr_assert_eq(call("cep.v1.Launcher/Signal", &sig.base, &err), CEP_OK);
	bool alive = true;
	for (int i = 0; i < 100 && (alive = poll_alive(how, sizeof(how))); i++)
		cep_clock_sleep_ms(20);
	cr_assert(!alive);
	cr_assert_str_eq(how, "signal 9");

	Cep__V1__LauncherRun q = CEP__V1__LAUNCHER_RUN__INIT;
	q.run_id = (char *)RUN;
	cr_assert_eq(call("cep.v1.Launcher/Undo", &q.base, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_neq(stat(key, &st), 0, "undo removes the identity");
	cr_assert_eq(launcher_nruns(T.L), 0);
}

Test(launcher, undo_kills_every_process_of_the_run)
{
	start(getuid());
	Cep__V1__LaunchReply *rep = NULL;
	cep_err err = {0};
	cr_assert_eq(launch(NULL, 0, &rep, &err), CEP_OK, "%s", err.msg);
	cr_assert_str_eq(rep->caps, "");
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	for (int i = 0;
	     i < 50 && cep_runproc_scan(RUN, CEP_RUNPROC_RUNNER, 0, NULL) < 1;
	     i++)
		cep_clock_sleep_ms(20);
	Cep__V1__LauncherRun q = CEP__V1__LAUNCHER_RUN__INIT;
	q.run_id = (char *)RUN;
	cr_assert_eq(call("cep.v1.Launcher/Undo", &q.base, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(cep_runproc_scan(RUN, CEP_RUNPROC_RUNNER, 0, NULL), 0);
}

Test(launcher, unknown_fault_type_is_refused_over_the_wire)
{
	start(getuid());
	char *types[] = {"network-loss", "reboot"};
	Cep__V1__LaunchReply *rep = NULL;
	cep_err err = {0};
	cr_assert_eq(launch(types, 2, &rep, &err), CEP_PERMISSION_DENIED);
	cr_assert(strstr(err.msg, "reboot") != NULL, "%s", err.msg);
	cr_assert_eq(launcher_nruns(T.L), 0, "nothing started");
}

Test(launcher, other_peer_uid_is_refused)
{
	start(getuid() + 1);
	char *types[] = {"cpu-hog"};
	Cep__V1__LaunchReply *rep = NULL;
	cep_err err = {0};
	cr_assert_eq(launch(types, 1, &rep, &err), CEP_PERMISSION_DENIED);
	cr_assert(strstr(err.msg, "uid") != NULL, "%s", err.msg);
	Cep__V1__LauncherRun q = CEP__V1__LAUNCHER_RUN__INIT;
	q.run_id = (char *)RUN;
	cr_assert_eq(call("cep.v1.Launcher/Undo", &q.base, &err),
	    CEP_PERMISSION_DENIED);
	cr_assert_eq(launcher_nruns(T.L), 0);
}

Test(launcher, cleanup_runs_the_cleanup_runner_and_reports)
{
	start(getuid());
	Cep__V1__LauncherCleanup q = CEP__V1__LAUNCHER_CLEANUP__INIT;
	q.run_id = (char *)RUN;
	q.records_json = (char *)"[" REC(RUN, "nftables") "]";
	Cep__V1__LauncherCleanupReply *rep = NULL;
	cep_err err = {0};
	bool done = false;
	for (int i = 0; i < 200 && !done; i++) {
		cr_assert_eq(cep_rpc_invoke(T.C, "cep.v1.Launcher/Cleanup",
		                 &q.base,
		                 &cep__v1__launcher_cleanup_reply__descriptor,
		                 (ProtobufCMessage **)&rep, 5000, &err),
		    CEP_OK, "%s", err.msg);
		done = rep->done;
		if (done) {
			cr_assert_eq(rep->code, CEP_OK, "%s", rep->error);
			cr_assert_eq(rep->n_undone, 1);
			cr_assert_str_eq(rep->undone[0], "f1");
		}
		protobuf_c_message_free_unpacked(&rep->base, NULL);
		if (!done)
			cep_clock_sleep_ms(20);
	}
	cr_assert(done, "the cleanup never ended");
	cr_assert_eq(launcher_nruns(T.L), 0, "a finished cleanup is forgotten");
	q.records_json = (char *)"[" REC(RUN, "signal") "]";
	cr_assert_eq(cep_rpc_invoke(T.C, "cep.v1.Launcher/Cleanup", &q.base,
	                 &cep__v1__launcher_cleanup_reply__descriptor,
	                 (ProtobufCMessage **)&rep, 5000, &err),
	    CEP_NOT_FOUND);
}

Test(launcher, restarted_launcher_adopts_its_runners)
{
	start(getuid());
	Cep__V1__LaunchReply *rep = NULL;
	cep_err err = {0};
	cr_assert_eq(launch(NULL, 0, &rep, &err), CEP_OK, "%s", err.msg);
	int pid = rep->pid;
	int64_t st = rep->start;
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	/* once it has exec'd (its command line names the run) */
	for (int i = 0;
	     i < 100 && cep_runproc_scan(RUN, CEP_RUNPROC_RUNNER, 0, NULL) < 1;
	     i++)
		cep_clock_sleep_ms(20);
	launcher_free(T.L); /* a crash, as far as the runner knows */
	T.L = NULL;
	start(getuid());
	cr_assert_eq(launcher_nruns(T.L), 1, "the runner was not adopted");
	char key[4300];
	struct stat sb;
	snprintf(key, sizeof(key), "%s/" RUN "/identity/runner.key", T.runs);
	cr_assert_eq(stat(key, &sb), 0, "a live runner keeps its identity");
	char how[128];
	cr_assert(poll_alive(how, sizeof(how)));
	/* a pid + start time the launcher was told, not its own */
	Cep__V1__LauncherRun q = CEP__V1__LAUNCHER_RUN__INIT;
	q.run_id = (char *)RUN;
	q.pid = pid;
	q.start = st;
	cr_assert_eq(call("cep.v1.Launcher/Undo", &q.base, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert(!poll_alive(how, sizeof(how)));
	(void)waitpid(pid, NULL, 0); /* our child all along */
}

Test(launcher, restart_removes_identities_of_gone_runners)
{
	char id[4300], key[4400];
	snprintf(id, sizeof(id), "%s/r-00000000000000aa/identity", T.runs);
	snprintf(key, sizeof(key), "%s/runner.key", id);
	cep_err err = {0};
	cr_assert_eq(cep_files_mkdirs(id, 0700, &err), CEP_OK);
	cr_assert_eq(cep_files_write(key, PEM, strlen(PEM), 0600, &err),
	    CEP_OK);
	start(getuid());
	struct stat sb;
	cr_assert_neq(stat(key, &sb), 0, "the stale key stayed");
}
