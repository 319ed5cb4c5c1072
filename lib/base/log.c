/* log.c - logfmt on a terminal or pipe, journald fields under systemd. */
#define _GNU_SOURCE
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

static const char *log_comp = "cep";
static enum cep_log_level log_min = CEP_LOG_INFO;
/* 1: stderr is the journal; 2: a descendant of a journald-logged service
 * whose stderr goes elsewhere (a runner writing its run's log file): both */
static int log_journal = 0;
/* cep_log_set_run: the run this whole process is about (a runner) */
static char log_run[64];
static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;

/* systemd sets JOURNAL_STREAM=<dev>:<ino> of the stream it connected to
 * stderr. A child inherits the variable even when its stderr goes
 * elsewhere (a runner whose output the delegate writes to its run's log
 * file): then a line goes to that file as logfmt and to the journal too,
 * so `journalctl CEP_RUN_ID=...` shows the runner beside the daemons.
 * Returns 1 (journal only), 2 (both) or 0 (stderr only). */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	if (js == NULL || js[0] == '\0')
		return 0;
	char *end = NULL;
	unsigned long long dev = strtoull(js, &end, 10);
	if (end == js || *end != ':')
		return 2;
	const char *ip = end + 1;
	unsigned long long ino = strtoull(ip, &end, 10);
	struct stat st;
	if (end == ip || *end != '\0' || fstat(STDERR_FILENO, &st) != 0)
		return 2;
	return (unsigned long long)st.st_dev == dev &&
	        (unsigned long long)st.st_ino == ino ?
	    1 :
	    2;
}

void cep_log_set_run(const char *run_id)
{
	snprintf(log_run, sizeof(log_run), "%s", run_id ? run_id : "");
}

void cep_log_init(const char *comp)
{
	log_comp = comp;
	log_journal = stderr_is_journal();
	const char *lvl = getenv("CEP_LOG_LEVEL");
	if (lvl != NULL && strcmp(lvl, "debug") == 0)
		log_min = CEP_LOG_DEBUG;
}

void cep_log_set_level(enum cep_log_level min)
{
	log_min = min;
}

static const char *level_name(enum cep_log_level l)
{
	static const char *n[] = {"debug", "info", "warn", "error"};
	return n[l];
}

/* logfmt value: quoted when it holds spaces, quotes or '=' */
static void put_value(FILE *f, const char *v)
{
	if (strpbrk(v, " \"=\t\n\\") == NULL && *v != '\0') {
		fputs(v, f);
		return;
	}
	fputc('"', f);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			fputc('\\', f);
		if (*v == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*v, f);
	}
	fputc('"', f);
}

/* MESSAGE, PRIORITY, CEP_COMPONENT and the non-empty CEP_RUN_ID and
 * CEP_CONNECTOR: an empty field would match `journalctl CEP_RUN_ID=`. */
static void to_journal(enum cep_log_level lvl, const char *run_id,
    const char *conn, const char *msg)
{
	static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
	char f[5][2200];
	struct iovec iov[5];
	int n = 0;
	snprintf(f[n++], sizeof(f[0]), "MESSAGE=%s", msg);
	snprintf(f[n++], sizeof(f[0]), "PRIORITY=%d", prio[lvl]);
	snprintf(f[n++], sizeof(f[0]), "CEP_COMPONENT=%s", log_comp);
	if (run_id != NULL && run_id[0] != '\0')
		snprintf(f[n++], sizeof(f[0]), "CEP_RUN_ID=%.128s", run_id);
	if (conn != NULL && conn[0] != '\0')
		snprintf(f[n++], sizeof(f[0]), "CEP_CONNECTOR=%.128s", conn);
	for (int i = 0; i < n; i++)
		iov[i] = (struct iovec){.iov_base = f[i],
		    .iov_len = strlen(f[i])};
	sd_journal_sendv(iov, n);
}

static void to_stderr(enum cep_log_level lvl, const char *run_id,
    const char *conn, const char *msg)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char tbuf[40];
	strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);

	pthread_mutex_lock(&log_mtx);
	fprintf(stderr, "ts=%s.%03ldZ level=%s comp=%s", tbuf,
	    ts.tv_nsec / 1000000, level_name(lvl), log_comp);
	if (run_id != NULL && run_id[0] != '\0') {
		fputs(" run=", stderr);
		put_value(stderr, run_id);
	}
	if (conn != NULL && conn[0] != '\0') {
		fputs(" conn=", stderr);
		put_value(stderr, conn);
	}
	fputs(" msg=", stderr);
	put_value(stderr, msg);
	fputc('\n', stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_mtx);
}

static void vlog(enum cep_log_level lvl, const char *run_id, const char *conn,
    const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
static void vlog(enum cep_log_level lvl, const char *run_id, const char *conn,
    const char *fmt, va_list ap)
{
	if (lvl < log_min)
		return;
	char msg[2048];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (run_id == NULL || run_id[0] == '\0')
		run_id = log_run;
	if (log_journal != 0)
		to_journal(lvl, run_id, conn, msg);
	if (log_journal != 1)
		to_stderr(lvl, run_id, conn, msg);
}

void cep_log_write(enum cep_log_level lvl, const char *run_id, const char *fmt,
    ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(lvl, run_id, NULL, fmt, ap);
	va_end(ap);
}

void cep_log_conn(enum cep_log_level lvl, const char *run_id, const char *conn,
    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(lvl, run_id, conn, fmt, ap);
	va_end(ap);
}
