"""cp_e2e - appliances driven by the reference control plane, end to end.

A Site is one reference control plane (controlplane/cep_cp.py, on a fixed
loopback port so that a restart keeps its address), optionally the site's
HTTP proxy (Debian's tinyproxy, logging every CONNECT) in the upstream
path, and appliances (cep_e2e.Appliance) whose cep.yaml points at it.
Everything is observed from outside: the plane's admin API and store, the
proxy's log, the process table.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from cep_e2e import SRC, Appliance, discard, free_port, wait_until

sys.path.insert(0, os.path.join(SRC, "tests", "controlplane"))
from cp_harness import ControlPlane, make_pki  # noqa: E402

# the appliances' bearer token: random and marked, so that the secrets scan
# (tests/campaign/secrets_scan.py) recognises it wherever it leaks
TOKEN = "t-cp-" + os.urandom(12).hex()


class Proxy:
    """tinyproxy in the foreground, CONNECT allowed to one port only."""

    def __init__(self, directory, connect_port):
        self.dir = directory
        self.port = free_port()
        self.log = os.path.join(directory, "tinyproxy.log")
        conf = os.path.join(directory, "tinyproxy.conf")
        with open(conf, "w") as f:
            f.write(f"Port {self.port}\nListen 127.0.0.1\nTimeout 60\n"
                    f"ConnectPort {connect_port}\nLogFile \"{self.log}\"\n"
                    "LogLevel Connect\nMaxClients 64\n")
        self.proc = subprocess.Popen(["tinyproxy", "-d", "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        import socket
        def up():
            if self.proc.poll() is not None:
                raise AssertionError("tinyproxy exited (is it installed?)")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        if not wait_until(up, 10, 0.05):
            raise AssertionError("tinyproxy did not start")

    def connects(self):
        """Every CONNECT target in the log, in order ("host:port")."""
        out = []
        with open(self.log, errors="replace") as f:
            for line in f:
                i = line.rfind(": CONNECT ")
                if i >= 0 and "Request" in line:
                    out.append(line[i + 10:].split()[0])
        return out

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Site:
    def __init__(self, lease_ms=10000, heartbeat_ms=1000, proxy=False, extra=()):
        self.dir = tempfile.mkdtemp(prefix="cep-site-")
        self.pki = make_pki(os.path.join(self.dir, "pki"))
        self.cp = ControlPlane(os.path.join(self.dir, "cp"), self.pki, tokens=[TOKEN])
        self.cp_port = free_port()
        self.cp.start(lease_ms=lease_ms, heartbeat_ms=heartbeat_ms,
                      extra=list(extra))
        # pin the port: a restarted plane keeps the address the appliances know
        self.cp.stop()
        self.cp.args[self.cp.args.index("--listen") + 1] = f"127.0.0.1:{self.cp_port}"
        self.cp.start()
        self.proxy = Proxy(self.dir, self.cp_port) if proxy else None
        self.token_file = os.path.join(self.dir, "token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(self.token_file, 0o600)
        self.apps = []

    @property
    def url(self):
        return f"https://127.0.0.1:{self.cp_port}"

    def appliance(self, name, start=True, allow=("127.0.0.1",), max_runs=None, extra_cp=""):
        """An appliance named `name` pointed at the plane (through the proxy
        if the site has one)."""
        # what an operator types: cepctl init --control-plane ...
        init = ["--appliance", name, "--control-plane", self.url, "--control-plane-ca", self.pki["ca"],
                "--control-plane-token", self.token_file]
        if self.proxy is not None:
            init += ["--control-plane-proxy", f"http://127.0.0.1:{self.proxy.port}"]
        app = Appliance(name, init_args=init)
        cfg = os.path.join(app.home, "config", "cep.yaml")
        with open(cfg) as f:
            text = f.read()
        if f"url: {self.url}" not in text:
            raise AssertionError("cepctl init did not write the control plane:\n" + text)
        if max_runs is not None:
            text = re.sub(r"(?m)^  maxConcurrentRuns: \d+$", f"  maxConcurrentRuns: {max_runs}", text)
            assert f"maxConcurrentRuns: {max_runs}" in text, "cep.yaml has no maxConcurrentRuns to set"
        # short long-polls keep the tests' shutdowns quick
        lines = ["  pollWaitMs: 2000", "  timeoutMs: 5000",
                 "  allow: [" + ", ".join(f'"{a}"' for a in allow) + "]"]
        text = text.replace("controlPlane:\n", "controlPlane:\n" + "\n".join(lines) + "\n", 1) + extra_cp
        with open(cfg, "w") as f:
            f.write(text)
        self.apps.append(app)
        if start:
            app.start_all()
            self.wait_registered(name)
        return app

    def wait_registered(self, name, timeout=20):
        def reg():
            return any(a.get("name") == name for a in self.cp.admin("GET", "/admin/appliances")["appliances"])
        if not wait_until(reg, timeout, 0.1):
            raise AssertionError(f"{name} did not register:\n" + self.logs())

    def submit(self, spec_yaml, name, **kw):
        body = {"spec_yaml": spec_yaml, "spec_name": name}
        body.update(kw)
        return self.cp.admin("POST", "/admin/tasks", body)["task_id"]

    def tasks(self):
        return {t["task_id"]: t for t in self.cp.admin("GET", "/admin/tasks")["tasks"]}

    def wait_task(self, task_id, pred, timeout=60):
        return wait_until(lambda: (lambda t: t if pred(t) else None)(self.tasks().get(task_id, {})),
                          timeout, 0.1)

    def events(self, run_id):
        return self.cp.admin("GET", f"/admin/events?run_id={run_id}")

    def logs(self):
        out = [a.logs() for a in self.apps]
        try:
            out.append("--- control plane\n" + self.cp.read_log()[-4000:])
        except OSError:
            pass
        return "\n".join(out)

    def close(self):
        for a in self.apps:
            a.close()
        if self.proxy is not None:
            self.proxy.close()
        if self.cp.proc is not None:
            self.cp.stop()
        discard(self.dir)


def delegate_last_seq(app, run_id):
    """How many events the delegate journalled for the run (seq 1..N)."""
    run = next((r for r in app.runs() if r["run_id"] == run_id), None)
    if run is None:
        raise AssertionError(f"run {run_id} unknown to its appliance")
    return int(run.get("events", 0))
