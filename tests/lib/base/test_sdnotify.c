/*
 * test_sdnotify.c - the systemd notify protocol as systemd sees it: the
 * test plays the service manager, a datagram socket named by NOTIFY_SOCKET,
 * and reads what cep_sd_* sends (READY, STATUS, WATCHDOG, STOPPING).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sdnotify.h"
#include "testutil.h"
#include "clock.h"

static char *dir;
static int mgr = -1; /* the "service manager" end */
static atomic_ulong ticks;
static atomic_bool ticking;
static pthread_t ticker;

static void setup(void)
{
	dir = cep_test_tmpdir("sdnotify");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", dir);
	mgr = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert(mgr >= 0);
	cr_assert(bind(mgr, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	setenv("NOTIFY_SOCKET", sa.sun_path, 1);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	atomic_store(&ticks, 0);
}

static void teardown(void)
{
	close(mgr);
	unsetenv("NOTIFY_SOCKET");
	cep_test_rmdir(dir);
}

static uint64_t tick(void *arg)
{
	(void)arg;
	return atomic_load(&ticks);
}

static void status(void *arg, char *buf, size_t len)
{
	snprintf(buf, len, "%s: %lu ticks\nsecond line", (const char *)arg,
	    (unsigned long)atomic_load(&ticks));
}

static void *tick_main(void *arg)
{
	(void)arg;
	while (atomic_load(&ticking)) {
		atomic_fetch_add(&ticks, 1);
		usleep(5000);
	}
	return NULL;
}

/* The next datagram within ms, NUL-terminated; false on timeout. */
static bool recv_msg(char *buf, size_t len, int ms)
{
	struct pollfd p = {.fd = mgr, .events = POLLIN};
	if (poll(&p, 1, ms) != 1)
		return false;
	ssize_t n = recv(mgr, buf, len - 1, 0);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return true;
}

/* Reads every message for ms; counts those holding needle. */
static int count_for(const char *needle, int ms)
{
	int64_t end = cep_clock_mono_ms() + ms;
	int n = 0;
	char buf[512];
	for (int64_t left = ms; left > 0; left = end - cep_clock_mono_ms())
		if (recv_msg(buf, sizeof(buf), (int)left) &&
		    strstr(buf, needle))
			n++;
	return n;
}

TestSuite(sdnotify, .init = setup, .fini = teardown);

Test(sdnotify, ready_carries_one_line_status)
{
	cep_sd_ops ops = {.tick = tick, .status = status, .arg = "relay"};
	cep_sd *sd = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_sdnotify_start(&ops, &sd, &err), CEP_OK, "%s",
	    err.msg);
	char buf[512];
	cr_assert(recv_msg(buf, sizeof(buf), 2000), "no READY within 2 s");
	cr_assert(strstr(buf, "READY=1") != NULL, "got '%s'", buf);
	cr_assert(strstr(buf, "STATUS=relay: 0 ticks second line") != NULL,
	    "STATUS must be one line: '%s'", buf);
	cep_sdnotify_stopping(sd, "stopping: 2 runs");
	cr_assert(recv_msg(buf, sizeof(buf), 2000), "no STOPPING within 2 s");
	cr_assert(strstr(buf, "STOPPING=1") != NULL, "got '%s'", buf);
	cr_assert(strstr(buf, "STATUS=stopping: 2 runs") != NULL, "got '%s'",
	    buf);
	cep_sdnotify_free(sd);
}

Test(sdnotify, watchdog_pings_while_the_loop_ticks)
{
	setenv("WATCHDOG_USEC", "200000", 1); /* ping every 100 ms */
	cr_assert_eq(cep_sdnotify_watchdog_interval_us(), 100000);
	atomic_store(&ticking, true);
	cr_assert(pthread_create(&ticker, NULL, tick_main, NULL) == 0);
	cep_sd_ops ops = {.tick = tick, .status = status, .arg = "delegate"};
	cep_sd *sd = NULL;
	cr_assert_eq(cep_sdnotify_start(&ops, &sd, NULL), CEP_OK);
	int pings = count_for("WATCHDOG=1", 1000);
	atomic_store(&ticking, false);
	pthread_join(ticker, NULL);
	cep_sdnotify_free(sd);
	cr_assert(pings >= 5 && pings <= 12, "%d pings in 1 s at 100 ms",
	    pings);
}

Test(sdnotify, a_hung_loop_gets_no_ping)
{
	setenv("WATCHDOG_USEC", "200000", 1);
	cep_sd_ops ops = {.tick = tick, .status = status, .arg = "delegate"};
	cep_sd *sd = NULL;
	cr_assert_eq(cep_sdnotify_start(&ops, &sd, NULL), CEP_OK);
	/* ticks never move: STATUS keeps coming, WATCHDOG must not */
	int64_t end = cep_clock_mono_ms() + 700;
	int status_n = 0, pings = 0;
	char buf[512];
	for (int64_t left = 700; left > 0; left = end - cep_clock_mono_ms()) {
		if (!recv_msg(buf, sizeof(buf), (int)left))
			continue;
		status_n += strstr(buf, "STATUS=") != NULL;
		pings += strstr(buf, "WATCHDOG=1") != NULL;
	}
	cr_assert_eq(pings, 0, "a loop that does not tick must not be pinged");
	cr_assert(status_n >= 4, "only %d STATUS messages", status_n);
	/* it ticks again: pings resume */
	atomic_store(&ticking, true);
	cr_assert(pthread_create(&ticker, NULL, tick_main, NULL) == 0);
	pings = count_for("WATCHDOG=1", 500);
	atomic_store(&ticking, false);
	pthread_join(ticker, NULL);
	cep_sdnotify_free(sd);
	cr_assert(pings >= 2, "pings did not resume (%d)", pings);
}

Test(sdnotify, watchdog_for_another_pid_is_ignored)
{
	setenv("WATCHDOG_USEC", "200000", 1);
	setenv("WATCHDOG_PID", "1", 1);
	cr_assert_eq(cep_sdnotify_watchdog_interval_us(), 0);
}

Test(sdnotify, without_systemd_nothing_is_sent)
{
	unsetenv("NOTIFY_SOCKET");
	cep_sd_ops ops = {.tick = tick, .status = status, .arg = "relay"};
	cep_sd *sd = NULL;
	cr_assert_eq(cep_sdnotify_start(&ops, &sd, NULL), CEP_OK);
	cr_assert_not_null(sd);
	cep_sdnotify_stopping(sd, NULL);
	char buf[64];
	cr_assert(!recv_msg(buf, sizeof(buf), 300), "sent '%s'", buf);
	cep_sdnotify_free(sd);
}
