/*
 * report.h - what cepctl tells about a run: live progress lines while it
 * runs, and the final report (text for people, JSON for programs, JUnit
 * XML for CI systems, one self-contained HTML page to look at), all built
 * from the run's events and RunInfo: as the delegate serves them
 * (Admin/Follow), or read from the run's journal (report_journal.c).
 */
#ifndef CEPCTL_REPORT_H
#define CEPCTL_REPORT_H

#include <stdio.h>

#include "cep.pb-c.h"
#include "cli.h"

typedef struct cepctl_report cepctl_report;

cepctl_report *cepctl_report_new(void);
void cepctl_report_free(cepctl_report *r);
/* Events in seq order; duplicates (seq already seen) are ignored. */
void cepctl_report_add(cepctl_report *r, const Cep__V1__Event *ev);
void cepctl_report_set_run(cepctl_report *r, const Cep__V1__RunInfo *run);
/* The experiment as submitted: the HTML report's target and probe
 * weights. A text that does not parse is ignored (weights unknown). */
void cepctl_report_set_spec(cepctl_report *r, const char *yaml);
uint64_t cepctl_report_last_seq(const cepctl_report *r);
void cepctl_report_render(const cepctl_report *r, enum cepctl_output out,
    FILE *f);

/* Text for XML and HTML, both in element content and in attribute
 * values: & < > " ' as references, control characters other than tab
 * and newline dropped (XML 1.0 cannot carry them). */
void cepctl_report_escape(FILE *f, const char *s);

/* The HTML report (report_html.c, docs/report.md): one page, no script,
 * nothing fetched; every text from the run is escaped. */
void cepctl_report_render_html(const cepctl_report *r, FILE *f);
/* ... written to path (0644, replaced atomically). */
int cepctl_report_write_html(const cepctl_report *r, const char *path,
    cep_err *err);

/* A report from the journal of a run in dir (state/runs/<run-id>): the
 * records the delegate's recovery reads, made into the RunInfo and the
 * events it would serve. A torn tail is not an error: the report holds
 * what is before it. */
int cepctl_report_from_journal(const char *dir, cepctl_report **out,
    cep_err *err);
/* ... from a run's events alone, as a control plane has them: a file
 * holding one serialized cep.v1.EventBatch (the run's events in seq
 * order), and optionally the experiment's file (spec, may be NULL). */
int cepctl_report_from_events(const char *events, const char *spec,
    cepctl_report **out, cep_err *err);

/* One Admin/Follow round (cmd_run.c): new events into r (and progress
 * lines to progress, if not NULL), the run's state into *state. Returns a
 * status code. */
int cepctl_follow_once(cepctl_admin *a, const char *run_id, cepctl_report *r,
    FILE *progress, int64_t *t0, int *state, int timeout_ms, cep_err *err);

/* Local time of ms since the epoch for people: "2026-11-25 13:55:11"
 * (date) or "13:55:11.123" (clock, of one run's timeline); "-" when
 * unset (ms <= 0). */
enum cepctl_time_fmt { CEPCTL_TIME_DATE, CEPCTL_TIME_CLOCK };
void cepctl_fmt_time(int64_t ms, enum cepctl_time_fmt how, char *buf,
    size_t len);

/* One line of live progress for an event ("  12.3s  chaos  ..."). */
void cepctl_progress_event(const Cep__V1__Event *ev, int64_t t0_ms, FILE *f);

#endif
