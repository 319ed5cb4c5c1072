"""cep_e2e - drives the real cep binaries for end-to-end tests.

An Appliance is a temporary home with a running cep-relay and cep-delegate,
built with `cepctl init`. Everything is observed from outside, the way an
operator would: process table (/proc), files, cepctl's output and exit code.
Python standard library only.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

BIN = os.environ.get("CEP_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))
SRC = os.environ.get("CEP_SRC_DIR", os.path.join(os.path.dirname(__file__), "../.."))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def procs():
    """{pid: (comm, cmdline list)} of every process now."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
            with open(f"/proc/{d}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":  # a zombie holds no resources and runs nothing
            continue
        out[int(d)] = (comm, cmd)
    return out


def pids_of_run(run_id):
    """Processes that belong to a run: the runner and its fault workers
    (forked from it, so they carry its --run-id)."""
    return [p for p, (_, cmd) in procs().items() if "--run-id" in cmd and run_id in cmd]


def pids_by_comm(comm, run_id=None):
    """Processes named comm; with run_id, only that run's (fault workers are
    forked from the runner and carry its --run-id), so that other work on
    the machine cannot disturb a test."""
    return [p for p, (c, cmd) in procs().items()
            if c == comm and (run_id is None or ("--run-id" in cmd and run_id in cmd))]


def cgroup2_root():
    """Where the cgroup v2 hierarchy is mounted (None without one)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            if parts[4] in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified") and \
                    parts[sep + 1] == "cgroup2":
                return parts[4]
    return None


def target_cgroup(root, tag):
    """A cgroup v2 group under root with a sleeping process in it, the
    target of a test's cgroup faults; named chaos-TAG-PID, not cep-*: the
    default policy refuses targets named like that. -> (path, Popen)"""
    path = os.path.join(root, f"chaos-{tag}-{os.getpid()}")
    os.mkdir(path)
    sleeper = subprocess.Popen(["sleep", "100000"])
    with open(os.path.join(path, "cgroup.procs"), "w") as f:
        f.write(str(sleeper.pid))
    return path, sleeper


def remove_cgroup(path):
    """rmdir a test cgroup once its last process is gone (the kernel
    takes a moment after the exit)."""
    for _ in range(100):
        try:
            os.rmdir(path)
            return
        except OSError:
            time.sleep(0.05)


def discard(path):
    """Removes a test's folder; with CEP_E2E_KEEP_DIR set, moves it there
    instead, for the secrets scan after the suite (ctest
    secrets_scan_e2e, tests/campaign/secrets_scan.py). Sockets and other
    special files are left out of a copy across filesystems."""
    keep = os.environ.get("CEP_E2E_KEEP_DIR")
    if not keep or not os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    os.makedirs(keep, exist_ok=True)
    dst = os.path.join(keep, os.path.basename(path))
    try:
        os.rename(path, dst)
    except OSError:
        def special(d, names):
            return [n for n in names if not os.path.isdir(os.path.join(d, n))
                    and not os.path.isfile(os.path.join(d, n))]
        shutil.copytree(path, dst, symlinks=True, ignore=special, dirs_exist_ok=True)
        shutil.rmtree(path, ignore_errors=True)


def wait_until(pred, timeout, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def experiment(name, duration="3s", faults=(), probes=(), deadman="3s", extra_spec=""):
    """A YAML experiment from pieces of YAML text (test input only)."""
    lines = ["apiVersion: cep.io/v1", "kind: Experiment", "metadata:", f"  name: {name}",
             "spec:", "  target:", "    kind: host", f"  duration: {duration}",
             f"  deadman: {deadman}"]
    if extra_spec:
        lines.append(extra_spec)
    for key, items in (("faults", faults), ("probes", probes)):
        if not items:
            continue
        lines.append(f"  {key}:")
        for item in items:
            first = True
            for k, v in item.items():
                lines.append(("    - " if first else "      ") + f"{k}: {json.dumps(v)}")
                first = False
    return "\n".join(lines) + "\n"


class Appliance:
    def __init__(self, tag="e2e", init_args=()):
        self.home = tempfile.mkdtemp(prefix=f"cep-{tag}-")
        self.port = free_port()
        self.procs = {}
        url = f"tls+tcp://127.0.0.1:{self.port}"
        # metrics on free ports (HOME/run/*.metrics-port): appliances of
        # tests side by side must not contend for 9464/9465
        self.cepctl("init", "--appliance", "e2e", "--relay-listen", url,
                    "--relay-advertise", url, "--relay-metrics", "127.0.0.1:0",
                    "--delegate-metrics", "127.0.0.1:0", *init_args, check=True)
        os.makedirs(os.path.join(self.home, "log"), exist_ok=True)

    # -- processes -------------------------------------------------------
    def start(self, name):
        log = open(os.path.join(self.home, "log", f"{name}.log"), "ab")
        p = subprocess.Popen([os.path.join(BIN, f"cep-{name}"), "--home", self.home],
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        self.procs[name] = p
        return p

    def start_all(self):
        self.start("relay")
        self.start("delegate")
        self.wait_ready()

    def wait_ready(self, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                r = self.cepctl("status", "--output", "json", timeout=10)
            except subprocess.TimeoutExpired:   # a loaded machine: ask again
                continue
            if r.returncode == 0:
                try:
                    if json.loads(r.stdout).get("relay_ok"):
                        return
                except ValueError:
                    pass
            time.sleep(0.1)
        raise AssertionError("appliance did not become ready:\n" + self.logs())

    def kill9(self, name):
        p = self.procs.pop(name)
        p.send_signal(signal.SIGKILL)
        p.wait()

    def stop(self, name, timeout=15):
        p = self.procs.pop(name, None)
        if p is None:
            return None
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError(f"cep-{name} did not stop on SIGTERM")

    def close(self):
        for name in list(self.procs):
            try:
                self.stop(name)
            except AssertionError:
                pass
        discard(self.home)

    def logs(self):
        out = []
        d = os.path.join(self.home, "log")
        for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            with open(os.path.join(d, f), errors="replace") as fh:
                out.append(f"--- {f}\n" + fh.read()[-6000:])
        return "\n".join(out)

    # -- cepctl ----------------------------------------------------------
    def cepctl(self, *args, check=False, timeout=120, stdin=None):
        r = subprocess.run([os.path.join(BIN, "cepctl"), "--home", self.home, *args],
                           capture_output=True, text=True, timeout=timeout, input=stdin)
        if check and r.returncode != 0:
            raise AssertionError(f"cepctl {args} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def metric(self, daemon, name):
        """One unlabelled sample from cep-<daemon>'s /metrics (None if absent)."""
        import urllib.request
        with open(os.path.join(self.home, "run", f"{daemon}.metrics-port")) as f:
            port = int(f.read())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            for line in r.read().decode().splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == name:
                    return float(parts[1])
        return None

    def relay_metric(self, name):
        return self.metric("relay", name)

    def write(self, name, text):
        path = os.path.join(self.home, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_async(self, exp_path, *extra):
        """cepctl run in the background; returns the Popen."""
        return subprocess.Popen([os.path.join(BIN, "cepctl"), "--home", self.home, "run",
                                 exp_path, *extra], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def runner_pids(self):
        """This appliance's runners only (their --identity lies in its
        home): other tests on the machine must not be disturbed."""
        return [p for p, (c, cmd) in procs().items()
                if c == "cep-runner" and any(self.home in a for a in cmd)]

    def runs(self):
        r = self.cepctl("runs", "--output", "json", check=True)
        return json.loads(r.stdout)

    def wait_run(self, pred, timeout=30):
        return wait_until(lambda: next((x for x in self.runs() if pred(x)), None), timeout, 0.1)
