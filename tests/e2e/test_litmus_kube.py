"""LitmusChaos ChaosEngine files run end to end (docs/litmus.md): the files
of tests/e2e/litmus/ (written for cep; unmodified Litmus engines but for the
connector annotation) go through `cepctl run` to the real relay, delegate
and runner against the Kubernetes API test server. What is checked is read
from outside: pods deleted and replaced (kubectl), the nftables table in the
target pod's network namespace while chaos lasts and gone after, the hog's
workers in the target container's cgroup and gone after. Needs root for the
pod faults (namespaces, nftables, cgroups), like test_kube_podtarget.
"""
import json
import os
import unittest

import test_kube_e2e as ke
import test_kube_podtarget as kp
from cep_e2e import SRC, wait_until
from kube_e2e import NS, KubeEnv, rbac_rules, wait_proc

LITMUS = os.path.join(SRC, "tests", "e2e", "litmus")


def engine(name):
    with open(os.path.join(LITMUS, name)) as f:
        return f.read()


def run_engine(case, name, timeout=120):
    """Submits the ChaosEngine file as it is; (process, run id)."""
    before = {r["run_id"] for r in case.app.runs()}
    p = case.app.run_async(case.app.write(name, engine(name)))
    case.addCleanup(lambda: p.poll() is None and (p.kill(), p.communicate()))
    return p, case.env.new_run_id(before)


def finished(case, p, run_id, timeout=120):
    rc, out, err = wait_proc(p, timeout)
    run = {r["run_id"]: r for r in case.app.runs()}[run_id]
    text = f"rc {rc}\n{out}{err}\n{json.dumps(run)}\n" + case.env.logs()
    return run, out, text


class PodDelete(ke.KubeCase):
    def test_pods_deleted_and_replaced(self):
        self.start()
        first = self.web_pods()
        p, run_id = run_engine(self, "pod-delete.yaml")
        # injected: an original pod goes while chaos lasts
        gone = wait_until(lambda: first - self.web_pods(), 60, 0.2)
        self.assertTrue(gone, "no app=web pod was deleted:\n" + self.env.logs())
        run, out, text = finished(self, p, run_id)
        self.assertEqual(run["state"], "PASSED", text)
        # both probes of the engine ran: its own and the health check
        self.assertIn("web-deployment-present", out, text)
        self.assertIn("app-health", out, text)
        # the controller replaced them; cep left nothing of its own
        ok = wait_until(lambda: self.env.kubectl_json("get", "deployment", "web", "-n", NS)
                        .get("status", {}).get("readyReplicas", 0) == 3, 30, 0.3)
        self.assertTrue(ok, text)
        self.assert_no_cep_objects()


class ApiCase(unittest.TestCase):
    """Experiments through the Kubernetes API, with exactly the verbs
    `cepctl rbac` grants the runner for them (and k8s, the health check)."""
    faults = ()

    def setUp(self):
        self.env = KubeEnv(self.id().rsplit(".", 1)[-1][:20],
                           delegate_rules=rbac_rules("delegate", self.faults[:-1]),
                           runner_rules=rbac_rules("runner", self.faults))
        self.addCleanup(self.env.close)
        self.app = self.env.app
        self.app.start_all()
        self.env.create_web(3)

    def node(self, name):
        return self.env.kubectl_json("get", "node", name)["spec"]

    def taints(self, node):
        return [(t["key"], t.get("value", ""), t["effect"]) for t in self.node(node).get("taints") or []]

    def web_nodes(self):
        """node of each app=web pod not terminating."""
        return [p["spec"].get("nodeName") for p in self.env.kubectl_json(
            "get", "pods", "-n", NS, "-l", "app=web")["items"]
            if not p["metadata"].get("deletionTimestamp")]


class NodeTaint(ApiCase):
    faults = ("node-taint", "k8s")

    def test_node_taint_on_the_node_then_exactly_removed(self):
        self.env.kubectl("taint", "node", "node-2", "team=ops:PreferNoSchedule")
        before = self.taints("node-2")
        ours = ("cep-e2e/litmus", "chaos", "NoSchedule")
        p, run_id = run_engine(self, "node-taint.yaml")
        seen = wait_until(lambda: ours in self.taints("node-2"), 60, 0.2)
        self.assertTrue(seen, "node-2 was never tainted:\n" + self.env.logs())
        self.assertEqual(self.taints("node-2"), before + [ours])
        self.assertEqual(self.taints("node-1"), [], "another node tainted")
        run, out, text = finished(self, p, run_id)
        self.assertEqual(run["state"], "PASSED", text)
        self.assertIn("app-health", out, text)
        self.assertEqual(self.taints("node-2"), before, text)


class NodeDrain(ApiCase):
    faults = ("node-drain", "k8s")

    def test_node_drain_evicts_then_uncordons(self):
        self.assertEqual(set(self.web_nodes()), {"node-1"}, "the scheduler's first node")
        p, run_id = run_engine(self, "node-drain.yaml")
        moved = wait_until(lambda: self.node("node-1").get("unschedulable") and
                           len(self.web_nodes()) == 3 and "node-1" not in self.web_nodes(), 60, 0.2)
        self.assertTrue(moved, "node-1 was not drained:\n" + self.env.logs())
        run, out, text = finished(self, p, run_id)
        self.assertEqual(run["state"], "PASSED", text)
        self.assertIn("app-health", out, text)
        self.assertIn("3 of 3 pods evicted", out + self.env.logs(), text)
        self.assertFalse(self.node("node-1").get("unschedulable"), text)
        # evicted pods are not brought back: the replacements stay put
        self.assertNotIn("node-1", self.web_nodes(), text)


class PodAutoscaler(ApiCase):
    faults = ("deployment-scale", "k8s")

    def replicas(self):
        return self.env.kubectl_json("get", "deployment", "web", "-n", NS)["spec"].get("replicas")

    def test_deployments_of_the_label_scaled_then_restored(self):
        p, run_id = run_engine(self, "pod-autoscaler.yaml")
        seen = wait_until(lambda: self.replicas() == 5, 60, 0.2)
        self.assertTrue(seen, "web was never scaled to 5:\n" + self.env.logs())
        run, out, text = finished(self, p, run_id)
        self.assertEqual(run["state"], "PASSED", text)
        self.assertIn("app-health", out, text)
        self.assertEqual(self.replicas(), 3, text)


class PodFaults(kp.PodTargetCase):
    runner_faults = ("network-loss", "cpu-hog", "k8s")

    def test_network_loss_in_the_pods_netns_then_reverted(self):
        pid = self.target_pid()
        self.assertIsNotNone(pid, self.env.logs())
        host_before = self.host_cep_tables()
        p, run_id = run_engine(self, "pod-network-loss.yaml")
        seen = wait_until(lambda: self.cep_tables(pid), 60, 0.2)
        self.assertTrue(seen, "no cep table in the target's netns:\n" + self.env.logs())
        self.assertEqual(self.host_cep_tables(), host_before, "a table in the host's netns")
        run, out, text = finished(self, p, run_id)
        self.assertEqual(run["state"], "PASSED", text)
        self.assertIn("app-health", out, text)
        self.assertEqual(self.cep_tables(pid), [], text)
        self.assert_nothing_left()

    def cgroup_procs(self, pid):
        """The processes of pid's cpu cgroup: cgroup v2, or the v1 cpu
        hierarchy on hybrid hosts (where cep's hog joins it too)."""
        with open(f"/proc/{pid}/cgroup") as f:
            lines = [ln.rstrip().split(":", 2) for ln in f]
        dirs = [f"/sys/fs/cgroup{p}" for _, c, p in lines if c == ""] + \
               [f"/sys/fs/cgroup/unified{p}" for _, c, p in lines if c == ""] + \
               [f"/sys/fs/cgroup/{c}{p}" for _, c, p in lines if "cpu" in c.split(",")]
        for d in dirs:
            if os.path.exists(os.path.join(d, "cgroup.procs")) and d.rstrip("/") != "/sys/fs/cgroup":
                with open(os.path.join(d, "cgroup.procs")) as f:
                    return {int(x) for x in f.read().split()}
        raise AssertionError(f"no cpu cgroup of {pid}: {lines}")

    def test_cpu_hog_in_the_containers_cgroup_then_reverted(self):
        pid = self.target_pid()
        self.assertIsNotNone(pid, self.env.logs())
        base = self.cgroup_procs(pid)   # the container's own processes
        self.assertIn(pid, base)
        p, run_id = run_engine(self, "pod-cpu-hog.yaml")
        hog = wait_until(lambda: self.cgroup_procs(pid) - base, 60, 0.2)
        self.assertTrue(hog, "no worker joined the target's cgroup:\n" + self.env.logs())
        for w in hog:   # busy workers of the runner's, not the app's
            with open(f"/proc/{w}/stat") as f:
                self.assertNotEqual(f.read().split()[3], str(pid))
        run, out, text = finished(self, p, run_id)
        self.assertEqual(run["state"], "PASSED", text)
        self.assertEqual(self.cgroup_procs(pid), base, text)
        self.assert_nothing_left()


if __name__ == "__main__":
    unittest.main()
