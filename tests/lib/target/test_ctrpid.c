/* test_ctrpid.c - a container's process from its id, over fake /proc
 * trees: cgroup v1 and v2 layouts, three runtimes, no match, several
 * matches, hostile content. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctrpid.h"
#include "testutil.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ID2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define UID "1b2c3d4e-0000-4000-8000-000000000001"
#define UIDS "1b2c3d4e_0000_4000_8000_000000000001"

static char *root;

static void setup(void)
{
	root = cep_test_tmpdir("ctrpid");
}
static void teardown(void)
{
	cep_test_rmdir(root);
}

static void write_file(const char *path, const char *data, size_t n)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fwrite(data, 1, n, f), n);
	fclose(f);
}

/* A process: its cgroup file, and a stat with ppid and start time. */
static void proc(int pid, int ppid, unsigned long long start,
    const char *cgroup)
{
	char p[4096], st[512];
	snprintf(p, sizeof(p), "%s/%d", root, pid);
	cr_assert_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/%d/cgroup", root, pid);
	write_file(p, cgroup, strlen(cgroup));
	snprintf(st, sizeof(st),
	    "%d (sh) S %d 1 1 0 -1 4194560 100 0 0 0 1 "
	    "2 0 0 20 0 1 0 %llu 1000 10 18446744073709551615\n",
	    pid, ppid, start);
	snprintf(p, sizeof(p), "%s/%d/stat", root, pid);
	write_file(p, st, strlen(st));
}

static int find(pid_t *pid, char *cg, size_t len, cep_err *e)
{
	return cep_ctrpid_find(root, ID, pid, cg, len, e);
}

TestSuite(ctrpid, .init = setup, .fini = teardown);

Test(ctrpid, parse_ids)
{
	char id[CEP_CTRPID_ID_LEN + 1];
	const char *rt;
	cep_err e = {0};
	cr_assert_eq(cep_ctrpid_parse_id("containerd://" ID, id, sizeof(id),
	                 &rt, &e),
	    CEP_OK);
	cr_assert_str_eq(id, ID);
	cr_assert_str_eq(rt, "containerd");
	cr_assert_eq(cep_ctrpid_parse_id("cri-o://" ID, id, sizeof(id), &rt,
	                 &e),
	    CEP_OK);
	cr_assert_str_eq(rt, "cri-o");
	cr_assert_eq(cep_ctrpid_parse_id("docker://" ID, id, sizeof(id), &rt,
	                 &e),
	    CEP_OK);
	cr_assert_str_eq(rt, "docker");
	static const char *const bad[] = {"", "containerd://", ID,
	    "containerd:/" ID, "rkt://" ID, "containerd://" ID "0",
	    "containerd://0123456789ABCDEF0123456789abcdef0123456789abcdef"
	    "0123456789abcdef",
	    "containerd://../../../etc/passwd", "xcontainerd://" ID,
	    "containerd://" ID "\n", NULL};
	for (size_t i = 0; bad[i] != NULL; i++) {
		cr_assert_eq(cep_ctrpid_parse_id(bad[i], id, sizeof(id), &rt,
		                 &e),
		    CEP_INVALID_ARGUMENT, "%s", bad[i]);
		cr_assert(strstr(e.msg, "64 hex") != NULL, "%s", e.msg);
	}
	cr_assert_eq(cep_ctrpid_parse_id(NULL, id, sizeof(id), &rt, &e),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_ctrpid_parse_id("docker://" ID, id, 10, &rt, &e),
	    CEP_INVALID_ARGUMENT);
}

Test(ctrpid, v1_cgroupfs_containerd)
{
	proc(1, 0, 1, "12:memory:/\n11:cpu,cpuacct:/init.scope\n0::/\n");
	proc(4000, 3990, 500,
	    "12:memory:/kubepods/besteffort/pod" UID "/" ID
	    "\n11:cpu,cpuacct:/kubepods/besteffort/pod" UID "/" ID "\n"
	    "1:name=systemd:/kubepods/besteffort/pod" UID "/" ID "\n");
	proc(3990, 1, 400, "12:memory:/system.slice/containerd.service\n");
	pid_t pid;
	char cg[4096];
	cep_err e = {0};
	cr_assert_eq(find(&pid, cg, sizeof(cg), &e), CEP_OK, "%s", e.msg);
	cr_assert_eq(pid, 4000);
	cr_assert_str_eq(cg, "/kubepods/besteffort/pod" UID "/" ID);
}

Test(ctrpid, v2_systemd_runtimes)
{
	static const char *const shapes[] = {"cri-containerd-" ID ".scope",
	    "crio-" ID ".scope", "docker-" ID ".scope"};
	for (size_t i = 0; i < 3; i++) {
		char cg[1024], want[1024], got[4096];
		snprintf(want, sizeof(want),
		    "/kubepods.slice/kubepods-burstable"
		    ".slice/kubepods-burstable-pod" UIDS ".slice/%s",
		    shapes[i]);
		snprintf(cg, sizeof(cg), "0::%s\n", want);
		int pid = 100 + (int)i;
		proc(pid, 1, 10, cg);
		pid_t p;
		cep_err e = {0};
		cr_assert_eq(find(&p, got, sizeof(got), &e), CEP_OK, "%s",
		    e.msg);
		cr_assert_eq(p, pid);
		cr_assert_str_eq(got, want);
		char d[4096];
		snprintf(d, sizeof(d), "%s/%d/cgroup", root, pid);
		cr_assert_eq(unlink(d), 0);
	}
}

Test(ctrpid, v2_preferred_and_nested_cgroups)
{
	/* hybrid host: v2 line wins; a process that made a cgroup below the
	 * container's is still in the container, and its init is found */
	proc(50, 1, 5,
	    "4:memory:/kubepods/pod" UID "/" ID "\n"
	    "0::/kubepods/pod" UID "/" ID "\n");
	proc(51, 50, 6,
	    "4:memory:/kubepods/pod" UID "/" ID "\n"
	    "0::/kubepods/pod" UID "/" ID "/worker\n");
	pid_t p;
	char cg[4096];
	cep_err e = {0};
	cr_assert_eq(find(&p, cg, sizeof(cg), &e), CEP_OK, "%s", e.msg);
	cr_assert_eq(p, 50);
	cr_assert_str_eq(cg, "/kubepods/pod" UID "/" ID);
}

Test(ctrpid, many_processes_init_is_chosen)
{
	const char *cg = "0::/kubepods/burstable/pod" UID "/" ID "\n";
	proc(900, 7, 300, cg); /* the container's init (parent: shim) */
	proc(950, 900, 310, cg);
	proc(120, 900, 320, cg); /* lower pid (wrapped), a child */
	proc(7, 1, 200, "0::/system.slice/containerd.service\n");
	/* entered later (kubectl exec): its parent is outside too, but the
	 * init started first */
	proc(80, 7, 400, cg);
	pid_t p;
	char got[4096];
	cep_err e = {0};
	cr_assert_eq(find(&p, got, sizeof(got), &e), CEP_OK, "%s", e.msg);
	cr_assert_eq(p, 900);
}

Test(ctrpid, no_match)
{
	proc(1, 0, 1, "0::/init.scope\n");
	/* conmon, the id inside longer components, another container */
	proc(10, 1, 2, "0::/machine.slice/crio-conmon-" ID ".scope\n");
	proc(11, 1, 2, "0::/kubepods/pod" UID "/x" ID "\n");
	proc(12, 1, 2, "0::/kubepods/pod" UID "/" ID "x\n");
	proc(13, 1, 2, "0::/kubepods/pod" UID "/" ID2 "\n");
	proc(14, 1, 2, "0::/kubepods/cri-containerd-" ID "\n");
	proc(15, 1, 2, "0::relative/" ID "\n"); /* not a path */
	pid_t p = 77;
	char cg[4096];
	cep_err e = {0};
	cr_assert_eq(find(&p, cg, sizeof(cg), &e), CEP_NOT_FOUND);
	cr_assert_eq(p, 0);
	cr_assert(strstr(e.msg, "no process") != NULL, "%s", e.msg);
	cr_assert(strstr(e.msg, "0123456789ab") != NULL, "%s", e.msg);
}

Test(ctrpid, two_cgroups_refused)
{
	proc(20, 1, 2, "0::/kubepods/podA/" ID "\n");
	proc(21, 1, 3, "0::/kubepods/podB/cri-containerd-" ID ".scope\n");
	pid_t p;
	char cg[4096];
	cep_err e = {0};
	cr_assert_eq(find(&p, cg, sizeof(cg), &e), CEP_FAILED_PRECONDITION);
	cr_assert(strstr(e.msg, "two cgroups") != NULL, "%s", e.msg);
	cr_assert_eq(p, 0);
}

Test(ctrpid, hostile_content)
{
	/* binary, no newline, huge lines, bad stat, odd directory names */
	char big[70000];
	memset(big, '/', sizeof(big));
	memcpy(big, "0::", 3);
	memcpy(big + sizeof(big) - 70, ID, 64);
	big[sizeof(big) - 1] = '\0';
	proc(30, 1, 2, big);
	char bin[256];
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (char)i;
	char p[4096];
	snprintf(p, sizeof(p), "%s/31", root);
	cr_assert_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/31/cgroup", root);
	write_file(p, bin, sizeof(bin));
	proc(32, 1, 2, ":::::\n::\n:\n\n0:\n0::");
	snprintf(p, sizeof(p), "%s/0033", root);
	cr_assert_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/99999999999", root);
	cr_assert_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/self", root);
	cr_assert_eq(mkdir(p, 0755), 0);
	pid_t pid;
	char cg[4096];
	cep_err e = {0};
	cr_assert_eq(find(&pid, cg, sizeof(cg), &e), CEP_NOT_FOUND, "%s",
	    e.msg);
	/* a matching process with a garbage stat (comm with ") " in it,
	 * no fields): still found, its start unknown */
	proc(40, 1, 2, "0::/kubepods/pod" UID "/" ID "\n");
	snprintf(p, sizeof(p), "%s/40/stat", root);
	write_file(p, "40 (a) S 1 (b) x", 16);
	cr_assert_eq(find(&pid, cg, sizeof(cg), &e), CEP_OK, "%s", e.msg);
	cr_assert_eq(pid, 40);
	/* a bad id or missing root never scans */
	cr_assert_eq(cep_ctrpid_find(root, "../../x", &pid, cg, sizeof(cg), &e),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_ctrpid_find("/nonexistent-proc", ID, &pid, cg,
	                 sizeof(cg), &e),
	    CEP_NOT_FOUND);
}

Test(ctrpid, real_proc_has_no_such_container)
{
	pid_t pid;
	char cg[4096];
	cep_err e = {0};
	cr_assert_eq(cep_ctrpid_find("/proc", ID, &pid, cg, sizeof(cg), &e),
	    CEP_NOT_FOUND, "%s", e.msg);
}
