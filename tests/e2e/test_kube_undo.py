"""The delegate undoes a Kubernetes fault itself when the runner died: the
real relay, delegate, runner and cepctl against the Kubernetes API test
server (tests/kubeapi), whose kubelet runs the runner pod as the real
cep-runner. The runner is killed with SIGKILL once its fault is recorded
and in effect, so its own revert never runs; the delegate's cleanup
(delegate/monitor.c undo_faults -> lib/undo/undo.c k8s-scale / k8s-cordon, with
the connector's client) must put the cluster back, with exactly the
permissions `cepctl rbac --who delegate --faults TYPE` grants - and say
"cleanup incomplete" when it lacks them. What the cluster holds is read
with the real kubectl.
"""
import json
import os
import signal
import unittest

from cep_e2e import procs, wait_until
from kube_e2e import (CONNECTOR, DELEGATE_PERMS, NS, KubeEnv, rbac_rules, wait_proc)

# Mirror of lib/kube/kube_rbac.c's undo table (cep_kube_rbac_undo_for_type), as
# users-file permissions (namespace, group, resource, verb); "*" is the
# test server's cluster scope. The users file is built from what
# `cepctl rbac` prints, and checked against this: a change to either side
# shows here.
UNDO_PERMS = {
    "deployment-scale": {(NS, "apps", "deployments", "get"),
                         (NS, "apps", "deployments/scale", "patch")},
    "node-cordon": {("*", "", "nodes", "get"), ("*", "", "nodes", "patch")},
    "node-taint": {("*", "", "nodes", "get"), ("*", "", "nodes", "patch")},
}
POOL = "cep-e2e/pool"        # node label the node-cordon test selects by


def flat(rules):
    return {(ns, g, r, v) for rule in rules for ns in rule["namespaces"]
            for g in rule["groups"] for r in rule["resources"] for v in rule["verbs"]}


def experiment(name, fault):
    """One Kubernetes fault, lasting far longer than the test waits: only
    the delegate can end it here."""
    return f"""apiVersion: cep.io/v1
kind: Experiment
metadata:
  name: {name}
spec:
  target:
    kind: kubernetes
    connector: {CONNECTOR}
    namespace: {NS}
  duration: 4m
  deadman: 10s
  faults:
{fault}"""


SCALE = """    - name: web-down
      type: deployment-scale
      deployment: web
      replicas: 1
"""
CORDON = f"""    - name: pool-cordoned
      type: node-cordon
      nodeSelector: {POOL}=undo
"""
TAINT = f"""    - name: pool-tainted
      type: node-taint
      nodeSelector: {POOL}=undo
      key: cep-e2e/chaos
      value: "on"
"""


class UndoCase(unittest.TestCase):
    fault_type = None        # the runner's account gets this type's verbs
    delegate_undo = ()       # the delegate gets the undo verbs of these

    def setUp(self):
        deleg = rbac_rules("delegate", self.delegate_undo)
        want = {(NS, "", r, v) for r, v in DELEGATE_PERMS}
        for t in self.delegate_undo:
            want |= UNDO_PERMS[t]
        self.assertEqual(flat(deleg), want, "cepctl rbac --who delegate --faults "
                         f"{','.join(self.delegate_undo)} printed {json.dumps(deleg)}")
        self.env = KubeEnv(self.id().rsplit(".", 1)[-1][:20], delegate_rules=deleg,
                           runner_rules=rbac_rules("runner", (self.fault_type,)))
        self.addCleanup(self.env.close)
        self.app = self.env.app
        self.app.start_all()
        self.env.create_web(3)

    # -- observing ------------------------------------------------------
    def delegate_lines(self, run_id):
        path = os.path.join(self.app.home, "log", "delegate.log")
        try:
            with open(path, errors="replace") as f:
                return [ln for ln in f.read().splitlines() if run_id in ln]
        except OSError:
            return []

    def recorded_fault(self, run_id, ftype):
        """The id of the run's fault of ftype, once the delegate logged its
        record (the runner records before it injects)."""
        for ln in self.delegate_lines(run_id):
            if " recorded: " in ln and "fault " in ln and ftype in ln:
                return ln.split("fault ", 1)[1].split(" ", 1)[0]
        return None

    def runner_pids(self, run_id):
        """The run's cep-runner process(es) the test server's kubelet runs:
        comm and argv[0] cep-runner, CEP_RUN_ID=<run> in the environment
        the pod spec gave it, this server's port."""
        marks = (f"CEP_RUN_ID={run_id}".encode(),
                 f"KUBERNETES_SERVICE_PORT={self.env.port}".encode())
        out = []
        for pid, (comm, cmd) in procs().items():
            if comm != "cep-runner" or not cmd or os.path.basename(cmd[0]) != "cep-runner":
                continue
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            if all(m in env for m in marks):
                out.append(pid)
        return out

    def replicas(self):
        return self.env.kubectl_json("get", "deployment", "web", "-n", NS)["spec"].get("replicas")

    def unschedulable(self, node):
        return bool(self.env.kubectl_json("get", "node", node)["spec"].get("unschedulable"))

    # -- the run --------------------------------------------------------
    def start_run(self, name, fault, ftype, in_effect):
        """Submits, waits until the fault is recorded and in_effect() holds
        (read with kubectl), then SIGKILLs the runner's process.
        Returns (cepctl run Popen, run id, fault id)."""
        before = {r["run_id"] for r in self.app.runs()}
        p = self.app.run_async(self.app.write(f"{name}.yaml", experiment(name, fault)))
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.communicate()))
        run_id = self.env.new_run_id(before)
        self.env.wait_runner_pod(run_id, phase="Running", timeout=90)
        fid = wait_until(lambda: self.recorded_fault(run_id, ftype), 90, 0.2)
        self.assertIsNotNone(fid, "the fault was never recorded:\n" + self.env.logs())
        self.assertTrue(wait_until(in_effect, 60, 0.3),
                        "the fault never took effect:\n" + self.env.logs())
        pids = self.runner_pids(run_id)
        self.assertEqual(len(pids), 1, f"runner processes of {run_id}: {pids}\n" +
                         self.env.logs())
        os.kill(pids[0], signal.SIGKILL)
        self.assertTrue(wait_until(lambda: not self.runner_pids(run_id), 30, 0.1),
                        f"runner {pids[0]} survived SIGKILL")
        return p, run_id, fid

    def end_of(self, p, run_id):
        rc, out, err = wait_proc(p, 240)
        runs = {r["run_id"]: r for r in self.app.runs()}
        run = runs[run_id]
        text = f"rc {rc}\n{out}{err}\n{json.dumps(run)}\n" + self.env.logs()
        self.assertNotEqual(rc, 0, text)
        self.assertEqual(run["state"], "ERROR", text)
        return run, text

    def assert_undone_by_delegate(self, run_id, fid, run, text):
        self.assertNotIn("cleanup incomplete", run["reason"], text)
        lines = self.delegate_lines(run_id)
        self.assertTrue(any(f"fault {fid} undone by the delegate" in ln for ln in lines), text)
        self.assertFalse(any("reverted by the runner" in ln for ln in lines), text)
        self.assertFalse(any("undo failed" in ln for ln in lines), text)

    def assert_nothing_left(self, run_id):
        ok, left = self.env.wait_no_cep_objects(30)
        self.assertTrue(ok, "objects carrying the cep labels are left:\n" +
                        json.dumps([(i["kind"], i["metadata"]["namespace"],
                                     i["metadata"]["name"]) for i in left]) + self.env.logs())
        self.assertEqual(self.runner_pids(run_id), [])


class DeploymentScaleUndone(UndoCase):
    fault_type = "deployment-scale"
    delegate_undo = ("deployment-scale",)

    def test_runner_killed_delegate_restores_replicas(self):
        """(a) deployment-scale 3 -> 1, runner SIGKILLed: the delegate sets
        spec.replicas back to 3 and nothing carrying the cep labels is left."""
        r = self.app.cepctl("check", CONNECTOR, "--namespace", NS, "--faults",
                            "deployment-scale")
        self.assertIn("delegate (undo of deployment-scale): all 2 permissions present",
                      r.stdout, r.stdout + r.stderr)
        self.assertEqual(self.replicas(), 3)
        p, run_id, fid = self.start_run("undo-scale", SCALE, "deployment-scale",
                                        lambda: self.replicas() == 1)
        run, text = self.end_of(p, run_id)
        # read back at once: the delegate confirmed it before the final state
        self.assertEqual(self.replicas(), 3, text)
        self.assert_undone_by_delegate(run_id, fid, run, text)
        self.assert_nothing_left(run_id)


class NodeCordonUndone(UndoCase):
    fault_type = "node-cordon"
    delegate_undo = ("node-cordon",)

    def test_runner_killed_delegate_uncordons_only_what_it_cordoned(self):
        """(b) node-cordon on node-2 and node-3 (node-3 cordoned before),
        runner SIGKILLed: the delegate uncordons node-2, node-3 stays
        cordoned, node-1 was never touched."""
        self.env.kubectl("label", "node", "node-2", "node-3", f"{POOL}=undo")
        self.env.kubectl("cordon", "node-3")
        self.assertEqual([self.unschedulable(n) for n in ("node-1", "node-2", "node-3")],
                         [False, False, True])
        p, run_id, fid = self.start_run("undo-cordon", CORDON, "node-cordon",
                                        lambda: self.unschedulable("node-2"))
        run, text = self.end_of(p, run_id)
        self.assertEqual([self.unschedulable(n) for n in ("node-1", "node-2", "node-3")],
                         [False, False, True], text)
        self.assert_undone_by_delegate(run_id, fid, run, text)
        self.assert_nothing_left(run_id)


class NodeTaintUndone(UndoCase):
    fault_type = "node-taint"
    delegate_undo = ("node-taint",)

    def taints(self, node):
        spec = self.env.kubectl_json("get", "node", node)["spec"]
        return [(t["key"], t.get("value", ""), t["effect"]) for t in spec.get("taints") or []]

    def test_runner_killed_delegate_removes_only_its_taint(self):
        """node-taint on node-2 and node-3 (node-3 carried the same key and
        effect with another value, and a taint of its own), runner
        SIGKILLed: the delegate removes the fault's taint, node-3 gets its
        old value back and keeps its other taint, node-1 never touched."""
        self.env.kubectl("label", "node", "node-2", "node-3", f"{POOL}=undo")
        self.env.kubectl("taint", "node", "node-3", "cep-e2e/chaos=before:NoSchedule",
                         "team=ops:PreferNoSchedule")
        before = {n: self.taints(n) for n in ("node-1", "node-2", "node-3")}
        ours = ("cep-e2e/chaos", "on", "NoSchedule")
        old = ("cep-e2e/chaos", "before", "NoSchedule")

        def in_effect():   # ours replaced the old one (the API keeps one)
            t = self.taints("node-3")
            return ours in t and old not in t and ours in self.taints("node-2")
        p, run_id, fid = self.start_run("undo-taint", TAINT, "node-taint", in_effect)
        run, text = self.end_of(p, run_id)
        after = {n: self.taints(n) for n in ("node-1", "node-2", "node-3")}
        self.assertEqual({n: sorted(v) for n, v in after.items()},
                         {n: sorted(v) for n, v in before.items()}, text)
        self.assert_undone_by_delegate(run_id, fid, run, text)
        self.assert_nothing_left(run_id)


class UndoForbidden(UndoCase):
    fault_type = "deployment-scale"
    delegate_undo = ()       # the delegate's own verbs only

    def test_without_undo_permission_cleanup_incomplete_names_403(self):
        """(c) the delegate lacks the undo verbs: the run ends ERROR with
        "cleanup incomplete" naming the 403, the deployment really is still
        scaled down (not a silent pass), and the pod and secret are gone."""
        r = self.app.cepctl("check", CONNECTOR, "--namespace", NS, "--faults",
                            "deployment-scale")
        self.assertIn("delegate (undo of deployment-scale): 2 of 2 permissions MISSING",
                      r.stdout, r.stdout + r.stderr)
        self.assertIn("patch deployments/scale.apps in shop: denied", r.stdout)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        p, run_id, fid = self.start_run("undo-403", SCALE, "deployment-scale",
                                        lambda: self.replicas() == 1)
        run, text = self.end_of(p, run_id)
        reason = run["reason"]
        self.assertTrue(reason.startswith("cleanup incomplete: "), text)
        self.assertIn("403", reason, text)
        self.assertIn("Forbidden", reason, text)
        self.assertIn("deployments", reason, text)
        lines = self.delegate_lines(run_id)
        self.assertTrue(any(f"fault {fid}: undo failed" in ln and "403" in ln
                            for ln in lines), text)
        self.assertFalse(any("undone by the delegate" in ln for ln in lines), text)
        self.assertEqual(self.replicas(), 1, text)
        self.assert_nothing_left(run_id)


if __name__ == "__main__":
    unittest.main()
