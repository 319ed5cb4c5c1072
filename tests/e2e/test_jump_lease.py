"""test_jump_lease - two delegate replicas of one appliance (the jump-cluster
form, docs/jump-cluster.md) against one reference control plane and one
Kubernetes API test server holding their coordination.k8s.io/v1 Lease
(delegate.lease, 3 s): only the holder takes tasks; kill -9 of the holder
hands the Lease, and the tasks, to the other within the duration plus a
margin; a holder that can no longer renew (its update permission revoked: a
split from the API server) stops taking tasks before the other takes over;
and no task is leased twice or run by both (counted at the plane and in
both replicas' journals).
"""
import json
import os
import shutil
import sys
import tempfile
import time
import unittest

from cep_e2e import SRC, experiment, wait_until
from cp_e2e import Site

sys.path.insert(0, os.path.join(SRC, "tests", "kubeapi"))
from harness import KubeAPI  # noqa: E402

NS = "cep-system"
LEASE = "cep-delegate-leader"
DURATION_S = 3
LEASES = "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % NS
# what deploy/kubernetes/10-rbac.yaml grants (the users file has no resourceNames)
RULES = [{"namespaces": [NS], "groups": ["coordination.k8s.io"], "resources": ["leases"],
          "verbs": ["get", "update"]}]
PROBE = {"name": "tick", "type": "cmd", "mode": "continuous", "command": ["true"], "interval": "200ms"}


class JumpLease(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="jump-lease-")
        users = [{"name": "replica-a", "token": "t-a", "rules": RULES},
                 {"name": "replica-b", "token": "t-b", "rules": RULES}]
        self.api = KubeAPI().start(os.path.join(self.tmp, "kube"), users=users, namespaces=[NS])
        st, _, out = self.api.request("POST", LEASES, {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": LEASE},
            "spec": {"leaseDurationSeconds": DURATION_S}})
        self.assertEqual(st, 201, out)
        self.site = Site(lease_ms=4000, heartbeat_ms=500)
        self.a = self.replica("a")
        self.wait_holder(self.a, 15)
        self.b = self.replica("b")

    def tearDown(self):
        self.site.close()
        self.assertEqual(self.api.stop(), 0)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def replica(self, tag):
        kubeconfig = os.path.join(self.api.dir, "kubeconfig-replica-" + tag)
        lease = ("delegate:\n  lease:\n    name: %s\n    namespace: %s\n    duration: %ds\n"
                 "    kubeconfig: %s\n" % (LEASE, NS, DURATION_S, kubeconfig))
        app = self.site.appliance("jump", start=False)
        cfg = os.path.join(app.home, "config", "cep.yaml")
        with open(cfg) as f:
            text = f.read()
        self.assertIn("\ndelegate:\n", text)
        with open(cfg, "w") as f:
            f.write(text.replace("\ndelegate:\n", "\n" + lease, 1))
        app.start_all()
        return app

    # ---- observations ---------------------------------------------------------
    def lease(self):
        st, _, out = self.api.request("GET", LEASES + "/" + LEASE)
        self.assertEqual(st, 200, out)
        return out["spec"]

    def identity(self, app):
        path = os.path.join(app.home, "run", "lease-held")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return f.read()

    def wait_holder(self, app, timeout):
        ok = wait_until(lambda: self.identity(app) and self.lease().get("holderIdentity") == self.identity(app),
                        timeout, 0.05)
        self.assertTrue(ok, "no Lease for %s: %s\n%s" % (app.home, self.lease(), self.site.logs()))

    def submit(self, n, tag):
        return [self.site.submit(experiment("%s-%d" % (tag, i), duration="1s", probes=(PROBE,)),
                                 "%s-%d" % (tag, i)) for i in range(n)]

    def wait_done(self, tids, timeout=90):
        ok = wait_until(lambda: all(self.site.tasks()[t]["state"] == "done" for t in tids), timeout, 0.2)
        self.assertTrue(ok, json.dumps([self.site.tasks()[t] for t in tids], indent=1) + self.site.logs())

    @staticmethod
    def task_ids(app):
        return {r["task_id"] for r in app.runs() if r.get("task_id")}

    def assert_once_each(self, tids):
        """The plane leased each task once (attempt 1, one lease) to the appliance."""
        tasks = self.site.tasks()
        for t in tids:
            self.assertEqual((tasks[t]["attempt"], len(tasks[t]["history"])), (1, 1), tasks[t])

    # ---- tests ------------------------------------------------------------------
    def test_only_the_holder_takes_tasks_and_kill9_hands_over(self):
        self.assertIsNone(self.identity(self.b))
        first = self.submit(4, "first")
        self.wait_done(first)
        self.assertEqual(self.task_ids(self.a), set(first))
        self.assertEqual(self.task_ids(self.b), set(), "the standby took tasks")
        spec = self.lease()
        self.assertEqual((spec["leaseDurationSeconds"], spec["leaseTransitions"]), (DURATION_S, 1), spec)
        # the holder dies without a word: the other takes over within the
        # duration, plus one retry period and a margin for a loaded machine
        t0 = time.monotonic()
        self.a.kill9("delegate")
        self.wait_holder(self.b, DURATION_S + 6)
        took = time.monotonic() - t0
        self.assertLess(took, DURATION_S + DURATION_S / 3 + 2.5, "took %.1fs" % took)
        # the holder renewed at most a period (duration/3) before the kill,
        # and its Lease ran a full duration from then
        self.assertGreaterEqual(took, DURATION_S - DURATION_S / 3 - 0.2, "taken before the holder's Lease ran out")
        self.assertEqual(self.lease()["leaseTransitions"], 2)
        second = self.submit(4, "second")
        self.wait_done(second)
        self.assertEqual(self.task_ids(self.b), set(second))
        self.assert_once_each(first + second)
        print("failover after kill -9: %.1fs (Lease %ds)" % (took, DURATION_S))

    def test_a_holder_that_cannot_renew_stops_taking_before_the_other_takes_over(self):
        first = self.submit(2, "first")
        self.wait_done(first)
        # a split: replica a can read the Lease but no longer write it
        self.api.control("revoke", {"user": "replica-a", "namespace": NS, "resource": "leases",
                                    "verb": "update", "group": "coordination.k8s.io"})
        t0 = time.monotonic()
        stopped = wait_until(lambda: self.identity(self.a) is None, DURATION_S + 2, 0.02)
        t_stop = time.monotonic() - t0
        self.assertTrue(stopped, self.site.logs())
        self.assertIsNone(self.identity(self.b), "both held the Lease at once")
        self.wait_holder(self.b, DURATION_S + 6)
        t_take = time.monotonic() - t0
        self.assertLess(t_stop, t_take, "the other took over before the old holder stopped")
        second = self.submit(3, "second")
        self.wait_done(second)
        self.assertEqual(self.task_ids(self.b), set(second))
        self.assertEqual(self.task_ids(self.a), set(first), "the old holder took tasks without the Lease")
        self.assert_once_each(first + second)
        self.assertIn("could not be renewed within its duration", self.a.logs())
        print("split: old holder stopped after %.1fs, other took over after %.1fs" % (t_stop, t_take))


if __name__ == "__main__":
    unittest.main()
