#!/usr/bin/env python3
"""runner_footprint - what one host runner costs (issue 12, item 2).

Starts cep-relay and cep-delegate in a scratch home (tests/e2e/cep_e2e.py),
runs a short host experiment (a 10% cpu-hog and a cmd probe) `runs` times
one after the other, and prints for each: the runner's RSS at steady state
(median of samples every 50 ms over the last three quarters of its life,
the first quarter being start-up) and its peak, its threads, and the times exec -> identity proven -> assignment
received, from the log timestamps (ms): the delegate's "runner started:
pid" line (just after fork+exec), the runner's "identity proven to the
relay" and "running <name>" (logged once the assignment is in and the
session started). Also the size of the cep-runner binary. Prints figures;
never fails on speed.

--kube: the same for a runner Pod of the Kubernetes API test server
(tests/kubeapi; its kubelet runs the real cep-runner as a process; root,
kubectl): a pod-delete experiment with a k8s probe (tests/e2e/kube_e2e.py).
"Exec" is then the runner's own first log line ("cep-runner ... starting",
in the pod's log), and launch -> start is printed apart: from the
delegate's "runner pod ... launching" line (the Pod created) to it.

    CEP_BIN_DIR=build-rel/bin python3 tests/bench/runner_footprint.py [--kube] [runs]
"""
import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import cep_e2e  # noqa: E402

kube_e2e = None  # imported by --kube only (it needs the kubeapi harness)

EXP = cep_e2e.experiment(
    "footprint", duration="4s", deadman="3s",
    faults=[{"name": "hog", "type": "cpu-hog", "workers": 1, "load": "10%",
             "duration": "3s"}],
    probes=[{"name": "true", "type": "cmd", "mode": "continuous",
             "command": ["/bin/true"], "interval": "1s", "timeout": "2s"}])

TS = re.compile(r"^ts=(\S+)Z ")


def ts_ms(line):
    m = TS.match(line)
    if not m:
        return None
    t = time.strptime(m.group(1).split(".")[0], "%Y-%m-%dT%H:%M:%S")
    return (time.mktime(t) - time.timezone) * 1000 + int(m.group(1).split(".")[1])


def first(path, needle, run_id=None):
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if needle in line and (run_id is None or run_id in line):
                    return ts_ms(line)
    except OSError:
        pass
    return None


def status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except OSError:
        return None
    if "VmRSS" not in out:  # a zombie: the runner has exited
        return None
    return int(out["VmRSS"].split()[0]), int(out["Threads"])


def sample(pid):
    """(rss KiB, threads) every 50 ms until the process is gone."""
    samples = []
    while True:
        st = status(pid)
        if st is None:
            break
        samples.append(st)
        time.sleep(0.05)
    return samples


def figures(samples, t_exec, t_proven, t_asg, run_id):
    steady = samples[len(samples) // 4:]
    return {
        "rss_mib": statistics.median(s[0] for s in steady) / 1024 if steady else 0,
        "peak_mib": max(s[0] for s in samples) / 1024 if samples else 0,
        "threads": max(s[1] for s in samples) if samples else 0,
        "proven_ms": (t_proven - t_exec) if t_exec and t_proven else None,
        "asg_ms": (t_asg - t_exec) if t_exec and t_asg else None,
        "run_id": run_id,
    }


def one_run(app, exp_path):
    before = set(app.runner_pids())
    p = app.run_async(exp_path)
    pid = cep_e2e.wait_until(lambda: next(iter(set(app.runner_pids()) - before), None), 30, 0.005)
    if pid is None:
        p.wait(60)
        raise AssertionError("no runner appeared:\n" + app.logs())
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmd = f.read().split(b"\0")
    run_id = cmd[cmd.index(b"--run-id") + 1].decode()
    samples = sample(pid)
    p.wait(60)
    runlog = os.path.join(app.home, "state", "runs", run_id, "runner.log")
    t_exec = first(os.path.join(app.home, "log", "delegate.log"), "runner started: pid", run_id)
    t_proven = first(runlog, "identity proven to the relay")
    t_asg = first(runlog, "running ")
    return figures(samples, t_exec, t_proven, t_asg, run_id)


def kube_runner_pid(env):
    """The cep-runner the test server's kubelet runs (its environment
    names the server's port)."""
    mark = f"KUBERNETES_SERVICE_PORT={env.port}".encode()
    for pid, (comm, _) in cep_e2e.procs().items():
        if comm != "cep-runner":
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if mark in f.read().split(b"\0"):
                    return pid
        except OSError:
            pass
    return None


def one_kube_run(env, exp_path):
    before = {r["run_id"] for r in env.app.runs()}
    p = env.app.run_async(exp_path)
    run_id = env.new_run_id(before)
    pid = cep_e2e.wait_until(lambda: kube_runner_pid(env), 60, 0.005)
    if pid is None:
        p.wait(120)
        raise AssertionError("no runner pod process appeared:\n" + env.logs())
    samples = sample(pid)
    p.wait(120)
    podlog = os.path.join(env.dir, "pods", f"{kube_e2e.NS}_cep-runner-{run_id}.log")
    t_launch = first(os.path.join(env.app.home, "log", "delegate.log"), "launching on connector",
                     run_id)
    t_start = first(podlog, "starting, relay")
    r = figures(samples, t_start, first(podlog, "identity proven to the relay"),
                first(podlog, "running "), run_id)
    r["launch_ms"] = (t_start - t_launch) if t_launch and t_start else None
    return r


def ms(v):
    return "?" if v is None else f"{v:.0f}"


def report(label, res):
    for r in res:
        extra = f", pod launch -> runner start {ms(r['launch_ms'])} ms" if "launch_ms" in r else ""
        print(f"{label} {r['run_id']}: RSS steady {r['rss_mib']:.1f} MiB (peak "
              f"{r['peak_mib']:.1f}), threads {r['threads']}, exec -> proven "
              f"{ms(r['proven_ms'])} ms, exec -> assignment {ms(r['asg_ms'])} ms{extra}")
    ok = [r for r in res if r["asg_ms"] is not None and r["proven_ms"] is not None]
    if ok:
        print(f"{label} median of {len(ok)}: RSS {statistics.median(r['rss_mib'] for r in ok):.1f}"
              f" MiB, threads {statistics.median(r['threads'] for r in ok):.0f}, exec -> "
              f"proven {statistics.median(r['proven_ms'] for r in ok):.0f} ms, exec -> "
              f"assignment {statistics.median(r['asg_ms'] for r in ok):.0f} ms")


def host(runs):
    app = cep_e2e.Appliance(tag="footprint")
    try:
        app.start_all()
        exp = app.write("footprint.yaml", EXP)
        report("host    ", [one_run(app, exp) for _ in range(runs)])
    finally:
        app.close()


def kube(runs):
    global kube_e2e
    import kube_e2e as k  # noqa: E402  (tests/e2e, needs tests/kubeapi)
    kube_e2e = k
    env = k.KubeEnv("footprint")
    try:
        env.app.start_all()
        env.create_web(3)
        exp = env.app.write("footprint-k.yaml", k.k8s_experiment("footprint-k", duration="6s"))
        report("pod     ", [one_kube_run(env, exp) for _ in range(runs)])
    finally:
        env.close()


def main():
    args = [a for a in sys.argv[1:] if a != "--kube"]
    runs = int(args[0]) if args else 5
    size = os.path.getsize(os.path.join(cep_e2e.BIN, "cep-runner"))
    print(f"runner   cep-runner binary {size / 1024:.0f} KiB ({cep_e2e.BIN})")
    if "--kube" in sys.argv:
        kube(runs)
    else:
        host(runs)


if __name__ == "__main__":
    main()
