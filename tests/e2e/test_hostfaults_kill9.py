"""Host-resource faults survive nothing: kill -9 of the runner at random
points while it records and injects disk-fill, cpu-hog, memory-hog and
io-stress (targeting a test cgroup and a sleeping process), then, once the
run is final: no fill file in the filesystem (os.listdir), the free space
back, no cep-* worker in the process table. Also one clean run: the faults
show in the target's accounting and everything is gone at the end; and
kill -9 of delegate and runner together, then a delegate restart: the
undo comes from the journal.
Needs root (cgroups, tmpfs). Set CEP_E2E_SEED to replay a random sequence.
"""
import os
import random
import signal
import subprocess
import tempfile
import time
import unittest

from cep_e2e import (Appliance, experiment, pids_by_comm, pids_of_run, procs, remove_cgroup,
                     target_cgroup, wait_until)

WORKERS = ("cep-cpu-hog", "cep-mem-hog", "cep-io-stress")
FINAL = ("PASSED", "FAILED", "ABORTED", "ERROR")
TRIALS = 6


def cgroup2_root():
    for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split()
                sep = parts.index("-")
                if parts[4] == root and parts[sep + 1] == "cgroup2":
                    return root
    return None


def fill_files(d):
    return [n for n in os.listdir(d) if n.startswith(".cep-fill-")]


def workers():
    return [p for p, (c, _) in procs().items() if c in WORKERS]


def avail(d):
    st = os.statvfs(d)
    return st.f_bavail * st.f_frsize


def usage_usec(cg):
    with open(os.path.join(cg, "cpu.stat")) as f:
        for line in f:
            k, v = line.split()
            if k == "usage_usec":
                return int(v)
    return 0


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class HostFaultsKill9(unittest.TestCase):
    def setUp(self):
        root = cgroup2_root()
        if root is None:
            self.skipTest("no cgroup v2 hierarchy")
        self.seed = int(os.environ.get("CEP_E2E_SEED", time.time_ns() % 100000))
        self.rng = random.Random(self.seed)
        self.cg, self.target = target_cgroup(root, "e2e")
        self.fs = tempfile.mkdtemp(prefix="cep-e2e-fill-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", self.fs], check=True)
        self.io = tempfile.mkdtemp(prefix="cep-e2e-io-")
        self.app = Appliance("hostfaults")
        self.app.start_all()
        self.free0 = avail(self.fs)

    def tearDown(self):
        self.app.close()
        for p in workers():
            os.kill(p, signal.SIGKILL)
        self.target.kill()
        self.target.wait()
        subprocess.run(["umount", "-l", self.fs], check=False)
        os.rmdir(self.fs)
        for n in os.listdir(self.io):
            os.unlink(os.path.join(self.io, n))
        os.rmdir(self.io)
        wait_until(lambda: not workers(), 5)
        remove_cgroup(self.cg)

    def faults(self):
        rel = self.cg.split("/sys/fs/cgroup/", 1)[1]
        return [
            {"name": "fill", "type": "disk-fill", "path": self.fs, "percent": 70},
            {"name": "cpu", "type": "cpu-hog", "cgroup": rel, "workers": 1, "load": 50},
            {"name": "mem", "type": "memory-hog", "pid": self.target.pid, "mib": 32},
            {"name": "io", "type": "io-stress", "cgroup": rel, "path": self.io,
             "workers": 1, "fileMiB": 4, "writeKiB": 256},
        ]

    def assert_clean(self, why):
        self.assertEqual(fill_files(self.fs), [], f"{why}: fill file left\n" + self.app.logs())
        self.assertTrue(wait_until(lambda: not workers(), 5), f"{why}: workers left {workers()}")
        self.assertGreaterEqual(avail(self.fs), self.free0, f"{why}: free space not back")
        self.assertEqual(os.listdir(self.io), [], f"{why}: io-stress left a file")

    def test_clean_run_moves_resources_and_returns(self):
        path = self.app.write("clean.yaml", experiment("clean", duration="3s", faults=self.faults()))
        u0 = usage_usec(self.cg)
        proc = self.app.run_async(path)
        ok = wait_until(lambda: fill_files(self.fs) and len(workers()) == 3, 30, 0.05)
        self.assertTrue(ok, "faults not injected:\n" + self.app.logs())
        used = 1 - avail(self.fs) / (os.statvfs(self.fs).f_blocks * os.statvfs(self.fs).f_frsize)
        self.assertAlmostEqual(used, 0.70, delta=0.02)
        time.sleep(0.5)
        # accounted to the target cgroup (the amount is runner/test_hostfaults' job)
        self.assertGreater(usage_usec(self.cg) - u0, 20000, "cgroup shows no cpu-hog load")
        out, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0, out + err + self.app.logs())
        self.assert_clean("after a clean run")

    def test_kill9_runner_at_random_points(self):
        for trial in range(TRIALS):
            name = f"kill-{trial}"
            path = self.app.write(f"{name}.yaml", experiment(name, duration="20s", deadman="2s",
                                                             faults=self.faults()))
            proc = self.app.run_async(path)
            runner = wait_until(self.app.runner_pids, 20, 0.005)
            self.assertTrue(runner, "no runner:\n" + self.app.logs())
            if trial % 2:
                # odd trials: while the faults are surely in (the delegate
                # must remove the fill file itself)
                self.assertTrue(wait_until(lambda: fill_files(self.fs) and len(workers()) == 3,
                                           20, 0.005), self.app.logs())
                delay = self.rng.uniform(0, 0.3)
            else:
                # even trials: anywhere from connecting to recording/injecting
                delay = self.rng.uniform(0, 0.6)
            time.sleep(delay)
            filled = bool(fill_files(self.fs))
            for p in self.app.runner_pids():
                os.kill(p, signal.SIGKILL)
            run = self.app.wait_run(lambda r: r["name"] == name and r["state"] in FINAL, timeout=30)
            self.assertIsNotNone(run, f"seed {self.seed} trial {trial}: not final\n" + self.app.logs())
            proc.communicate(timeout=30)
            left = {p: procs().get(p) for p in pids_of_run(run["run_id"])}
            self.assertFalse(left, self.app.logs() + f"\nseed {self.seed} {name}: "
                             f"processes of the run left once it was final: {left}")
            if filled:
                with open(os.path.join(self.app.home, "log", "delegate.log")) as f:
                    self.assertIn(f"run={run['run_id']} msg=\"fault fill undone by the cleanup "
                                  "runner", f.read(),
                                  "the fill file was there, yet not undone by a cleanup runner")
            self.assert_clean(f"seed {self.seed} trial {trial} (kill after {delay:.3f}s, "
                              f"fill file {'present' if filled else 'absent'} at the kill)")

    def test_kill9_delegate_and_runner_then_restart_undoes_from_journal(self):
        path = self.app.write("both.yaml", experiment("both", duration="20s", deadman="2s",
                                                      faults=self.faults()[:1]))
        proc = self.app.run_async(path)
        self.assertTrue(wait_until(lambda: fill_files(self.fs), 30, 0.01), self.app.logs())
        run_id = self.app.wait_run(lambda r: r["name"] == "both")["run_id"]
        self.app.kill9("delegate")
        for p in self.app.runner_pids():
            os.kill(p, signal.SIGKILL)
        proc.kill()
        proc.communicate()
        self.assertTrue(fill_files(self.fs), "nobody may have removed the file yet")
        self.app.start("delegate")
        self.app.wait_ready()
        run = self.app.wait_run(lambda r: r["run_id"] == run_id and r["state"] in FINAL, timeout=30)
        self.assertIsNotNone(run, self.app.logs())
        self.assert_clean("after a delegate restart")


if __name__ == "__main__":
    unittest.main()
