"""The prometheus probe end to end, against a real Prometheus server.

The test starts Debian's `prometheus` binary itself: its own configuration,
its own data directory under a temporary directory, a free port on
127.0.0.1, scrape_interval 1s. It never uses the package's service (port
9090) and does not stop it. Prometheus scrapes:
  - the appliance's own metrics: cep.yaml sets relay.metrics and
    delegate.metrics to 127.0.0.1:0, the daemons write the ports they bound
    to HOME/run/relay.metrics-port and HOME/run/delegate.metrics-port;
  - a static exporter served by this test (fixed text), for values the
    appliance cannot be made to show on demand (a ratio, two series).
Experiments with prometheus probes then run through the whole appliance
(cepctl -> delegate -> runner -> Prometheus) and the verdict follows the
probe's outcome. Standard library only.
"""
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import unittest
import urllib.parse
import urllib.request

from cep_e2e import Appliance, experiment, free_port, wait_until

PROMETHEUS = shutil.which("prometheus")

STATIC_METRICS = b"""# HELP cep_static_ratio A fixed ratio.
# TYPE cep_static_ratio gauge
cep_static_ratio 0.42
# HELP cep_static_pair Two series of one metric.
# TYPE cep_static_pair gauge
cep_static_pair{k="a"} 1
cep_static_pair{k="b"} 2
"""


class _Static(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path != "/metrics":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(STATIC_METRICS)))
        self.end_headers()
        self.wfile.write(STATIC_METRICS)

    def log_message(self, *args):
        pass


class StaticExporter:
    def __init__(self):
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Static)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(5)


class Prometheus:
    """A private Prometheus: own config, data dir and port; stopped by close()."""

    def __init__(self, jobs):
        self.dir = tempfile.mkdtemp(prefix="cep-prom-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        lines = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 1s",
                 "  evaluation_interval: 1s", "scrape_configs:"]
        for job, target in jobs.items():
            lines += [f"  - job_name: {job}", "    static_configs:",
                      f"      - targets: ['{target}']"]
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = os.path.join(self.dir, "prometheus.log")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={cfg}",
                 f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
                 f"--web.listen-address=127.0.0.1:{self.port}",
                 "--log.level=warn"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        if not wait_until(self._ready, 30, 0.1):
            out = self.logs()
            self.close()
            raise AssertionError("prometheus did not become ready:\n" + out)

    def _ready(self):
        if self.proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, q):
        """The API's JSON answer to an instant query."""
        u = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
        with urllib.request.urlopen(u, timeout=5) as r:
            return json.loads(r.read())

    def values(self, q):
        """{labels-as-tuple: float} of an instant vector query."""
        try:
            res = self.query(q)["data"]["result"]
        except (OSError, ValueError, KeyError):
            return {}
        return {tuple(sorted(x["metric"].items())): float(x["value"][1]) for x in res}

    def logs(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def metrics_on_port_zero(app):
    """relay.metrics and delegate.metrics on free ports (config/cep.yaml)."""
    path = os.path.join(app.home, "config", "cep.yaml")
    with open(path) as f:
        text = f.read()
    for section in ("relay", "delegate"):
        block = re.search(rf"^{section}:\n((?:[ #].*\n|\n)*)", text, re.M)
        if block is None:
            text += f"\n{section}:\n  metrics: \"127.0.0.1:0\"\n"
            continue
        body = block.group(1)
        new, n = re.subn(r"^  metrics:.*$", '  metrics: "127.0.0.1:0"', body, flags=re.M)
        if n == 0:
            new = '  metrics: "127.0.0.1:0"\n' + body
        text = text[:block.start(1)] + new + text[block.end(1):]
    with open(path, "w") as f:
        f.write(text)


def read_port(app, name):
    try:
        with open(os.path.join(app.home, "run", f"{name}.metrics-port")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


class PrometheusProbe(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # a missing prometheus fails the tests: they never skip
        if PROMETHEUS is None:
            raise AssertionError("no prometheus binary: run sh scripts/deps.sh")
        cls.app = Appliance("prom")
        cls.static = StaticExporter()
        cls.prom = None
        try:
            metrics_on_port_zero(cls.app)
            cls.app.start_all()
            # the daemons write their metrics ports once they serve
            cls.ports = {n: wait_until(lambda n=n: read_port(cls.app, n), 10, 0.1)
                         for n in ("relay", "delegate")}
            jobs = {"static": f"127.0.0.1:{cls.static.port}"}
            for n, p in cls.ports.items():
                if p:
                    jobs[f"cep-{n}"] = f"127.0.0.1:{p}"
            cls.prom = Prometheus(jobs)
        except BaseException:
            cls._close()
            raise

    @classmethod
    def _close(cls):
        if cls.prom is not None:
            cls.prom.close()
        cls.static.close()
        cls.app.close()

    @classmethod
    def tearDownClass(cls):
        cls._close()

    def wait_scraped(self, job):
        want = {(("__name__", "up"), ("instance", self.prom_target(job)), ("job", job)): 1.0}
        ok = wait_until(lambda: self.prom.values(f'up{{job="{job}"}}') == want, 20, 0.2)
        self.assertTrue(ok, f"prometheus never scraped {job}:\n{self.prom.logs()}")

    def prom_target(self, job):
        if job == "static":
            return f"127.0.0.1:{self.static.port}"
        return f"127.0.0.1:{self.ports[job[len('cep-'):]]}"

    def need_appliance_metrics(self):
        missing = [n for n, p in self.ports.items() if not p]
        if missing:
            self.fail("the appliance exposes no metrics: no run/%s.metrics-port after 10 s\n%s"
                      % (".metrics-port, run/".join(missing), self.app.logs()))

    def run_exp(self, name, probes, duration="3s"):
        exp = experiment(name, duration=duration, probes=probes)
        r = self.app.cepctl("run", self.app.write(f"{name}.yaml", exp), "--output", "json",
                            timeout=120)
        try:
            rep = json.loads(r.stdout)
        except ValueError:
            self.fail(f"cepctl run gave no JSON ({r.returncode}):\n{r.stdout}\n{r.stderr}\n"
                      + self.app.logs())
        by = {p["probe"]: p for p in rep["probes"]}
        # a failed check's detail is in the run's events ("probe NAME
        # check failed: DETAIL"); the report keeps the summary
        logs = self.app.cepctl("logs", rep["run_id"], check=True).stdout
        for name, detail in re.findall(r"probe (\S+) check failed: (.*)$", logs, re.M):
            by[name]["failed_detail"] = detail
        return r.returncode, rep, by

    def probe(self, name, mode, query, **kw):
        p = {"name": name, "type": "prometheus", "mode": mode, "url": self.prom.url,
             "query": query, "timeout": "2s"}
        p.update(kw)
        return p

    # -- against the static exporter: fixed values ------------------------
    def test_static_values_pass_in_every_mode(self):
        self.wait_scraped("static")
        modes = ("start-of-test", "end-of-test", "edge", "continuous", "on-chaos")
        probes = [self.probe(f"ratio-{m}", m, "cep_static_ratio", below=0.5,
                             interval="500ms") for m in modes]
        probes.append(self.probe("scalar", "end-of-test", "scalar(cep_static_ratio) * 2",
                                 equals=0.84))
        rc, rep, by = self.run_exp("prom-static-pass", probes, duration="2s")
        self.assertEqual(rc, 0, json.dumps(rep, indent=1) + self.app.logs())
        self.assertEqual(rep["verdict"], "Pass")
        for p in by.values():
            self.assertTrue(p["passed"], p)
            self.assertGreaterEqual(p["checks"], 1, p)
            self.assertEqual(p["checks_ok"], p["checks"], p)
            self.assertNotIn("failed_detail", p)
        self.assertEqual(by["ratio-edge"]["checks"], 2)

    def test_static_failures_give_fail(self):
        self.wait_scraped("static")
        rc, rep, by = self.run_exp("prom-static-fail", [
            self.probe("over", "end-of-test", "cep_static_ratio", atMost=0.4),
            self.probe("two", "end-of-test", "cep_static_pair", atLeast=0),
            self.probe("none", "end-of-test", "cep_no_such_metric", atLeast=0),
            self.probe("bad", "end-of-test", "sum(", atLeast=0),
            self.probe("ok", "end-of-test", 'cep_static_pair{k="b"}', equals=2)],
            duration="1s")
        self.assertEqual(rc, 1, json.dumps(rep, indent=1) + self.app.logs())
        self.assertEqual(rep["verdict"], "Fail")
        self.assertEqual(by["over"]["failed_detail"], "value 0.42, want <= 0.4")
        self.assertEqual(by["two"]["failed_detail"], "query returned 2 series, want 1")
        self.assertEqual(by["none"]["failed_detail"], "query returned 0 series, want 1")
        self.assertIn(f"{self.prom.url}: HTTP 400, bad_data: ", by["bad"]["failed_detail"])
        self.assertTrue(by["ok"]["passed"], by["ok"])
        self.assertFalse(any(by[n]["passed"] for n in ("over", "two", "none", "bad")))

    # -- against the appliance's own metrics ------------------------------
    def test_appliance_metrics_pass(self):
        """The delegate counts the launch of this very run; Prometheus
        scrapes it within a second or two; the continuous probe sees it."""
        self.need_appliance_metrics()
        self.wait_scraped("cep-relay")
        self.wait_scraped("cep-delegate")
        rc, rep, by = self.run_exp("prom-appliance-pass", [
            self.probe("launched", "continuous", "sum(cep_delegate_launches_total)",
                       atLeast=1, initialDelay="2500ms", interval="500ms", attempts=4),
            self.probe("relay-up", "end-of-test", 'up{job="cep-relay"}', equals=1)],
            duration="4s")
        self.assertEqual(rc, 0, json.dumps(rep, indent=1) + self.app.logs())
        self.assertEqual(rep["verdict"], "Pass")
        self.assertTrue(by["launched"]["passed"], by["launched"])
        self.assertEqual(by["launched"]["checks_ok"], by["launched"]["checks"])
        # observed from Prometheus itself, not only through the probe
        launches = self.prom.values("sum(cep_delegate_launches_total)")
        self.assertTrue(launches and list(launches.values())[0] >= 1, launches)

    def test_appliance_metrics_fail(self):
        self.need_appliance_metrics()
        self.wait_scraped("cep-delegate")
        rc, rep, by = self.run_exp("prom-appliance-fail", [
            self.probe("no-launches", "end-of-test", "sum(cep_delegate_launches_total)",
                       below=1, initialDelay="1500ms")], duration="2s")
        self.assertEqual(rc, 1, json.dumps(rep, indent=1) + self.app.logs())
        self.assertEqual(rep["verdict"], "Fail")
        self.assertFalse(by["no-launches"]["passed"])
        self.assertRegex(by["no-launches"]["failed_detail"], r"^value [1-9][0-9]*, want < 1$")

    def test_prometheus_gone_fails_clearly(self):
        port = free_port()  # nothing listens there
        rc, rep, by = self.run_exp("prom-gone", [
            {"name": "gone", "type": "prometheus", "mode": "end-of-test",
             "url": f"http://127.0.0.1:{port}", "query": "up", "atLeast": 1,
             "timeout": "500ms"}], duration="1s")
        self.assertEqual(rc, 1, json.dumps(rep, indent=1))
        self.assertTrue(by["gone"]["failed_detail"].startswith(f"http://127.0.0.1:{port}: "),
                        by["gone"])


if __name__ == "__main__":
    unittest.main()
