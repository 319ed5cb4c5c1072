/*
 * report_html.c - the run report as one self-contained HTML page
 * (docs/report.md): header with verdict and how the score was computed,
 * a timeline of phases and faults, a chart per probe, the event log.
 *
 * The page loads nothing: the style is inline, the charts are SVG written
 * here, there is no script, and a Content-Security-Policy forbids anything
 * else. Every text that comes from the run (names, targets, probe details,
 * log lines: runner input, so hostile) goes through cepctl_report_escape;
 * markup comes only from the literals in this file.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "files.h"
#include "report_int.h"
#include "runstate.h"

#define esc cepctl_report_escape

/* Chart geometry, in SVG user units: a label column, then the plot. */
#define CH_W 1000
#define CH_LABEL 250
#define CH_PLOT (CH_W - CH_LABEL - 24)
#define ROW_H 22
#define MAX_ROWS 40

static const char style[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;"
    "max-width:1040px}\n"
    "h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px;"
    "border-bottom:1px solid #ccc}h3{font-size:15px;margin:16px 0 4px}\n"
    "table{border-collapse:collapse}td,th{padding:2px 10px 2px 0;"
    "text-align:left;vertical-align:top}\n"
    "th{color:#555;font-weight:600}.mono,#events td{font-family:monospace;"
    "font-size:12px;white-space:pre-wrap}\n"
    ".verdict{display:inline-block;padding:4px 14px;border-radius:4px;"
    "font-weight:700;font-size:18px;color:#fff;margin-right:12px}\n"
    ".pass{background:#2e7d32}.fail{background:#c62828}"
    ".error{background:#6d4c41}\n"
    ".ok{color:#2e7d32;font-weight:600}.bad{color:#c62828;font-weight:600}\n"
    "svg{display:block;margin:4px 0}svg text{font:11px sans-serif;"
    "fill:#333}\n"
    "tr.t1 td{font-weight:600;background:#f3f3f3}tr.t3 td{color:#444}\n"
    "tr.t4 td{color:#bf360c;font-weight:600}tr.t5 td{font-weight:700}\n";

/* Phase colours by name (runner/engine.c's phases); others grey. */
static const char *phase_fill(const char *name)
{
	static const char *const fills[][2] = {{"steady-state", "#e3f2fd"},
	    {"chaos", "#ffebee"}, {"revert", "#fff3e0"},
	    {"post-chaos", "#e8f5e9"}};
	for (size_t i = 0; i < sizeof(fills) / sizeof(fills[0]); i++)
		if (strcmp(name, fills[i][0]) == 0)
			return fills[i][1];
	return "#f5f5f5";
}

struct axis {
	int64_t t0, t1;
};

static double xpos(const struct axis *a, int64_t t)
{
	if (t < a->t0)
		t = a->t0;
	if (t > a->t1)
		t = a->t1;
	return CH_LABEL +
	    (double)(t - a->t0) * CH_PLOT / (double)(a->t1 - a->t0);
}

static void widen(struct axis *a, int64_t t)
{
	if (t <= 0)
		return;
	if (a->t0 == 0 || t < a->t0)
		a->t0 = t;
	if (t > a->t1)
		a->t1 = t;
}

/* From the first to the last thing the run records. */
static struct axis run_axis(const cepctl_report *r)
{
	struct axis a = {0, 0};
	widen(&a, r->t0);
	widen(&a, r->t_last);
	for (size_t i = 0; r->run != NULL && i < r->run->n_faults; i++) {
		widen(&a, r->run->faults[i]->injected_ms);
		widen(&a, r->run->faults[i]->reverted_ms);
	}
	if (a.t0 == 0 && r->run != NULL)
		widen(&a, r->run->created_ms);
	if (a.t1 <= a.t0)
		a.t1 = a.t0 + 1000;
	return a;
}

static const char *verdict_class(const char *v)
{
	return strcmp(v, "Pass") == 0 ? "pass" :
	    strcmp(v, "Fail") == 0    ? "fail" :
	                                "error";
}

static void kv_row(FILE *f, const char *k, const char *v)
{
	fprintf(f, "<tr><th>%s</th><td>", k);
	esc(f, v);
	fputs("</td></tr>\n", f);
}

static void time_row(FILE *f, const char *k, int64_t ms)
{
	char t[32];
	cepctl_fmt_time(ms, CEPCTL_TIME_DATE, t, sizeof(t));
	kv_row(f, k, t);
}

/* host, or kubernetes connector/namespace, from the spec. */
static void target_text(const cepctl_report *r, char *buf, size_t len)
{
	if (r->spec == NULL) {
		snprintf(buf, len, "unknown (the run's spec is not available)");
		return;
	}
	const char *kind = cep_exp_target_kind(r->spec);
	if (strcmp(kind, "host") == 0)
		snprintf(buf, len, "host (connector %s)",
		    cep_exp_connector(r->spec));
	else
		snprintf(buf, len, "%s: connector %s, namespace %s", kind,
		    cep_exp_connector(r->spec), cep_exp_namespace(r->spec));
}

static void render_header(const cepctl_report *r, FILE *f)
{
	const Cep__V1__RunInfo *run = r->run;
	char buf[512];
	fputs("<header id=\"run\"><h1>", f);
	esc(f, run != NULL && run->name[0] ? run->name : "experiment");
	fputs("</h1>\n<p><span id=\"verdict\" class=\"verdict ", f);
	const char *v = r->has_verdict ? r->verdict : "no verdict";
	fprintf(f, "%s\">", verdict_class(v));
	esc(f, v);
	fprintf(f, "</span> resilience score <b id=\"score\">%.1f</b> / 100",
	    r->score);
	if (r->reason[0] != '\0') {
		fputs(" &mdash; ", f);
		esc(f, r->reason);
	}
	fputs("</p>\n<table class=\"kv\">\n", f);
	kv_row(f, "run", run ? run->run_id : "?");
	kv_row(f, "experiment file", run ? run->spec_name : "");
	target_text(r, buf, sizeof(buf));
	kv_row(f, "target", buf);
	kv_row(f, "state", run ? cep_runstate_name(run->state) : "UNKNOWN");
	if (run != NULL && run->reason[0] != '\0')
		kv_row(f, "reason", run->reason);
	time_row(f, "created", run ? run->created_ms : 0);
	time_row(f, "ended", run ? run->ended_ms : 0);
	fputs("</table></header>\n", f);
}

static bool probe_passed(const struct cepctl_probe *p)
{
	return p->has_final && p->final_ok;
}

/* One probe's part in the score; w 0: its weight is not known. */
static void score_row(FILE *f, const struct cepctl_probe *p, double w)
{
	char wt[32] = "?", won[32] = "?";
	if (w > 0) {
		snprintf(wt, sizeof(wt), "%g", w);
		snprintf(won, sizeof(won), "%g", probe_passed(p) ? w : 0.0);
	}
	fputs("<tr><td>", f);
	esc(f, p->name);
	fputs("</td><td>", f);
	esc(f, p->mode);
	fprintf(f, "</td><td class=\"%s\">%s</td><td>%s</td><td>%s</td></tr>\n",
	    probe_passed(p) ? "ok" : "bad",
	    !p->has_final   ? "no result" :
	        p->final_ok ? "passed" :
	                      "failed",
	    wt, won);
}

/* The score as the runner computes it (runner/probes.c), recomputed from
 * the probes' final results and the spec's weights, to show the sum. */
static void render_score(const cepctl_report *r, FILE *f)
{
	fputs("<section id=\"how\"><h2>How the score was computed</h2>\n"
	      "<p>The verdict is Pass when every probe passed. The resilience "
	      "score is the weighted share of probes that passed: 100 &times; "
	      "(sum of the weights of the probes that passed) / (sum of all "
	      "weights); 100 when there are no probes. A probe's weight is its "
	      "<code>weight</code> in the experiment (default 1).</p>\n",
	    f);
	double won = 0, total = 0;
	bool known = r->spec != NULL;
	fputs("<table><tr><th>probe</th><th>mode</th><th>result</th>"
	      "<th>weight</th><th>counts</th></tr>\n",
	    f);
	for (size_t i = 0; i < r->nprobes; i++) {
		const struct cepctl_probe *p = &r->probes[i];
		double w = cepctl_report_weight(r, p->name);
		known = known && w > 0;
		total += w;
		won += probe_passed(p) ? w : 0;
		score_row(f, p, w);
	}
	fputs("</table>\n<p>", f);
	if (known && total > 0)
		fprintf(f, "100 &times; %g / %g = <b>%.1f</b>", won, total,
		    100.0 * won / total);
	else if (known)
		fputs("no probes: <b>100.0</b>", f);
	else
		fputs("The weights are not known here (the run's spec is not "
		      "available); the score is the runner's.",
		    f);
	fprintf(f, " (the runner reported %.1f)</p></section>\n", r->score);
}

static void svg_open(FILE *f, const char *id, int h)
{
	fprintf(f,
	    "<svg id=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
	    "height=\"%d\" viewBox=\"0 0 %d %d\">\n",
	    id, CH_W, h, CH_W, h);
}

/* Phase bands behind a chart, each from its start to the next's. */
static void phase_bands(const cepctl_report *r, const struct axis *a, FILE *f,
    int y, int h, bool names)
{
	for (size_t i = 0; i < r->nphases; i++) {
		int64_t s = r->phases[i].t;
		int64_t e = i + 1 < r->nphases ? r->phases[i + 1].t : a->t1;
		double x0 = xpos(a, s), x1 = xpos(a, e);
		fprintf(f,
		    "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
		    "fill=\"%s\"><title>",
		    x0, y, x1 - x0 > 1 ? x1 - x0 : 1, h,
		    phase_fill(r->phases[i].name));
		esc(f, r->phases[i].name);
		fputs("</title></rect>\n", f);
		/* a short phase's name would overwrite its neighbour's: the
		 * list under the chart names every phase */
		if (names &&
		    x1 - x0 >= 8.0 * (double)strlen(r->phases[i].name)) {
			fprintf(f, "<text x=\"%.1f\" y=\"%d\">", x0 + 3,
			    y + 15);
			esc(f, r->phases[i].name);
			fputs("</text>\n", f);
		}
	}
}

/* Seconds since the start along the bottom of a chart. */
static void time_ticks(const struct axis *a, FILE *f, int y)
{
	int64_t span = a->t1 - a->t0;
	int64_t step = 1000;
	static const int64_t steps[] = {1000, 2000, 5000, 10000, 30000, 60000,
	    300000, 600000, 1800000, 3600000};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		step = steps[i];
		if (span / step <= 12)
			break;
	}
	for (int64_t t = 0; t <= span; t += step) {
		double x = xpos(a, a->t0 + t);
		fprintf(f,
		    "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
		    "stroke=\"#999\"/><text x=\"%.1f\" y=\"%d\">%llds</text>\n",
		    x, y, x, y + 4, x - 6, y + 15, (long long)(t / 1000));
	}
}

/* A label in the left column, cut at a character boundary. */
static void row_label(FILE *f, const char *s, int y)
{
	char buf[40];
	size_t n = strlen(s);
	if (n >= sizeof(buf)) {
		n = sizeof(buf) - 4;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(buf, s, n);
	snprintf(buf + n, sizeof(buf) - n, "%s", s[n] ? "..." : "");
	fprintf(f, "<text x=\"2\" y=\"%d\"><title>", y);
	esc(f, s);
	fputs("</title>", f);
	esc(f, buf);
	fputs("</text>\n", f);
}

static const char *fault_target(const Cep__V1__FaultInfo *fi)
{
	return fi->record != NULL && fi->record->target[0] ?
	    fi->record->target :
	    "(no target recorded)";
}

/* The distinct targets of the run's faults, in order of first fault;
 * *more: faults whose target got no row (the table lists them all). */
static size_t fault_rows(const Cep__V1__RunInfo *run, const char **rows,
    size_t *more)
{
	size_t n = 0;
	*more = 0;
	for (size_t i = 0; run != NULL && i < run->n_faults; i++) {
		const char *t = fault_target(run->faults[i]);
		size_t k = 0;
		while (k < n && strcmp(rows[k], t) != 0)
			k++;
		if (k == n && n < MAX_ROWS)
			rows[n++] = t;
		else if (k == n)
			(*more)++;
	}
	return n;
}

static void fault_bar(FILE *f, const struct axis *a,
    const Cep__V1__FaultInfo *fi, int y)
{
	int64_t end = fi->reverted_ms ? fi->reverted_ms : a->t1;
	double x0 = xpos(a, fi->injected_ms), x1 = xpos(a, end);
	const char *id = fi->record ? fi->record->fault_id : "?";
	fprintf(f,
	    "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"14\" "
	    "fill=\"%s\"><title>",
	    x0, y, x1 - x0 > 3 ? x1 - x0 : 3,
	    fi->reverted_ms ? "#e65100" : "#b71c1c");
	esc(f, id);
	fputs(" (", f);
	esc(f, fi->record ? fi->record->type : "?");
	fprintf(f, ") %s</title></rect>\n",
	    fi->reverted_ms ? "injected -> reverted" : "never reverted");
	fprintf(f, "<text x=\"%.1f\" y=\"%d\">", x0 + 4, y - 2);
	esc(f, id);
	fputs("</text>\n", f);
}

static void render_timeline(const cepctl_report *r, const struct axis *a,
    FILE *f)
{
	const char *rows[MAX_ROWS];
	size_t more;
	size_t nrows = fault_rows(r->run, rows, &more);
	int h = 30 + (int)nrows * (ROW_H + 12) + 24;
	fputs("<section id=\"timeline\"><h2>Timeline</h2>\n<p>Phases, and "
	      "each fault from injected to reverted, one row per target.</p>\n",
	    f);
	svg_open(f, "timeline-chart", h);
	phase_bands(r, a, f, 0, h - 24, true);
	row_label(f, "phases", 15);
	for (size_t k = 0; k < nrows; k++) {
		int y = 30 + (int)k * (ROW_H + 12) + 12;
		row_label(f, rows[k], y + 11);
		for (size_t i = 0; i < r->run->n_faults; i++)
			if (strcmp(fault_target(r->run->faults[i]), rows[k]) ==
			    0)
				fault_bar(f, a, r->run->faults[i], y);
	}
	time_ticks(a, f, h - 24);
	fputs("</svg>\n", f);
	if (more > 0)
		fprintf(f,
		    "<p>%zu more faults on other targets: in the table "
		    "below.</p>\n",
		    more);
	fputs("<p id=\"phases\">phases: ", f);
	char *line = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&line, &len);
	if (m != NULL) {
		cepctl_report_phases(r, m);
		fclose(m);
		esc(f, line);
	}
	free(line);
	fputs("</p>\n", f);
}

static void render_fault_table(const cepctl_report *r, FILE *f)
{
	fputs("<h3>Faults</h3>\n<table id=\"faults\"><tr><th>fault</th>"
	      "<th>type</th><th>target</th><th>injected</th><th>reverted</th>"
	      "<th>by</th><th>held</th></tr>\n",
	    f);
	for (size_t i = 0; r->run != NULL && i < r->run->n_faults; i++) {
		const Cep__V1__FaultInfo *fi = r->run->faults[i];
		char a[32], b[32], d[32] = "-";
		cepctl_fmt_time(fi->injected_ms, CEPCTL_TIME_CLOCK, a,
		    sizeof(a));
		cepctl_fmt_time(fi->reverted_ms, CEPCTL_TIME_CLOCK, b,
		    sizeof(b));
		if (fi->reverted_ms != 0)
			cep_clock_format_duration(fi->reverted_ms -
			        fi->injected_ms,
			    d, sizeof(d));
		fputs("<tr class=\"fault\"><td>", f);
		esc(f, fi->record ? fi->record->fault_id : "?");
		fputs("</td><td>", f);
		esc(f, fi->record ? fi->record->type : "?");
		fputs("</td><td>", f);
		esc(f, fault_target(fi));
		fprintf(f, "</td><td>%s</td><td class=\"%s\">%s</td><td>", a,
		    fi->reverted_ms ? "ok" : "bad",
		    fi->reverted_ms ? b : "not reverted");
		esc(f, fi->reverted_by);
		fprintf(f, "</td><td>%s</td></tr>\n", d);
	}
	fputs("</table></section>\n", f);
}

/* Checks bucketed per unit of plot width: one mark and one latency point
 * per bucket keep the page small for a long run. */
struct bucket {
	size_t n, ok;
	uint64_t ms;
};

static void probe_marks(const struct cepctl_probe *p, const struct axis *a,
    struct bucket *b, FILE *f)
{
	uint32_t top = p->ms_max > 0 ? p->ms_max : 1;
	for (size_t i = 0; i < p->nchecks; i++) {
		size_t k = (size_t)(xpos(a, p->checks[i].t) - CH_LABEL);
		k = k < CH_PLOT ? k : CH_PLOT - 1;
		b[k].n++;
		b[k].ok += p->checks[i].ok;
		b[k].ms += p->checks[i].ms;
	}
	fputs("<polyline fill=\"none\" stroke=\"#1565c0\" stroke-width=\"1.5\" "
	      "points=\"",
	    f);
	for (size_t k = 0; k < CH_PLOT; k++)
		if (b[k].n > 0)
			fprintf(f, "%zu,%.1f ", CH_LABEL + k,
			    76.0 - 66.0 * (double)(b[k].ms / b[k].n) / top);
	fputs("\"/>\n", f);
	for (size_t k = 0; k < CH_PLOT; k++) {
		if (b[k].n == 0)
			continue;
		bool all = b[k].ok == b[k].n, none = b[k].ok == 0;
		fprintf(f,
		    "<rect class=\"%s\" x=\"%zu\" y=\"%d\" width=\"2\" "
		    "height=\"%d\" fill=\"%s\"/>\n",
		    all ? "mark-pass" : "mark-fail", CH_LABEL + k,
		    all ? 86 : 82, all ? 8 : 14,
		    all      ? "#2e7d32" :
		        none ? "#c62828" :
		               "#ef6c00");
	}
}

static void probe_chart(const cepctl_report *r, const struct axis *a, size_t i,
    FILE *f)
{
	const struct cepctl_probe *p = &r->probes[i];
	char id[32];
	snprintf(id, sizeof(id), "probe-chart-%zu", i);
	svg_open(f, id, 124);
	phase_bands(r, a, f, 0, 100, false);
	fprintf(f,
	    "<text x=\"2\" y=\"14\">latency, max %u ms</text>\n"
	    "<text x=\"2\" y=\"95\">checks: pass / fail</text>\n",
	    p->ms_max);
	struct bucket *b = calloc(CH_PLOT, sizeof(*b));
	if (b != NULL)
		probe_marks(p, a, b, f);
	free(b);
	time_ticks(a, f, 100);
	fputs("</svg>\n", f);
}

static void render_probe(const cepctl_report *r, const struct axis *a, size_t i,
    FILE *f)
{
	const struct cepctl_probe *p = &r->probes[i];
	fputs("<div class=\"probe\"><h3>", f);
	esc(f, p->name);
	fputs(" <small>(", f);
	esc(f, p->mode);
	fprintf(f, ")</small> <span class=\"%s\">%s</span></h3>\n<p>",
	    probe_passed(p) ? "ok" : "bad",
	    !p->has_final   ? "no result" :
	        p->final_ok ? "PASSED" :
	                      "FAILED");
	esc(f, p->final_detail);
	fprintf(f, " &mdash; %zu/%zu checks ok", p->ok, p->n);
	if (p->n > 0)
		fprintf(f, ", latency avg %llu ms, max %u ms",
		    (unsigned long long)(p->ms_sum / p->n), p->ms_max);
	fputs("</p>\n", f);
	if (p->last_fail[0] != '\0') {
		fputs("<p>last failure: <span class=\"mono\">", f);
		esc(f, p->last_fail);
		fputs("</span></p>\n", f);
	}
	if (p->nchecks > 0)
		probe_chart(r, a, i, f);
	fputs("</div>\n", f);
}

static void render_log(const cepctl_report *r, FILE *f)
{
	fputs("<section id=\"events\"><h2>Event log</h2>\n<table>\n", f);
	for (size_t i = 0; i < r->nlog; i++) {
		char t[32];
		cepctl_fmt_time(r->log[i].t, CEPCTL_TIME_CLOCK, t, sizeof(t));
		fprintf(f, "<tr class=\"t%d\"><td>%s</td><td>", r->log[i].type,
		    t);
		esc(f, r->log[i].text);
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n", f);
	if (r->log_dropped > 0)
		fprintf(f,
		    "<p>... and %zu more events (see <code>cepctl logs"
		    "</code>)</p>\n",
		    r->log_dropped);
	fputs("</section>\n", f);
}

void cepctl_report_render_html(const cepctl_report *r, FILE *f)
{
	struct axis a = run_axis(r);
	fputs(
	    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "\n<meta http-equiv=\"Content-Security-Policy\" "
	    "content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
	    "<title>cep run ",
	    f);
	esc(f, r->run ? r->run->run_id : "?");
	fputs(" ", f);
	esc(f, r->run ? r->run->name : "");
	fprintf(f, "</title>\n<style>\n%s</style></head><body>\n", style);
	render_header(r, f);
	render_score(r, f);
	render_timeline(r, &a, f);
	render_fault_table(r, f);
	fputs("<section id=\"probes\"><h2>Probes</h2>\n", f);
	for (size_t i = 0; i < r->nprobes; i++)
		render_probe(r, &a, i, f);
	fputs("</section>\n", f);
	render_log(r, f);
	fputs("<footer><p>cep report, made from what the run recorded.</p>"
	      "</footer>\n</body></html>\n",
	    f);
	fflush(f);
}

int cepctl_report_write_html(const cepctl_report *r, const char *path,
    cep_err *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (m == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "report %s: out of memory", path);
	cepctl_report_render_html(r, m);
	fclose(m);
	int rv = cep_files_write(path, buf, len, 0644, err);
	free(buf);
	return rv;
}
