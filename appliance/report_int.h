/*
 * report_int.h - the report's accumulated figures, shared by the files
 * that fill it (report.c from events, report_journal.c from a journal)
 * and those that render it (report.c: text, JSON, JUnit; report_html.c).
 * Not for commands: they use report.h.
 */
#ifndef CEPCTL_REPORT_INT_H
#define CEPCTL_REPORT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "exp.h"
#include "report.h"

#define CEPCTL_REPORT_MAX_PHASES 16
#define CEPCTL_REPORT_MAX_PROBES 64
#define CEPCTL_REPORT_MAX_CHECKS 20000
#define CEPCTL_REPORT_MAX_LOG 5000

struct cepctl_check {
	int64_t t;
	bool ok;
	uint32_t ms;
};

struct cepctl_probe {
	char name[64], mode[24];
	size_t n, ok;
	uint64_t ms_sum;
	uint32_t ms_max;
	bool has_final, final_ok;
	char final_detail[256], last_fail[256];
	struct cepctl_check *checks; /* for the timeline; capped */
	size_t nchecks;
};

/* One line of the event log: the progress line of an event that has one
 * (passing continuous checks have none: they are the charts' marks). */
struct cepctl_log_line {
	int64_t t;
	int type; /* Cep__V1__EventType */
	char *text;
};

struct cepctl_report {
	uint64_t last_seq;
	int64_t t0;
	struct {
		char name[32];
		int64_t t;
	} phases[CEPCTL_REPORT_MAX_PHASES];
	size_t nphases;
	struct cepctl_probe probes[CEPCTL_REPORT_MAX_PROBES];
	size_t nprobes;
	char verdict[32], reason[256];
	double score;
	bool has_verdict;
	Cep__V1__RunInfo *run;
	cep_exp *spec; /* the experiment as submitted, if it parses */
	struct cepctl_log_line *log;
	size_t nlog, log_dropped;
	int64_t t_last; /* the latest time any event or fault names */
};

/* "setup 0ms -> steady-state 15ms -> chaos 10s -> ..." (no newline). */
void cepctl_report_phases(const cepctl_report *r, FILE *f);

/* A probe's weight in the score: the spec's `weight`, else 1; 0 if the
 * spec is unknown or does not name the probe. */
double cepctl_report_weight(const cepctl_report *r, const char *probe);

#endif
