/*
 * report.c - accumulates a run's events into per-phase and per-probe
 * figures and renders them. Rendering only reads; all numbers come from
 * events the runner sent (and the delegate journaled), so a report printed
 * later with `cepctl show` says the same as the live one.
 */
#define _GNU_SOURCE
#include "report_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

cepctl_report *cepctl_report_new(void)
{
	return calloc(1, sizeof(cepctl_report));
}

void cepctl_report_free(cepctl_report *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nprobes; i++)
		free(r->probes[i].checks);
	for (size_t i = 0; i < r->nlog; i++)
		free(r->log[i].text);
	free(r->log);
	cep_exp_free(r->spec);
	if (r->run != NULL)
		protobuf_c_message_free_unpacked(&r->run->base, NULL);
	free(r);
}

uint64_t cepctl_report_last_seq(const cepctl_report *r)
{
	return r->last_seq;
}

static struct cepctl_probe *probe_for(cepctl_report *r, const char *name,
    const char *mode)
{
	for (size_t i = 0; i < r->nprobes; i++)
		if (strcmp(r->probes[i].name, name) == 0)
			return &r->probes[i];
	if (r->nprobes == CEPCTL_REPORT_MAX_PROBES)
		return NULL;
	struct cepctl_probe *p = &r->probes[r->nprobes++];
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->mode, sizeof(p->mode), "%s", mode);
	return p;
}

static void add_probe(cepctl_report *r, const Cep__V1__Event *ev)
{
	const Cep__V1__ProbeResult *pr = ev->probe;
	struct cepctl_probe *p = probe_for(r, pr->name, pr->mode);
	if (p == NULL)
		return;
	if (pr->final) {
		p->has_final = true;
		p->final_ok = pr->ok;
		snprintf(p->final_detail, sizeof(p->final_detail), "%s",
		    pr->detail);
		return;
	}
	p->n++;
	if (pr->ok)
		p->ok++;
	else
		snprintf(p->last_fail, sizeof(p->last_fail), "%s", pr->detail);
	p->ms_sum += pr->latency_ms;
	if (pr->latency_ms > p->ms_max)
		p->ms_max = pr->latency_ms;
	if (p->nchecks < CEPCTL_REPORT_MAX_CHECKS) {
		if (p->nchecks % 256 == 0) {
			struct cepctl_check *c = realloc(p->checks,
			    (p->nchecks + 256) * sizeof(*c));
			if (c == NULL)
				return;
			p->checks = c;
		}
		p->checks[p->nchecks++] = (struct cepctl_check){ev->time_ms,
		    pr->ok, pr->latency_ms};
	}
}

/* The event log of the HTML report: each event's progress line, so the
 * log reads as `cepctl logs` does. */
static void add_log_line(cepctl_report *r, const Cep__V1__Event *ev)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	if (m == NULL)
		return;
	cepctl_progress_event(ev, r->t0, m);
	fclose(m);
	while (len > 0 && text[len - 1] == '\n')
		text[--len] = '\0';
	if (len == 0 || r->nlog == CEPCTL_REPORT_MAX_LOG) {
		r->log_dropped += len > 0;
		free(text);
		return;
	}
	if (r->nlog % 256 == 0) {
		struct cepctl_log_line *l = realloc(r->log,
		    (r->nlog + 256) * sizeof(*l));
		if (l == NULL) {
			free(text);
			return;
		}
		r->log = l;
	}
	r->log[r->nlog++] = (struct cepctl_log_line){ev->time_ms, ev->type,
	    text};
}

void cepctl_report_add(cepctl_report *r, const Cep__V1__Event *ev)
{
	if (ev->seq <= r->last_seq)
		return;
	r->last_seq = ev->seq;
	if (r->t0 == 0)
		r->t0 = ev->time_ms;
	if (ev->time_ms > r->t_last)
		r->t_last = ev->time_ms;
	add_log_line(r, ev);
	switch (ev->type) {
	case CEP__V1__EVENT_TYPE__EVENT_PHASE:
		if (r->nphases < CEPCTL_REPORT_MAX_PHASES) {
			snprintf(r->phases[r->nphases].name,
			    sizeof(r->phases[0].name), "%s", ev->phase);
			r->phases[r->nphases++].t = ev->time_ms;
		}
		break;
	case CEP__V1__EVENT_TYPE__EVENT_PROBE:
		if (ev->probe != NULL)
			add_probe(r, ev);
		break;
	case CEP__V1__EVENT_TYPE__EVENT_VERDICT:
		if (ev->verdict != NULL) {
			r->has_verdict = true;
			snprintf(r->verdict, sizeof(r->verdict), "%s",
			    ev->verdict->verdict);
			snprintf(r->reason, sizeof(r->reason), "%s",
			    ev->verdict->reason);
			r->score = ev->verdict->score;
		}
		break;
	default: break;
	}
}

/* A deep copy through the wire format: RunInfo has nested messages. */
void cepctl_report_set_run(cepctl_report *r, const Cep__V1__RunInfo *run)
{
	size_t len = protobuf_c_message_get_packed_size(&run->base);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		return;
	protobuf_c_message_pack(&run->base, buf);
	Cep__V1__RunInfo *copy = cep__v1__run_info__unpack(NULL, len, buf);
	free(buf);
	if (copy == NULL)
		return;
	if (r->run != NULL)
		protobuf_c_message_free_unpacked(&r->run->base, NULL);
	r->run = copy;
}

void cepctl_report_set_spec(cepctl_report *r, const char *yaml)
{
	cep_exp_diags diags = {0};
	cep_exp *e = NULL;
	if (yaml == NULL ||
	    cep_exp_parse(yaml, strlen(yaml), "spec", &e, &diags, NULL) !=
	        CEP_OK)
		return; /* the report then says the weights are unknown */
	cep_exp_free(r->spec);
	r->spec = e;
}

double cepctl_report_weight(const cepctl_report *r, const char *probe)
{
	for (size_t i = 0; r->spec != NULL && i < cep_exp_nprobes(r->spec);
	     i++) {
		const cep_exp_item *it = cep_exp_probe(r->spec, i);
		if (strcmp(cep_exp_item_name(it), probe) == 0)
			return cep_exp_has(it, "weight") ?
			    cep_exp_num(it, "weight") :
			    1.0;
	}
	return 0;
}

void cepctl_fmt_time(int64_t ms, enum cepctl_time_fmt how, char *buf,
    size_t len)
{
	if (ms <= 0) {
		snprintf(buf, len, "-");
		return;
	}
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	localtime_r(&s, &tm);
	if (how == CEPCTL_TIME_DATE) {
		strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
		return;
	}
	char hms[16];
	strftime(hms, sizeof(hms), "%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03d", hms, (int)(ms % 1000));
}

void cepctl_progress_event(const Cep__V1__Event *ev, int64_t t0_ms, FILE *f)
{
	double rel = t0_ms > 0 ? (double)(ev->time_ms - t0_ms) / 1000.0 : 0.0;
	switch (ev->type) {
	case CEP__V1__EVENT_TYPE__EVENT_PHASE:
		fprintf(f, "%7.1fs  == phase %s\n", rel, ev->phase);
		break;
	case CEP__V1__EVENT_TYPE__EVENT_LOG:
		fprintf(f, "%7.1fs     %s\n", rel, ev->text);
		break;
	case CEP__V1__EVENT_TYPE__EVENT_PROBE:
		if (ev->probe == NULL)
			break;
		if (ev->probe->final)
			fprintf(f, "%7.1fs  probe %s: %s (%s)\n", rel,
			    ev->probe->name,
			    ev->probe->ok ? "PASSED" : "FAILED",
			    ev->probe->detail);
		else if (!ev->probe->ok)
			fprintf(f, "%7.1fs     probe %s check failed: %s\n",
			    rel, ev->probe->name, ev->probe->detail);
		else if (strcmp(ev->probe->mode, "continuous") != 0 &&
		    strcmp(ev->probe->mode, "on-chaos") != 0)
			/* one-shot checks are few: show them passing too */
			fprintf(f, "%7.1fs     probe %s (%s) check passed\n",
			    rel, ev->probe->name, ev->probe->mode);
		break;
	case CEP__V1__EVENT_TYPE__EVENT_FAULT:
		if (ev->fault != NULL)
			fprintf(f, "%7.1fs  fault %s (%s) %s%s%s\n", rel,
			    ev->fault->fault_id, ev->fault->type,
			    ev->fault->state, ev->fault->detail[0] ? ": " : "",
			    ev->fault->detail);
		break;
	case CEP__V1__EVENT_TYPE__EVENT_VERDICT:
		if (ev->verdict != NULL)
			fprintf(f, "%7.1fs  verdict %s, score %.1f%s%s\n", rel,
			    ev->verdict->verdict, ev->verdict->score,
			    ev->verdict->reason[0] ? ": " : "",
			    ev->verdict->reason);
		break;
	default: break;
	}
	fflush(f);
}

/* One character per time slice of the probe's checks: '#' all passed,
 * '+' mostly, '-' mostly failed, '.' all failed: availability at a glance. */
static void timeline(const struct cepctl_probe *p, char *buf, size_t len)
{
	size_t slots = len - 1 < 60 ? len - 1 : 60;
	buf[0] = '\0';
	if (p->nchecks == 0 || slots == 0)
		return;
	int64_t t0 = p->checks[0].t, t1 = p->checks[p->nchecks - 1].t;
	int64_t span = t1 - t0 + 1;
	if ((size_t)span < slots)
		slots = (size_t)span < p->nchecks ? (size_t)span : p->nchecks;
	size_t n[60] = {0}, ok[60] = {0};
	for (size_t i = 0; i < p->nchecks; i++) {
		size_t s = (size_t)((p->checks[i].t - t0) * (int64_t)slots /
		    span);
		if (s >= slots)
			s = slots - 1;
		n[s]++;
		ok[s] += p->checks[i].ok;
	}
	for (size_t s = 0; s < slots; s++) {
		char c = ' ';
		if (n[s] > 0)
			c = ok[s] == n[s]     ? '#' :
			    ok[s] * 2 >= n[s] ? '+' :
			    ok[s] > 0         ? '-' :
			                        '.';
		buf[s] = c;
	}
	buf[slots] = '\0';
}

void cepctl_report_phases(const cepctl_report *r, FILE *f)
{
	for (size_t i = 0; i < r->nphases; i++) {
		char d[32] = "";
		if (i + 1 < r->nphases)
			cep_clock_format_duration(r->phases[i + 1].t -
			        r->phases[i].t,
			    d, sizeof(d));
		fprintf(f, "%s%s%s%s", i ? " -> " : "", r->phases[i].name,
		    d[0] ? " " : "", d);
	}
}

static void render_text(const cepctl_report *r, FILE *f)
{
	const Cep__V1__RunInfo *run = r->run;
	fprintf(f, "\nrun %s  %s  %s\n", run ? run->run_id : "?",
	    run ? run->name : "", run ? cep_runstate_name(run->state) : "?");
	if (run != NULL && run->reason[0] != '\0')
		fprintf(f, "reason: %s\n", run->reason);
	if (r->nphases > 0) {
		fputs("phases: ", f);
		cepctl_report_phases(r, f);
		fputc('\n', f);
	}
	if (run != NULL && run->n_faults > 0) {
		fputs("faults:\n", f);
		for (size_t i = 0; i < run->n_faults; i++) {
			const Cep__V1__FaultInfo *fi = run->faults[i];
			char a[32], b[32];
			cepctl_fmt_time(fi->injected_ms, CEPCTL_TIME_CLOCK, a,
			    sizeof(a));
			cepctl_fmt_time(fi->reverted_ms, CEPCTL_TIME_CLOCK, b,
			    sizeof(b));
			fprintf(f,
			    "  %-20s %-14s injected %s  reverted %s%s%s%s  %s\n",
			    fi->record ? fi->record->fault_id : "?",
			    fi->record ? fi->record->type : "?", a, b,
			    fi->reverted_by[0] ? " (by " : "", fi->reverted_by,
			    fi->reverted_by[0] ? ")" : "",
			    fi->record ? fi->record->target : "");
		}
	}
	if (r->nprobes > 0)
		fputs("probes:\n", f);
	for (size_t i = 0; i < r->nprobes; i++) {
		const struct cepctl_probe *p = &r->probes[i];
		char tl[61];
		timeline(p, tl, sizeof(tl));
		fprintf(f, "  %-20s %-13s %s  %zu/%zu checks ok", p->name,
		    p->mode,
		    !p->has_final   ? "??" :
		        p->final_ok ? "PASS" :
		                      "FAIL",
		    p->ok, p->n);
		if (p->n > 0)
			fprintf(f, "  latency avg %llums max %ums",
			    (unsigned long long)(p->ms_sum / p->n), p->ms_max);
		fputc('\n', f);
		if (p->final_detail[0])
			fprintf(f, "  %-20s %s\n", "", p->final_detail);
		if (p->nchecks > 1)
			fprintf(f, "  %-20s |%s|\n", "", tl);
		if (p->last_fail[0])
			fprintf(f, "  %-20s last failure: %s\n", "",
			    p->last_fail);
	}
	if (r->has_verdict)
		fprintf(f, "verdict: %s   resilience score: %.1f%s%s\n",
		    r->verdict, r->score, r->reason[0] ? "   reason: " : "",
		    r->reason);
	else
		fputs("verdict: none (the runner did not report one)\n", f);
}

static json_t *render_json_obj(const cepctl_report *r)
{
	const Cep__V1__RunInfo *run = r->run;
	json_t *o = json_object();
	json_object_set_new(o, "run_id", json_string(run ? run->run_id : ""));
	json_object_set_new(o, "name", json_string(run ? run->name : ""));
	json_object_set_new(o, "state",
	    json_string(run ? cep_runstate_name(run->state) : "UNKNOWN"));
	json_object_set_new(o, "reason", json_string(run ? run->reason : ""));
	json_object_set_new(o, "verdict", json_string(r->verdict));
	json_object_set_new(o, "score", json_real(r->score));
	json_t *ph = json_array();
	for (size_t i = 0; i < r->nphases; i++) {
		json_t *p = json_object();
		json_object_set_new(p, "phase", json_string(r->phases[i].name));
		json_object_set_new(p, "start_ms",
		    json_integer(r->phases[i].t));
		json_array_append_new(ph, p);
	}
	json_object_set_new(o, "phases", ph);
	json_t *fa = json_array();
	for (size_t i = 0; run != NULL && i < run->n_faults; i++) {
		const Cep__V1__FaultInfo *fi = run->faults[i];
		json_t *x = json_object();
		json_object_set_new(x, "fault",
		    json_string(fi->record ? fi->record->fault_id : ""));
		json_object_set_new(x, "type",
		    json_string(fi->record ? fi->record->type : ""));
		json_object_set_new(x, "target",
		    json_string(fi->record ? fi->record->target : ""));
		json_object_set_new(x, "injected_ms",
		    json_integer(fi->injected_ms));
		json_object_set_new(x, "reverted_ms",
		    json_integer(fi->reverted_ms));
		json_object_set_new(x, "reverted_by",
		    json_string(fi->reverted_by));
		json_array_append_new(fa, x);
	}
	json_object_set_new(o, "faults", fa);
	json_t *pa = json_array();
	for (size_t i = 0; i < r->nprobes; i++) {
		const struct cepctl_probe *p = &r->probes[i];
		json_t *x = json_object();
		json_object_set_new(x, "probe", json_string(p->name));
		json_object_set_new(x, "mode", json_string(p->mode));
		json_object_set_new(x, "passed",
		    json_boolean(p->has_final && p->final_ok));
		json_object_set_new(x, "detail", json_string(p->final_detail));
		json_object_set_new(x, "checks",
		    json_integer((json_int_t)p->n));
		json_object_set_new(x, "checks_ok",
		    json_integer((json_int_t)p->ok));
		json_t *ch = json_array();
		for (size_t k = 0; k < p->nchecks; k++) {
			json_t *c = json_array();
			json_array_append_new(c, json_integer(p->checks[k].t));
			json_array_append_new(c, json_boolean(p->checks[k].ok));
			json_array_append_new(c, json_integer(p->checks[k].ms));
			json_array_append_new(ch, c);
		}
		json_object_set_new(x, "timeline", ch);
		json_array_append_new(pa, x);
	}
	json_object_set_new(o, "probes", pa);
	return o;
}

/* XML and HTML text escaping (JUnit, report_html.c); jansson covers
 * JSON. */
void cepctl_report_escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default:
			if ((unsigned char)*s >= 0x20 || *s == '\n' ||
			    *s == '\t')
				fputc(*s, f);
		}
	}
}

static void render_junit(const cepctl_report *r, FILE *f)
{
	const char *name = r->run ? r->run->name : "experiment";
	size_t fails = 0;
	for (size_t i = 0; i < r->nprobes; i++)
		fails += !(r->probes[i].has_final && r->probes[i].final_ok);
	bool errored = !r->has_verdict || strcmp(r->verdict, "Pass") != 0;
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n", f);
	fputs("  <testsuite name=\"", f);
	cepctl_report_escape(f, name);
	fprintf(f, "\" tests=\"%zu\" failures=\"%zu\" errors=\"%d\">\n",
	    r->nprobes + 1, fails, errored && fails == 0 ? 1 : 0);
	for (size_t i = 0; i < r->nprobes; i++) {
		const struct cepctl_probe *p = &r->probes[i];
		fputs("    <testcase classname=\"", f);
		cepctl_report_escape(f, name);
		fputs("\" name=\"probe ", f);
		cepctl_report_escape(f, p->name);
		fputs("\">", f);
		if (!(p->has_final && p->final_ok)) {
			fputs("<failure message=\"", f);
			cepctl_report_escape(f,
			    p->final_detail[0] ? p->final_detail : "no result");
			fputs("\"/>", f);
		}
		fputs("</testcase>\n", f);
	}
	fputs("    <testcase classname=\"", f);
	cepctl_report_escape(f, name);
	fputs("\" name=\"verdict\">", f);
	if (errored && fails == 0) {
		fputs("<error message=\"", f);
		cepctl_report_escape(f,
		    r->has_verdict ? r->verdict : "no verdict");
		fputs(": ", f);
		cepctl_report_escape(f, r->run ? r->run->reason : r->reason);
		fputs("\"/>", f);
	}
	fputs("</testcase>\n  </testsuite>\n</testsuites>\n", f);
}

void cepctl_report_render(const cepctl_report *r, enum cepctl_output out,
    FILE *f)
{
	if (out == CEPCTL_OUT_JSON) {
		json_t *o = render_json_obj(r);
		json_dumpf(o, f, JSON_INDENT(2));
		fputc('\n', f);
		json_decref(o);
	} else if (out == CEPCTL_OUT_JUNIT) {
		render_junit(r, f);
	} else {
		render_text(r, f);
	}
	fflush(f);
}
