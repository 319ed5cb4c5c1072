"""The HTML report (docs/report.md) looked at as a person would: rendered
by headless Chromium (Debian's `chromium`, installed by scripts/deps.sh).

The demo's run is made with `cepctl demo --keep HOME`, its report read
from the journal with `cepctl report RUN --html` after the appliance is
gone; Chromium takes a screenshot (kept as a CI artefact under the build
directory: artifacts/report.png) and dumps the DOM, which must hold the
verdict, every fault and every probe. `cepctl run --report` writes the
same page at the end of a run, with a probe whose detail holds `<script>`.
The reference control plane answers GET /admin/report with the page made
by the same cepctl from the events it stores (controlplane/cp_report.py).

Chromium missing is a failure, never a skip: this is the test that shows
the page renders.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

from cep_e2e import BIN, Appliance, experiment, wait_until

ARTIFACTS = os.path.join(os.path.dirname(os.path.abspath(BIN)), "artifacts")


def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise AssertionError("chromium is not installed (scripts/deps.sh installs it): "
                             "the HTML report cannot be checked")
    return path


def render(html, png=None):
    """The DOM Chromium builds from the page; a screenshot into png."""
    profile = tempfile.mkdtemp(prefix="cep-chromium-")
    base = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", f"--user-data-dir={profile}", "--window-size=1100,2200"]
    url = "file://" + os.path.abspath(html)
    try:
        if png is not None:
            r = subprocess.run(base + [f"--screenshot={png}", url], capture_output=True,
                               text=True, timeout=180)
            if r.returncode != 0 or not os.path.exists(png):
                raise AssertionError(f"chromium --screenshot: {r.returncode}\n{r.stderr[-3000:]}")
        r = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            raise AssertionError(f"chromium --dump-dom: {r.returncode}\n{r.stderr[-3000:]}")
        return r.stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise AssertionError(f"{path} is not a PNG")
    return struct.unpack(">II", head[16:24])


class DemoReport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        chromium()   # before a demo is run for nothing
        os.makedirs(ARTIFACTS, exist_ok=True)
        cls.home = tempfile.mkdtemp(prefix="cep-report-")
        cepctl = os.path.join(BIN, "cepctl")
        r = subprocess.run([cepctl, "demo", "--keep", cls.home], capture_output=True,
                           text=True, timeout=240)
        if r.returncode != 0:
            raise AssertionError(f"cepctl demo: {r.returncode}\n{r.stdout}\n{r.stderr}")
        runs = os.listdir(os.path.join(cls.home, "state", "runs"))
        if len(runs) != 1:
            raise AssertionError(f"the demo made {runs}, not one run")
        cls.run_id = runs[0]
        # the appliance is stopped: the report comes from the journal alone
        cls.html = os.path.join(ARTIFACTS, "report.html")
        cls.png = os.path.join(ARTIFACTS, "report.png")
        for p in (cls.html, cls.png):
            if os.path.exists(p):
                os.unlink(p)
        r = subprocess.run([cepctl, "--home", cls.home, "report", cls.run_id, "--html", cls.html],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"cepctl report --html: {r.returncode}\n{r.stderr}")
        r = subprocess.run([cepctl, "--home", cls.home, "report", cls.run_id, "--output", "json"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"cepctl report --output json: {r.returncode}\n{r.stderr}")
        cls.json = json.loads(r.stdout)
        cls.dom = render(cls.html, cls.png)
        with open(os.path.join(ARTIFACTS, "report-dom.html"), "w") as f:
            f.write(cls.dom)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.home, ignore_errors=True)

    def test_dom_holds_verdict_every_fault_and_probe(self):
        self.assertEqual(self.json["verdict"], "Pass")
        self.assertRegex(self.dom, r'<span id="verdict" class="verdict pass">Pass</span>')
        faults = [f["fault"] for f in self.json["faults"]]
        probes = [p["probe"] for p in self.json["probes"]]
        # what the demo does, so an empty report cannot pass
        self.assertIn("kill-demo-web", faults)
        self.assertEqual(sorted(probes), ["web-availability", "web-ready", "web-recovered"])
        for f in faults:
            self.assertIn(f"<td>{f}</td>", self.dom)
        for p in probes:
            self.assertRegex(self.dom, rf"<h3>{re.escape(p)} <small>")
        self.assertIn(self.run_id, self.dom)

    def test_timeline_and_charts_are_drawn(self):
        self.assertIn('id="timeline-chart"', self.dom)
        # a bar per fault on the timeline, a chart per probe with checks
        self.assertIn("kill-demo-web (process-kill) injected -&gt; reverted", self.dom)
        for i in range(3):
            self.assertIn(f'id="probe-chart-{i}"', self.dom)
        self.assertIn("mark-fail", self.dom)   # the kills are seen by the probe
        self.assertIn("round 5/5", self.dom)    # the event log

    def test_screenshot_is_kept(self):
        w, h = png_size(self.png)
        self.assertGreaterEqual(w, 1000)
        self.assertGreaterEqual(h, 1000)
        self.assertGreater(os.path.getsize(self.png), 20000)   # not a blank page

    def test_nothing_to_load(self):
        with open(self.html) as f:
            page = f.read()
        self.assertNotRegex(page, r"<script|<link|src=\"|href=\"|@import|url\(")


class RunReport(unittest.TestCase):
    def test_run_writes_the_report_and_escapes_probe_output(self):
        chromium()
        app = Appliance("runreport")
        try:
            app.start_all()
            exp = experiment("report-escape", duration="1s", probes=[
                {"name": "says-script", "type": "cmd", "mode": "end-of-test",
                 "command": ["true"], "outputMatch": "<script>document.title=1</script>"}])
            html = os.path.join(app.home, "run.html")
            r = app.cepctl("run", app.write("esc.yaml", exp), "--report", html)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr + app.logs())
            dom = render(html)
            self.assertIn('class="verdict fail">Fail</span>', dom)
            self.assertIn("says-script", dom)
            # the probe's detail names what it looked for: text on the
            # page, not an element
            self.assertNotIn("<script", dom)
            self.assertIn("lacks \"&lt;script&gt;document.title=1&lt;/script&gt;\"", dom)
        finally:
            app.close()


class PlaneReport(unittest.TestCase):
    def test_the_plane_renders_the_report_from_its_events(self):
        chromium()
        from cp_e2e import Site
        site = Site(extra=["--cepctl", os.path.join(BIN, "cepctl")])
        try:
            site.appliance("a1")
            spec = experiment("plane-report", duration="3s", faults=[
                {"name": "burn", "type": "cpu-hog", "workers": 1, "load": 20}], probes=[
                {"name": "tick", "type": "cmd", "mode": "continuous", "command": ["true"],
                 "interval": "200ms"},
                {"name": "after", "type": "cmd", "mode": "end-of-test", "command": ["true"]}])
            tid = site.submit(spec, "plane-report.yaml")
            t = site.wait_task(tid, lambda t: t.get("state") in ("done", "failed"), 90)
            self.assertTrue(t, site.logs())
            run = t["run_id"]
            # the verdict is among the last events the relay uploads
            self.assertTrue(wait_until(lambda: any(e["type"] == "EVENT_VERDICT"
                                                   for e in site.events(run)["events"]), 30, 0.2),
                            site.logs())
            url = f"http://127.0.0.1:{site.cp.admin_port}/admin/report?run_id={run}"
            with urllib.request.urlopen(url, timeout=60) as r:
                self.assertEqual(r.headers["Content-Type"], "text/html; charset=utf-8")
                page = r.read()
            html = os.path.join(ARTIFACTS, "report-controlplane.html")
            os.makedirs(ARTIFACTS, exist_ok=True)
            with open(html, "wb") as f:
                f.write(page)
            dom = render(html, os.path.join(ARTIFACTS, "report-controlplane.png"))
            self.assertIn('class="verdict pass">Pass</span>', dom)
            self.assertIn("<h1>plane-report</h1>", dom)
            self.assertIn("<td>burn</td>", dom)
            self.assertIn("burn (cpu-hog) injected -&gt; reverted", dom)
            for p in ("tick", "after"):
                self.assertRegex(dom, rf"<h3>{p} <small>")
        finally:
            site.close()

    def test_no_events_is_404(self):
        from cp_e2e import Site
        site = Site(extra=["--cepctl", os.path.join(BIN, "cepctl")])
        try:
            url = f"http://127.0.0.1:{site.cp.admin_port}/admin/report?run_id=r-0000000000000000"
            with self.assertRaises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(url, timeout=30)
            self.assertEqual(e.exception.code, 404)
        finally:
            site.close()


if __name__ == "__main__":
    unittest.main()
