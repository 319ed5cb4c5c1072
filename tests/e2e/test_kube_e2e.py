"""Kubernetes targets end to end: the real relay, delegate, runner and cepctl
against the Kubernetes API test server (tests/kubeapi), whose kubelet runs the
runner pod as the real cep-runner. Each test has its own appliance and its own
test server; what is left in the cluster is checked with the real kubectl.
Issue 3, "What it must show"."""
import json
import os
import signal
import unittest

from cep_e2e import wait_until
from kube_e2e import (CEP_SELECTOR, CONNECTOR, NS, OTHER_NS, RUNNER_USER, KubeEnv,
                      k8s_experiment, pod_is_non_root, run_cepctl_kube_demo, wait_proc)


class KubeCase(unittest.TestCase):
    delegate_drop = ()

    def setUp(self):
        self.env = KubeEnv(self.id().rsplit(".", 1)[-1][:20], self.delegate_drop)
        self.addCleanup(self.env.close)
        self.app = self.env.app

    def start(self):
        self.app.start_all()
        self.env.create_web(3)

    def assert_no_cep_objects(self, timeout=60):
        ok, left = self.env.wait_no_cep_objects(timeout)
        self.assertTrue(ok, "objects carrying the cep labels are left:\n" +
                        json.dumps([(i["kind"], i["metadata"]["namespace"],
                                     i["metadata"]["name"]) for i in left]) + self.env.logs())
        self.assertEqual(left, [])

    def runner_procs(self):
        """cep-runner processes the test server's kubelet runs for this test."""
        return self.env.runner_pids()

    def assert_no_runner_procs(self, timeout=30):
        wait_until(lambda: not self.runner_procs(), timeout, 0.2)
        self.assertEqual(self.runner_procs(), [])

    def web_pods(self):
        return {i["metadata"]["name"] for i in self.env.kubectl_json(
            "get", "pods", "-n", NS, "-l", "app=web")["items"]}


class LaunchRunCleanup(KubeCase):
    def test_run_leaves_nothing_and_pod_is_locked_down(self):
        """(a) launch, run, cleanup: zero objects carrying the cep labels
        (kubectl); while live the pod had activeDeadlineSeconds, restartPolicy
        Never, a non-root securityContext, and the Secret was owned by it."""
        self.start()
        before = {r["run_id"] for r in self.app.runs()}
        p = self.app.run_async(self.app.write("a.yaml", k8s_experiment("k8s-a")))
        run_id = self.env.new_run_id(before)
        pod, sec = self.env.wait_runner_pod(run_id, phase="Running")
        rc, out, err = wait_proc(p, 120)
        self.assertEqual(rc, 0, out + err + self.env.logs())
        self.assertIn("verdict: Pass", out)

        name = f"cep-runner-{run_id}"
        self.assertEqual(pod["metadata"]["name"], name)
        labels = pod["metadata"]["labels"]
        self.assertEqual(labels.get("app.kubernetes.io/managed-by"), "cep")
        self.assertEqual(labels.get("cep.io/run-id"), run_id)
        self.assertEqual(labels.get("cep.io/appliance"), "e2e")
        spec = pod["spec"]
        self.assertGreater(spec.get("activeDeadlineSeconds", 0), 0)
        self.assertEqual(spec.get("restartPolicy"), "Never")
        self.assertTrue(pod_is_non_root(pod), json.dumps(spec))
        for c in spec["containers"]:
            self.assertFalse(c.get("securityContext", {}).get("privileged", False))
        # the Secret carries the labels too (the leftover check relies on it)
        self.assertEqual(sec["metadata"]["labels"].get("app.kubernetes.io/managed-by"), "cep")
        self.assertEqual(sec["metadata"]["labels"].get("cep.io/run-id"), run_id)
        owners = sec["metadata"].get("ownerReferences", [])
        self.assertEqual([(o["kind"], o["name"], o["uid"]) for o in owners],
                         [("Pod", name, pod["metadata"]["uid"])])

        self.assert_no_cep_objects()
        self.assert_no_runner_procs()
        runs = {r["run_id"]: r for r in self.app.runs()}
        self.assertEqual(runs[run_id]["state"], "PASSED")


class DelegateKill9(KubeCase):
    def test_kill9_then_restart_collects_everything(self):
        """(b) kill -9 of the delegate mid-run, restart: after its collection
        pass no orphan pod or secret remains; the pod carried
        activeDeadlineSeconds all along."""
        self.start()
        before = {r["run_id"] for r in self.app.runs()}
        p = self.app.run_async(self.app.write("b.yaml", k8s_experiment(
            "k8s-b", duration="20s")))
        run_id = self.env.new_run_id(before)
        pod0, _ = self.env.wait_runner_pod(run_id, phase="Running")
        self.app.kill9("delegate")
        p.send_signal(signal.SIGKILL)
        p.communicate()
        # the cluster itself would end the runner: the deadline is there
        pod1, sec1 = self.env.runner_objects(run_id)
        self.assertIsNotNone(pod1, "the pod vanished with the delegate")
        for pod in (pod0, pod1):
            self.assertGreater(pod["spec"].get("activeDeadlineSeconds", 0), 0)
        self.assertIsNotNone(sec1, "the secret vanished with the delegate")
        self.assertEqual(pod0["metadata"]["uid"], pod1["metadata"]["uid"])
        self.assertEqual(pod0["spec"]["activeDeadlineSeconds"],
                         pod1["spec"]["activeDeadlineSeconds"])

        # and what an earlier life left of a run its journal does not know
        orphan = self.plant_orphan()
        self.app.start("delegate")
        self.app.wait_ready()
        self.assert_no_cep_objects(timeout=90)
        self.assert_no_runner_procs()
        log = self.app.logs()
        self.assertIn(f"collected leftover pods {NS}/{orphan}", log)
        self.assertIn(f"collected leftover secrets {NS}/{orphan}", log)
        run = self.app.wait_run(lambda r: r["run_id"] == run_id and
                                r["state"] not in ("PENDING", "LAUNCHING", "RUNNING",
                                                   "CLEANUP"), 60)
        self.assertIsNotNone(run, json.dumps(self.app.runs()) + self.env.logs())

    def plant_orphan(self):
        """A runner Pod + Secret of this appliance for a run id no journal
        knows (as an appliance whose state was lost would leave them)."""
        run_id = "r-" + os.urandom(8).hex()
        name = f"cep-runner-{run_id}"
        labels = {"app.kubernetes.io/managed-by": "cep", "cep.io/run-id": run_id,
                  "cep.io/appliance": "e2e"}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": NS, "labels": labels},
               "spec": {"restartPolicy": "Never", "activeDeadlineSeconds": 600,
                        "containers": [{"name": "runner", "image": "busybox:1.36"}]}}
        self.env.kubectl("create", "-f", "-", stdin=json.dumps(pod))
        # no ownerReference: the garbage collector would not take it, the
        # delegate's collection must
        sec = {"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": name, "namespace": NS, "labels": labels},
               "stringData": {"relay": "tls+tcp://127.0.0.1:9"}}
        self.env.kubectl("create", "-f", "-", stdin=json.dumps(sec))
        return name


class NamespaceRefused(KubeCase):
    def test_namespace_outside_connector_refused_before_any_create(self):
        """(c) a namespace outside the connector's allowed list is refused
        before any object is created."""
        self.start()
        creates = self.env.stats().get("byVerb", {}).get("create", 0)
        r = self.app.cepctl("run", self.app.write("c.yaml", k8s_experiment(
            "k8s-c", ns=OTHER_NS)))
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(OTHER_NS, r.stdout + r.stderr)
        self.assertEqual(self.env.stats().get("byVerb", {}).get("create", 0), creates,
                         json.dumps(self.env.stats()))
        for ns in ("kube-system",):
            r = self.app.cepctl("run", self.app.write("c2.yaml", k8s_experiment(
                "k8s-c2", ns=ns)))
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertIn(ns, r.stdout + r.stderr)
        self.assertEqual(self.env.stats().get("byVerb", {}).get("create", 0), creates)
        self.assertEqual(self.env.cep_objects(), [])


class CheckNamesMissingVerb(KubeCase):
    delegate_drop = (("secrets", "delete"),)

    def test_cepctl_check_names_missing_verb(self):
        """(c) `cepctl check` names a missing RBAC verb."""
        r = self.app.cepctl("check", CONNECTOR, "--namespace", NS)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        text = r.stdout + r.stderr
        line = next((ln for ln in text.splitlines() if "delete" in ln and "secrets" in ln),
                    None)
        self.assertIsNotNone(line, text)
        # and only that one: every other verb is there
        for res, verb in (("pods", "create"), ("pods", "watch"), ("secrets", "create")):
            self.assertFalse(any(verb in ln and res in ln and ("denied" in ln or
                                                              "missing" in ln)
                                 for ln in text.splitlines()), text)


class Forbidden403MidRun(KubeCase):
    def test_403_to_runner_fault_mid_run_ends_run_and_cleans_up(self):
        """(c) a 403 in mid-run - the runner's pod-delete loses `delete pods`
        after its first round - ends the run with a clear reason, and
        everything is cleaned up."""
        self.start()
        web0 = self.web_pods()
        before = {r["run_id"] for r in self.app.runs()}
        p = self.app.run_async(self.app.write("d.yaml", k8s_experiment(
            "k8s-403", duration="20s", interval="1s", probe=False)))
        run_id = self.env.new_run_id(before)
        self.env.wait_runner_pod(run_id, phase="Running")
        # mid-run: the fault has deleted a pod (a replacement exists) when
        # its permission goes; its next round meets the 403
        self.assertTrue(wait_until(lambda: self.web_pods() - web0, 30, 0.2),
                        "pod-delete deleted nothing:\n" + self.env.logs())
        self.env.revoke(RUNNER_USER, "pods", "delete")
        rc, out, err = wait_proc(p, 120)
        self.assert_ended_with_403(run_id, rc, out, err, "delete")

    def test_403_to_delegate_watch_mid_run_ends_run_and_cleans_up(self):
        """(c) a 403 in mid-run - the delegate loses `watch pods` and its
        watch is cut - ends the run with a clear reason, and everything is
        still cleaned up (delete and get remain)."""
        self.start()
        before = {r["run_id"] for r in self.app.runs()}
        p = self.app.run_async(self.app.write("w.yaml", k8s_experiment(
            "k8s-403w", duration="20s", interval="1s", probe=False)))
        run_id = self.env.new_run_id(before)
        self.env.wait_runner_pod(run_id, phase="Running")
        self.assertTrue(self.app.wait_run(lambda r: r["run_id"] == run_id and
                                          r["state"] == "RUNNING", 30))
        self.env.revoke("cep-delegate", "pods", "watch")
        self.env.api.control("drop-watches", {})
        rc, out, err = wait_proc(p, 120)
        self.assert_ended_with_403(run_id, rc, out, err, "watch")

    def assert_ended_with_403(self, run_id, rc, out, err, verb):
        self.assertIn(rc, (1, 2), out + err)
        runs = {r["run_id"]: r for r in self.app.runs()}
        self.assertIn(runs[run_id]["state"], ("FAILED", "ERROR"), json.dumps(runs[run_id]))
        reason = runs[run_id]["reason"]
        self.assertRegex(reason, r"403|[Ff]orbidden", reason)
        self.assertIn(verb, reason)
        self.assert_no_cep_objects()
        self.assert_no_runner_procs()


class ApiServerErrors(KubeCase):
    def test_429_and_500_one_call_in_five_runs_complete(self):
        """(d) with the API server answering 429 or 500 to one call in five,
        runs still complete (Pass) and clean up."""
        self.start()
        self.env.faults(rate=0.2, codes=[429, 500], retryAfter=1)
        try:
            for i in range(2):
                r = self.app.cepctl("run", self.app.write(f"e{i}.yaml", k8s_experiment(
                    f"k8s-flaky-{i}", duration="8s")), timeout=180)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.env.logs())
                self.assertIn("verdict: Pass", r.stdout)
            injected = self.env.stats().get("injected", 0)
        finally:
            self.env.faults(rate=0)
        self.assertGreater(injected, 0, "no error was injected: the test proves nothing")
        self.assert_no_cep_objects()


class Demo(unittest.TestCase):
    def test_demo_kubernetes_passes_and_leaves_nothing(self):
        """(e) `cepctl demo --kubernetes` passes and shows zero leftovers."""
        r = run_cepctl_kube_demo()
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out)
        self.assertIn("verdict: Pass", r.stdout)
        self.assertRegex(r.stdout, r"runner pod demo/cep-runner-\S+ created")
        self.assertRegex(r.stdout, r"runner pod demo/cep-runner-\S+ removed")
        self.assertRegex(r.stdout, r"secret demo/cep-runner-\S+ created \(owned by Pod")
        self.assertRegex(r.stdout, r"pod demo/web-\S+ (being deleted|removed)")
        self.assertIn("none: the run left nothing in the cluster", r.stdout)
        self.assertIn("stopped relay, delegate and the Kubernetes API test server", r.stdout)
        self.assertNotIn(CEP_SELECTOR + "\n   left:", r.stdout)


if __name__ == "__main__":
    unittest.main()
