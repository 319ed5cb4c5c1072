"""The runners' control-plane tunnel (docs/runner.md, "Tunnel"): runners told
a relay address where nothing listens reach their relay through the control
plane, over HTTPS through the site's proxy (tinyproxy), with their per-run
identity. Observed from outside: cepctl (the delegate's journal), the
plane's store and call log, the proxy's log, /proc."""
import os
import time
import unittest

from cep_e2e import experiment, free_port, pids_by_comm, procs, wait_until
from test_controlplane import SiteCase

HOG = [{"name": "cpu", "type": "cpu-hog", "workers": 1, "load": 30}]
PROBE = {"name": "tick", "type": "cmd", "mode": "continuous", "command": ["true"], "interval": "300ms"}


class TunnelThroughProxy(SiteCase):
    proxy = True

    def setUp(self):
        super().setUp()
        self.app = self.site.appliance("tun1", start=False)
        cfg = os.path.join(self.app.home, "config", "cep.yaml")
        with open(cfg) as f:
            text = f.read()
        self.dead = free_port()   # nothing listens here: runners cannot reach the relay
        old = f"advertise: tls+tcp://127.0.0.1:{self.app.port}"
        self.assertIn(old, text)
        with open(cfg, "w") as f:
            f.write(text.replace(old, f"advertise: tls+tcp://127.0.0.1:{self.dead}"))
        self.app.start_all()
        self.site.wait_registered("tun1")

    def runner_cmdline(self, run_id):
        return next((cmd for _, (c, cmd) in procs().items() if c == "cep-runner" and run_id in cmd), None)

    def runner_log(self, run_id):
        with open(os.path.join(self.app.home, "state", "runs", run_id, "runner.log"), errors="replace") as f:
            return f.read()

    def tunnel_calls(self):
        return [c for c in self.site.cp.admin("GET", "/admin/log")["calls"]
                if c["method"].startswith("tunnel/")]

    def test_run_passes_through_the_tunnel_and_an_abort_reaches_it(self):
        # 1. a run with a fault and a probe, entirely through the tunnel
        tid = self.run_task("tunnelled", duration="5s", faults=HOG, probes=(PROBE,), deadman="20s")
        run_id = self.wait_running(self.app, tid, timeout=60)
        cmd = self.runner_cmdline(run_id)
        self.assertIsNotNone(cmd, "no runner process")
        self.assertIn(f"tls+tcp://127.0.0.1:{self.dead}", cmd)
        self.assertIn(f"http://127.0.0.1:{self.site.proxy.port}", cmd, "runner not given the site proxy")
        t = self.wait_done(tid, timeout=90)
        self.assertEqual((t["state"], t["verdict"]), ("done", "Pass"), str(t) + "\n" + self.site.logs())
        self.assert_exactly_once_in_order(self.app, run_id)   # journal == plane, 1..N
        log = self.runner_log(run_id)
        self.assertIn("calls go through the control plane", log)
        self.assertIn("identity proven to the relay (through the control-plane tunnel)", log)
        calls = self.tunnel_calls()
        methods = {c["method"] for c in calls if c["status"] == 200}
        for m in ("Challenge", "Prove", "GetAssignment", "PushEvents", "RecordFault", "FaultReverted"):
            self.assertIn(f"tunnel/cep.v1.Runner/{m}", methods, methods)
        self.assertTrue(all(c["appliance"] == "tun1" and c["auth"] == "runner" for c in calls if c["status"] == 200))
        # every connection to the plane went through the proxy: calls reuse
        # connections (lib/http keeps them), so the proxy saw at least as
        # many CONNECTs to the plane as the plane saw TCP connections (the
        # peer ports of its calls)
        seen = self.site.proxy.connects()
        self.assertEqual(set(seen), {f"127.0.0.1:{self.site.cp_port}"}, seen)
        conns = {c["peer_port"] for c in self.site.cp.admin("GET", "/admin/log")["calls"]}
        self.assertGreaterEqual(len(seen), len(conns), conns)

        # 2. an abort from cepctl reaches a tunnelled runner and its hog goes
        tid2 = self.run_task("tunnel-abort", duration="120s", faults=HOG, probes=(PROBE,), deadman="20s")
        run2 = self.wait_running(self.app, tid2, timeout=60)
        self.assertTrue(wait_until(lambda: pids_by_comm("cep-cpu-hog", run2), 30, 0.05),
                        "hog did not start:\n" + self.site.logs())
        time.sleep(1)
        r = self.app.cepctl("abort", run2, check=True)
        self.assertEqual(r.returncode, 0)
        t0 = time.monotonic()
        gone = wait_until(lambda: not pids_by_comm("cep-cpu-hog", run2), 10, 0.02)
        self.assertTrue(gone, "the hog outlived the abort:\n" + self.site.logs())
        run = self.app.wait_run(lambda x: x["run_id"] == run2 and x["state"] == "ABORTED", 30)
        self.assertIsNotNone(run, "run not ABORTED")
        self.assertIn("abort received", self.runner_log(run2), "the runner did not get the abort itself")
        self.assertLess(time.monotonic() - t0, 10)

        # 3. nothing leaked or went wrong in memory (ASan/LSan builds report
        # at exit): the runners' logs, and the daemons' once stopped
        self.assertTrue(wait_until(lambda: not self.app.runner_pids(), 30, 0.1), "runner still alive")
        for rid in (run_id, run2):
            self.assertNotIn("Sanitizer", self.runner_log(rid))
        self.assertEqual(self.app.stop("relay"), 0, self.app.logs())
        self.assertEqual(self.app.stop("delegate"), 0, self.app.logs())
        self.assertNotIn("Sanitizer", self.app.logs())


if __name__ == "__main__":
    unittest.main()
