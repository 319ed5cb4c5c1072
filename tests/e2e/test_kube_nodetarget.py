"""Node-level hogs on a Kubernetes node (no pod): the real relay, delegate,
runner and cepctl against the Kubernetes API test server. The runner Pod
is placed on the node named (nodeName, hostPID, the node's cgroupfs) and
the hog's workers run in a cgroup the fault makes under the node's cgroup
v2 root, cep-node-<run>-<fault>, outside every pod.

What is checked is read from outside: the runner Pod as kubectl returns
it; the cgroup directory and the processes in its cgroup.procs (their
comm is the hog's worker name) while chaos lasts; the directory gone
after, also after kill -9 of the runner (its workers die with it, the
cleanup runner removes the directory); nothing with the cep labels left.
Needs root (cgroups).
"""
import glob
import json
import os
import signal
import unittest

import test_kube_podtarget as kp
from cep_e2e import wait_until
from kube_e2e import CONNECTOR, NS, KubeEnv, rbac_rules, wait_proc


POOL = "cep-e2e/pool"   # the label a nodeSelector hog's node carries


def experiment(name, fault, duration, extra="", target="node: node-2"):
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
    - name: burn
      type: {fault}
      {target}
{extra}"""


def node_cgroups(run_id):
    """The run's node cgroups, under the v2 root (unified on hybrid hosts)."""
    return sorted(glob.glob(f"/sys/fs/cgroup/cep-node-{run_id}-*") +
                  glob.glob(f"/sys/fs/cgroup/unified/cep-node-{run_id}-*"))


def procs_of(cg):
    try:
        with open(os.path.join(cg, "cgroup.procs")) as f:
            return {int(x) for x in f.read().split()}
    except OSError:
        return set()


def comm(pid):
    """The name of a live process (None once it is gone or a zombie, which
    holds nothing: whoever inherited it reaps it when it likes)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    name, state = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2]
    return None if state in "ZX" else name


class NodeTargetCase(kp.PodTargetCase):
    runner_faults = ("cpu-hog", "memory-hog", "io-stress")
    runner_pids = kp.RunnerKilledOnPod.runner_pids
    delegate_lines = kp.RunnerKilledOnPod.delegate_lines

    def setUp(self):
        if os.geteuid() != 0:
            raise AssertionError("needs root: cgroups")
        self.env = KubeEnv(self.id().rsplit(".", 1)[-1][:20],
                           runner_rules=rbac_rules("runner", self.runner_faults))
        self.addCleanup(self.env.close)
        self.app = self.env.app
        self.app.start_all()

    def start(self, fault, duration, extra="", target="node: node-2"):
        before = {r["run_id"] for r in self.app.runs()}
        p = self.app.run_async(self.app.write(f"{fault}.yaml",
                                              experiment(fault, fault, duration, extra, target)))
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.communicate()))
        return p, self.env.new_run_id(before)

    def workers(self, run_id, name):
        """(cgroup, its processes) once a worker named name is in it."""
        def seen():
            for cg in node_cgroups(run_id):
                pids = procs_of(cg)
                if pids and all(comm(x) == name for x in pids):
                    return cg, pids
            return None
        got = wait_until(seen, 60, 0.2)
        self.assertTrue(got, f"no {name} worker in a node cgroup:\n" + self.env.logs())
        return got

    def assert_placed(self, run_id, hostpaths):
        pod = self.env.kubectl_json("get", "pod", f"cep-runner-{run_id}", "-n", NS)
        spec = pod["spec"]
        text = json.dumps(spec, indent=1)
        self.assertEqual(spec.get("nodeName"), "node-2", text)
        if self.env.kubectl_json("get", "node", "node-2")["metadata"].get(
                "labels", {}).get(POOL):
            self.assertEqual(spec.get("nodeSelector"), {POOL: "hogs"}, text)
        self.assertIs(spec.get("hostPID"), True, text)
        self.assertEqual(spec["containers"][0]["securityContext"]["runAsUser"], 0, text)
        vols = [v for v in spec.get("volumes", []) if "hostPath" in v]
        self.assertEqual([v["hostPath"]["path"] for v in vols], hostpaths, text)

    def label_node_2(self):
        """node-2 alone carries POOL=hogs: a nodeSelector of it can only
        be placed there (the test server's scheduler would take node-1)."""
        self.env.kubectl("label", "node", "node-2", f"{POOL}=hogs")

    def check_hog(self, fault, name, extra, hostpaths=("/sys/fs/cgroup",),
                  target="node: node-2"):
        p, run_id = self.start(fault, "8s", extra, target)
        cg, pids = self.workers(run_id, name)
        self.assert_placed(run_id, list(hostpaths))
        # outside every pod: a direct child of the node's v2 root
        self.assertIn(os.path.dirname(cg), ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"))
        self.assertTrue(os.path.basename(cg).endswith("-burn"), cg)
        rc, out, err = wait_proc(p, 120)
        run = {r["run_id"]: r for r in self.app.runs()}[run_id]
        text = f"rc {rc}\n{out}{err}\n{json.dumps(run)}\n" + self.env.logs()
        self.assertEqual(run["state"], "PASSED", text)
        self.assertEqual(node_cgroups(run_id), [], text)
        self.assertEqual([x for x in pids if comm(x) == name], [], text)
        self.assert_nothing_left()


class NodeHogs(NodeTargetCase):
    def test_cpu_hog_in_a_node_cgroup_then_removed(self):
        self.check_hog("cpu-hog", "cep-cpu-hog", "      workers: 2\n      load: 30\n")

    def test_memory_hog_in_a_node_cgroup_then_removed(self):
        self.check_hog("memory-hog", "cep-mem-hog", "      mib: 16\n")

    def test_io_stress_on_the_nodes_filesystem_then_removed(self):
        self.check_hog("io-stress", "cep-io-stress",
                       "      workers: 1\n      fileMiB: 4\n      writeKiB: 64\n"
                       "      path: /tmp\n",
                       # the node's directory, mounted for the writers
                       ("/sys/fs/cgroup", "/tmp"))

    def test_cpu_hog_on_a_node_chosen_by_node_selector(self):
        """nodeSelector: the runner Pod carries it, the scheduler puts it
        on the one labelled node (assert_placed: node-2), the workers run
        in that node's own cgroup and are gone after."""
        self.label_node_2()
        self.check_hog("cpu-hog", "cep-cpu-hog", "      workers: 1\n",
                       target=f'nodeSelector: "{POOL}=hogs"')

    def test_node_hog_over_the_policys_limits_refused(self):
        """A node's own resources are capped like the host's
        (policy.maxCpuWorkers): refused at Submit, nothing created."""
        r = self.app.cepctl("run", self.app.write("big.yaml", experiment(
            "big", "cpu-hog", "8s", "      workers: 256\n")))
        text = r.stdout + r.stderr
        self.assertNotEqual(r.returncode, 0, text)
        self.assertIn('policy: fault "burn" (cpu-hog) asks workers 256, exceeds '
                      'policy.maxCpuWorkers', text)
        self.assert_nothing_left()


class NodeHogRunnerKilled(NodeTargetCase):
    def test_kill9_workers_die_and_cleanup_runner_removes_the_cgroup(self):
        self.kill9_case("node: node-2")

    def test_kill9_on_a_node_chosen_by_node_selector(self):
        """The delegate learns the node from the scheduled Pod and sends
        the cleanup runner there."""
        self.label_node_2()
        self.kill9_case(f'nodeSelector: "{POOL}=hogs"')

    def kill9_case(self, target):
        p, run_id = self.start("cpu-hog", "4m", "      workers: 2\n", target)
        cg, pids = self.workers(run_id, "cep-cpu-hog")
        runners = self.runner_pids(run_id)
        self.assertEqual(len(runners), 1, f"runner processes: {runners}\n" + self.env.logs())
        os.kill(runners[0], signal.SIGKILL)
        rc, out, err = wait_proc(p, 240)
        run = {r["run_id"]: r for r in self.app.runs()}[run_id]
        text = f"rc {rc}\n{out}{err}\n{json.dumps(run)}\n" + self.env.logs()
        self.assertEqual(run["state"], "ERROR", text)
        self.assertNotIn("cleanup incomplete", run["reason"], text)
        self.assertEqual([x for x in pids if comm(x) == "cep-cpu-hog"], [], text)
        self.assertEqual(node_cgroups(run_id), [], text)
        self.assertTrue(any("fault burn undone by the cleanup runner" in ln
                            for ln in self.delegate_lines(run_id)), text)
        self.assert_nothing_left()
        self.assertEqual(self.runner_pids(run_id) + self.runner_pids(run_id, True), [])


if __name__ == "__main__":
    unittest.main()
