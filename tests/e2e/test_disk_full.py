"""The state directory fills up during a run (issue 13, item 3;
docs/delegate.md, "When the disk is full").

The home's state/ is a tmpfs of 8 MiB with delegate.stateReserveMiB 2. A
run with a cpu-hog fault and a probe every 50 ms is going when a ballast
file takes every free byte. Then, observed from outside:

- cep-relay and cep-delegate stay up;
- a new submission is refused with a message naming the state directory
  and the space a new run needs;
- cep_delegate_disk_full is 1 and cep_journal_write_errors_total
  {reason="nospace"} counts the refused appends;
- the running run still journals its revert (the journal's reserve): its
  cpu-hog is gone and `cepctl show` lists the fault reverted;
- once the ballast is removed, a new run passes with no restart, and
  cep_delegate_disk_full is 0 again;
- after a restart of the delegate, the first run's journal replays whole
  (no torn tail cut) and shows the same final state, its events and the
  fault reverted.

SpoolOnFullDisk does the same with a control plane: events wait in the
relay's spool (beside the journals in state/) while the plane is down, the
disk fills, the plane returns - and the spool drains by itself on the full
disk (its cursor overwritten in place), and once space returns the run
finishes with every journaled event at the plane.

Needs root (it mounts the tmpfs). When not root it is reported as skipped,
not passed (tests/CMakeLists.txt: SKIP_REGULAR_EXPRESSION).
"""
import errno
import os
import re
import subprocess
import time
import unittest
import urllib.request

from cep_e2e import Appliance, experiment, pids_by_comm, wait_until
from cp_e2e import Site, delegate_last_seq

FINAL = ("PASSED", "FAILED", "ABORTED", "ERROR")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')


def fill(path):
    """Writes path until the filesystem is full; the bytes written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    total, block = 0, b"\0" * 65536
    try:
        while True:
            try:
                total += os.write(fd, block)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                if len(block) == 512:
                    return total
                block = block[:len(block) // 2]
    finally:
        os.close(fd)


def small_state(app):
    """An 8 MiB tmpfs on app's state/, and stateReserveMiB 2; the path."""
    state = os.path.join(app.home, "state")
    os.makedirs(state, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", state],
                   check=True)
    cfg = os.path.join(app.home, "config", "cep.yaml")
    with open(cfg) as f:
        text = f.read()
    # cepctl init writes delegate: with its metrics only
    text = re.sub(r"(?m)^delegate:\n", "delegate:\n  stateReserveMiB: 2\n", text, 1)
    with open(cfg, "w") as f:
        f.write(text)
    return state


def unmount(app, state):
    for name in list(app.procs):
        try:
            app.stop(name)
        except AssertionError:
            pass
    subprocess.run(["umount", "-l", state], check=False)


@unittest.skipUnless(os.geteuid() == 0, "needs root: mounts a tmpfs")
class DiskFull(unittest.TestCase):
    def setUp(self):
        self.app = Appliance("disk")
        self.state = small_state(self.app)
        self.app.start_all()

    def tearDown(self):
        unmount(self.app, self.state)
        self.app.close()

    def samples(self, name):
        """{labels text: value} of one metric of cep-delegate."""
        with open(os.path.join(self.app.home, "run", "delegate.metrics-port")) as f:
            port = int(f.read())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            out = {}
            for line in r.read().decode().splitlines():
                m = SAMPLE.match(line)
                if m and m.group(1) == name:
                    out[m.group(3) or ""] = float(m.group(4))
            return out

    def alive(self):
        for name, p in self.app.procs.items():
            self.assertIsNone(p.poll(), f"cep-{name} exited:\n" + self.app.logs())

    def test_full_state_disk(self):
        app = self.app
        busy = app.write("busy.yaml", experiment(
            "busy", duration="12s", deadman="5s",
            faults=[{"name": "cpu", "type": "cpu-hog", "workers": 1, "load": 20}],
            probes=[{"name": "t", "type": "cmd", "mode": "continuous",
                     "interval": "50ms", "command": ["true"]}]))
        proc = app.run_async(busy)
        run = app.wait_run(lambda r: r["name"] == "busy" and r["state"] == "RUNNING")
        self.assertIsNotNone(run, app.logs())
        rid = run["run_id"]
        self.assertTrue(wait_until(lambda: pids_by_comm("cep-cpu-hog", rid), 30, 0.05),
                        app.logs())

        ballast = os.path.join(self.state, "ballast")
        self.assertGreater(fill(ballast), 0)
        self.assertLess(os.statvfs(self.state).f_bavail * os.statvfs(self.state).f_frsize,
                        64 * 1024)

        # a new run is refused, naming the directory and what it needs
        r = app.cepctl("run", busy)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"the state directory {self.state}/runs has", r.stderr)
        self.assertIn("a new run needs at least 2048 KiB", r.stderr)
        self.assertIn("delegate.stateReserveMiB", r.stderr)

        # the running run's events are refused (not acked): a metric says so
        self.assertTrue(wait_until(
            lambda: self.samples("cep_delegate_disk_full").get("") == 1, 20, 0.2),
            app.logs())
        self.assertGreater(self.samples("cep_journal_write_errors_total")
                           .get('reason="nospace"', 0), 0)
        self.alive()

        # it still ends, and its fault is reverted and journaled as such
        out, err = proc.communicate(timeout=90)
        self.assertNotEqual(out, "", err)
        done = app.wait_run(lambda r: r["run_id"] == rid and r["state"] in FINAL, 30)
        self.assertIsNotNone(done, app.logs())
        self.assertTrue(wait_until(lambda: not pids_by_comm("cep-cpu-hog", rid), 10),
                        "the cpu-hog outlived its run")
        shown = app.cepctl("show", rid)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertIn("reverted ", shown.stdout)
        self.assertNotIn("reverted -", shown.stdout)
        self.alive()

        # space returns: a new run passes without a restart
        os.unlink(ballast)
        quick = app.write("quick.yaml", experiment("quick", duration="1s", probes=[
            {"name": "t", "type": "cmd", "mode": "end-of-test", "command": ["true"]}]))
        r = app.cepctl("run", quick)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + app.logs())
        self.assertIn("verdict: Pass", r.stdout)
        self.assertEqual(self.samples("cep_delegate_disk_full").get(""), 0)

        # the first run's journal replays whole after a restart
        self.assertEqual(app.stop("delegate"), 0)
        app.start("delegate")
        app.wait_ready()
        again = app.cepctl("show", rid)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(again.stdout, shown.stdout)
        self.assertIn(f"run {rid}  busy  {done['state']}", again.stdout)
        self.assertIn("phase", app.cepctl("logs", rid).stdout)
        with open(os.path.join(app.home, "log", "delegate.log")) as f:
            self.assertNotIn("torn tail", f.read())
        self.alive()


@unittest.skipUnless(os.geteuid() == 0, "needs root: mounts a tmpfs")
class SpoolOnFullDisk(unittest.TestCase):
    def setUp(self):
        self.site = Site()
        self.app = self.site.appliance("full", start=False)
        self.state = small_state(self.app)
        self.app.start_all()
        self.site.wait_registered("full")

    def tearDown(self):
        unmount(self.app, self.state)
        self.site.close()

    def test_uploads_resume_by_themselves(self):
        app, site = self.app, self.site
        tid = site.submit(experiment("spooled", duration="12s", deadman="6s", probes=[
            {"name": "tick", "type": "cmd", "mode": "continuous", "command": ["true"],
             "interval": "100ms"}]), "spooled")
        run = app.wait_run(lambda r: r.get("task_id") == tid and r["state"] == "RUNNING")
        self.assertIsNotNone(run, site.logs())
        time.sleep(1)
        site.cp.kill9()
        self.assertTrue(wait_until(lambda: app.relay_metric("cep_relay_spool_bytes") > 0, 10),
                        "nothing waits in the spool")
        ballast = os.path.join(self.state, "ballast")
        self.assertGreater(fill(ballast), 0)
        time.sleep(2)                      # the run goes on against a full disk
        for name, p in app.procs.items():
            self.assertIsNone(p.poll(), f"cep-{name} exited:\n" + site.logs())

        # the plane returns: the spool drains on the full disk, by itself
        site.cp.start()
        self.assertTrue(wait_until(lambda: app.relay_metric("cep_relay_spool_bytes") == 0,
                                   30, 0.2), "the spool did not drain:\n" + site.logs())
        self.assertTrue(os.path.exists(ballast))

        # space returns: the run ends, every journaled event at the plane once
        os.unlink(ballast)
        t = site.wait_task(tid, lambda t: t.get("state") in ("done", "failed"), 90)
        self.assertTrue(t, site.logs())
        self.assertEqual(t["state"], "done", t)
        n = delegate_last_seq(app, run["run_id"])
        self.assertGreater(n, 20)
        ev = wait_until(lambda: (lambda e: e if len(e["events"]) >= n else None)(
            site.events(run["run_id"])), 30, 0.2)
        self.assertTrue(ev, site.logs())
        self.assertEqual([e["seq"] for e in ev["events"]], list(range(1, n + 1)))


if __name__ == "__main__":
    unittest.main()
