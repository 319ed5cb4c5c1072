"""Appliances driven by a control plane (docs/control-plane-api.md): the
real relay, delegate and runners against the reference control plane, with
a real HTTP proxy (tinyproxy) in the upstream path. Observed at the plane
(its store and admin API), in the proxy's log and in /proc."""
import os
import time
import unittest

from cep_e2e import experiment, pids_by_comm, wait_until
from cp_e2e import Site, delegate_last_seq

PROBE_TICKS = {"name": "tick", "type": "cmd", "mode": "continuous", "command": ["true"],
               "interval": "200ms"}
END_PROBE = {"name": "t", "type": "cmd", "mode": "end-of-test", "command": ["true"]}
HOGS = [{"name": "cpu", "type": "cpu-hog", "workers": 1, "load": 30},
        {"name": "mem", "type": "memory-hog", "mib": 16}]
FINAL = ("PASSED", "FAILED", "ABORTED", "ERROR")


def cp_status(app):
    """The control-plane part of `cepctl status --output json`."""
    import json
    r = app.cepctl("status", "--output", "json", check=True)
    return json.loads(r.stdout).get("control_plane")


class SiteCase(unittest.TestCase):
    proxy = False
    lease_ms = 10000

    def setUp(self):
        self.site = Site(lease_ms=self.lease_ms, proxy=self.proxy)

    def tearDown(self):
        self.site.close()

    def run_task(self, name, duration="6s", faults=(), probes=(PROBE_TICKS,), deadman="3s"):
        spec = experiment(name, duration=duration, faults=faults, probes=probes, deadman=deadman)
        return self.site.submit(spec, name)

    def wait_running(self, app, task_id, timeout=30):
        run = app.wait_run(lambda r: r.get("task_id") == task_id and r["state"] == "RUNNING", timeout)
        self.assertIsNotNone(run, "the task's run did not start:\n" + self.site.logs())
        return run["run_id"]

    def wait_done(self, task_id, timeout=90):
        t = self.site.wait_task(task_id, lambda t: t.get("state") in ("done", "failed"), timeout)
        self.assertTrue(t, f"task {task_id} did not end: {self.site.tasks().get(task_id)}\n" +
                        self.site.logs())
        return t

    def assert_exactly_once_in_order(self, app, run_id, timeout=30):
        """Every event the delegate journalled reached the plane once, in
        seq order: stored 1..N, arrivals 1..N with no repeat."""
        n = delegate_last_seq(app, run_id)
        self.assertGreater(n, 5, "too few events to prove anything")
        ev = wait_until(lambda: (lambda e: e if len(e["events"]) >= n else None)(self.site.events(run_id)),
                        timeout, 0.2)
        self.assertTrue(ev, f"the plane has {len(self.site.events(run_id)['events'])} of {n} "
                        "events\n" + self.site.logs())
        self.assertEqual([e["seq"] for e in ev["events"]], list(range(1, n + 1)))
        self.assertEqual(ev["arrivals"], list(range(1, n + 1)),
                         "events did not arrive once each, in order")
        return ev


class UpstreamThroughProxy(SiteCase):
    proxy = True

    def test_every_upstream_connection_goes_through_the_proxy_to_the_plane_only(self):
        app = self.site.appliance("a1")
        tid = self.run_task("via-proxy", duration="3s")
        t = self.wait_done(tid)
        self.assertEqual(t["state"], "done", t)
        self.assertEqual(t["verdict"], "Pass", t)
        self.assert_exactly_once_in_order(app, t["run_id"])
        st = cp_status(app)
        self.assertEqual((st["url"], st["registered"], st["last_error"]), (self.site.url, True, ""), st)
        self.assertGreater(st["last_ok_ms"], 0)
        seen = self.site.proxy.connects()
        self.assertTrue(seen, "the proxy saw no connection")
        self.assertEqual(set(seen), {f"127.0.0.1:{self.site.cp_port}"}, seen)

    def test_host_outside_the_allowlist_is_refused_and_logged(self):
        before = len(self.site.proxy.connects())
        app = self.site.appliance("a2", start=False, allow=("plane.example.net",))
        p = app.start("delegate")
        self.assertIsNotNone(wait_until(lambda: p.poll() is not None, 20), "delegate kept running")
        self.assertNotEqual(p.returncode, 0)
        log = app.logs()
        self.assertIn("upstream host 127.0.0.1 not allowed", log)
        self.assertEqual(len(self.site.proxy.connects()), before, "a refused host was contacted")


class ControlPlaneOutage(SiteCase):
    def test_plane_killed_mid_run_and_restarted_every_event_once_in_order(self):
        app = self.site.appliance("a1")
        tid = self.run_task("outage", duration="8s")
        run_id = self.wait_running(app, tid)
        time.sleep(1.5)
        self.site.cp.kill9()
        # the operator sees it: cepctl status names the failure
        self.assertTrue(wait_until(lambda: cp_status(app)["last_error"], 10, 0.2),
                        "cepctl status does not show the plane is down")
        time.sleep(2)                      # events pile up in the relay's spool
        spooled = app.relay_metric("cep_relay_spool_bytes")
        self.site.cp.start()
        t = self.wait_done(tid)
        self.assertEqual((t["state"], t["run_id"]), ("done", run_id), t)
        self.assert_exactly_once_in_order(app, run_id)
        self.assertGreater(spooled, 0, "nothing waited in the spool during the outage")
        self.assertIn("kept in the spool", app.logs())
        self.assertEqual(app.relay_metric("cep_relay_spool_bytes"), 0)
        self.assertTrue(wait_until(lambda: cp_status(app)["last_error"] == "", 10, 0.2))

    def test_malformed_truncated_slow_oversized_replies_are_retried(self):
        app = self.site.appliance("a1")
        for mode in ("malformed", "truncated", "oversized", "wrongtype"):
            self.site.cp.admin("POST", "/admin/faults", {"method": "*", "mode": mode, "count": 2})
        self.site.cp.admin("POST", "/admin/faults", {"method": "UploadEvents", "mode": "slow",
                                                       "delay_ms": 7000, "count": 1})
        self.site.cp.admin("POST", "/admin/faults", {"method": "PollTasks", "mode": "status",
                                                       "status": 503, "retry_after": 1, "count": 2})
        tid = self.run_task("bad-replies", duration="4s")
        t = self.wait_done(tid, timeout=120)
        self.assertEqual(t["state"], "done", t)
        self.assert_exactly_once_in_order(app, t["run_id"])
        log = app.logs()
        for what in ("truncated", "larger than", "Content-Type", "no answer within"):
            self.assertIn(what, log, f"no clear error for {what!r}")
        self.assertIsNone(app.procs["relay"].poll(), "relay died")
        self.assertIsNone(app.procs["delegate"].poll(), "delegate died")


class RefusedBatch(SiteCase):
    def test_batch_refused_as_invalid_is_set_aside_counted_and_the_rest_flows(self):
        app = self.site.appliance("a1")
        self.site.cp.admin("POST", "/admin/faults", {"method": "UploadEvents", "mode": "status",
                                                       "status": 400, "count": 2})
        tid = self.run_task("poison", duration="4s")
        t = self.wait_done(tid)
        self.assertEqual(t["state"], "done", t)
        run_id = t["run_id"]
        n = delegate_last_seq(app, run_id)
        spool = os.path.join(app.home, "state", "spool")
        aside = []
        for f in sorted(os.listdir(spool)):
            if f.startswith("rejected-"):
                b = self.site.cp.pb.EventBatch()
                with open(os.path.join(spool, f), "rb") as fh:
                    b.ParseFromString(fh.read())
                aside += [e.seq for e in b.events if e.run_id == run_id]
        self.assertTrue(aside, "nothing was set aside")

        def complete():
            at_plane = [e["seq"] for e in self.site.events(run_id)["events"]]
            return sorted(at_plane + aside) == list(range(1, n + 1))
        self.assertTrue(wait_until(complete, 30, 0.2),
                        "events lost: neither at the plane nor set aside\n" + self.site.logs())
        self.assertGreaterEqual(app.relay_metric("cep_relay_upstream_rejected_total"), 1)
        self.assertIn("refused", app.logs())


class RelayKill9(SiteCase):
    def test_relay_killed_mid_run_nothing_acknowledged_is_lost(self):
        app = self.site.appliance("a1")
        tid = self.run_task("relay-dies", duration="8s", deadman="6s")
        run_id = self.wait_running(app, tid)
        time.sleep(2)
        app.kill9("relay")
        time.sleep(1)
        app.start("relay")
        self.assertTrue(wait_until(lambda: app.logs().count("runner proved") >= 2, 20, 0.2),
                        "the runner did not reconnect:\n" + self.site.logs())
        t = self.wait_done(tid)
        self.assertEqual((t["state"], t["verdict"]), ("done", "Pass"), t)
        self.assert_exactly_once_in_order(app, run_id)


class AbortFromPlane(SiteCase):
    def test_abort_at_the_plane_reverts_within_one_second(self):
        app = self.site.appliance("a1")
        tid = self.run_task("abort-me", duration="60s", faults=HOGS)
        run_id = self.wait_running(app, tid)
        ok = wait_until(lambda: pids_by_comm("cep-cpu-hog", run_id) and pids_by_comm("cep-mem-hog", run_id),
                        30, 0.05)
        self.assertTrue(ok, "hogs did not start:\n" + self.site.logs())
        t0 = time.monotonic()
        self.site.cp.admin("POST", "/admin/commands", {"appliance": "a1", "kind": "abort_run",
                                                       "task_id": tid, "reason": "game day over"})
        gone = wait_until(lambda: not pids_by_comm("cep-cpu-hog", run_id) and
                          not pids_by_comm("cep-mem-hog", run_id), 5, 0.01)
        elapsed = time.monotonic() - t0
        self.assertTrue(gone, "faults not reverted:\n" + self.site.logs())
        self.assertLess(elapsed, 1.0, f"revert took {elapsed:.3f}s after the plane's abort")
        t = self.wait_done(tid)
        self.assertEqual(t["run_state"], "ABORTED", t)
        self.assertIn("control plane", app.runs()[0]["reason"])


class ApplianceDies(SiteCase):
    lease_ms = 3000

    def test_dead_appliance_faults_revert_and_the_lease_fails_the_task(self):
        app = self.site.appliance("a1")
        tid = self.run_task("orphaned", duration="60s", faults=HOGS, deadman="2s")
        run_id = self.wait_running(app, tid)
        self.assertTrue(wait_until(lambda: pids_by_comm("cep-cpu-hog", run_id), 30, 0.05))
        app.kill9("delegate")
        app.kill9("relay")
        # the runner's dead-man reverts by itself
        self.assertTrue(wait_until(lambda: not pids_by_comm("cep-cpu-hog", run_id) and
                                   not pids_by_comm("cep-mem-hog", run_id), 10, 0.1),
                        "faults outlived the appliance")
        t = self.wait_done(tid, timeout=30)
        self.assertEqual(t["state"], "failed", t)
        self.assertIn("lease expired", t["error"])


class TwoAppliances(SiteCase):
    def test_fifty_tasks_two_delegates_each_runs_exactly_once(self):
        a1 = self.site.appliance("a1", max_runs=10)
        a2 = self.site.appliance("a2", max_runs=10)
        spec = experiment("tiny", duration="1s", probes=[END_PROBE])
        tids = [self.site.submit(spec, f"tiny-{i}") for i in range(50)]
        ok = wait_until(lambda: all(self.site.tasks()[t]["state"] in ("done", "failed") for t in tids),
                        300, 0.5)
        tasks = self.site.tasks()
        self.assertTrue(ok, "not all tasks ended: " +
                        str([(t, tasks[t]["state"]) for t in tids if tasks[t]["state"] not in ("done", "failed")]))
        runs = [r for a in (a1, a2) for r in a.runs() if r.get("task_id")]
        by_task = {}
        for r in runs:
            by_task.setdefault(r["task_id"], []).append(r["run_id"])
        self.assertEqual(sorted(by_task), sorted(tids))
        twice = {t: v for t, v in by_task.items() if len(v) != 1}
        self.assertEqual(twice, {}, "tasks run more than once")
        for t in tids:
            self.assertEqual(tasks[t]["state"], "done", tasks[t])
            self.assertEqual(tasks[t]["attempt"], 1, tasks[t])
            self.assertEqual(tasks[t]["run_id"], by_task[t][0])
        self.assertTrue(any(r["task_id"] for r in a1.runs()) and any(r["task_id"] for r in a2.runs()),
                        "one appliance took every task")


if __name__ == "__main__":
    unittest.main()
