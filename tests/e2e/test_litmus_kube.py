"""LitmusChaos ChaosEngine files run end to end (docs/litmus.md): the files
of tests/e2e/litmus/ (written for cep; unmodified Litmus engines but for the
connector annotation) go through `cepctl run` to the real relay, delegate
and runner against the Kubernetes API test server. Every supported
experiment has its file, and each is read from outside while chaos lasts
and after: pods deleted and replaced (kubectl); cep's nftables table or
tc qdisc in the target pod's network namespace, and in no other pod's;
the hog's workers in the target container's cgroup; the fill file in the
container's /. Then gone, and no cep object left. One case selects by
applabel with PODS_AFFECTED_PERC 100 over two pods on one node: both are
hit. The pod faults share one test server and one appliance (runs one
after the other, 3 s each). Needs root (namespaces, nftables, cgroups),
like test_kube_podtarget.
"""
import json
import os
import re
import subprocess
import unittest

import test_kube_containerkill as kc
import test_kube_e2e as ke
import test_kube_nodetarget as kn
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


# What `cepctl rbac --faults` grants the runner: every fault the files use.
RUNNER_FAULTS = ("network-loss", "network-latency", "network-corrupt", "network-duplicate",
                 "network-partition", "network-bandwidth", "dns-error", "cpu-hog",
                 "memory-hog", "io-stress", "disk-fill", "k8s")
PODS = ("web-0", "web-1")
QDISC = re.compile(r"^qdisc \S+ (ce[0-9a-f]{2}):", re.M)


class PodFaults(kp.PodTargetCase):
    """Every pod experiment of docs/litmus.md from its file, with one test
    server and one appliance for all (runs one after the other): web-0 and
    web-1, app=web, both on node-2."""

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise AssertionError("needs root: network namespaces, nftables, cgroups")
        cls.env = KubeEnv("litmus-pods", runner_rules=rbac_rules("runner", RUNNER_FAULTS),
                          exec_images={kp.TARGET_IMAGE: "/bin/sleep"},
                          pod_netns=[kp.TARGET_IMAGE])
        cls.addClassCleanup(cls.env.close)
        cls.app = cls.env.app
        cls.app.start_all()
        cls.pods_started = False

    def setUp(self):
        if not type(self).pods_started:
            type(self).pods_started = True
            for name in PODS:
                self.start_pod(name, "node-2", {"app": "web"})

    # -- observing from outside ----------------------------------------
    def net_marks(self, pid):
        """What a network fault leaves in pid's netns: cep's nftables
        tables and qdiscs with cep's handles (ce00+n: netem, tbf)."""
        r = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "tc", "qdisc", "show"],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        return self.cep_tables(pid) + QDISC.findall(r.stdout)

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

    def fill_files(self, pid, run_id):
        root = f"/proc/{pid}/root/"
        return [n for n in os.listdir(root) if n.startswith(f".cep-fill-{run_id}-")]

    def run_seen(self, name, seen, what):
        """Runs the engine file; seen(run_id) must hold while chaos lasts.
        Returns the log text of the run, which PASSED."""
        p, run_id = run_engine(self, name)
        ok = wait_until(lambda: seen(run_id), 60, 0.1)
        self.assertTrue(ok, f"{name}: no {what}:\n" + self.env.logs())
        run, out, text = finished(self, p, run_id)
        self.assertEqual(run["state"], "PASSED", text)
        self.assertIn("app-health", out, text)
        return run_id, text

    # -- the cases -------------------------------------------------------
    def network_case(self, name):
        pid, other = self.pod_pid("web-0"), self.pod_pid("web-1")
        self.assertIsNotNone(pid, self.env.logs())
        host_before = self.host_cep_tables()
        _, text = self.run_seen(name, lambda _: self.net_marks(pid),
                                "table or qdisc in web-0's netns")
        self.assertEqual(self.host_cep_tables(), host_before, "a table in the host's netns")
        self.assertEqual(self.net_marks(pid), [], text)
        self.assertEqual(self.net_marks(other), [], "web-1 was not named\n" + text)
        self.assert_nothing_left()

    def test_network_loss(self):
        self.network_case("pod-network-loss.yaml")

    def test_network_latency(self):
        self.network_case("pod-network-latency.yaml")

    def test_network_corruption(self):
        self.network_case("pod-network-corruption.yaml")

    def test_network_duplication(self):
        self.network_case("pod-network-duplication.yaml")

    def test_network_partition(self):
        self.network_case("pod-network-partition.yaml")

    def test_network_rate_limit(self):
        # The test kubelet's pod netns holds only lo, which faults leave
        # alone: the shaper would go on no interface (the runner logs "on 0
        # interface(s)"). A real pod has eth0; a veth pair stands for it.
        pid = self.pod_pid("web-0")
        ns = ["nsenter", f"--net=/proc/{pid}/ns/net", "ip", "link"]
        subprocess.run(ns + ["add", "eth0", "type", "veth", "peer", "name", "eth0p"],
                       check=True, timeout=20)
        self.addCleanup(subprocess.run, ns + ["del", "eth0"], timeout=20)
        subprocess.run(ns + ["set", "eth0", "up"], check=True, timeout=20)
        self.network_case("pod-network-rate-limit.yaml")

    def test_dns_error(self):
        self.network_case("pod-dns-error.yaml")

    def hog_case(self, name):
        pid = self.pod_pid("web-0")
        self.assertIsNotNone(pid, self.env.logs())
        base = self.cgroup_procs(pid)   # the container's own processes
        self.assertIn(pid, base)
        workers = set()

        def seen(_):
            workers.update(self.cgroup_procs(pid) - base)
            return workers
        _, text = self.run_seen(name, seen, "worker in web-0's cgroup")
        for w in workers:   # the runner's workers, not the app's children
            try:
                with open(f"/proc/{w}/stat") as f:
                    self.assertNotEqual(f.read().split()[3], str(pid))
            except FileNotFoundError:
                pass   # already gone: reverted
        self.assertEqual(self.cgroup_procs(pid), base, text)
        self.assert_nothing_left()

    def test_cpu_hog(self):
        self.hog_case("pod-cpu-hog.yaml")

    def test_memory_hog(self):
        self.hog_case("pod-memory-hog.yaml")

    def test_io_stress(self):
        self.hog_case("pod-io-stress.yaml")

    def test_disk_fill(self):
        pid = self.pod_pid("web-0")
        self.assertIsNotNone(pid, self.env.logs())
        run_id, text = self.run_seen("disk-fill.yaml", lambda r: self.fill_files(pid, r),
                                     "fill file in web-0's /")
        self.assertEqual(self.fill_files(pid, run_id), [], text)
        self.assert_nothing_left()

    def test_label_and_share_every_pod(self):
        """applabel + PODS_AFFECTED_PERC 100, no TARGET_PODS: both pods."""
        pids = {n: self.pod_pid(n) for n in PODS}
        _, text = self.run_seen("pod-network-loss-label.yaml",
                                lambda _: all(self.net_marks(p) for p in pids.values()),
                                "table in both app=web pods' netns")
        for n, pid in pids.items():
            self.assertEqual(self.net_marks(pid), [], n + "\n" + text)
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

    def test_node_cpu_hog_by_node_label_on_that_node(self):
        """NODE_LABEL: the runner scheduled onto the labelled node-2 (the
        test server's scheduler would otherwise take node-1)."""
        self.label_node_2()
        p, run_id = run_engine(self, "node-cpu-hog-label.yaml")
        cg, pids = self.workers(run_id, "cep-cpu-hog")
        self.assertEqual(len(pids), 1, cg)   # NODE_CPU_CORE
        self.assert_placed(run_id, ["/sys/fs/cgroup"])
        run, out, text = finished(self, p, run_id)
        self.assertEqual(run["state"], "PASSED", text)
        self.assertEqual(kn.node_cgroups(run_id), [], text)
        self.assertEqual([x for x in pids if kn.comm(x) == "cep-cpu-hog"], [], text)
        self.assert_nothing_left()

    def test_node_memory_hog_in_a_node_cgroup_then_removed(self):
        p, run_id = run_engine(self, "node-memory-hog.yaml")
        cg, pids = self.workers(run_id, "cep-mem-hog")
        self.assertEqual(len(pids), 1, cg)   # NUMBER_OF_WORKERS
        self.assertTrue(cg.endswith("-node-memory-hog"), cg)
        run, out, text = finished(self, p, run_id)
        self.assertEqual(run["state"], "PASSED", text)
        self.assertEqual(kn.node_cgroups(run_id), [], text)
        self.assertEqual([x for x in pids if kn.comm(x) == "cep-mem-hog"], [], text)
        self.assert_nothing_left()

    def test_node_io_stress_writers_and_cpu_then_removed(self):
        """The writers on the node's /tmp, Litmus's CPU as a cpu-hog of
        its own (fault node-io-stress-cpu)."""
        p, run_id = run_engine(self, "node-io-stress.yaml")
        cg, pids = self.workers(run_id, "cep-io-stress")
        self.assertTrue(cg.endswith("-node-io-stress"), cg)
        self.assert_placed(run_id, ["/sys/fs/cgroup", "/tmp"])
        hog_cg, hog = self.workers(run_id, "cep-cpu-hog")
        self.assertTrue(hog_cg.endswith("-node-io-stress-cpu"), hog_cg)
        self.assertEqual(len(hog), 1, hog_cg)   # CPU
        run, out, text = finished(self, p, run_id)
        self.assertEqual(run["state"], "PASSED", text)
        self.assertEqual(kn.node_cgroups(run_id), [], text)
        self.assertEqual([x for x in pids | hog if kn.comm(x) in ("cep-io-stress", "cep-cpu-hog")],
                         [], text)
        self.assert_nothing_left()


if __name__ == "__main__":
    unittest.main()
