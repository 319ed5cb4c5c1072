/*
 * test_hostfaults.c - the host-resource faults against real resources
 * (root): a test cgroup v2 with a sleeping target process; cpu-hog and
 * memory-hog load show up in the target's cgroup accounting and stop
 * after revert; disk-fill moves a small tmpfs (statvfs) to the configured
 * fill and back, also inside a target's private mount namespace, and the
 * delegate's undo (lib/diskfill) finds the file without the runner;
 * io-stress shows up in /proc/PID/io and leaves no file. Everything
 * created here (cgroups, mounts, processes, dirs) is removed in fini.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "diskfill.h"
#include "fault.h"
#include "rt.h"
#include "target.h"
#include "testutil.h"
#include "clock.h"

#define RUN "r-0123456789abcdef"
#define EXP_HEAD                                                          \
	"apiVersion: cep.io/v1\nkind: Experiment\nmetadata:\n  name: t\n" \
	"spec:\n  duration: 30s\n  faults:\n"

static rt_sink S;
static char cg2[4096];    /* test v2 cgroup, "" if none */
static char cg1mem[4096]; /* test v1 memory cgroup, "" if none */
static pid_t target_pid;
static char *tmp; /* temp dir (tmpfs mount point or plain) */
static bool mounted;

/* A child that sleeps until killed; in a private mount namespace with a
 * 64 MiB tmpfs on tmp when private. */
static pid_t spawn_target(bool private)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t c = fork();
	cr_assert_geq(c, 0);
	if (c == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[0]);
		if (private &&
		    (unshare(CLONE_NEWNS) != 0 ||
		        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) !=
		            0 ||
		        mount("tmpfs", tmp, "tmpfs", 0, "size=64m") != 0))
			_exit(1);
		if (write(p[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	char b;
	cr_assert_eq(read(p[0], &b, 1), 1, "target did not start");
	close(p[0]);
	return c;
}

static void write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s), "%s: %s",
	    path, strerror(errno));
	close(fd);
}

static void join(const char *dir, pid_t pid)
{
	char path[4200], num[24];
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(num, sizeof(num), "%d", (int)pid);
	write_str(path, num);
}

/* Our own v1 memory cgroup (hybrid hosts), to make a child of it. */
static void own_v1_memory(char *out, size_t len)
{
	char *data = NULL;
	size_t n;
	out[0] = '\0';
	if (cep_target_read_kfile("/proc/self/cgroup", 65536, &data, &n,
	        NULL) != CEP_OK)
		return;
	char *l = strstr(data, ":memory:/");
	if (l != NULL &&
	    access("/sys/fs/cgroup/memory/cgroup.procs", F_OK) == 0) {
		l += 8;
		l[strcspn(l, "\n")] = '\0';
		snprintf(out, len, "/sys/fs/cgroup/memory%s",
		    strcmp(l, "/") ? l : "");
	}
	free(data);
}

static void setup(void)
{
	rt_sink_open(&S);
	runner_fault_set_run(RUN, 0);
	char root[4096];
	cr_assert_eq(cep_target_cgroup2_root(root, sizeof(root), NULL), CEP_OK,
	    "no cgroup v2 on this host");
	snprintf(cg2, sizeof(cg2), "%s/cep-test-%d", root, (int)getpid());
	cr_assert_eq(mkdir(cg2, 0755), 0, "%s: %s", cg2, strerror(errno));
	char own[4096];
	own_v1_memory(own, sizeof(own));
	cg1mem[0] = '\0';
	if (own[0] != '\0') {
		snprintf(cg1mem, sizeof(cg1mem), "%s/cep-test-%d", own,
		    (int)getpid());
		if (mkdir(cg1mem, 0755) != 0)
			cg1mem[0] = '\0';
	}
	tmp = cep_test_tmpdir("hostfaults");
	mounted = false;
	target_pid = 0;
}

static void kill_target(void)
{
	if (target_pid > 0) {
		kill(target_pid, SIGKILL);
		waitpid(target_pid, NULL, 0);
		target_pid = 0;
	}
}

/* Workers a failed test left behind (they hold the cgroup busy). */
static void kill_workers(void)
{
	static const char *const comms[] = {"cep-cpu-hog", "cep-mem-hog",
	    "cep-io-stress", NULL};
	for (size_t c = 0; comms[c] != NULL; c++) {
		int pids[64];
		int n = rt_children_named(comms[c], pids, 64);
		for (int i = 0; i < n && i < 64; i++) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], NULL, 0);
		}
	}
}

static void teardown(void)
{
	kill_workers();
	kill_target();
	if (mounted)
		umount2(tmp, MNT_DETACH);
	cep_test_rmdir(tmp);
	/* the cgroups are empty once the target and the workers are dead */
	for (int i = 0; i < 50 && rmdir(cg2) != 0 && errno == EBUSY; i++)
		cep_clock_sleep_ms(20);
	for (int i = 0;
	     cg1mem[0] && i < 50 && rmdir(cg1mem) != 0 && errno == EBUSY; i++)
		cep_clock_sleep_ms(20);
	rt_sink_close(&S);
}

TestSuite(hostfaults, .init = setup, .fini = teardown, .timeout = 60);

static const cep_fault_ops *ops_of(const cep_exp *e)
{
	const cep_fault_ops *o = runner_fault_find(
	    cep_exp_item_type(cep_exp_fault(e, 0)));
	cr_assert_not_null(o);
	return o;
}

static void *inject(const cep_exp *e, char **undo)
{
	const cep_exp_item *it = cep_exp_fault(e, 0);
	cep_fault_ctx ctx = {.sink = S.sink, .fault_id = "f"};
	void *st = NULL;
	cep_err err = {0};
	char target[300];
	json_t *u = NULL;
	cr_assert_eq(ops_of(e)->describe(it, target, sizeof(target), &u, &err),
	    CEP_OK, "describe: %s", err.msg);
	if (undo != NULL)
		*undo = json_dumps(u, JSON_COMPACT);
	json_decref(u);
	cr_assert_eq(ops_of(e)->inject(it, &ctx, &st, &err), CEP_OK, "%s",
	    err.msg);
	return st;
}

static void revert(const cep_exp *e, void *st)
{
	cep_err err = {0};
	cr_assert_eq(ops_of(e)->revert(st, &err), CEP_OK, "revert: %s",
	    err.msg);
}

static long long stat_key(const char *file, const char *key)
{
	char *data = NULL;
	size_t n;
	long long v = -1;
	if (cep_target_read_kfile(file, 65536, &data, &n, NULL) != CEP_OK)
		return -1;
	char *p = strstr(data, key);
	if (p != NULL)
		v = strtoll(p + strlen(key), NULL, 10);
	free(data);
	return v;
}

static long long cg_usage_usec(void)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/cpu.stat", cg2);
	return stat_key(path, "usage_usec ");
}

/* The worker's v2 cgroup is the test cgroup. */
static bool in_test_cgroup(int pid)
{
	char path[64], want[4200], root[4096];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	cr_assert_eq(cep_target_cgroup2_root(root, sizeof(root), NULL), CEP_OK);
	snprintf(want, sizeof(want), "0::%s\n", cg2 + strlen(root));
	char *data = NULL;
	size_t n;
	if (cep_target_read_kfile(path, 65536, &data, &n, NULL) != CEP_OK)
		return false;
	bool ok = strstr(data, want) != NULL;
	if (!ok)
		cr_log_warn("pid %d: want %s in:\n%s", pid, want, data);
	free(data);
	return ok;
}

static cep_exp *parse_fmt(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static cep_exp *parse_fmt(const char *fmt, ...)
{
	char yaml[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(yaml, sizeof(yaml), fmt, ap);
	va_end(ap);
	return rt_parse(yaml);
}

/* utime + stime of a process, in usec. */
static long long proc_cpu_usec(int pid)
{
	char path[64], *data = NULL;
	size_t n;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (cep_target_read_kfile(path, 4096, &data, &n, NULL) != CEP_OK)
		return -1;
	char *p = strrchr(data, ')');
	long long v[15] = {0};
	for (int i = 0; p != NULL && i < 15; i++) {
		p = strchr(p + 1, ' ');
		if (p != NULL)
			v[i] = strtoll(p + 1, NULL, 10);
	}
	free(data);
	/* after ")": state(0) ... utime(12) stime(13) */
	return (v[12] + v[13]) * 1000000LL / sysconf(_SC_CLK_TCK);
}

/* The time the kernel has run pid and the time it has kept it waiting on
 * a run queue (/proc/PID/schedstat), in us; -1 when unreadable. */
static long long proc_sched_usec(int pid, long long *wait)
{
	char path[64], *data = NULL;
	size_t n;
	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	if (cep_target_read_kfile(path, 256, &data, &n, NULL) != CEP_OK)
		return -1;
	char *end;
	long long run = strtoll(data, &end, 10);
	*wait = strtoll(end, NULL, 10) / 1000;
	free(data);
	return run / 1000;
}

/* The load lands in the target cgroup (its usage grows with the worker's
 * own CPU time), at the configured duty cycle. Other work on this 2-core
 * machine can starve the worker: then it runs less but waits on the run
 * queue for the rest of its busy time, so the lower bound is on what it
 * asked for (run + run-queue wait); the upper bound is on what the cgroup
 * got, and is never acceptable to pass. */
static void check_cpu(int load, double lo, double hi)
{
	target_pid = spawn_target(false);
	join(cg2, target_pid);
	cep_exp *e = parse_fmt(EXP_HEAD "    - {name: hog, type: cpu-hog, "
	                                "cgroup: %s, workers: 1, load: %d}\n",
	    cg2, load);
	void *st = inject(e, NULL);
	int pids[4];
	cr_assert_eq(rt_children_named("cep-cpu-hog", pids, 4), 1);
	cr_assert(in_test_cgroup(pids[0]), "worker not in %s", cg2);
	double share = 0, asked = 0;
	for (int w = 0; w < 4 && asked < lo; w++) {
		long long q0 = 0, q1 = 0;
		long long u0 = cg_usage_usec(), c0 = proc_cpu_usec(pids[0]);
		long long r0 = proc_sched_usec(pids[0], &q0);
		int64_t t0 = cep_clock_mono_ms();
		cep_clock_sleep_ms(1000);
		long long du = cg_usage_usec() - u0;
		long long dc = proc_cpu_usec(pids[0]) - c0;
		long long r1 = proc_sched_usec(pids[0], &q1);
		double wall = (double)((cep_clock_mono_ms() - t0) * 1000);
		cr_assert(r0 >= 0 && r1 >= 0, "no schedstat for the worker");
		share = (double)du / wall;
		asked = (double)(r1 - r0 + q1 - q0) / wall;
		cr_expect_geq(du + 20000, dc,
		    "cgroup usage grew %lld us, the "
		    "worker used %lld us: not accounted to the target",
		    du, dc);
		cr_expect_leq(share, hi,
		    "load %d%%: the cgroup used %.2f of a "
		    "CPU, more than %.2f",
		    load, share, hi);
	}
	cr_expect(asked >= lo,
	    "load %d%%: the worker ran or waited to run "
	    "%.2f of the time (the cgroup used %.2f of a CPU), expected at "
	    "least %.2f",
	    load, asked, share, lo);
	revert(e, st);
	cr_expect_eq(rt_children_named("cep-cpu-hog", pids, 4), 0);
	long long u2 = cg_usage_usec();
	cep_clock_sleep_ms(300);
	cr_expect_lt(cg_usage_usec() - u2, 30000,
	    "cgroup usage still grows "
	    "after revert");
	cep_exp_free(e);
}

Test(hostfaults, cpu_hog_full_load_in_target_cgroup)
{
	check_cpu(100, 0.45, 1.2);
}

Test(hostfaults, cpu_hog_half_load_in_target_cgroup)
{
	check_cpu(50, 0.3, 0.7);
}

/* memory.current (v2 memory controller) or the v1 memory cgroup. */
static long long mem_bytes(void)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/memory.current", cg2);
	if (access(path, F_OK) == 0)
		return stat_key(path, "");
	snprintf(path, sizeof(path), "%s/memory.usage_in_bytes", cg1mem);
	return stat_key(path, "");
}

Test(hostfaults, memory_hog_charged_to_target)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/memory.current", cg2);
	bool v2mem = access(path, F_OK) == 0;
	if (!v2mem && cg1mem[0] == '\0')
		cr_skip_test("no memory accounting (v2 or v1) to observe");
	target_pid = spawn_target(false);
	join(cg2, target_pid);
	if (!v2mem)
		join(cg1mem, target_pid);
	/* v2 memory: target the cgroup; v1 memory: the pid (hybrid) */
	cep_exp *e = v2mem ?
	    parse_fmt(EXP_HEAD "    - {name: m, type: "
	                       "memory-hog, cgroup: %s, mib: 64}\n",
	        cg2) :
	    parse_fmt(EXP_HEAD
	        "    - {name: m, type: memory-hog, pid: %d, mib: 64}\n",
	        (int)target_pid);
	long long m0 = mem_bytes();
	cr_assert_geq(m0, 0);
	void *st = inject(e, NULL);
	long long m1 = m0;
	for (int i = 0; i < 100 && m1 - m0 < (60LL << 20); i++) {
		cep_clock_sleep_ms(50);
		m1 = mem_bytes();
	}
	cr_expect_geq(m1 - m0, 60LL << 20, "%s grew by %lld bytes only",
	    v2mem ? "memory.current" : "v1 memory.usage_in_bytes", m1 - m0);
	revert(e, st);
	long long m2 = mem_bytes();
	for (int i = 0; i < 100 && m2 - m0 > (8LL << 20); i++) {
		cep_clock_sleep_ms(50);
		m2 = mem_bytes();
	}
	cr_expect_leq(m2 - m0, 8LL << 20, "memory not given back: %lld -> %lld",
	    m0, m2);
	cep_exp_free(e);
}

static double used_pct(const char *dir)
{
	struct statvfs sv;
	cr_assert_eq(statvfs(dir, &sv), 0, "%s", dir);
	return 100.0 * (double)(sv.f_blocks - sv.f_bavail) /
	    (double)sv.f_blocks;
}

static bool has_fill_file(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool hit = false;
	while (d != NULL && (de = readdir(d)) != NULL)
		hit |= strncmp(de->d_name, CEP_DISKFILL_PREFIX,
		           strlen(CEP_DISKFILL_PREFIX)) == 0;
	if (d != NULL)
		closedir(d);
	return hit;
}

static void mount_tmpfs(void)
{
	cr_assert_eq(mount("tmpfs", tmp, "tmpfs", 0, "size=64m"), 0, "%s",
	    strerror(errno));
	mounted = true;
}

Test(hostfaults, disk_fill_percent_and_back)
{
	mount_tmpfs();
	cep_exp *e = parse_fmt(EXP_HEAD "    - {name: d, type: disk-fill, "
	                                "path: %s, percent: 60}\n",
	    tmp);
	double p0 = used_pct(tmp);
	void *st = inject(e, NULL);
	double p1 = used_pct(tmp);
	cr_expect(p1 >= 58 && p1 <= 62,
	    "filesystem %.1f%% used, expected 60"
	    " +-2",
	    p1);
	cr_expect(has_fill_file(tmp));
	revert(e, st);
	cr_expect_leq(used_pct(tmp), p0 + 0.5, "not back after revert");
	cr_expect_not(has_fill_file(tmp), "fill file left");
	cep_exp_free(e);
}

Test(hostfaults, disk_fill_mib_and_back)
{
	mount_tmpfs();
	cep_exp *e = parse_fmt(EXP_HEAD "    - {name: d, type: disk-fill, "
	                                "path: %s, mib: 16}\n",
	    tmp);
	struct statvfs a, b;
	cr_assert_eq(statvfs(tmp, &a), 0);
	void *st = inject(e, NULL);
	cr_assert_eq(statvfs(tmp, &b), 0);
	double mib = (double)(a.f_bavail - b.f_bavail) * (double)a.f_frsize /
	    1048576.0;
	cr_expect(mib >= 15.9 && mib <= 16.1, "free space moved by %.1f MiB",
	    mib);
	revert(e, st);
	cr_assert_eq(statvfs(tmp, &b), 0);
	cr_expect_eq(a.f_bavail, b.f_bavail, "free space not back");
	cep_exp_free(e);
}

/* The fill lands in the filesystem the target sees (its private tmpfs,
 * invisible to the host), and the delegate's undo removes it without the
 * runner's state; it is idempotent and still OK once the namespace died. */
Test(hostfaults, disk_fill_in_target_mount_namespace_and_delegate_undo)
{
	target_pid = spawn_target(true);
	char in[4200];
	snprintf(in, sizeof(in), "/proc/%d/root%s", (int)target_pid, tmp);
	cep_exp *e = parse_fmt(EXP_HEAD "    - {name: d, type: disk-fill, "
	                                "pid: %d, path: %s, percent: 40}\n",
	    (int)target_pid, tmp);
	char *undo = NULL;
	void *st = inject(e, &undo);
	double p = used_pct(in);
	cr_expect(p >= 38 && p <= 42, "target's tmpfs %.1f%% used", p);
	cr_expect(has_fill_file(in), "no fill file in the target's view");
	cr_expect_not(has_fill_file(tmp), "fill file in the host's view");
	cep_err err = {0};
	cr_assert_eq(cep_diskfill_undo(RUN, undo, &err), CEP_OK, "%s", err.msg);
	cr_expect_not(has_fill_file(in), "delegate undo left the file");
	cr_expect_leq(used_pct(in), 1.0);
	revert(e, st); /* the runner's revert finds nothing: fine */
	cr_expect_eq(cep_diskfill_undo(RUN, undo, &err), CEP_OK, "%s", err.msg);
	kill_target(); /* the namespace and its tmpfs are gone */
	cr_expect_eq(cep_diskfill_undo(RUN, undo, &err), CEP_OK, "%s", err.msg);
	free(undo);
	cep_exp_free(e);
}

Test(hostfaults, delegate_undo_after_runner_state_lost_host_path)
{
	mount_tmpfs();
	cep_exp *e = parse_fmt(EXP_HEAD "    - {name: d, type: disk-fill, "
	                                "path: %s, mib: 8}\n",
	    tmp);
	char *undo = NULL;
	void *st = inject(e, &undo);
	cr_assert(has_fill_file(tmp));
	cep_err err = {0};
	cr_assert_eq(cep_diskfill_undo(RUN, undo, &err), CEP_OK, "%s", err.msg);
	cr_expect_not(has_fill_file(tmp));
	revert(e, st);
	free(undo);
	cep_exp_free(e);
}

Test(hostfaults, delegate_undo_refuses_foreign_names)
{
	cep_err err = {0};
	char j[512];
	snprintf(j, sizeof(j),
	    "{\"path\":\"%s\",\"dev\":1,\"ino_dir\":2,"
	    "\"name\":\"../../etc/passwd\"}",
	    tmp);
	cr_expect_eq(cep_diskfill_undo(RUN, j, &err), CEP_INVALID_ARGUMENT);
	snprintf(j, sizeof(j),
	    "{\"path\":\"%s\",\"dev\":1,\"ino_dir\":2,"
	    "\"name\":\".cep-fill-r-1111111111111111-3\"}",
	    tmp);
	cr_expect_eq(cep_diskfill_undo(RUN, j, &err), CEP_INVALID_ARGUMENT);
	cr_expect_eq(cep_diskfill_undo(RUN, "not json", &err),
	    CEP_INVALID_ARGUMENT);
	/* a record whose directory never existed here: nothing to remove */
	snprintf(j, sizeof(j),
	    "{\"path\":\"%s/none\",\"dev\":1,\"ino_dir\":2,"
	    "\"name\":\".cep-fill-" RUN "-3\"}",
	    tmp);
	cr_expect_eq(cep_diskfill_undo(RUN, j, &err), CEP_OK, "%s", err.msg);
}

static long long io_write_bytes(int pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/io", pid);
	return stat_key(path, "write_bytes: ");
}

Test(hostfaults, io_stress_writes_in_target_and_leaves_nothing)
{
	target_pid = spawn_target(false);
	join(cg2, target_pid);
	cep_exp *e = parse_fmt(EXP_HEAD
	    "    - {name: io, type: io-stress, "
	    "pid: %d, path: %s, workers: 1, fileMiB: 4, writeKiB: 256}\n",
	    (int)target_pid, tmp);
	void *st = inject(e, NULL);
	int pids[4];
	cr_assert_eq(rt_children_named("cep-io-stress", pids, 4), 1);
	cr_expect(in_test_cgroup(pids[0]), "writer not in the target cgroup");
	long long w0 = io_write_bytes(pids[0]), w1 = w0;
	for (int i = 0; i < 100 && w1 - w0 < (4LL << 20); i++) {
		cep_clock_sleep_ms(50);
		w1 = io_write_bytes(pids[0]);
	}
	cr_expect_geq(w1 - w0, 4LL << 20, "write_bytes %lld -> %lld", w0, w1);
	DIR *d = opendir(tmp);
	int n = 0;
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL)
		n += de->d_name[0] != '.' ||
		    strncmp(de->d_name, ".cep", 4) == 0;
	if (d != NULL)
		closedir(d);
	cr_expect_eq(n, 0, "io-stress left a name in %s", tmp);
	revert(e, st);
	cr_expect_eq(rt_children_named("cep-io-stress", pids, 4), 0);
	cep_exp_free(e);
}

/* In the child: is tmp a 64 MiB filesystem here? Answers one byte. */
static int probe_tmpfs(void *arg, int outfd)
{
	struct statvfs sv;
	char c = statvfs((const char *)arg, &sv) == 0 &&
	        (unsigned long long)sv.f_blocks * sv.f_frsize == 64ULL << 20 ?
	    'y' :
	    'n';
	return write(outfd, &c, 1) == 1 ? 0 : 1;
}

Test(hostfaults, run_in_target_mount_namespace)
{
	target_pid = spawn_target(true);
	cep_target *t = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_target_resolve(target_pid, NULL, &t, &err), CEP_OK,
	    "%s", err.msg);
	cr_expect_not(cep_target_mntns_is_self(t));
	cr_expect_eq(cep_target_mntns_ino(t), cep_target_mntns_of(target_pid));
	char out[4];
	size_t got = 0;
	cr_assert_eq(cep_target_run_in_mntns(t, probe_tmpfs, tmp, out,
	                 sizeof(out), &got, &err),
	    CEP_OK, "%s", err.msg);
	cr_expect(got == 1 && out[0] == 'y', "the target's tmpfs is not seen");
	/* and our own namespace was never switched */
	struct statvfs sv;
	cr_assert_eq(statvfs(tmp, &sv), 0);
	cr_expect_neq((unsigned long long)sv.f_blocks * sv.f_frsize,
	    64ULL << 20);
	cep_target_free(t);
}

Test(hostfaults, target_refuses_escapes_and_both_keys)
{
	cep_target *t = NULL;
	cep_err err = {0};
	cr_expect_eq(cep_target_resolve(0, "../../etc", &t, &err),
	    CEP_INVALID_ARGUMENT);
	cr_expect_eq(cep_target_resolve(getpid(), "x", &t, &err),
	    CEP_INVALID_ARGUMENT);
	cr_expect_neq(cep_target_resolve(0, "cep-no-such-cgroup", &t, &err),
	    CEP_OK);
	cr_assert_eq(cep_target_resolve(getpid(), NULL, &t, &err), CEP_OK, "%s",
	    err.msg);
	cr_expect(cep_target_mntns_is_self(t));
	cr_expect_neq(cep_target_cgroup(t)[0], '\0');
	cep_target_free(t);
	cep_exp *e = parse_fmt(EXP_HEAD "    - {name: hog, type: cpu-hog, "
	                                "pid: %d, cgroup: %s}\n",
	    (int)getpid(), cg2);
	char target[300];
	json_t *u = NULL;
	cr_expect_eq(ops_of(e)->describe(cep_exp_fault(e, 0), target,
	                 sizeof(target), &u, &err),
	    CEP_INVALID_ARGUMENT);
	json_decref(u);
	cep_exp_free(e);
}
