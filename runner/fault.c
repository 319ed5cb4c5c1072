/* fault.c - the fault registry and worker-process helpers for hogs. */
#define _GNU_SOURCE
#include "fault.h"
#include "fault_net.h"
#include "registry.h"
#include "run_id.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static const cep_fault_ops *const registry[] = {
    &runner_fault_process_kill,
    &runner_fault_container_kill,
    &runner_fault_cpu_hog,
    &runner_fault_memory_hog,
    &runner_fault_net_loss,
    &runner_fault_net_partition,
    &runner_fault_net_latency,
    &runner_fault_net_bandwidth,
    &runner_fault_net_dns,
    &runner_fault_net_corrupt,
    &runner_fault_net_duplicate,
    &runner_fault_io_stress,
    &runner_fault_disk_fill,
    &runner_fault_kube_pod_delete,
    &runner_fault_kube_scale,
    &runner_fault_kube_cordon,
    &runner_fault_kube_taint,
    &runner_fault_kube_drain,
};

static cep_run_id run_id_; /* "" until set: faults refuse to run */
static int64_t deadline_;

void runner_fault_set_run(const char *run_id, int64_t deadline_mono_ms)
{
	cep_run_id_parse(&run_id_, run_id); /* "" when not a run id */
	deadline_ = deadline_mono_ms;
}

const char *runner_fault_run_id(void)
{
	return run_id_.s;
}

int64_t runner_fault_deadline_mono(void)
{
	return deadline_;
}

CEP_RUNNER_REGISTRY_FIND(runner_fault_find, cep_fault_ops, registry)

/* In the child, before anything else: the runner blocks SIGTERM/SIGINT
 * for its signal thread, and a worker must be killable by everything. */
static void worker_setup(pid_t parent, const char *comm)
{
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* the runner may have died between fork and prctl */
	if (getppid() != parent)
		_exit(0);
	prctl(PR_SET_NAME, comm);
}

/* The parent waits for the child's "ready" byte, so that "injected"
 * means the worker runs under its name with PDEATHSIG armed. */
int runner_fault_spawn_worker(const char *comm, void (*body)(const void *),
    const void *arg, pid_t *pid, cep_err *err)
{
	int sync[2];
	if (pipe2(sync, O_CLOEXEC) != 0)
		return cep_err_errno(err, errno, "pipe for a fault worker");
	pid_t parent = getpid();
	pid_t p = fork();
	if (p < 0) {
		int e = errno;
		close(sync[0]);
		close(sync[1]);
		return cep_err_errno(err, e, "fork of a fault worker");
	}
	if (p == 0) {
		close(sync[0]);
		worker_setup(parent, comm);
		if (write(sync[1], "r", 1) != 1)
			_exit(1);
		close(sync[1]);
		body(arg);
		_exit(0);
	}
	close(sync[1]);
	char c;
	ssize_t n;
	do
		n = read(sync[0], &c, 1);
	while (n < 0 && errno == EINTR);
	close(sync[0]);
	if (n != 1) {
		runner_fault_kill_workers(&p, 1, NULL);
		return cep_err_set(err, CEP_INTERNAL,
		    "fault worker %s exited during setup", comm);
	}
	*pid = p;
	return CEP_OK;
}

int runner_fault_kill_workers(const pid_t *pids, size_t n, cep_err *err)
{
	int rc = CEP_OK;
	for (size_t i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
	for (size_t i = 0; i < n; i++) {
		if (pids[i] <= 0)
			continue;
		pid_t r;
		do
			r = waitpid(pids[i], NULL, 0);
		while (r < 0 && errno == EINTR);
		if (r != pids[i] && rc == CEP_OK)
			rc = cep_err_errno(err, errno,
			    "reaping fault worker (waitpid)");
	}
	return rc;
}
