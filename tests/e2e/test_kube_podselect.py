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
two nodes: one runner runs on one node, so it goes to a node holding the
share asked for and chooses there (count 1 on 1+1 pods: either node; count
2 on 2+1 pods: the node with two); a share no one node holds is refused at
launch with the count on each node (docs/kubernetes.md). Needs root.
"""
import glob
import json
import os
import re
import signal
import unittest

from cep_e2e import wait_until
from kube_e2e import wait_proc
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
    """web-1 on node-1, web-0 on node-2: one pod asked for goes to either
    node; both asked for are refused at launch, naming each node's count."""

    nodes = {"web-1": "node-1"}

    def test_percentage_100_every_pod_then_reverted(self):
        p, run_id, pids = self.run_fault("percentage: 100")
        run, text = self.finish(p, run_id)
        self.assertEqual(run["state"], "ERROR", text)
        self.assertIn("selector app=web: 2 of its 2 Running pods asked for, "
                      "no one node holds them", run["reason"], text)
        self.assertIn("node-1: 1", run["reason"], text)
        self.assertIn("node-2: 1", run["reason"], text)
        for n in self.pods:
            self.assertEqual(self.cep_tables(pids[n]), [], text)
        self.assert_nothing_left()

    def test_count_1_one_pod_only(self):
        """Either node: the undo names the chosen pod's own node."""
        super().test_count_1_one_pod_only()
        (rec,) = self.records(self.last_run).values()
        pod = rec["fault"].split("/", 1)[1]
        undo = [u for u in self.journal_undos(self.last_run) if u.get("pod") == pod]
        self.assertEqual(len(undo), 1, json.dumps(undo))
        self.assertEqual(undo[0]["node"], {"web-0": "node-2", "web-1": "node-1"}[pod])

    test_kill9_cleanup_runner_undoes_every_pod = None


class SelectedPodsTwoOfThree(SelectedPods):
    """web-0 and web-1 on node-2, web-2 on node-1: count 2 can only be
    taken on node-2, so the runner goes there and takes both."""

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

    test_percentage_100_every_pod_then_reverted = None
    test_count_1_one_pod_only = None
    test_kill9_cleanup_runner_undoes_every_pod = None


if __name__ == "__main__":
    unittest.main()
