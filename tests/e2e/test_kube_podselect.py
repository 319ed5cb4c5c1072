"""Node-level faults on pods chosen by label selector (issue 14 item 2):
`network-loss` with `labelSelector` and `percentage` or `count` instead of
`pod`, with the real relay, delegate, runner and cepctl against the
Kubernetes API test server.

Observed from outside, as test_kube_podtarget.py does: the nftables
tables *inside each target pod's network namespace*, found through the
pod's cgroup from the containerID kubectl reports. Checked: percentage 100
puts the fault into every matching pod and reverts it in each; count 1
into exactly one; each chosen pod has its own fault record (id
<fault>/<pod>) whose undo names the pod, its node and container; after
kill -9 of the runner the cleanup runner undoes each. Matching pods on
two nodes: one runner runs on one node, so a share one node holds goes
there and is chosen there (count 1 on 1+1 pods: either node; count 2 on
2+1 pods: the node with two); a share no one node holds is split into a
parent run with one child run per node, each with its runner Pod on its
node, its own records, revert and cleanup runner; the parent ends with
the worst child's verdict, its abort aborts the children, an unmodified
ChaosEngine is split the same way, and a split over
policy.kubernetes.maxTargets is refused (docs/kubernetes.md).
Needs root.
"""
import glob
import json
import os
import re
import signal
import unittest

from cep_e2e import wait_until
from kube_e2e import CONNECTOR, NS, wait_proc
import test_kube_podtarget as podtarget
from test_kube_podtarget import PodTargetCase, experiment

PODS = ("web-0", "web-1")


class SelectedPods(PodTargetCase):
    """Two pods labelled app=web (web-0 from PodTargetCase, web-1 here),
    both on node-2; a third pod, other-0, carries another label."""

    nodes = {"web-1": "node-2"}
    pods = PODS

    def setUp(self):
        super().setUp()
        for name, node in self.nodes.items():
            self.start_pod(name, node, {"app": "web"})
        self.start_pod("other-0", "node-2", {"app": "db"})

    def run_fault(self, how, duration="6s"):
        """Starts the run; returns (popen, run_id, {pod: pid})."""
        pids = {n: self.pod_pid(n) for n in self.pods + ("other-0",)}
        before = {r["run_id"] for r in self.app.runs()}
        spec = experiment("sel", None, duration, f"labelSelector: app=web\n      {how}")
        p = self.app.run_async(self.app.write("sel.yaml", spec))
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.communicate()))
        self.last_run = self.env.new_run_id(before)
        return p, self.last_run, pids

    def start_parent(self, name, text):
        """Runs text; returns (popen, the id of the new run that has no
        parent, {pod: pid}): a split's parent, its children appear later."""
        pids = {n: self.pod_pid(n) for n in self.pods + ("other-0",)}
        self.before = {r["run_id"] for r in self.app.runs()}
        p = self.app.run_async(self.app.write(name, text))
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.communicate()))
        run = wait_until(lambda: next((x for x in self.app.runs() if x["run_id"] not in self.before
                                       and "parent_run_id" not in x), None), 30, 0.1)
        self.assertIsNotNone(run, "no new run appeared:\n" + self.env.logs())
        self.last_run = run["run_id"]
        return p, self.last_run, pids

    def finish(self, p, run_id):
        rc, out, err = wait_proc(p, 120)
        run = {r["run_id"]: r for r in self.app.runs()}[run_id]
        return run, f"rc {rc}\n{out}{err}\n{json.dumps(run)}\n" + self.env.logs()

    def records(self, run_id):
        r = self.app.cepctl("--output", "json", "show", run_id, check=True)
        return {f["fault"]: f for f in json.loads(r.stdout)["faults"]}

    def journal_undos(self, run_id):
        """The undo objects of the run's fault records, as the journal on
        disk holds them (JSON inside the binary records)."""
        paths = glob.glob(os.path.join(self.app.home, "**", run_id, "journal"),
                          recursive=True)
        self.assertEqual(len(paths), 1, paths)
        with open(paths[0], "rb") as f:
            data = f.read().decode("latin-1")
        return [json.loads(m) for m in re.findall(r'\{[^{}]*"pod":"[^"]*"[^{}]*\}', data)]

    def test_percentage_100_every_pod_then_reverted(self):
        p, run_id, pids = self.run_fault("percentage: 100")
        both = wait_until(lambda: all(self.cep_tables(pids[n]) for n in self.pods), 60, 0.2)
        self.assertTrue(both, "not in every chosen pod's netns:\n" + self.env.logs())
        self.assertEqual(self.cep_tables(pids["other-0"]), [], "a pod not matching")
        run, text = self.finish(p, run_id)
        self.assertEqual(run["state"], "PASSED", text)
        for n in self.pods:
            self.assertEqual(self.cep_tables(pids[n]), [], n + "\n" + text)
        recs = self.records(run_id)
        self.assertEqual(sorted(recs), ["cut/web-0", "cut/web-1"], json.dumps(recs))
        undos = self.journal_undos(run_id)
        for n in self.pods:
            self.assertEqual(recs["cut/" + n].get("reverted_by"), "runner", json.dumps(recs))
            self.assertIn(pids[n], [int(m) for m in re.findall(
                r"/proc/(\d+)/", recs["cut/" + n]["target"])], json.dumps(recs))
            undo = [u for u in undos if u.get("pod") == n]
            self.assertEqual(len(undo), 1, json.dumps(undos))
            self.assertEqual((undo[0]["node"], undo[0]["container"]), ("node-2", "web"))
        self.assert_nothing_left()

    def test_count_1_one_pod_only(self):
        p, run_id, pids = self.run_fault("count: 1")
        one = wait_until(lambda: any(self.cep_tables(pids[n]) for n in self.pods), 60, 0.2)
        self.assertTrue(one, "in no pod's netns:\n" + self.env.logs())
        hit = [n for n in self.pods if self.cep_tables(pids[n])]
        run, text = self.finish(p, run_id)
        self.assertEqual(len(hit), 1, text)
        self.assertEqual(run["state"], "PASSED", text)
        self.assertEqual([n for n in self.pods if self.cep_tables(pids[n])], [], text)
        self.assertEqual(sorted(self.records(run_id)), ["cut/" + hit[0]], text)
        self.assert_nothing_left()


    def test_kill9_cleanup_runner_undoes_every_pod(self):
        """The runner dies with the fault in both pods: the cleanup runner
        on their node undoes each record (kill -9 keeps every fault
        reverted)."""
        p, run_id, pids = self.run_fault("percentage: 100", "4m")
        both = wait_until(lambda: all(self.cep_tables(pids[n]) for n in self.pods), 60, 0.2)
        self.assertTrue(both, "not in every chosen pod's netns:\n" + self.env.logs())
        runners = podtarget.RunnerKilledOnPod.runner_pids(self, run_id)
        self.assertEqual(len(runners), 1, self.env.logs())
        os.kill(runners[0], signal.SIGKILL)
        run, text = self.finish(p, run_id)
        self.assertEqual(run["state"], "ERROR", text)
        self.assertNotIn("cleanup incomplete", run["reason"], text)
        for n in self.pods:
            self.assertEqual(self.cep_tables(pids[n]), [], n + "\n" + text)
        recs = self.records(run_id)
        self.assertEqual(sorted(recs), ["cut/web-0", "cut/web-1"], text)
        for n in self.pods:
            self.assertEqual(recs["cut/" + n].get("reverted_by"), "cleanup runner", text)
        self.assert_nothing_left()


class SelectedPodsOnTwoNodes(SelectedPods):
    """web-1 on node-1, web-0 on node-2. One pod asked for goes to either
    node, one run as before. Both asked for: no one node holds them, so
    the run is split - a parent with one child run per node, each child an
    ordinary run with its own runner Pod on its node taking that node's
    pod (docs/kubernetes.md, "Pods by label selector")."""

    nodes = {"web-1": "node-1"}
    HOME_NODE = {"web-0": "node-2", "web-1": "node-1"}

    def run_fault(self, how, duration="6s"):
        """As SelectedPods', but the id is the parent's: the run without a
        parent among the new ones (its children appear a moment later)."""
        spec = experiment("sel", None, duration, f"labelSelector: app=web\n      {how}")
        return self.start_parent("sel.yaml", spec)

    def children(self, parent):
        """{node: child run} once the parent names its children, each
        child naming its parent and node back."""
        got = wait_until(lambda: {r["run_id"]: r for r in self.app.runs()}[parent]
                         .get("children"), 60, 0.1)
        self.assertTrue(got, "the parent names no children:\n" + self.env.logs())
        runs = {r["run_id"]: r for r in self.app.runs()}
        out = {}
        for c in got:
            child = runs[c["run_id"]]
            self.assertEqual(child.get("parent_run_id"), parent, json.dumps(child))
            self.assertEqual(child.get("node"), c["node"], json.dumps(child))
            self.assertEqual(c["count"], 1, json.dumps(got))
            out[c["node"]] = child
        return out

    def assert_split(self, parent):
        kids = self.children(parent)
        self.assertEqual(sorted(kids), ["node-1", "node-2"], json.dumps(kids))
        new = {r["run_id"] for r in self.app.runs()} - self.before
        self.assertEqual(new, {parent} | {c["run_id"] for c in kids.values()},
                         "a run besides the parent and its two children")
        return {node: c["run_id"] for node, c in kids.items()}

    def assert_runner_pods_on_their_nodes(self, kids):
        for node, child in kids.items():
            rpod, _ = self.env.wait_runner_pod(child, timeout=60)
            self.assertEqual(rpod["spec"].get("nodeName"), node, json.dumps(rpod["spec"]))
        pod, _ = self.env.runner_objects(self.last_run)
        self.assertIsNone(pod, "the parent has a runner pod")

    def assert_record_on_its_node(self, kids, reverted_by):
        """Each child recorded exactly its node's pod, the undo naming that
        node; reverted by whom."""
        for node, child in kids.items():
            pod = next(n for n, at in self.HOME_NODE.items() if at == node)
            recs = self.records(child)
            self.assertEqual(sorted(recs), ["cut/" + pod], json.dumps(recs))
            self.assertEqual(recs["cut/" + pod].get("reverted_by"), reverted_by,
                             json.dumps(recs))
            undo = [u for u in self.journal_undos(child) if u.get("pod") == pod]
            self.assertEqual(len(undo), 1, json.dumps(undo))
            self.assertEqual(undo[0]["node"], node)
        self.assertEqual(self.records(self.last_run), {}, "the parent recorded a fault")

    def test_percentage_100_every_pod_then_reverted(self):
        p, run_id, pids = self.run_fault("percentage: 100")
        kids = self.assert_split(run_id)
        self.assert_runner_pods_on_their_nodes(kids)
        both = wait_until(lambda: all(self.cep_tables(pids[n]) for n in self.pods), 60, 0.2)
        self.assertTrue(both, "not in every chosen pod's netns:\n" + self.env.logs())
        self.assertEqual(self.cep_tables(pids["other-0"]), [], "a pod not matching")
        run, text = self.finish(p, run_id)
        self.assertEqual(run["state"], "PASSED", text)
        self.assertEqual(run["verdict"], "Pass", text)
        runs = {r["run_id"]: r for r in self.app.runs()}
        for child in kids.values():
            self.assertEqual(runs[child]["state"], "PASSED", text)
        for n in self.pods:
            self.assertEqual(self.cep_tables(pids[n]), [], n + "\n" + text)
        self.assert_record_on_its_node(kids, "runner")
        self.assert_nothing_left()

    def test_chaos_engine_share_is_split(self):
        """An unmodified ChaosEngine whose PODS_AFFECTED_PERC no one node
        holds is split the same way: its children run the native
        experiment it converts to (docs/litmus.md)."""
        engine = f"""apiVersion: litmuschaos.io/v1alpha1
kind: ChaosEngine
metadata:
  name: split-loss
  namespace: {NS}
  annotations:
    cep.io/connector: {CONNECTOR}
spec:
  engineState: active
  appinfo: {{appns: {NS}, applabel: app=web, appkind: statefulset}}
  chaosServiceAccount: litmus-admin
  experiments:
    - name: pod-network-loss
      spec:
        components:
          env:
            - {{name: TOTAL_CHAOS_DURATION, value: "6"}}
            - {{name: PODS_AFFECTED_PERC, value: "100"}}
"""
        p, _, pids = self.start_parent("engine.yaml", engine)
        kids = self.assert_split(self.last_run)
        self.assert_runner_pods_on_their_nodes(kids)
        both = wait_until(lambda: all(self.cep_tables(pids[n]) for n in self.pods), 60, 0.2)
        self.assertTrue(both, "not in every chosen pod's netns:\n" + self.env.logs())
        run, text = self.finish(p, self.last_run)
        self.assertEqual(run["state"], "PASSED", text)
        for node, child in kids.items():
            pod = next(n for n, at in self.HOME_NODE.items() if at == node)
            recs = self.records(child)
            self.assertEqual([k.split("/", 1)[1] for k in recs], [pod], json.dumps(recs))
        for n in self.pods:
            self.assertEqual(self.cep_tables(pids[n]), [], n + "\n" + text)
        self.assert_nothing_left()

    def test_count_1_one_pod_only(self):
        """Either node: one run, no children, the undo naming the chosen
        pod's own node (a share one node holds is not split)."""
        super().test_count_1_one_pod_only()
        (rec,) = self.records(self.last_run).values()
        pod = rec["fault"].split("/", 1)[1]
        undo = [u for u in self.journal_undos(self.last_run) if u.get("pod") == pod]
        self.assertEqual(len(undo), 1, json.dumps(undo))
        self.assertEqual(undo[0]["node"], self.HOME_NODE[pod])
        new = [r for r in self.app.runs() if r["run_id"] not in self.before]
        self.assertEqual([r["run_id"] for r in new], [self.last_run], json.dumps(new))
        self.assertNotIn("children", new[0])

    def test_abort_of_the_parent_aborts_every_child(self):
        p, run_id, pids = self.run_fault("percentage: 100", "4m")
        kids = self.assert_split(run_id)
        both = wait_until(lambda: all(self.cep_tables(pids[n]) for n in self.pods), 60, 0.2)
        self.assertTrue(both, "not in every chosen pod's netns:\n" + self.env.logs())
        self.app.cepctl("abort", run_id, check=True)
        run, text = self.finish(p, run_id)
        self.assertEqual(run["state"], "ABORTED", text)
        runs = {r["run_id"]: r for r in self.app.runs()}
        for child in kids.values():
            self.assertEqual(runs[child]["state"], "ABORTED", text)
        for n in self.pods:
            self.assertEqual(self.cep_tables(pids[n]), [], n + "\n" + text)
        self.assert_record_on_its_node(kids, "runner")
        self.assert_nothing_left()

    def test_delegate_kill9_parent_waits_again(self):
        """kill -9 of the delegate with both children at work: the parent's
        journal holds the split, so the restarted delegate loads it with its
        children, adopts each child's runner, and the parent still ends
        with their verdict."""
        p, run_id, pids = self.run_fault("percentage: 100", "15s")
        kids = self.assert_split(run_id)
        both = wait_until(lambda: all(self.cep_tables(pids[n]) for n in self.pods), 60, 0.2)
        self.assertTrue(both, "not in every chosen pod's netns:\n" + self.env.logs())
        self.app.kill9("delegate")
        self.app.start("delegate")
        self.app.wait_ready()
        final = ("PASSED", "FAILED", "ERROR", "ABORTED")
        run = wait_until(lambda: next((r for r in self.app.runs() if r["run_id"] == run_id
                                       and r["state"] in final), None), 120, 0.2)
        text = json.dumps(self.app.runs()) + "\n" + self.env.logs()
        self.assertIsNotNone(run, text)
        self.assertEqual(run["state"], "PASSED", text)
        self.assertEqual(sorted(c["run_id"] for c in run["children"]),
                         sorted(kids.values()), text)
        runs = {r["run_id"]: r for r in self.app.runs()}
        for child in kids.values():
            self.assertEqual(runs[child]["state"], "PASSED", text)
        with open(os.path.join(self.app.home, "log", "delegate.log"), errors="replace") as f:
            self.assertIn("parent of 2 child run(s)", f.read(), text)
        for n in self.pods:
            self.assertEqual(self.cep_tables(pids[n]), [], n + "\n" + text)
        self.assert_record_on_its_node(kids, "runner")
        self.assert_nothing_left()

    def test_kill9_cleanup_runner_undoes_every_pod(self):
        """The runner of one child dies: that child's cleanup runner undoes
        its pod on its node, the other child passes, and the parent takes
        the worse verdict (ERROR), naming the child that decided it."""
        p, run_id, pids = self.run_fault("percentage: 100", "20s")
        kids = self.assert_split(run_id)
        both = wait_until(lambda: all(self.cep_tables(pids[n]) for n in self.pods), 60, 0.2)
        self.assertTrue(both, "not in every chosen pod's netns:\n" + self.env.logs())
        runners = podtarget.RunnerKilledOnPod.runner_pids(self, kids["node-1"])
        self.assertEqual(len(runners), 1, self.env.logs())
        os.kill(runners[0], signal.SIGKILL)
        run, text = self.finish(p, run_id)
        runs = {r["run_id"]: r for r in self.app.runs()}
        self.assertEqual(runs[kids["node-1"]]["state"], "ERROR", text)
        self.assertNotIn("cleanup incomplete", runs[kids["node-1"]]["reason"], text)
        self.assertEqual(runs[kids["node-2"]]["state"], "PASSED", text)
        self.assertEqual(run["state"], "ERROR", text)
        self.assertEqual(run["verdict"], "Error", text)
        self.assertIn(f"child {kids['node-1']} on node-1: ERROR", run["reason"], text)
        for n in self.pods:
            self.assertEqual(self.cep_tables(pids[n]), [], n + "\n" + text)
        recs = self.records(kids["node-1"])
        self.assertEqual(recs["cut/web-1"].get("reverted_by"), "cleanup runner", text)
        self.assertEqual(self.records(kids["node-2"])["cut/web-0"].get("reverted_by"),
                         "runner", text)
        self.assert_nothing_left()


class SplitOverMaxTargets(SelectedPodsOnTwoNodes):
    """policy.kubernetes.maxTargets 1: the two pods a split would take
    are refused for the parent as a whole, before any child exists."""

    def setUp(self):
        super().setUp()
        self.app.stop("delegate")
        path = os.path.join(self.app.home, "config", "cep.yaml")
        with open(path) as f:
            text = f.read()
        self.assertIn("\npolicy:\n", text)
        text = text.replace("\npolicy:\n", "\npolicy:\n  kubernetes:\n    maxTargets: 1\n", 1)
        with open(path, "w") as f:
            f.write(text)
        self.app.start("delegate")
        self.app.wait_ready()

    def test_percentage_100_refused_over_max_targets(self):
        p, run_id, pids = self.run_fault("percentage: 100")
        run, text = self.finish(p, run_id)
        self.assertEqual(run["state"], "ERROR", text)
        self.assertIn("splitting the run across nodes: selector app=web: 2 pods chosen "
                      "over 2 nodes, more than policy.kubernetes.maxTargets (1)",
                      run["reason"], text)
        self.assertNotIn("children", run, text)
        new = [r for r in self.app.runs() if r["run_id"] not in self.before]
        self.assertEqual(len(new), 1, json.dumps(new))
        for n in self.pods:
            self.assertEqual(self.cep_tables(pids[n]), [], text)
        self.assert_nothing_left()

    test_percentage_100_every_pod_then_reverted = None
    test_count_1_one_pod_only = None
    test_abort_of_the_parent_aborts_every_child = None
    test_kill9_cleanup_runner_undoes_every_pod = None
    test_delegate_kill9_parent_waits_again = None
    test_chaos_engine_share_is_split = None


class SelectedPodsTwoOfThree(SelectedPods):
    """web-0 and web-1 on node-2, web-2 on node-1: count 2 can only be
    taken on node-2, so the runner goes there and takes both; all three
    are split, two on node-2 and one on node-1."""

    nodes = {"web-1": "node-2", "web-2": "node-1"}
    pods = PODS + ("web-2",)

    def test_count_2_on_the_node_holding_two(self):
        p, run_id, pids = self.run_fault("count: 2")
        both = wait_until(lambda: all(self.cep_tables(pids[n]) for n in PODS), 60, 0.2)
        self.assertTrue(both, "not in both node-2 pods:\n" + self.env.logs())
        self.assertEqual(self.cep_tables(pids["web-2"]), [], "the pod on node-1")
        run, text = self.finish(p, run_id)
        self.assertEqual(run["state"], "PASSED", text)
        for n in self.pods:
            self.assertEqual(self.cep_tables(pids[n]), [], n + "\n" + text)
        self.assertEqual(sorted(self.records(run_id)), ["cut/web-0", "cut/web-1"], text)
        self.assert_nothing_left()

    def test_percentage_100_split_two_and_one(self):
        """All three: node-2's child takes its two pods, node-1's its one;
        each child's experiment carries its node's count."""
        p, run_id, pids = SelectedPodsOnTwoNodes.run_fault(self, "percentage: 100")
        kids = wait_until(lambda: {r["run_id"]: r for r in self.app.runs()}[run_id]
                          .get("children"), 60, 0.1)
        self.assertTrue(kids, "the parent names no children:\n" + self.env.logs())
        self.assertEqual(sorted((c["node"], c["count"]) for c in kids),
                         [("node-1", 1), ("node-2", 2)], json.dumps(kids))
        every = wait_until(lambda: all(self.cep_tables(pids[n]) for n in self.pods), 60, 0.2)
        self.assertTrue(every, "not in every chosen pod's netns:\n" + self.env.logs())
        run, text = self.finish(p, run_id)
        self.assertEqual(run["state"], "PASSED", text)
        by_node = {c["node"]: c["run_id"] for c in kids}
        self.assertEqual(sorted(self.records(by_node["node-2"])), ["cut/web-0", "cut/web-1"],
                         text)
        self.assertEqual(sorted(self.records(by_node["node-1"])), ["cut/web-2"], text)
        for n in self.pods:
            self.assertEqual(self.cep_tables(pids[n]), [], n + "\n" + text)
        self.assert_nothing_left()

    test_percentage_100_every_pod_then_reverted = None
    test_count_1_one_pod_only = None
    test_kill9_cleanup_runner_undoes_every_pod = None


if __name__ == "__main__":
    unittest.main()
