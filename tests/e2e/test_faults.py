"""Faults are reverted: on abort (within 1 s), when the runner is killed,
and when the delegate is killed mid-run. Observed in /proc, not assumed."""
import os
import signal
import time
import unittest

from cep_e2e import Appliance, experiment, pids_by_comm, pids_of_run, wait_until


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


HOGS = [{"name": "cpu", "type": "cpu-hog", "workers": 2, "load": 50},
        {"name": "mem", "type": "memory-hog", "mib": 64}]


class Revert(unittest.TestCase):
    def setUp(self):
        self.app = Appliance("faults")
        self.app.start_all()

    def tearDown(self):
        self.app.close()

    def start_hogs(self, name, duration="60s", deadman="3s"):
        path = self.app.write(f"{name}.yaml", experiment(name, duration=duration,
                                                         faults=HOGS, deadman=deadman))
        proc = self.app.run_async(path)
        run = self.app.wait_run(lambda r: r["name"] == name and r["state"] == "RUNNING")
        self.assertIsNotNone(run, self.app.logs())
        rid = run["run_id"]
        ok = wait_until(lambda: len(pids_by_comm("cep-cpu-hog", rid)) == 2 and
                        pids_by_comm("cep-mem-hog", rid) and
                        rss_kib(pids_by_comm("cep-mem-hog", rid)[0]) > 60 * 1024, 30, 0.05)
        if not ok:
            proc.kill()
            self.fail("hogs did not start:\n" + self.app.logs())
        return proc, rid

    def test_abort_reverts_within_one_second(self):
        proc, run_id = self.start_hogs("abort-me")
        mem_pid = pids_by_comm("cep-mem-hog", run_id)[0]
        t0 = time.monotonic()
        r = self.app.cepctl("abort", run_id)
        self.assertEqual(r.returncode, 0, r.stderr)
        gone = wait_until(lambda: not pids_by_comm("cep-cpu-hog", run_id) and
                          not pids_by_comm("cep-mem-hog", run_id), 5, 0.01)
        elapsed = time.monotonic() - t0
        self.assertTrue(gone, "hog workers still running after abort")
        self.assertLess(elapsed, 1.0, f"revert took {elapsed:.3f}s")
        self.assertFalse(os.path.exists(f"/proc/{mem_pid}"), "memory-hog still holds its memory")
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 2, out + err)
        self.assertIn("ABORTED", out)
        # the journal shows both faults reverted
        r = self.app.cepctl("show", run_id)
        self.assertEqual(r.stdout.count("reverted "), 2, r.stdout)
        self.assertNotIn("reverted -", r.stdout)

    def test_kill9_runner_faults_gone_within_deadman(self):
        proc, run_id = self.start_hogs("kill-runner")
        runner = pids_by_comm("cep-runner", run_id)
        self.assertEqual(len(runner), 1, runner)
        os.kill(runner[0], signal.SIGKILL)
        gone = wait_until(lambda: not pids_of_run(run_id), 3.0, 0.02)
        self.assertTrue(gone, "faults outlived the runner's dead-man interval")
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 2, out + err)
        self.assertIn("ERROR", out)

    def test_kill9_delegate_then_restart_finishes_or_cleans_up(self):
        path = self.app.write("short.yaml", experiment("survive", duration="4s", faults=HOGS[:1]))
        proc = self.app.run_async(path)
        run_id = self.app.wait_run(lambda r: r["name"] == "survive")["run_id"]
        self.assertTrue(wait_until(lambda: pids_by_comm("cep-cpu-hog", run_id), 30, 0.05),
                        self.app.logs())
        self.app.kill9("delegate")
        proc.kill()
        proc.wait()
        self.app.start("delegate")
        self.app.wait_ready()
        run = self.app.wait_run(lambda r: r["run_id"] == run_id and r["state"] in
                                ("PASSED", "FAILED", "ABORTED", "ERROR"), timeout=60)
        self.assertIsNotNone(run, self.app.logs())
        self.assertTrue(wait_until(lambda: not pids_of_run(run_id), 5), pids_of_run(run_id))
        self.assertFalse(pids_by_comm("cep-cpu-hog", run_id))
        # the journal is intact: the run still shows with its events
        r = self.app.cepctl("show", run_id)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("phase", self.app.cepctl("logs", run_id).stdout)


if __name__ == "__main__":
    unittest.main()
