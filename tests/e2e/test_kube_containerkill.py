"""container-kill on a Kubernetes pod target: the real relay, delegate,
runner and cepctl against the Kubernetes API test server, whose kubelet
restarts a container that died (restartPolicy Always) under a new
containerID and counts it in restartCount.

Read from outside: the target container's process (found through its
cgroup as kubectl reports its containerID) is killed, the container
comes back as another process, restartCount goes up; the run passes and
leaves nothing with the cep labels. Needs root, like test_kube_podtarget.
"""
import json
import unittest

import test_kube_podtarget as kp
from cep_e2e import wait_until
from kube_e2e import CONNECTOR, NS, wait_proc


def experiment(extra=""):
    return f"""apiVersion: cep.io/v1
kind: Experiment
metadata:
  name: ck
spec:
  target:
    kind: kubernetes
    connector: {CONNECTOR}
    namespace: {NS}
  duration: 8s
  deadman: 10s
  faults:
    - name: kill
      type: container-kill
      pod: web-0
      container: web
      interval: 3s
{extra}"""


class ContainerKillCase(kp.PodTargetCase):
    runner_faults = ("container-kill",)

    def restarts(self):
        return self.target_obj()["status"]["containerStatuses"][0].get("restartCount", 0)

    def check_killed_and_restarted(self, p, run_id, before):
        ok = wait_until(lambda: self.restarts() > before, 60, 0.2)
        self.assertTrue(ok, "restartCount did not go up:\n" + self.env.logs())
        rc, out, err = wait_proc(p, 120)
        run = {r["run_id"]: r for r in self.app.runs()}[run_id]
        text = f"rc {rc}\n{out}{err}\n{json.dumps(run)}\n" + self.env.logs()
        self.assertEqual(run["state"], "PASSED", text)
        # back, as another process of another container id
        self.assertTrue(wait_until(lambda: self.target_obj()["status"]["containerStatuses"][0]
                                   .get("state", {}).get("running"), 60, 0.2), text)
        new = wait_until(self.target_pid, 20, 0.2)
        self.assertIsNotNone(new, text)
        self.assertGreater(self.restarts(), before, text)
        self.assert_nothing_left()
        return text


class ContainerKill(ContainerKillCase):
    def test_container_killed_and_restarted_by_its_kubelet(self):
        old = self.target_pid()
        before_runs = {r["run_id"] for r in self.app.runs()}
        before = self.restarts()
        p = self.app.run_async(self.app.write("ck.yaml", experiment()))
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.communicate()))
        run_id = self.env.new_run_id(before_runs)
        gone = wait_until(lambda: self.target_pid() != old, 60, 0.2)
        self.assertTrue(gone, "the container's process was not killed:\n" + self.env.logs())
        rpod, _ = self.env.wait_runner_pod(run_id, timeout=60)
        caps = rpod["spec"]["containers"][0]["securityContext"]["capabilities"]["add"]
        self.assertEqual(sorted(caps), ["KILL", "SYS_PTRACE"], json.dumps(rpod["spec"]))
        self.assertEqual(rpod["spec"].get("nodeName"), "node-2")
        text = self.check_killed_and_restarted(p, run_id, before)
        # the runner's rounds, as its pod log has them
        self.assertIn("kill: round 1: SIGKILL to pid", self.env.logs(), text)


if __name__ == "__main__":
    unittest.main()
