/* log.c - logfmt on a terminal or pipe, journald fields under systemd. */
#define _GNU_SOURCE
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <time.h>

static const char *log_comp = "cep";
static enum cep_log_level log_min = CEP_LOG_INFO;
static int log_journal = 0;
static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;

void cep_log_init(const char *comp)
{
	log_comp = comp;
	/* systemd sets JOURNAL_STREAM when stderr is connected to the journal */
	log_journal = getenv("JOURNAL_STREAM") != NULL;
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

void cep_log(enum cep_log_level lvl, const char *run_id, const char *fmt, ...)
{
	if (lvl < log_min)
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (log_journal) {
		static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
		sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", prio[lvl],
		    "CEP_COMPONENT=%s", log_comp, "CEP_RUN_ID=%s",
		    run_id ? run_id : "", NULL);
		return;
	}
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
	fputs(" msg=", stderr);
	put_value(stderr, msg);
	fputc('\n', stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_mtx);
}
