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

import test_kube_containerkill as kc
import test_kube_e2e as ke
import test_kube_nodetarget as kn
import test_kube_podtarget as kp
from cep_e2e import SRC, wait_until
from kube_e2e import NS, wait_proc

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


class ContainerKill(kc.ContainerKillCase):
    runner_faults = ("container-kill", "k8s")   # and the health probe

    def test_container_killed_and_restarted(self):
        before = self.restarts()
        p, run_id = run_engine(self, "container-kill.yaml")
        self.check_killed_and_restarted(p, run_id, before)


class NodeFaults(kn.NodeTargetCase):
    def test_node_cpu_hog_in_a_node_cgroup_then_removed(self):
        p, run_id = run_engine(self, "node-cpu-hog.yaml")
        cg, pids = self.workers(run_id, "cep-cpu-hog")
        self.assertEqual(len(pids), 2, cg)   # NODE_CPU_CORE
        self.assertTrue(cg.endswith("-node-cpu-hog"), cg)
        run, out, text = finished(self, p, run_id)
        self.assertEqual(run["state"], "PASSED", text)
        self.assertEqual(kn.node_cgroups(run_id), [], text)
        self.assertEqual([x for x in pids if kn.comm(x) == "cep-cpu-hog"], [], text)
        self.assert_nothing_left()


if __name__ == "__main__":
    unittest.main()
