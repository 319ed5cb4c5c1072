/*
 * test_daemon.c - cep_daemon_stop_guard: a shutdown that hangs (the relay's
 * nng close behind a thousand broken pipes) still ends the process, once
 * the grace time is over, and not before.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "daemon.h"
#include "log.h"

Test(daemon, stop_guard_ends_a_hung_shutdown)
{
	int64_t t0 = cep_clock_mono_ms();
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		cep_log_init("test");
		cep_daemon_stop_guard(300);
		for (;;) /* a close that never returns */
			pause();
	}
	int status = 0;
	pid_t got = 0;
	while ((got = waitpid(pid, &status, WNOHANG)) == 0 &&
	    cep_clock_mono_ms() - t0 < 20000) {
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (got == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		cr_assert_fail("the guard did not end the process in 20 s");
	}
	int64_t took = cep_clock_mono_ms() - t0;
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d",
	    status);
	cr_assert_geq(took, 300, "ended after %lld ms, before the grace",
	    (long long)took);
}
