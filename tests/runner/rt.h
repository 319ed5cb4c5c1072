/* rt.h - helpers shared by the runner tests (header-only, static). */
#ifndef CEP_TEST_RUNNER_RT_H
#define CEP_TEST_RUNNER_RT_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exp.h"
#include "memsink.h"
#include "sink.h"

static inline cep_exp *rt_parse(const char *yaml)
{
	cep_exp *e = NULL;
	cep_err err = {0};
	int rc = cep_exp_parse(yaml, strlen(yaml), "test.yaml", &e, NULL, &err);
	cr_assert_eq(rc, CEP_OK, "experiment does not parse: %s", err.msg);
	return e;
}

/* A memsink-backed sink with its own ctl. */
typedef struct rt_sink {
	cep_runner_ctl *ctl;
	cep_runner_memsink *mem;
	cep_runner_sink *sink;
} rt_sink;

static inline void rt_sink_open(rt_sink *s)
{
	s->ctl = runner_ctl_new();
	s->mem = runner_memsink_new();
	s->sink = runner_sink_new("r-0123456789abcdef", runner_memsink_ops(),
	    s->mem, s->ctl);
	cr_assert(s->ctl && s->mem && s->sink);
}

static inline void rt_sink_close(rt_sink *s)
{
	runner_sink_free(s->sink);
	runner_memsink_free(s->mem);
	runner_ctl_free(s->ctl);
}

/* /proc/<pid>/stat: comm, state, ppid, utime. false if gone. */
static inline bool rt_proc_stat(int pid, char *comm, size_t clen, char *state,
    long *ppid, long *utime)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *o = strchr(buf, '('), *c = strrchr(buf, ')');
	if (o == NULL || c == NULL)
		return false;
	if (comm != NULL)
		snprintf(comm, clen, "%.*s", (int)(c - o - 1), o + 1);
	/* after ") ": state ppid pgrp session tty tpgid flags minflt
	 * cminflt majflt cmajflt utime */
	char *p = c + 2;
	if (state != NULL)
		*state = *p;
	long v[12] = {0};
	p++;
	for (int i = 0; i < 12 && *p; i++) {
		char *end;
		v[i] = strtol(p, &end, 10);
		p = end;
	}
	if (ppid != NULL)
		*ppid = v[0];
	if (utime != NULL)
		*utime = v[10];
	return true;
}

/* Children of this process named comm (zombies included): pids into out. */
static inline int rt_children_named(const char *comm, int *out, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;
	while (d != NULL && (de = readdir(d)) != NULL) {
		int pid = (int)strtol(de->d_name, NULL, 10);
		char c[64];
		long ppid;
		if (pid <= 0 ||
		    !rt_proc_stat(pid, c, sizeof(c), NULL, &ppid, NULL))
			continue;
		if (ppid == (long)getpid() && strcmp(c, comm) == 0) {
			if (n < max)
				out[n] = pid;
			n++;
		}
	}
	if (d != NULL)
		closedir(d);
	return n;
}

static inline bool rt_pid_exists(int pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", pid);
	return access(path, F_OK) == 0;
}

/* Concatenated LOG texts, for "the round said so" checks. */
static inline bool rt_log_contains(cep_runner_memsink *m, const char *needle)
{
	for (size_t i = 0; i < runner_memsink_nevents(m); i++) {
		Cep__V1__Event *e = runner_memsink_event(m, i);
		if (e->type == CEP__V1__EVENT_TYPE__EVENT_LOG &&
		    strstr(e->text, needle) != NULL)
			return true;
	}
	return false;
}

#endif
