"""Node-level faults on a Kubernetes pod target: the real relay, delegate,
runner and cepctl against the Kubernetes API test server, whose kubelet
runs the target pod in its own network namespace (the pod sandbox's) and
a cgroup named after the containerID it reports (tests/kubeapi/sandbox.py).

What is checked is what the system did, read from outside it: the runner
Pod as kubectl returns it (nodeName = the target's node, hostPID, uid 0
with exactly NET_ADMIN, SYS_ADMIN, SYS_PTRACE added, ALL dropped, not
privileged); the nftables ruleset *inside the target's network namespace*
(nsenter --net=/proc/PID/ns/net nft), where PID is found through the
target's cgroup as kubectl reports its containerID; and nothing carrying
the cep labels left. Needs root (namespaces, nftables, cgroups).
"""
import json
import os
import signal
import subprocess
import threading
import unittest

from cep_e2e import procs, wait_until
from kube_e2e import CONNECTOR, NS, KubeEnv, rbac_rules, wait_proc

TARGET_IMAGE = "cep.io/target:e2e"


def experiment(name, pod, duration, target=None):
    """target: the fault's target lines (default `pod: POD`)."""
    target = target or f"pod: {pod}"
    return f"""apiVersion: cep.io/v1
kind: Experiment
metadata:
  name: {name}
spec:
  target:
    kind: kubernetes
    connector: {CONNECTOR}
    namespace: {NS}
  duration: {duration}
  deadman: 10s
  faults:
    - name: cut
      type: network-loss
      {target}
      percent: 100
"""


class PodTargetCase(unittest.TestCase):
    runner_faults = ("network-loss",)   # what `cepctl rbac --faults` grants

    def setUp(self):
        if os.geteuid() != 0:
            raise AssertionError("needs root: network namespaces, nftables, cgroups")
        self.env = KubeEnv(self.id().rsplit(".", 1)[-1][:20],
                           runner_rules=rbac_rules("runner", self.runner_faults),
                           exec_images={TARGET_IMAGE: "/bin/sleep"},
                           pod_netns=[TARGET_IMAGE])
        self.addCleanup(self.env.close)
        self.app = self.env.app
        self.app.start_all()
        self.pod = self.start_target()

    def start_target(self):
        return self.start_pod("web-0", "node-2", {"app": "web"})

    def start_pod(self, name, node, labels):
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": NS, "labels": labels},
               "spec": {"nodeName": node,
                        "containers": [{"name": "web", "image": TARGET_IMAGE,
                                        "args": ["3600"]}]}}
        self.env.kubectl("create", "-f", "-", stdin=json.dumps(pod))
        ok = wait_until(lambda: self.target_obj(name)["status"].get("phase") == "Running",
                        30, 0.2)
        self.assertTrue(ok, f"pod {name} not Running:\n" + self.env.logs())
        # Running is reported as the container's process starts: give it
        # the moment it takes to join its cgroup
        self.assertTrue(wait_until(lambda: self.pod_pid(name), 10, 0.1),
                        f"no process in the cgroup of {name}:\n" + self.env.logs())
        return name

    # -- observing from outside ----------------------------------------
    def target_obj(self, name="web-0"):
        return self.env.kubectl_json("get", "pod", name, "-n", NS)

    def target_pid(self):
        return self.pod_pid("web-0")

    def pod_pid(self, name):
        """The pod's container's process: the one whose cgroup path ends
        in the containerID kubectl reports (an independent reading of what
        lib/ctrpid does)."""
        cid = self.target_obj(name)["status"]["containerStatuses"][0]["containerID"]
        hexid = cid.split("://", 1)[1]
        for pid in procs():
            try:
                with open(f"/proc/{pid}/cgroup") as f:
                    if any(ln.rstrip().endswith("/" + hexid) for ln in f):
                        return pid
            except OSError:
                continue
        return None

    def cep_tables(self, pid):
        r = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "nft", "-j", "list",
                            "tables"], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout) if r.stdout.strip() else {"nftables": []}
        return [x["table"]["name"] for x in doc["nftables"]
                if "table" in x and x["table"]["name"].startswith("cep_")]

    def host_cep_tables(self):
        r = subprocess.run(["nft", "-j", "list", "tables"], capture_output=True, text=True)
        doc = json.loads(r.stdout) if r.stdout.strip() else {"nftables": []}
        return {x["table"]["name"] for x in doc["nftables"] if "table" in x}

    def assert_runner_pod_placed(self, pod):
        spec = pod["spec"]
        text = json.dumps(spec, indent=1)
        self.assertEqual(spec.get("nodeName"), "node-2", text)
        self.assertIs(spec.get("hostPID"), True, text)
        self.assertEqual(spec.get("restartPolicy"), "Never", text)
        self.assertGreater(spec.get("activeDeadlineSeconds", 0), 0, text)
        sc = spec["containers"][0]["securityContext"]
        self.assertEqual(sorted(sc["capabilities"]["add"]),
                         ["NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE"], text)
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"], text)
        self.assertFalse(sc.get("privileged", False), text)
        self.assertFalse(sc["allowPrivilegeEscalation"], text)
        self.assertTrue(sc["readOnlyRootFilesystem"], text)
        self.assertEqual(sc["runAsUser"], 0, text)
        env = {e["name"]: e for e in spec["containers"][0]["env"]}
        self.assertEqual(env["CEP_NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
                         "spec.nodeName", text)

    def assert_nothing_left(self):
        ok, left = self.env.wait_no_cep_objects(30)
        self.assertTrue(ok, "objects carrying the cep labels are left:\n" +
                        json.dumps([(i["kind"], i["metadata"]["name"]) for i in left]))


class NetworkLossOnPod(PodTargetCase):
    def test_rule_in_the_pods_netns_and_reverted(self):
        pid = self.target_pid()
        self.assertIsNotNone(pid, "no process in the target's cgroup:\n" + self.env.logs())
        self.assertNotEqual(os.stat(f"/proc/{pid}/ns/net").st_ino,
                            os.stat("/proc/self/ns/net").st_ino,
                            "the test kubelet ran the target in the host's netns")
        host_before = self.host_cep_tables()
        before = {r["run_id"] for r in self.app.runs()}
        p = self.app.run_async(self.app.write("loss.yaml", experiment("loss", self.pod, "8s")))
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.communicate()))
        run_id = self.env.new_run_id(before)
        rpod, _ = self.env.wait_runner_pod(run_id, timeout=60)
        self.assert_runner_pod_placed(rpod)
        seen = wait_until(lambda: self.cep_tables(pid), 60, 0.2)
        self.assertTrue(seen, "no cep table in the target's netns:\n" + self.env.logs())
        self.assertEqual(self.host_cep_tables(), host_before, "a table in the host's netns")
        rc, out, err = wait_proc(p, 120)
        run = {r["run_id"]: r for r in self.app.runs()}[run_id]
        text = f"rc {rc}\n{out}{err}\n{json.dumps(run)}\n" + self.env.logs()
        self.assertEqual(run["state"], "PASSED", text)
        self.assertEqual(self.cep_tables(pid), [], text)
        self.assert_nothing_left()
        # the target lived through it, in the same container
        self.assertEqual(self.target_pid(), pid)


class RunnerKilledOnPod(PodTargetCase):
    def runner_pids(self, run_id, cleanup=False):
        """The run's cep-runner processes (CEP_RUN_ID in the environment
        the pod spec gave it); cleanup: those running --cleanup."""
        out = []
        for pid, (comm, cmd) in procs().items():
            if comm != "cep-runner" or ("--cleanup" in cmd) != cleanup:
                continue
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            if f"CEP_RUN_ID={run_id}".encode() in env:
                out.append(pid)
        return out

    def watch_cleanup_pod(self, run_id, seen, stop):
        """Keeps the cleanup runner's Pod as kubectl shows it (it lives
        for a second or two)."""
        while not stop.is_set():
            r = self.env.kubectl("get", "pod", f"cep-cleanup-{run_id}", "-n", NS, "-o",
                                 "json", check=False)
            if r.returncode == 0 and "pod" not in seen:
                seen["pod"] = json.loads(r.stdout)
            stop.wait(0.05)

    def delegate_lines(self, run_id):
        with open(os.path.join(self.app.home, "log", "delegate.log"), errors="replace") as f:
            return [ln for ln in f.read().splitlines() if run_id in ln]

    def test_kill9_cleanup_runner_undoes_in_the_pods_netns(self):
        pid = self.target_pid()
        self.assertIsNotNone(pid, "no process in the target's cgroup:\n" + self.env.logs())
        before = {r["run_id"] for r in self.app.runs()}
        p = self.app.run_async(self.app.write("loss.yaml", experiment("loss", self.pod, "4m")))
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.communicate()))
        run_id = self.env.new_run_id(before)
        self.assertTrue(wait_until(lambda: self.cep_tables(pid), 60, 0.2),
                        "no cep table in the target's netns:\n" + self.env.logs())
        seen, stop = {}, threading.Event()
        t = threading.Thread(target=self.watch_cleanup_pod, args=(run_id, seen, stop))
        t.start()
        self.addCleanup(lambda: (stop.set(), t.join()))
        pids = self.runner_pids(run_id)
        self.assertEqual(len(pids), 1, f"runner processes: {pids}\n" + self.env.logs())
        os.kill(pids[0], signal.SIGKILL)
        rc, out, err = wait_proc(p, 240)
        stop.set()
        t.join()
        run = {r["run_id"]: r for r in self.app.runs()}[run_id]
        text = f"rc {rc}\n{out}{err}\n{json.dumps(run)}\n" + self.env.logs()
        self.assertEqual(run["state"], "ERROR", text)
        self.assertNotIn("cleanup incomplete", run["reason"], text)
        # undone by the cleanup runner, in the pod's netns, on its node
        self.assertEqual(self.cep_tables(pid), [], text)
        lines = self.delegate_lines(run_id)
        self.assertTrue(any("undone by the cleanup runner" in ln for ln in lines), text)
        self.assertFalse(any("undone by the delegate" in ln for ln in lines), text)
        self.assertTrue(any("cleanup runner shop/cep-cleanup-" in ln and "node node-2" in ln
                            for ln in lines), text)
        self.assertIn("pod", seen, "the cleanup runner's pod was never seen\n" + text)
        self.assert_runner_pod_placed(seen["pod"])
        args = seen["pod"]["spec"]["containers"][0]["args"]
        self.assertEqual(args[:2], ["--cleanup", "/var/run/cep/identity/cleanup.json"])
        self.assert_nothing_left()
        self.assertEqual(self.runner_pids(run_id) + self.runner_pids(run_id, True), [])
        # the delegate (built with sanitizers in CI) ends clean after it
        rc = self.app.stop("delegate")
        with open(os.path.join(self.app.home, "log", "delegate.log"), errors="replace") as f:
            dlog = f.read()
        self.assertEqual(rc, 0, dlog[-3000:])
        self.assertNotIn("Sanitizer", dlog)

    def test_delegate_restarted_then_runner_killed(self):
        """The delegate is SIGKILLed and restarted mid-run: it adopts the
        run, reads the placement back from the runner Pod, and when the
        runner then dies its cleanup runner still goes to the pod's node."""
        pid = self.target_pid()
        before = {r["run_id"] for r in self.app.runs()}
        p = self.app.run_async(self.app.write("loss.yaml", experiment("loss", self.pod, "4m")))
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.communicate()))
        run_id = self.env.new_run_id(before)
        self.assertTrue(wait_until(lambda: self.cep_tables(pid), 60, 0.2), self.env.logs())
        d = self.app.procs.pop("delegate")
        d.kill()
        d.wait()
        self.app.start("delegate")
        self.app.wait_ready()
        self.assertTrue(wait_until(lambda: any("adopted runner pod" in ln and "runs on node node-2 (node-level faults)" in ln
                                               for ln in self.delegate_lines(run_id)),
                                   30, 0.2), self.env.logs())
        pids = self.runner_pids(run_id)
        self.assertEqual(len(pids), 1, self.env.logs())
        os.kill(pids[0], signal.SIGKILL)
        run = wait_until(lambda: next((r for r in self.app.runs() if r["run_id"] == run_id
                                       and r["state"] in ("ERROR", "PASSED", "FAILED")),
                                      None), 120, 0.3)
        text = json.dumps(run) + "\n" + self.env.logs()
        self.assertIsNotNone(run, text)
        self.assertEqual(run["state"], "ERROR", text)
        self.assertNotIn("cleanup incomplete", run["reason"], text)
        self.assertEqual(self.cep_tables(pid), [], text)
        self.assertTrue(any("fault cut undone by the cleanup runner" in ln
                            for ln in self.delegate_lines(run_id)), text)
        self.assert_nothing_left()

    def test_cleanup_runner_cannot_start_cleanup_incomplete(self):
        """The delegate loses `create pods` mid-run: no cleanup runner can
        start, the run ends ERROR "cleanup incomplete" naming the 403, and
        the table really is still in the pod's netns (not a silent pass)."""
        pid = self.target_pid()
        before = {r["run_id"] for r in self.app.runs()}
        p = self.app.run_async(self.app.write("loss.yaml", experiment("loss", self.pod, "4m")))
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.communicate()))
        run_id = self.env.new_run_id(before)
        self.assertTrue(wait_until(lambda: self.cep_tables(pid), 60, 0.2), self.env.logs())
        self.env.revoke("cep-delegate", "pods", "create")
        pids = self.runner_pids(run_id)
        self.assertEqual(len(pids), 1, self.env.logs())
        os.kill(pids[0], signal.SIGKILL)
        rc, out, err = wait_proc(p, 240)
        run = {r["run_id"]: r for r in self.app.runs()}[run_id]
        text = f"rc {rc}\n{out}{err}\n{json.dumps(run)}\n" + self.env.logs()
        self.assertEqual(run["state"], "ERROR", text)
        self.assertTrue(run["reason"].startswith("cleanup incomplete: left on the node: "
                                                 "cut (network-loss): create pods"), text)
        self.assertIn("403", run["reason"], text)
        self.assertIn("pods", run["reason"], text)
        self.assertEqual(len(self.cep_tables(pid)), 1, text)
        lines = self.delegate_lines(run_id)
        self.assertTrue(any("fault cut: not undone by the cleanup runner" in ln
                            for ln in lines), text)
        self.assertFalse(any("fault cut undone by" in ln for ln in lines), text)
        self.assert_nothing_left()


if __name__ == "__main__":
    unittest.main()
