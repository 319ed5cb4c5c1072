"""End to end on loopback: real relay, delegate, runner and cepctl."""
import json
import os
import subprocess
import unittest
import xml.etree.ElementTree as ET

from cep_e2e import BIN, Appliance, experiment, free_port


class Demo(unittest.TestCase):
    def test_demo_passes(self):
        r = subprocess.run([os.path.join(BIN, "cepctl"), "demo"], capture_output=True,
                           text=True, timeout=180)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("verdict: Pass", r.stdout)
        self.assertIn("== phase chaos", r.stdout)
        self.assertIn("web-availability", r.stdout)
        # the demo kills demo-web 5 times, and the supervisor restarts it
        self.assertRegex(r.stdout, r"round 5/5")
        # it stops everything it started
        self.assertIn("stopped relay, delegate and web service", r.stdout)


class Experiments(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.app = Appliance("run")
        cls.app.start_all()

    @classmethod
    def tearDownClass(cls):
        cls.app.close()

    def test_failing_probe_gives_fail_and_exit_1(self):
        port = free_port()  # nothing listens there
        exp = experiment("probe-fails", duration="1s", probes=[
            {"name": "nothing-there", "type": "http", "mode": "end-of-test",
             "url": f"http://127.0.0.1:{port}/", "timeout": "500ms"}])
        r = self.app.cepctl("run", self.app.write("fail.yaml", exp))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr + self.app.logs())
        self.assertIn("verdict: Fail", r.stdout)
        self.assertIn("FAIL", r.stdout)

    def test_passing_cmd_probe_json_and_junit(self):
        exp = experiment("cmd-ok", duration="1s", probes=[
            {"name": "true-works", "type": "cmd", "mode": "edge", "command": ["true"]},
            {"name": "echo-works", "type": "cmd", "mode": "start-of-test",
             "command": ["echo", "hello"], "outputMatch": "hello"}])
        path = self.app.write("ok.yaml", exp)
        r = self.app.cepctl("run", path, "--output", "json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.app.logs())
        rep = json.loads(r.stdout)
        self.assertEqual(rep["verdict"], "Pass")
        self.assertEqual(rep["state"], "PASSED")
        self.assertEqual(rep["score"], 100.0)
        self.assertEqual(sorted(p["probe"] for p in rep["probes"]), ["echo-works", "true-works"])
        self.assertEqual([p["phase"] for p in rep["phases"]][:3], ["setup", "steady-state", "chaos"])
        r = self.app.cepctl("run", path, "--output", "junit")
        self.assertEqual(r.returncode, 0, r.stderr)
        suite = ET.fromstring(r.stdout).find("testsuite")
        self.assertEqual(suite.get("failures"), "0")
        self.assertEqual(len(suite.findall("testcase")), 3)

    def test_show_logs_runs(self):
        exp = experiment("show-me", duration="1s", probes=[
            {"name": "t", "type": "cmd", "mode": "end-of-test", "command": ["true"]}])
        r = self.app.cepctl("run", self.app.write("show.yaml", exp), "--output", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        run_id = json.loads(r.stdout)["run_id"]
        self.assertTrue(any(x["run_id"] == run_id for x in self.app.runs()))
        r = self.app.cepctl("show", run_id)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("verdict: Pass", r.stdout)
        r = self.app.cepctl("logs", run_id)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("phase verdict", r.stdout)


if __name__ == "__main__":
    unittest.main()
