#!/usr/bin/env python3
"""run.py - the kill -9 campaign with exact accounting (issue 13, item 4).

    tests/campaign/run.py --rounds 100 [--seed S] [--bin build/bin]
    tests/campaign/run.py --seed S --first-round R --rounds 1     # replay round R

One site (the reference control plane, tests/e2e/cp_e2e.Site), one appliance
(the real cep-relay and cep-delegate started as tests/e2e do) with a
Kubernetes connector to the API test server (tests/e2e/kube_e2e.KubeEnv,
whose kubelet runs the real cep-runner). Each round submits, through the
plane, a host run carrying 1-3 node faults (tests/campaign/targets.py) and a
Kubernetes run (pod-delete or deployment-scale), then kill -9s one or two of
relay, delegate, a runner and the plane at random moments, restarting each
after a random pause (as systemd's Restart= would; a killed runner is not
restarted: the delegate ends its run). Once every run is final it counts,
from outside cep's own journal (accounting.py): events lost, events
delivered twice, runs without a final state, and fault traces left on the
targets (nft tables, qdiscs, cgroup hogs, worker processes, files,
Kubernetes objects with cep labels, the deployment's replicas). At the end
secrets_scan.py scans every log, journal, spool and report for the secrets
used. Prints the counts and the total time; exits 1 if a must-be-0 count
is not 0. Needs root (namespaces, cgroups, tmpfs); exits 77 otherwise.
"""
import argparse
import os
import random
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--first-round", type=int, default=0, help="to replay: the first round's number")
    seed = os.environ.get("CEP_CAMPAIGN_SEED")
    ap.add_argument("--seed", type=int, default=int(seed) if seed else None,
                    help="default: $CEP_CAMPAIGN_SEED, else from the clock (printed)")
    ap.add_argument("--bin", default=os.environ.get("CEP_BIN_DIR", os.path.join(SRC, "build", "bin")))
    ap.add_argument("--kube-share", type=float, default=1.0,
                    help="fraction of rounds with a Kubernetes run as well")
    ap.add_argument("--keep", action="store_true", help="keep the homes (printed) at the end")
    ap.add_argument("--artifacts", default=None,
                    help="where the logs of a round with a non-zero count go "
                         "(default: a new folder under /tmp, printed)")
    return ap.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    os.environ["CEP_BIN_DIR"] = os.path.abspath(ARGS.bin)
sys.path.insert(0, os.path.join(SRC, "tests", "e2e"))
sys.path.insert(0, HERE)

import cp_e2e  # noqa: E402
from cep_e2e import experiment, wait_until  # noqa: E402
from kube_e2e import CONNECTOR, NS, KubeEnv, rbac_rules  # noqa: E402
import accounting  # noqa: E402
import secrets_scan  # noqa: E402
from targets import HostTargets  # noqa: E402

FINAL = ("PASSED", "FAILED", "ABORTED", "ERROR")
VICTIMS = ("relay", "delegate", "runner", "plane")
TICKS = {"name": "tick", "type": "cmd", "mode": "continuous", "command": ["true"],
         "interval": "200ms"}
WEB_REPLICAS = 3


def kube_spec(name, rng):
    """pod-delete on app=web, or deployment-scale of web to 1 (the delegate
    restores the replicas if the runner dies)."""
    if rng.random() < 0.5:
        fault = ("    - name: web-pods\n      type: pod-delete\n      labelSelector: app=web\n"
                 "      count: 1\n      interval: 1s\n")
    else:
        fault = ("    - name: web-down\n      type: deployment-scale\n      deployment: web\n"
                 "      replicas: 1\n")
    return (f"apiVersion: cep.io/v1\nkind: Experiment\nmetadata:\n  name: {name}\nspec:\n"
            f"  target:\n    kind: kubernetes\n    connector: {CONNECTOR}\n    namespace: {NS}\n"
            f"  duration: {rng.choice(('3s', '4s', '5s'))}\n  deadman: 5s\n  faults:\n{fault}")


class Campaign:
    def __init__(self, seed, kube_share, artifacts):
        self.seed, self.kube_share, self.artifacts = seed, kube_share, artifacts
        self.counts = accounting.Counts()
        self.host = self.site = self.kube = self.app = None
        # the plane's bearer token, marked so that the scan and a reader see it
        cp_e2e.TOKEN = "t-campaign-" + os.urandom(12).hex()
        self.host = HostTargets("cmp")
        self.site = cp_e2e.Site(lease_ms=10000)
        self.app = self.site.appliance("camp", start=False, max_runs=4)
        self.kube = KubeEnv("campaign", app=self.app,
                            delegate_rules=rbac_rules("delegate", ("deployment-scale",)),
                            runner_rules=rbac_rules("runner", ("pod-delete", "deployment-scale")))
        pods = os.path.join(self.kube.dir, "kubelet", "pods", "*", "volumes")
        self.identities = secrets_scan.IdentityWatch(
            self.app.home, [os.path.join(pods, "**"), os.path.join(pods, "..serviceaccount", "token")])
        self.app.start_all()
        self.site.wait_registered("camp")
        self.kube.create_web(WEB_REPLICAS)
        self.run_ids = set()

    # -- processes ----------------------------------------------------------
    def runner_pids(self):
        return self.app.runner_pids() + self.kube.runner_pids()

    def mine(self, cmd):
        """A fault worker of this appliance: its command line names the home
        or one of its runs (workers are forked from the runner)."""
        return any(self.app.home in a for a in cmd) or \
            any(a in self.run_ids for a in cmd)

    def check_alive(self, r):
        """A daemon that died without being killed crashed: count, restart."""
        for name in ("relay", "delegate"):
            p = self.app.procs.get(name)
            if p is not None and p.poll() is not None:
                self.counts.crash(r, f"cep-{name} exited with {p.returncode}")
                self.app.procs.pop(name)
                self.app.start(name)
        if self.site.cp.proc is not None and self.site.cp.proc.poll() is not None:
            self.counts.crash(r, f"control plane exited with {self.site.cp.proc.returncode}")
            self.site.cp.proc = None
            self.site.cp.log.close()
            self.site.cp.start()

    def kill(self, r, victim, pause, rng):
        self.check_alive(r)
        if victim == "runner":
            pids = self.runner_pids()
            if not pids:
                self.counts.note_kill(r, "runner (none alive)")
                return
            os.kill(rng.choice(sorted(pids)), 9)
            self.counts.note_kill(r, "runner")
            return
        if victim == "plane":
            self.site.cp.kill9()
        else:
            self.app.kill9(victim)
        self.counts.note_kill(r, victim)
        time.sleep(pause)
        if victim == "plane":
            self.site.cp.start()
        else:
            self.app.start(victim)

    # -- one round ----------------------------------------------------------
    def round(self, r):
        rng = random.Random(f"{self.seed}:{r}")
        faults = rng.sample(self.host.faults(), rng.randint(1, 3))
        name = f"r{r}-host"
        tids = [self.site.submit(experiment(name, duration=rng.choice(("3s", "4s", "5s")),
                                            deadman="2s", faults=faults, probes=[TICKS]), name)]
        if rng.random() < self.kube_share:
            tids.append(self.site.submit(kube_spec(f"r{r}-kube", rng), f"r{r}-kube"))
        plan = sorted((rng.uniform(0.0, 5.0), rng.choice(VICTIMS), rng.uniform(0.0, 2.0))
                      for _ in range(rng.randint(1, 2)))
        # the moments are counted from when a run of the round is running:
        # from the plane's queue to a runner's launch takes a variable time
        wait_until(lambda: any(x.get("task_id") in tids and x["state"] == "RUNNING"
                               for x in self.app.runs()), 30, 0.05)
        t0 = time.monotonic()
        print(f"round {r}: faults {[f['type'] for f in faults]}, kills " +
              ", ".join(f"{v}@{at:.2f}s+{p:.2f}s" for at, v, p in plan), flush=True)
        for at, victim, pause in plan:
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            self.kill(r, victim, pause, rng)
        self.check_alive(r)
        before = len(self.counts.detail)
        self.settle(r, tids)
        if len(self.counts.detail) != before:
            self.keep_logs(r)

    def keep_logs(self, r):
        """The logs of a round that counted something, for a look (they hold
        no secret: the scan checks the same files)."""
        d = os.path.join(self.artifacts, f"round-{r}")
        shutil.copytree(os.path.join(self.app.home, "log"), d, dirs_exist_ok=True)
        shutil.copy(os.path.join(self.site.cp.dir, "cp.log"), d)
        print(f"  round {r}: logs kept in {d}", flush=True)

    def settle(self, r, tids):
        """Wait for the round's tasks and runs to end, then count."""
        ended = wait_until(lambda: all(self.site.tasks().get(t, {}).get("state") in ("done", "failed")
                                       for t in tids), 180, 0.5)
        tasks = self.site.tasks()
        runs = [x for x in self.app.runs() if x.get("task_id") in tids]
        self.run_ids |= {x["run_id"] for x in runs}
        if not ended:
            self.counts.unfinished(r, [f"task {t} {tasks.get(t, {}).get('state')}" for t in tids
                                       if tasks.get(t, {}).get("state") not in ("done", "failed")])
        final = wait_until(lambda: all(x["state"] in FINAL for x in self.app.runs()
                                       if x["run_id"] in {y["run_id"] for y in runs}), 60, 0.5)
        if not final:
            self.counts.unfinished(r, [f"run {x['run_id']} {x['state']}" for x in self.app.runs()
                                       if x["run_id"] in {y["run_id"] for y in runs}
                                       and x["state"] not in FINAL])
        # the plane must hold the final state the appliance has (ReportRun)
        agree = wait_until(lambda: not self.plane_disagrees(tids), 30, 0.5)
        if not agree:
            self.counts.unfinished(r, self.plane_disagrees(tids))
        for x in self.app.runs():
            if x["run_id"] in {y["run_id"] for y in runs}:
                self.counts.run(x)
                accounting.count_events(self.counts, r, self.site, self.app, x)
        self.faults_left(r)

    def plane_disagrees(self, tids):
        """Runs whose final state at the plane is not the appliance's."""
        tasks = self.site.tasks()
        states = {x["run_id"]: x["state"] for x in self.app.runs()}
        return [f"run {t['run_id']} {states.get(t['run_id'])} at the appliance, "
                f"{t.get('run_state') or 'no state'} at the plane"
                for t in (tasks.get(i, {}) for i in tids)
                if t.get("run_id") in states and t.get("run_state") != states[t["run_id"]]]

    def faults_left(self, r):
        def left():
            out = self.host.leftovers(self.runner_pids(), self.mine)
            objs = self.kube.cep_objects()
            if objs:
                out["kubernetes objects"] = [f"{o['kind']} {o['metadata']['name']}" for o in objs]
            dep = self.kube.kubectl_json("get", "deployment", "web", "-n", NS)
            if dep["spec"].get("replicas") != WEB_REPLICAS:
                out["deployment replicas"] = [dep["spec"].get("replicas")]
            return out
        # the delegate undoes before it journals the final state; the pod's
        # deletion and worker exits may trail by a moment
        if wait_until(lambda: not left(), 30, 0.5):
            return
        found = left()
        self.counts.left(r, found)
        self.host.scrub(self.mine)
        for o in self.kube.cep_objects():
            self.kube.kubectl("delete", o["kind"].lower(), o["metadata"]["name"], "-n",
                              o["metadata"]["namespace"], check=False)
        self.kube.kubectl("scale", "deployment", "web", "-n", NS, f"--replicas={WEB_REPLICAS}",
                          check=False)
        for p in self.runner_pids():
            os.kill(p, 9)

    def scan(self):
        dirs = [self.app.home, self.site.dir, self.kube.tmp]
        return secrets_scan.scan(dirs, extra=self.identities.secrets(),
                                 key_dirs=[self.app.home], modes=self.identities.modes())

    def close(self, keep):
        self.identities.stop()
        if keep:
            print("kept:", self.app.home, self.site.dir, self.kube.tmp)
            for name in list(self.app.procs):
                self.app.stop(name)
            self.site.cp.stop()
            self.kube.api.stop()
        else:
            for obj in (self.kube, self.site):
                if obj is not None:
                    obj.close()
        if self.host is not None:
            self.host.close()


def main():
    if os.geteuid() != 0:
        print("campaign: needs root (network namespaces, cgroups, tmpfs)")
        return 77
    seed = ARGS.seed if ARGS.seed is not None else time.time_ns() % 1000000
    print(f"campaign: seed {seed}, rounds {ARGS.first_round}..{ARGS.first_round + ARGS.rounds - 1}, "
          f"binaries {os.environ['CEP_BIN_DIR']}", flush=True)
    t0 = time.monotonic()
    artifacts = ARGS.artifacts or tempfile.mkdtemp(prefix=f"cep-campaign-{seed}-")
    c = Campaign(seed, ARGS.kube_share, artifacts)
    try:
        for r in range(ARGS.first_round, ARGS.first_round + ARGS.rounds):
            c.round(r)
        scan = c.scan()
    finally:
        c.close(ARGS.keep)
    total = time.monotonic() - t0
    bad = c.counts.report(seed, ARGS.rounds, total)
    bad += secrets_scan.report(scan)
    print(f"campaign: {'FAILED' if bad else 'ok'}, total time {total:.0f} s (seed {seed})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
