/*
 * test_faults.c - the fault backends, observed in /proc: hog workers
 * appear, burn CPU or hold memory, and are gone after revert or after the
 * runner dies; process-kill really kills what it matches and nothing it
 * must not touch.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fault.h"
#include "rt.h"
#include "clock.h"

static rt_sink S;
static void setup(void)
{
	rt_sink_open(&S);
}
static void teardown(void)
{
	rt_sink_close(&S);
}
TestSuite(faults, .init = setup, .fini = teardown, .timeout = 60);

#define EXP_HEAD                                                          \
	"apiVersion: cep.io/v1\nkind: Experiment\nmetadata:\n  name: t\n" \
	"spec:\n  duration: 30s\n  faults:\n"

/* Injects the experiment's first fault; returns its state. */
static void *inject(const cep_exp *e, const cep_fault_ops **ops)
{
	const cep_exp_item *it = cep_exp_fault(e, 0);
	*ops = runner_fault_find(cep_exp_item_type(it));
	cr_assert_not_null(*ops);
	cep_fault_ctx ctx = {.sink = S.sink, .fault_id = cep_exp_item_name(it)};
	void *st = NULL;
	cep_err err = {0};
	cr_assert_eq((*ops)->inject(it, &ctx, &st, &err), CEP_OK, "%s",
	    err.msg);
	return st;
}

static long vm_rss_kib(int pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	long kib = -1;
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	if (f != NULL)
		fclose(f);
	return kib;
}

Test(faults, cpu_hog_burns_cpu_and_revert_removes_workers)
{
	cep_exp *e = rt_parse(EXP_HEAD "    - {name: hog, type: cpu-hog, "
	                               "workers: 2, load: 100}\n");
	int pids[8];
	cr_assert_eq(rt_children_named("cep-cpu-hog", pids, 8), 0);
	const cep_fault_ops *ops;
	void *st = inject(e, &ops);
	cr_assert_eq(rt_children_named("cep-cpu-hog", pids, 8), 2,
	    "two cep-cpu-hog workers");
	long before[2], after[2];
	for (int i = 0; i < 2; i++)
		cr_assert(
		    rt_proc_stat(pids[i], NULL, 0, NULL, NULL, &before[i]));
	cep_clock_sleep_ms(300);
	for (int i = 0; i < 2; i++) {
		cr_assert(
		    rt_proc_stat(pids[i], NULL, 0, NULL, NULL, &after[i]));
		cr_expect_gt(after[i], before[i],
		    "worker %d used no CPU "
		    "(utime %ld -> %ld)",
		    pids[i], before[i], after[i]);
	}
	cep_err err = {0};
	cr_assert_eq(ops->revert(st, &err), CEP_OK, "%s", err.msg);
	for (int i = 0; i < 2; i++)
		cr_expect_not(rt_pid_exists(pids[i]), "worker %d still there",
		    pids[i]);
	cr_expect_eq(rt_children_named("cep-cpu-hog", pids, 8), 0);
	cep_exp_free(e);
}

Test(faults, memory_hog_holds_memory_until_revert)
{
	cep_exp *e = rt_parse(EXP_HEAD "    - {name: mem, type: memory-hog, "
	                               "mib: 64}\n");
	const cep_fault_ops *ops;
	void *st = inject(e, &ops);
	int pid;
	cr_assert_eq(rt_children_named("cep-mem-hog", &pid, 1), 1);
	long kib = 0;
	for (int i = 0; i < 100 && (kib = vm_rss_kib(pid)) < 60 * 1024; i++)
		cep_clock_sleep_ms(50);
	cr_expect_geq(kib, 60 * 1024, "VmRSS %ld KiB, want >= 60 MiB", kib);
	cep_err err = {0};
	cr_assert_eq(ops->revert(st, &err), CEP_OK, "%s", err.msg);
	cr_expect_not(rt_pid_exists(pid), "memory hog %d still there", pid);
	cep_exp_free(e);
}

/* A victim that is not our child (the runner never signals its own
 * children): middle M forks victim V, reports V's pid, and exits with
 * 100 + the signal that killed V. */
typedef struct victim {
	pid_t middle, pid;
	char comm[16];
} victim;

static void victim_start(victim *v)
{
	snprintf(v->comm, sizeof(v->comm), "cepv%d", (int)(getpid() % 100000));
	int p[2];
	cr_assert_eq(pipe(p), 0);
	v->middle = fork();
	cr_assert_geq(v->middle, 0);
	if (v->middle == 0) {
		pid_t c = fork();
		if (c == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			prctl(PR_SET_NAME, v->comm);
			for (;;)
				pause();
		}
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (write(p[1], &c, sizeof(c)) != sizeof(c))
			_exit(1);
		int st;
		waitpid(c, &st, 0);
		_exit(WIFSIGNALED(st) ? 100 + WTERMSIG(st) : 1);
	}
	close(p[1]);
	cr_assert_eq(read(p[0], &v->pid, sizeof(v->pid)), sizeof(v->pid));
	close(p[0]);
	/* wait until the victim has named itself */
	char comm[32] = "";
	for (int i = 0; i < 100 && strcmp(comm, v->comm) != 0; i++) {
		rt_proc_stat(v->pid, comm, sizeof(comm), NULL, NULL, NULL);
		if (strcmp(comm, v->comm) != 0)
			cep_clock_sleep_ms(10);
	}
	cr_assert_str_eq(comm, v->comm);
}

/* Exit status of the middle process: 100 + the signal that killed V. */
static int victim_end(victim *v)
{
	int st = 0;
	for (int i = 0; i < 200; i++) {
		if (waitpid(v->middle, &st, WNOHANG) == v->middle)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		cep_clock_sleep_ms(10);
	}
	kill(v->pid, SIGKILL); /* not killed by the fault: clean up */
	waitpid(v->middle, &st, 0);
	return -1;
}

static void kill_test(bool by_pid)
{
	victim v;
	victim_start(&v);
	char yaml[512], sel[64];
	if (by_pid)
		snprintf(sel, sizeof(sel), "pid: %d", (int)v.pid);
	else
		snprintf(sel, sizeof(sel), "process: \"%s\"", v.comm);
	snprintf(yaml, sizeof(yaml),
	    EXP_HEAD "    - {name: pk, type: "
	             "process-kill, %s, signal: SIGKILL, count: 1}\n",
	    sel);
	cep_exp *e = rt_parse(yaml);
	const cep_fault_ops *ops;
	void *st = inject(e, &ops);
	cr_expect_eq(victim_end(&v), 100 + SIGKILL,
	    "victim not killed by "
	    "SIGKILL");
	cr_expect_not(rt_pid_exists(v.pid));
	char want[64];
	snprintf(want, sizeof(want), "round 1/1: SIGKILL to pid %d (%s)",
	    (int)v.pid, v.comm);
	cr_expect(rt_log_contains(S.mem, want), "no LOG event \"%s\"", want);
	cr_assert_eq(ops->revert(st, NULL), CEP_OK);
	cep_exp_free(e);
}

Test(faults, process_kill_by_name)
{
	kill_test(false);
}

Test(faults, process_kill_by_pid)
{
	kill_test(true);
}

/* A real cgroup: made here, the victim moved in, process-kill by cgroup. */
Test(faults, process_kill_by_cgroup)
{
	const char *const hier[] = {"unified", "pids", NULL};
	char cg[256] = "";
	for (size_t i = 0; hier[i] != NULL && cg[0] == '\0'; i++) {
		snprintf(cg, sizeof(cg), "/sys/fs/cgroup/%s/cep-test-%d",
		    hier[i], (int)getpid());
		if (mkdir(cg, 0755) != 0)
			cg[0] = '\0';
	}
	if (cg[0] == '\0')
		cr_skip_test("no writable cgroup hierarchy");
	victim v;
	victim_start(&v);
	char procs[300], pid[16];
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
	snprintf(pid, sizeof(pid), "%d\n", (int)v.pid);
	FILE *f = fopen(procs, "w");
	cr_assert_not_null(f);
	fputs(pid, f);
	cr_assert_eq(fclose(f), 0, "cannot move the victim into %s", cg);
	char yaml[512];
	snprintf(yaml, sizeof(yaml),
	    EXP_HEAD "    - {name: pk, type: "
	             "process-kill, cgroup: \"%s\", signal: SIGKILL}\n",
	    cg);
	cep_exp *e = rt_parse(yaml);
	const cep_fault_ops *ops;
	void *st = inject(e, &ops);
	cr_expect_eq(victim_end(&v), 100 + SIGKILL);
	cr_assert_eq(ops->revert(st, NULL), CEP_OK);
	for (int i = 0; i < 100 && rmdir(cg) != 0; i++)
		cep_clock_sleep_ms(
		    10); /* the cgroup empties once V is reaped */
	cr_expect_neq(access(cg, F_OK), 0, "cgroup %s left behind", cg);
	cep_exp_free(e);
}

Test(faults, process_kill_spares_own_children_and_logs_no_match)
{
	pid_t c = fork();
	cr_assert_geq(c, 0);
	if (c == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		prctl(PR_SET_NAME, "cep-own-child");
		for (;;)
			pause();
	}
	char comm[32] = "";
	for (int i = 0; i < 100 && strcmp(comm, "cep-own-child") != 0; i++) {
		cep_clock_sleep_ms(10);
		rt_proc_stat(c, comm, sizeof(comm), NULL, NULL, NULL);
	}
	cep_exp *e = rt_parse(
	    EXP_HEAD "    - {name: pk, type: process-kill, "
	             "process: \"cep-own-*\", count: 2, interval: 100ms}\n");
	const cep_fault_ops *ops;
	void *st = inject(e, &ops);
	cr_expect_eq(ops->next_tick(st) > cep_clock_mono_ms(), true);
	cep_fault_ctx ctx = {.sink = S.sink, .fault_id = "pk"};
	cep_clock_sleep_ms(110);
	ops->tick(st, &ctx);
	cr_expect_eq(ops->next_tick(st), INT64_MAX, "two rounds, then none");
	char state = 0;
	cr_expect(rt_proc_stat(c, NULL, 0, &state, NULL, NULL) && state != 'Z',
	    "own child was signalled");
	cr_expect(rt_log_contains(S.mem,
	    "round 2/2: no process matches "
	    "process cep-own-*"));
	cr_assert_eq(ops->revert(st, NULL), CEP_OK);
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	cep_exp_free(e);
}

/* The runner is SIGKILLed: its hog workers die with it (PDEATHSIG). The
 * test is a subreaper so the orphans come to it and can be reaped. */
Test(faults, hog_workers_die_with_a_killed_runner)
{
	cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	cep_exp *e = rt_parse(EXP_HEAD "    - {name: hog, type: cpu-hog, "
	                               "workers: 2, load: 10}\n");
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t runner = fork();
	cr_assert_geq(runner, 0);
	if (runner == 0) {
		const cep_fault_ops *ops;
		inject(e, &ops);
		int pids[2];
		if (rt_children_named("cep-cpu-hog", pids, 2) != 2 ||
		    write(p[1], pids, sizeof(pids)) != sizeof(pids))
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	int pids[2];
	cr_assert_eq(read(p[0], pids, sizeof(pids)), sizeof(pids));
	close(p[0]);
	char comm[32];
	for (int i = 0; i < 2; i++) {
		cr_assert(rt_proc_stat(pids[i], comm, sizeof(comm), NULL, NULL,
		    NULL));
		cr_assert_str_eq(comm, "cep-cpu-hog");
	}
	int64_t t0 = cep_clock_mono_ms();
	kill(runner, SIGKILL);
	cr_assert_eq(waitpid(runner, NULL, 0), runner);
	int dead = 0;
	while (dead < 2 && cep_clock_mono_ms() - t0 < 1000) {
		for (int i = 0; i < 2; i++) {
			int st;
			if (pids[i] > 0 &&
			    waitpid(pids[i], &st, WNOHANG) == pids[i]) {
				cr_expect(
				    WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
				pids[i] = -pids[i];
				dead++;
			}
		}
		cep_clock_sleep_ms(10);
	}
	for (int i = 0; i < 2; i++) {
		cr_expect_lt(pids[i], 0,
		    "worker %d alive 1 s after the runner "
		    "died",
		    pids[i]);
		if (pids[i] > 0) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], NULL, 0);
		}
	}
	cep_exp_free(e);
}
