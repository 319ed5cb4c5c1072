"""The reference control plane (controlplane/cep_cp.py) against docs/control-plane-api.md.

Run: cd tests/controlplane && python3 -m unittest -v test_cp_server
Needs openssl, protoc (protobuf-compiler) and python3-protobuf.
"""
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from cp_harness import CP, ControlPlane, make_pki  # noqa: E402

TMP = None
PKI = None


def setUpModule():
    global TMP, PKI
    TMP = tempfile.mkdtemp(prefix="cp-test-")
    PKI = make_pki(os.path.join(TMP, "pki"))


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


def wait_for(pred, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Base(unittest.TestCase):
    lease_ms = 10000
    extra = ()

    @classmethod
    def setUpClass(cls):
        cls.cp = ControlPlane(os.path.join(TMP, cls.__name__), PKI).start(lease_ms=cls.lease_ms, heartbeat_ms=100,
                                                                          extra=cls.extra)
        cls.pb = cls.cp.pb

    @classmethod
    def tearDownClass(cls):
        rc = cls.cp.stop()
        assert rc == 0, "cep_cp exited %s" % rc

    def register(self, name):
        return self.cp.ok("Register", self.pb.CpRegister(appliance=name, version="test", started_ms=1))

    def lease_one(self, app, **kw):
        tid = self.cp.submit(**kw)
        got = self.cp.ok("PollTasks", self.pb.CpPoll(appliance=app, wait_ms=2000, max=1))
        self.assertEqual([t.task_id for t in got.tasks], [tid])
        return got.tasks[0]

    def ack(self, app, tid, run, accepted=True, error=""):
        return self.cp.call("AckTask", self.pb.CpTaskAck(appliance=app, task_id=tid, accepted=accepted, run_id=run,
                                                         error=error))

    def report(self, app, tid, run, state, verdict=""):
        return self.cp.call("ReportRun", self.pb.CpRunReport(appliance=app, task_id=tid, run_id=run, state=state,
                                                             verdict=verdict, time_ms=1))


class TestProtocol(Base):
    """Auth, strictness, register/heartbeat, tasks, events, commands, faults, on one server."""

    def tearDown(self):
        # no test leaves a fault or a queued task behind for the next one
        self.cp.admin("DELETE", "/admin/faults")
        self.register("drain")
        for t in self.cp.ok("PollTasks", self.pb.CpPoll(appliance="drain", wait_ms=0, max=100)).tasks:
            self.ack("drain", t.task_id, "", accepted=False, error="drained after the test")

    # ---- auth -------------------------------------------------------------------------
    def test_auth(self):
        reg = self.pb.CpRegister(appliance="app-cert", version="1")
        st, _, rep = self.cp.call("Register", reg)
        self.assertEqual(st, 200)
        self.assertEqual((rep.heartbeat_ms, rep.lease_ms), (100, self.lease_ms))
        st, _, rep = self.cp.call("Register", reg, token=None, client="app-cert")
        self.assertEqual(st, 200)
        for token in (None, "t-wrong", "# test tokens"):
            st, _, status = self.cp.call("Register", reg, token=token)
            self.assertEqual((st, status.code), (401, 16), token)
        # a certificate speaks only for its own appliance
        st, _, status = self.cp.call("Register", self.pb.CpRegister(appliance="other"), token=None, client="app-cert")
        self.assertEqual((st, status.code), (403, 7))
        self.assertIn("app-cert", status.message)
        apps = {a["name"]: a for a in self.cp.admin("GET", "/admin/appliances")["appliances"]}
        self.assertEqual(apps["app-cert"]["auth"], "cert")
        # tokens never reach the log
        self.assertNotIn("t-good", self.cp.read_log())
        self.assertNotIn("t-wrong", self.cp.read_log())

    # ---- strictness -------------------------------------------------------------------
    def test_bad_requests(self):
        good = self.pb.CpRegister(appliance="strict").SerializeToString()
        cases = [("Register", good, "application/json", "POST", 415, 3),
                 ("Register", good, None, "POST", 415, 3),
                 ("Register", b"\xff\xff\xff\xff\xff", "application/x-protobuf", "POST", 400, 3),
                 ("Register", b"", "application/x-protobuf", "POST", 400, 3),  # appliance empty
                 ("Frobnicate", good, "application/x-protobuf", "POST", 404, 12),
                 ("Register", None, "application/x-protobuf", "GET", 405, 12)]
        for method, body, ctype, verb, want, code in cases:
            st, hdrs, data = self.cp.raw(method, body, ctype=ctype, verb=verb)
            self.assertEqual(st, want, (method, ctype, verb, data))
            self.assertEqual(hdrs["content-type"], "application/x-protobuf")
            status = self.pb.CpStatus()
            status.ParseFromString(data)
            self.assertEqual(status.code, code)
            self.assertTrue(status.message)
        # the connection is still usable after errors: keep-alive with a read body
        c = http.client.HTTPSConnection("127.0.0.1", self.cp.port, context=self.cp.context())
        for _ in range(2):
            c.request("POST", "/v1/cep.v1.ControlPlane/Register", body=b"\xff\xff",
                      headers={"Authorization": "Bearer t-good", "Content-Type": "application/x-protobuf"})
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 400)
        c.close()
        # bad upload batches: not for their run, or seq 0; nothing of them is stored
        up = self.pb.CpEventUpload(appliance="strict")
        b = up.batches.add(run_id="r-bad")
        b.events.add(run_id="r-bad", seq=1)
        b.events.add(run_id="r-other", seq=2)
        st, _, status = self.cp.call("UploadEvents", up)
        self.assertEqual((st, status.code), (400, 3))
        up = self.pb.CpEventUpload(appliance="strict")
        up.batches.add(run_id="r-bad").events.add(run_id="r-bad", seq=0)
        self.assertEqual(self.cp.call("UploadEvents", up)[0], 400)
        self.assertEqual(self.cp.admin("GET", "/admin/events?run_id=r-bad")["events"], [])

    # ---- register / heartbeat -----------------------------------------------------------
    def test_register_heartbeat(self):
        st, _, status = self.cp.call("Heartbeat", self.pb.CpHeartbeat(appliance="hb-unknown"))
        self.assertEqual((st, status.code), (404, 5))  # the delegate registers again on 404
        reg = self.pb.CpRegister(appliance="hb", version="0.9", started_ms=123)
        reg.connectors.add(name="host", reachable=True, server_version="linux")
        self.cp.ok("Register", reg)
        hb = self.pb.CpHeartbeat(appliance="hb", task_ids=["t-nope"], active_runs=2)
        hb.connectors.add(name="kube", reachable=False, error="connection refused")
        rep = self.cp.ok("Heartbeat", hb)
        self.assertEqual(list(rep.lost_task_ids), ["t-nope"])
        a = {a["name"]: a for a in self.cp.admin("GET", "/admin/appliances")["appliances"]}["hb"]
        self.assertEqual((a["version"], a["started_ms"], a["active_runs"]), ("0.9", 123, 2))
        self.assertEqual(a["connectors"][0]["error"], "connection refused")
        self.assertGreater(a["last_heartbeat_ms"], 0)
        # PollTasks needs max >= 1
        st, _, status = self.cp.call("PollTasks", self.pb.CpPoll(appliance="hb", wait_ms=0, max=0))
        self.assertEqual(st, 400)

    # ---- tasks ----------------------------------------------------------------------------
    def test_two_pollers_fifty_tasks(self):
        for a in ("poll-a", "poll-b"):
            self.register(a)
        ids = [self.cp.submit(name="bulk-%d" % i) for i in range(50)]
        got = {"poll-a": [], "poll-b": []}
        errors = []

        def poller(app):
            try:
                idle = 0
                while idle < 2:
                    rep = self.cp.ok("PollTasks", self.pb.CpPoll(appliance=app, wait_ms=300, max=3))
                    idle = 0 if rep.tasks else idle + 1
                    for t in rep.tasks:
                        got[app].append(t.task_id)
                        run = "run-" + t.task_id
                        self.assertEqual(self.ack(app, t.task_id, run)[0], 200)
                        self.assertEqual(self.report(app, t.task_id, run, self.pb.RUN_PASSED, "pass")[0], 200)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        ths = [threading.Thread(target=poller, args=(a,)) for a in got]
        for t in ths:
            t.start()
        for t in ths:
            t.join(60)
        self.assertEqual(errors, [])
        all_got = got["poll-a"] + got["poll-b"]
        self.assertEqual(sorted(all_got), sorted(ids))  # each leased exactly once, none lost
        self.assertFalse(set(got["poll-a"]) & set(got["poll-b"]))
        tasks = {t["task_id"]: t for t in self.cp.admin("GET", "/admin/tasks")["tasks"]}
        for tid in ids:
            self.assertEqual(tasks[tid]["state"], "done")
            self.assertEqual(len(tasks[tid]["history"]), 1)
            self.assertEqual(tasks[tid]["attempt"], 1)

    def test_ack_repeat_keeps_run_and_refusal_fails(self):
        self.register("acker")
        self.register("intruder")
        t = self.lease_one("acker")
        self.assertEqual(t.attempt, 1)
        self.assertEqual(self.ack("acker", t.task_id, "run-first")[0], 200)
        self.assertEqual(self.ack("acker", t.task_id, "run-second")[0], 200)
        self.assertEqual(self.cp.task(t.task_id)["run_id"], "run-first")
        st, _, status = self.ack("intruder", t.task_id, "run-x")
        self.assertEqual((st, status.code), (409, 10))
        self.assertIn("not leased to appliance intruder", status.message)
        # refused: the plane fails the task and does not lease it again
        t2 = self.lease_one("acker")
        self.assertEqual(self.ack("acker", t2.task_id, "", accepted=False, error="policy forbids it")[0], 200)
        task = self.cp.task(t2.task_id)
        self.assertEqual(task["state"], "failed")
        self.assertIn("policy forbids it", task["error"])
        rep = self.cp.ok("PollTasks", self.pb.CpPoll(appliance="acker", wait_ms=0, max=5))
        self.assertNotIn(t2.task_id, [x.task_id for x in rep.tasks])

    def test_report_completes_task(self):
        self.register("rep")
        self.register("rep-other")
        t = self.lease_one("rep")
        self.assertEqual(self.ack("rep", t.task_id, "run-r")[0], 200)
        self.assertEqual(self.report("rep", t.task_id, "run-r", self.pb.RUN_RUNNING)[0], 200)
        self.assertEqual(self.cp.task(t.task_id)["run_state"], "RUNNING")
        st, _, status = self.report("rep-other", t.task_id, "run-r", self.pb.RUN_PASSED)
        self.assertEqual((st, status.code), (409, 10))
        st, _, status = self.report("rep", t.task_id, "run-wrong", self.pb.RUN_PASSED)
        self.assertEqual(st, 409)
        self.assertEqual(self.report("rep", t.task_id, "run-r", self.pb.RUN_FAILED, "probe x failed")[0], 200)
        self.assertEqual(self.report("rep", t.task_id, "run-r", self.pb.RUN_FAILED, "probe x failed")[0], 200)
        task = self.cp.task(t.task_id)
        self.assertEqual((task["state"], task["run_state"], task["verdict"]), ("done", "FAILED", "probe x failed"))
        self.assertEqual(task["lease_until_ms"], None)
        rep = self.cp.ok("Heartbeat", self.pb.CpHeartbeat(appliance="rep", task_ids=[t.task_id]))
        self.assertEqual(list(rep.lost_task_ids), [t.task_id])  # the lease ended with the run
        t2 = self.lease_one("rep")
        self.ack("rep", t2.task_id, "run-e")
        self.assertEqual(self.report("rep", t2.task_id, "run-e", self.pb.RUN_ERROR)[0], 200)
        self.assertEqual(self.cp.task(t2.task_id)["state"], "failed")

    # ---- events ---------------------------------------------------------------------------
    def upload(self, app, run, seqs):
        up = self.pb.CpEventUpload(appliance=app)
        b = up.batches.add(run_id=run)
        for s in seqs:
            b.events.add(run_id=run, seq=s, time_ms=1000 + s, type=self.pb.EVENT_LOG, text="line %d" % s)
        return self.cp.ok("UploadEvents", up)

    def test_events_dedup_and_order(self):
        r = self.upload("ev", "run-ev", [1, 2, 3])
        self.assertEqual((r.stored, r.duplicates), (3, 0))
        r = self.upload("ev", "run-ev", [2, 3, 4, 5])
        self.assertEqual((r.stored, r.duplicates), (2, 2))
        ev = self.cp.admin("GET", "/admin/events?run_id=run-ev")
        self.assertEqual([e["seq"] for e in ev["events"]], [1, 2, 3, 4, 5])
        self.assertEqual(ev["arrivals"], [1, 2, 3, 4, 5])
        self.assertEqual(ev["duplicates"], 2)
        self.assertEqual(ev["duplicate_seqs"], [2, 3])
        self.assertEqual((ev["events"][0]["type"], ev["events"][0]["text"], ev["events"][0]["time_ms"]),
                         ("EVENT_LOG", "line 1", 1001))

    # ---- commands ---------------------------------------------------------------------------
    def test_watch_commands_wakes_promptly(self):
        self.register("cmd")
        t = self.lease_one("cmd")
        self.ack("cmd", t.task_id, "run-cmd")
        out = {}

        def watch():
            t0 = time.monotonic()
            out["rep"] = self.cp.ok("WatchCommands", self.pb.CpWatch(appliance="cmd", after_seq=0, wait_ms=15000))
            out["t"] = time.monotonic() - t0

        th = threading.Thread(target=watch)
        th.start()
        time.sleep(0.5)
        t_post = time.monotonic()
        r = self.cp.admin("POST", "/admin/commands", {"appliance": "cmd", "kind": "abort_run",
                                                      "task_id": t.task_id, "reason": "operator"})
        self.assertEqual((r["seq"], r["run_id"]), (1, "run-cmd"))
        th.join(10)
        self.assertLess(time.monotonic() - t_post, 1.5)
        cmds = out["rep"].commands
        self.assertEqual(len(cmds), 1)
        self.assertEqual((cmds[0].seq, cmds[0].kind, cmds[0].run_id, cmds[0].task_id, cmds[0].reason),
                         (1, self.pb.CpCommand.ABORT_RUN, "run-cmd", t.task_id, "operator"))
        self.assertEqual(self.cp.admin("POST", "/admin/commands", {"appliance": "cmd", "kind": "abort_all",
                                                                   "reason": "all"})["seq"], 2)
        rep = self.cp.ok("WatchCommands", self.pb.CpWatch(appliance="cmd", after_seq=1, wait_ms=5000))
        self.assertEqual([c.seq for c in rep.commands], [2])
        t0 = time.monotonic()
        rep = self.cp.ok("WatchCommands", self.pb.CpWatch(appliance="cmd", after_seq=2, wait_ms=300))
        self.assertEqual(len(rep.commands), 0)
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        acked = {c["seq"]: c["acked"] for c in self.cp.admin("GET", "/admin/commands")["commands"]
                 if c["appliance"] == "cmd"}
        self.assertEqual(acked, {1: 1, 2: 1})

    def test_poll_long_poll_wakes_on_submit(self):
        self.register("lp")
        out = {}

        def poll():
            out["rep"] = self.cp.ok("PollTasks", self.pb.CpPoll(appliance="lp", wait_ms=15000, max=1))

        th = threading.Thread(target=poll)
        th.start()
        time.sleep(0.4)
        t_post = time.monotonic()
        tid = self.cp.submit(name="late")
        th.join(10)
        self.assertLess(time.monotonic() - t_post, 1.5)
        self.assertEqual([t.task_id for t in out["rep"].tasks], [tid])
        self.ack("lp", tid, "run-lp")
        self.report("lp", tid, "run-lp", self.pb.RUN_PASSED)

    # ---- faults -----------------------------------------------------------------------------
    def fault(self, **kw):
        return self.cp.admin("POST", "/admin/faults", kw)

    def test_fault_status_retry_after_and_every(self):
        reg = self.pb.CpRegister(appliance="flt")
        self.fault(method="Register", mode="status", status=503, retry_after=2)
        st, hdrs, status = self.cp.call("Register", reg)
        self.assertEqual((st, status.code, hdrs.get("retry-after")), (503, 14, "2"))
        self.assertEqual(self.cp.call("Register", reg)[0], 200)  # count defaults to 1
        self.fault(method="*", mode="status", status=429, every=2, count=2)
        got = [self.cp.call("Register", reg)[0] for _ in range(6)]
        self.assertEqual(got, [200, 429, 200, 429, 200, 200])
        self.fault(method="Heartbeat", mode="status", status=500, count=2)
        self.assertEqual(self.cp.call("Register", reg)[0], 200)  # another method: untouched
        self.assertEqual([self.cp.call("Heartbeat", self.pb.CpHeartbeat(appliance="flt"))[0] for _ in range(3)],
                         [500, 500, 200])
        log = self.cp.admin("GET", "/admin/log")["calls"]
        self.assertIn({"method": "Heartbeat", "appliance": "flt", "status": 500, "fault": "status"},
                      [{k: c[k] for k in ("method", "appliance", "status", "fault")} for c in log])

    def test_fault_bodies(self):
        reg = self.pb.CpRegister(appliance="flt2").SerializeToString()
        self.fault(method="Register", mode="malformed")
        st, hdrs, data = self.cp.raw("Register", reg)
        self.assertEqual((st, hdrs["content-type"]), (200, "application/x-protobuf"))
        with self.assertRaises(Exception):
            self.pb.CpRegistered().ParseFromString(data)
        self.fault(method="Register", mode="truncated")
        with self.assertRaises(http.client.IncompleteRead):
            self.cp.raw("Register", reg)
        self.fault(method="Register", mode="oversized")
        st, hdrs, data = self.cp.raw("Register", reg)
        self.assertEqual((st, hdrs["content-type"]), (200, "application/x-protobuf"))
        self.assertEqual(len(data), 8 * 1024 * 1024 + 1)
        self.fault(method="Register", mode="wrongtype")
        st, hdrs, data = self.cp.raw("Register", reg)
        self.assertEqual((st, hdrs["content-type"]), (200, "text/html"))
        self.fault(method="Register", mode="slow", delay_ms=600)
        t0 = time.monotonic()
        self.assertEqual(self.cp.raw("Register", reg)[0], 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.6)
        # faults are cleared by DELETE
        self.fault(method="*", mode="status", status=503, every=1)
        self.assertEqual(self.cp.raw("Register", reg)[0], 503)
        self.cp.admin("DELETE", "/admin/faults")
        self.assertEqual(self.cp.raw("Register", reg)[0], 200)

    def test_cli(self):
        spec = os.path.join(self.cp.dir, "exp.yaml")
        with open(spec, "w") as f:
            f.write("apiVersion: cep.io/v1\nkind: Experiment\nmetadata:\n  name: cli-exp\nspec: {}\n")

        def run(*args):
            r = subprocess.run([sys.executable, CP] + list(args) + ["--admin", self.cp.admin_url],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            return r.stdout

        tid = run("submit", spec).strip()
        self.assertTrue(tid.startswith("t-"))
        self.assertEqual(self.cp.task(tid)["spec_name"], "cli-exp")
        self.assertIn(tid, run("tasks"))
        self.upload("cli", "run-cli", [1])
        self.assertIn('"text": "line 1"', run("events", "run-cli"))
        self.assertIn("command 1 queued for cli-app", run("abort", "--all", "--appliance", "cli-app"))


class TestLeaseExpiry(Base):
    """Short leases; the server default policy is requeue (2 attempts), tasks may say fail."""
    lease_ms = 600
    extra = ("--on-lease-expiry", "requeue", "--max-attempts", "2")

    def expired(self, tid, state):
        return wait_for(lambda: self.cp.task(tid)["state"] == state, 5, "task %s %s" % (tid, state))

    def test_unacked_lease_requeues(self):
        self.register("lx-a")
        self.register("lx-b")
        t = self.lease_one("lx-a", on_lease_expiry="fail")  # fail applies only once acknowledged
        self.expired(t.task_id, "queued")
        rep = self.cp.ok("PollTasks", self.pb.CpPoll(appliance="lx-b", wait_ms=2000, max=1))
        self.assertEqual([(x.task_id, x.attempt) for x in rep.tasks], [(t.task_id, 2)])
        st, _, status = self.ack("lx-a", t.task_id, "run-late")
        self.assertEqual((st, status.code), (409, 10))
        self.assertEqual(self.ack("lx-b", t.task_id, "run-b")[0], 200)
        self.report("lx-b", t.task_id, "run-b", self.pb.RUN_PASSED)
        task = self.cp.task(t.task_id)
        self.assertEqual([h["appliance"] for h in task["history"]], ["lx-a", "lx-b"])
        self.assertIn("expired", task["history"][0]["outcome"])

    def test_acked_fail_policy(self):
        self.register("lf")
        t = self.lease_one("lf", on_lease_expiry="fail")
        self.ack("lf", t.task_id, "run-lf")
        # heartbeats renew the lease well past lease_ms
        for _ in range(8):
            rep = self.cp.ok("Heartbeat", self.pb.CpHeartbeat(appliance="lf", task_ids=[t.task_id]))
            self.assertEqual(list(rep.lost_task_ids), [])
            time.sleep(0.15)
        self.assertEqual(self.cp.task(t.task_id)["state"], "acked")
        task = self.expired(t.task_id, "failed") and self.cp.task(t.task_id)
        self.assertEqual(task["error"], "lease expired: appliance lf stopped heartbeating")
        rep = self.cp.ok("Heartbeat", self.pb.CpHeartbeat(appliance="lf", task_ids=[t.task_id]))
        self.assertEqual(list(rep.lost_task_ids), [t.task_id])
        st, _, status = self.report("lf", t.task_id, "run-lf", self.pb.RUN_PASSED)
        self.assertEqual((st, status.code), (409, 10))

    def test_acked_requeue_policy_until_attempts_exhausted(self):
        self.register("lr")
        t = self.lease_one("lr")  # server default: requeue, max 2 attempts
        self.ack("lr", t.task_id, "run-1")
        self.expired(t.task_id, "queued")
        rep = self.cp.ok("PollTasks", self.pb.CpPoll(appliance="lr", wait_ms=2000, max=1))
        self.assertEqual([(x.task_id, x.attempt) for x in rep.tasks], [(t.task_id, 2)])
        self.ack("lr", t.task_id, "run-2")
        self.assertEqual(self.cp.task(t.task_id)["run_id"], "run-2")
        self.expired(t.task_id, "failed")
        task = self.cp.task(t.task_id)
        self.assertIn("attempts exhausted", task["error"])
        self.assertEqual(len(task["history"]), 2)


class TestRestart(unittest.TestCase):
    def test_kill9_keeps_everything(self):
        cp = ControlPlane(os.path.join(TMP, "restart"), PKI).start()
        pb = cp.pb
        try:
            cp.ok("Register", pb.CpRegister(appliance="rs"))
            tid = cp.submit(name="persist")
            task = cp.ok("PollTasks", pb.CpPoll(appliance="rs", wait_ms=1000, max=1)).tasks[0]
            cp.ok("AckTask", pb.CpTaskAck(appliance="rs", task_id=tid, accepted=True, run_id="run-rs"))
            up = pb.CpEventUpload(appliance="rs")
            b = up.batches.add(run_id="run-rs")
            for s in (1, 2, 3):
                b.events.add(run_id="run-rs", seq=s, type=pb.EVENT_PHASE, phase="p%d" % s)
            self.assertEqual(cp.ok("UploadEvents", up).stored, 3)
            seq = cp.admin("POST", "/admin/commands", {"appliance": "rs", "kind": "abort_all", "reason": "x"})["seq"]
            cp.kill9()
            cp.start()
            # the same upload again (the relay never saw the 200): all duplicates
            r = cp.ok("UploadEvents", up)
            self.assertEqual((r.stored, r.duplicates), (0, 3))
            b.events.add(run_id="run-rs", seq=4, type=pb.EVENT_PHASE, phase="p4")
            self.assertEqual(cp.ok("UploadEvents", up).stored, 1)
            ev = cp.admin("GET", "/admin/events?run_id=run-rs")
            self.assertEqual(ev["arrivals"], [1, 2, 3, 4])
            self.assertEqual([e["phase"] for e in ev["events"]], ["p1", "p2", "p3", "p4"])
            self.assertEqual(ev["duplicates"], 6)  # 1-3 twice after the restart
            # appliance, lease and run survive
            rep = cp.ok("Heartbeat", pb.CpHeartbeat(appliance="rs", task_ids=[task.task_id]))
            self.assertEqual(list(rep.lost_task_ids), [])
            self.assertEqual((cp.task(tid)["state"], cp.task(tid)["run_id"]), ("acked", "run-rs"))
            rep = cp.ok("WatchCommands", pb.CpWatch(appliance="rs", after_seq=0, wait_ms=0))
            self.assertEqual([c.seq for c in rep.commands], [seq])
            cp.ok("ReportRun", pb.CpRunReport(appliance="rs", task_id=tid, run_id="run-rs", state=pb.RUN_PASSED))
            self.assertEqual(cp.task(tid)["state"], "done")
        finally:
            self.assertEqual(cp.stop(), 0)


if __name__ == "__main__":
    unittest.main()
