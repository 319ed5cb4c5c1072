/* test_report_html.c - the HTML report (appliance/report_html.c) of a run
 * read from its journal (appliance/report_journal.c): every fault and
 * every probe is on the page, the score's sum is shown, nothing is
 * fetched, and no text from the run becomes markup - the runner's probe
 * details, fault targets and log lines are hostile input. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "report.h"
#include "testutil.h"

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "page lacks \"%s\"", (sub))
#define assert_lacks(s, sub) \
	cr_assert(strcasestr((s), (sub)) == NULL, "page has \"%s\"", (sub))

#define RUN "r-0123456789abcdef"
#define T0 1765000000000LL
#define EVIL "<script>alert(1)</script>"

static const char spec[] = "apiVersion: cep.io/v1\n"
                           "kind: Experiment\n"
                           "metadata:\n"
                           "  name: evil\n"
                           "spec:\n"
                           "  target:\n"
                           "    kind: host\n"
                           "  duration: 10s\n"
                           "  faults:\n"
                           "    - name: burn\n"
                           "      type: cpu-hog\n"
                           "      workers: 1\n"
                           "  probes:\n"
                           "    - name: web\n"
                           "      type: cmd\n"
                           "      mode: continuous\n"
                           "      command: [\"/bin/true\"]\n"
                           "      interval: 1s\n"
                           "      weight: 2\n"
                           "    - name: after\n"
                           "      type: cmd\n"
                           "      mode: end-of-test\n"
                           "      command: [\"/bin/true\"]\n";

static char *dir;
static cep_journal *j;
static uint64_t seq;
/* every event also as the control plane keeps it: serialized, in order */
static uint8_t *packed[64];
static size_t plen[64], npacked;

static void append(Cep__V1__JournalRecord *rec, int64_t t)
{
	cep_err err;
	rec->time_ms = t;
	cr_assert_eq(cep_journal_append(j, rec, false, &err), CEP_OK, "%s",
	    err.msg);
}

static void event(Cep__V1__Event *ev, int64_t t)
{
	Cep__V1__JournalRecord rec = CEP__V1__JOURNAL_RECORD__INIT;
	ev->run_id = RUN;
	ev->seq = ++seq;
	ev->time_ms = t;
	cr_assert(npacked < 64);
	plen[npacked] = cep__v1__event__get_packed_size(ev);
	packed[npacked] = malloc(plen[npacked]);
	cep__v1__event__pack(ev, packed[npacked++]);
	rec.rec_case = CEP__V1__JOURNAL_RECORD__REC_EVENT;
	rec.event = ev;
	append(&rec, t);
}

static void phase(const char *name, int64_t t)
{
	Cep__V1__Event ev = CEP__V1__EVENT__INIT;
	ev.type = CEP__V1__EVENT_TYPE__EVENT_PHASE;
	ev.phase = (char *)name;
	event(&ev, t);
}

static void check(const char *probe, const char *mode, bool ok, bool final,
    const char *detail, int64_t t)
{
	Cep__V1__ProbeResult pr = CEP__V1__PROBE_RESULT__INIT;
	pr.name = (char *)probe;
	pr.mode = (char *)mode;
	pr.ok = ok;
	pr.final = final;
	pr.detail = (char *)detail;
	pr.latency_ms = ok ? 20 : 400;
	Cep__V1__Event ev = CEP__V1__EVENT__INIT;
	ev.type = CEP__V1__EVENT_TYPE__EVENT_PROBE;
	ev.probe = &pr;
	event(&ev, t);
}

/* The runner's fault event; its detail names the target. */
static void fault_event(const char *id, const char *state, const char *target,
    int64_t t)
{
	Cep__V1__FaultState fs = CEP__V1__FAULT_STATE__INIT;
	fs.fault_id = (char *)id;
	fs.type = "cpu-hog";
	fs.state = (char *)state;
	fs.detail = (char *)target;
	Cep__V1__Event ev = CEP__V1__EVENT__INIT;
	ev.type = CEP__V1__EVENT_TYPE__EVENT_FAULT;
	ev.fault = &fs;
	event(&ev, t);
}

static void fault(const char *id, const char *target, int64_t t, bool undo)
{
	Cep__V1__FaultRecord f = CEP__V1__FAULT_RECORD__INIT;
	f.run_id = RUN;
	f.fault_id = (char *)id;
	f.type = "cpu-hog";
	f.target = (char *)target;
	Cep__V1__JournalRecord rec = CEP__V1__JOURNAL_RECORD__INIT;
	rec.rec_case = CEP__V1__JOURNAL_RECORD__REC_FAULT;
	rec.fault = &f;
	append(&rec, t);
	fault_event(id, "injected", target, t + 1);
	if (!undo)
		return;
	fault_event(id, "reverted", target, t + 2999);
	Cep__V1__JournalRecord rev = CEP__V1__JOURNAL_RECORD__INIT;
	rev.rec_case = CEP__V1__JOURNAL_RECORD__REC_REVERTED;
	rev.reverted = &f;
	rev.text = "delegate";
	append(&rev, t + 3000);
}

static void head(void)
{
	Cep__V1__RunInfo ci = CEP__V1__RUN_INFO__INIT;
	ci.run_id = RUN;
	ci.name = "evil " EVIL;
	ci.spec_name = "evil.yaml";
	ci.created_ms = T0;
	Cep__V1__JournalRecord rec = CEP__V1__JOURNAL_RECORD__INIT;
	rec.rec_case = CEP__V1__JOURNAL_RECORD__REC_CREATED;
	rec.created = &ci;
	append(&rec, T0);
	Cep__V1__JournalRecord sp = CEP__V1__JOURNAL_RECORD__INIT;
	sp.rec_case = CEP__V1__JOURNAL_RECORD__REC_SPEC_YAML;
	sp.spec_yaml = (char *)spec;
	append(&sp, T0);
}

static void body(void)
{
	phase("steady-state", T0 + 100);
	phase("chaos", T0 + 200);
	fault("burn#1", "cgroup <b>x</b>", T0 + 300, true);
	fault("burn#2", "pid 7 \"q\" 'a'", T0 + 400, true);
	fault("burn#3", "pid 8 " EVIL, T0 + 500, false);
	Cep__V1__Event log = CEP__V1__EVENT__INIT;
	log.type = CEP__V1__EVENT_TYPE__EVENT_LOG;
	log.text = "a log line <img src=x onerror=alert(2)>";
	event(&log, T0 + 600);
	for (int i = 0; i < 8; i++)
		check("web", "continuous", i % 3 != 0, false,
		    "status 503 " EVIL, T0 + 700 + i * 1000);
	phase("post-chaos", T0 + 9000);
	check("after", "end-of-test", false, false, "\"><svg onload=x>",
	    T0 + 9100);
	check("web", "continuous", true, true, "5/8 checks passed", T0 + 9200);
	check("after", "end-of-test", false, true, "failed " EVIL, T0 + 9200);
	Cep__V1__Verdict v = CEP__V1__VERDICT__INIT;
	v.verdict = "Fail";
	v.score = 100.0 * 2 / 3;
	v.reason = "probe after failed " EVIL;
	Cep__V1__Event ev = CEP__V1__EVENT__INIT;
	ev.type = CEP__V1__EVENT_TYPE__EVENT_VERDICT;
	ev.verdict = &v;
	event(&ev, T0 + 9300);
	Cep__V1__JournalRecord st = CEP__V1__JOURNAL_RECORD__INIT;
	st.rec_case = CEP__V1__JOURNAL_RECORD__REC_STATE;
	st.state = CEP__V1__RUN_STATE__RUN_FAILED;
	st.text = "probe after failed";
	append(&st, T0 + 9400);
}

static char *rundir;

static void setup(void)
{
	cep_err err;
	dir = cep_test_tmpdir("report-html");
	cr_assert(asprintf(&rundir, "%s/" RUN, dir) > 0);
	cr_assert_eq(cep_journal_create(rundir, &j, &err), CEP_OK, "%s",
	    err.msg);
	seq = 0;
}

static void teardown(void)
{
	for (size_t i = 0; i < npacked; i++)
		free(packed[i]);
	npacked = 0;
	cep_journal_close(j);
	free(rundir);
	cep_test_rmdir(dir);
}

/* The page of r, which is freed. */
static char *html_of(cepctl_report *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	cepctl_report_render_html(r, m);
	fclose(m);
	cepctl_report_free(r);
	return buf;
}

/* The page of the journal written so far. */
static char *page(void)
{
	cepctl_report *r = NULL;
	cep_err err;
	cr_assert_eq(cepctl_report_from_journal(rundir, &r, &err), CEP_OK, "%s",
	    err.msg);
	return html_of(r);
}

/* body()'s three faults, each in the table */
static void assert_every_fault(const char *html)
{
	for (int i = 1; i <= 3; i++) {
		char id[16];
		snprintf(id, sizeof(id), "<td>burn#%d</td>", i);
		assert_contains(html, id);
	}
}

TestSuite(report_html, .init = setup, .fini = teardown);

Test(report_html, every_fault_and_probe_with_the_verdict)
{
	head();
	body();
	char *html = page();
	assert_contains(html,
	    "<span id=\"verdict\" class=\"verdict fail\">"
	    "Fail</span>");
	assert_every_fault(html);
	assert_contains(html, "<h3>web <small>(continuous)</small>");
	assert_contains(html, "<h3>after <small>(end-of-test)</small>");
	assert_contains(html, "id=\"probe-chart-0\"");
	assert_contains(html, "id=\"timeline-chart\"");
	/* one row per target, the never reverted fault named so */
	assert_contains(html, "not reverted");
	assert_contains(html, "<td>delegate</td>");
	assert_contains(html, "<td>host (connector local)</td>");
	/* weights 2 and 1, web passed: the sum the runner made */
	assert_contains(html, "100 &times; 2 / 3 = <b>66.7</b>");
	assert_contains(html,
	    "phases: steady-state 100ms -&gt; chaos 8.8s -&gt; "
	    "post-chaos");
	assert_contains(html, "== phase chaos</td>");
	assert_contains(html, "<tr class=\"t2\"><td>");
	free(html);
}

Test(report_html, run_text_never_becomes_markup)
{
	head();
	body();
	char *html = page();
	assert_lacks(html, "<script");
	assert_lacks(html, "<img");
	assert_lacks(html, "<svg onload");
	assert_lacks(html, "<b>x");
	assert_contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;");
	assert_contains(html, "&lt;img src=x onerror=alert(2)&gt;");
	assert_contains(html, "pid 7 &quot;q&quot; &#39;a&#39;");
	assert_contains(html, "cgroup &lt;b&gt;x&lt;/b&gt;");
	free(html);
}

Test(report_html, nothing_is_fetched)
{
	head();
	body();
	char *html = page();
	assert_lacks(html, "<link");
	assert_lacks(html, "src=\"");
	assert_lacks(html, "href=\"");
	assert_lacks(html, "url(");
	assert_lacks(html, "@import");
	assert_lacks(html, "@font-face");
	assert_contains(html,
	    "content=\"default-src 'none'; "
	    "style-src 'unsafe-inline'\"");
	/* the only URL is the SVG namespace, which is a name, not a load */
	for (const char *p = html; (p = strstr(p, "://")) != NULL; p++)
		cr_assert(strncmp(p - 4, "http://www.w3.org/2000/svg", 26) == 0,
		    "a URL: %.40s", p - 4);
	free(html);
}

Test(report_html, escape_drops_control_characters)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	cepctl_report_escape(m, "<a href='x'>&\"\x01\x1b[31m\tok\n");
	fclose(m);
	cr_assert_str_eq(buf,
	    "&lt;a href=&#39;x&#39;&gt;&amp;&quot;[31m\tok\n");
	free(buf);
}

Test(report_html, a_run_without_events_still_renders)
{
	head();
	char *html = page();
	assert_contains(html, "no verdict");
	assert_contains(html, "</html>");
	free(html);
}

Test(report_html, not_a_run_journal)
{
	Cep__V1__JournalRecord st = CEP__V1__JOURNAL_RECORD__INIT;
	st.rec_case = CEP__V1__JOURNAL_RECORD__REC_STATE;
	st.state = CEP__V1__RUN_STATE__RUN_FAILED;
	append(&st, T0);
	cepctl_report *r = NULL;
	cep_err err;
	cr_assert_eq(cepctl_report_from_journal(rundir, &r, &err),
	    CEP_DATA_LOSS);
	cr_assert_null(r);
	cr_assert(strstr(err.msg, "created") != NULL, "%s", err.msg);
	char *none = NULL;
	cr_assert(asprintf(&none, "%s/r-ffffffffffffffff", dir) > 0);
	cr_assert_eq(cepctl_report_from_journal(none, &r, &err), CEP_NOT_FOUND);
	free(none);
}

/* The events as one EventBatch in dir/events.pb, as cp_report.py writes
 * them. */
static char *batch_file(const char *run_id)
{
	Cep__V1__Event *evs[64];
	Cep__V1__EventBatch b = CEP__V1__EVENT_BATCH__INIT;
	b.run_id = (char *)run_id;
	for (size_t i = 0; i < npacked; i++)
		evs[i] = cep__v1__event__unpack(NULL, plen[i], packed[i]);
	b.n_events = npacked;
	b.events = evs;
	size_t len = cep__v1__event_batch__get_packed_size(&b);
	uint8_t *buf = malloc(len + 1);
	cep__v1__event_batch__pack(&b, buf);
	for (size_t i = 0; i < npacked; i++)
		cep__v1__event__free_unpacked(evs[i], NULL);
	char *path = NULL;
	cr_assert(asprintf(&path, "%s/events.pb", dir) > 0);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
	free(buf);
	return path;
}

Test(report_html, from_the_events_alone_as_a_control_plane_has_them)
{
	head();
	body();
	char *events = batch_file(RUN), *spec_path = NULL;
	cr_assert(asprintf(&spec_path, "%s/evil.yaml", dir) > 0);
	FILE *f = fopen(spec_path, "w");
	fputs(spec, f);
	fclose(f);
	cepctl_report *r = NULL;
	cep_err err;
	cr_assert_eq(cepctl_report_from_events(events, spec_path, &r, &err),
	    CEP_OK, "%s", err.msg);
	char *html = html_of(r);
	assert_contains(html, "class=\"verdict fail\">Fail</span>");
	assert_contains(html, "<h1>evil</h1>");
	assert_contains(html, "<td>evil.yaml</td>");
	assert_contains(html, "<td>FAILED</td>");
	assert_every_fault(html);
	/* targets from the fault events' detail; burn#3 never reverted */
	assert_contains(html, "<td>cgroup &lt;b&gt;x&lt;/b&gt;</td>");
	assert_contains(html, "not reverted");
	assert_contains(html, "100 &times; 2 / 3 = <b>66.7</b>");
	assert_lacks(html, "<script");
	assert_lacks(html, "<img");
	free(html);
	free(spec_path);
	free(events);
}

Test(report_html, events_file_that_is_no_batch_is_refused)
{
	char *path = NULL;
	cr_assert(asprintf(&path, "%s/junk.pb", dir) > 0);
	FILE *f = fopen(path, "w");
	fputs("\xff\xff\xff\xff not protobuf", f);
	fclose(f);
	cepctl_report *r = NULL;
	cep_err err;
	cr_assert_eq(cepctl_report_from_events(path, NULL, &r, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_null(r);
	free(path);
	/* a batch without a valid run id is not a run's events */
	char *events = batch_file("../../etc");
	cr_assert_eq(cepctl_report_from_events(events, NULL, &r, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert(strstr(err.msg, "names no run") != NULL, "%s", err.msg);
	free(events);
}

Test(report_html, without_the_spec_the_weights_are_not_made_up)
{
	head();
	body();
	char *events = batch_file(RUN);
	cepctl_report *r = NULL;
	cep_err err;
	cr_assert_eq(cepctl_report_from_events(events, NULL, &r, &err), CEP_OK,
	    "%s", err.msg);
	char *html = html_of(r);
	assert_contains(html, "<td>?</td><td>?</td>");
	assert_contains(html, "The weights are not known here");
	assert_contains(html, "(the runner reported 66.7)");
	assert_contains(html, "unknown (the run&#39;s spec is not available)");
	free(html);
	free(events);
}
