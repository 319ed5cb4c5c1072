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

    CEP_BIN_DIR=build-rel/bin python3 tests/bench/runner_footprint.py [runs]
"""
import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import cep_e2e  # noqa: E402

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
    samples = []
    while True:
        st = status(pid)
        if st is None:
            break
        samples.append(st)
        time.sleep(0.05)
    p.wait(60)
    runlog = os.path.join(app.home, "state", "runs", run_id, "runner.log")
    t_exec = first(os.path.join(app.home, "log", "delegate.log"), "runner started: pid", run_id)
    t_proven = first(runlog, "identity proven to the relay")
    t_asg = first(runlog, "running ")
    steady = samples[len(samples) // 4:]
    return {
        "rss_mib": statistics.median(s[0] for s in steady) / 1024 if steady else 0,
        "peak_mib": max(s[0] for s in samples) / 1024 if samples else 0,
        "threads": max(s[1] for s in samples) if samples else 0,
        "proven_ms": (t_proven - t_exec) if t_exec and t_proven else None,
        "asg_ms": (t_asg - t_exec) if t_exec and t_asg else None,
        "run_id": run_id,
    }


def ms(v):
    return "?" if v is None else f"{v:.0f}"


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    app = cep_e2e.Appliance(tag="footprint")
    try:
        app.start_all()
        exp = app.write("footprint.yaml", EXP)
        size = os.path.getsize(os.path.join(cep_e2e.BIN, "cep-runner"))
        print(f"runner   cep-runner binary {size / 1024:.0f} KiB ({cep_e2e.BIN})")
        res = []
        for _ in range(runs):
            r = one_run(app, exp)
            res.append(r)
            print(f"runner   {r['run_id']}: RSS steady {r['rss_mib']:.1f} MiB (peak "
                  f"{r['peak_mib']:.1f}), threads {r['threads']}, exec -> proven "
                  f"{ms(r['proven_ms'])} ms, exec -> assignment {ms(r['asg_ms'])} ms")
        ok = [r for r in res if r["asg_ms"] is not None and r["proven_ms"] is not None]
        if ok:
            print(f"runner   median of {len(ok)}: RSS {statistics.median(r['rss_mib'] for r in ok):.1f}"
                  f" MiB, threads {statistics.median(r['threads'] for r in ok):.0f}, exec -> "
                  f"proven {statistics.median(r['proven_ms'] for r in ok):.0f} ms, exec -> "
                  f"assignment {statistics.median(r['asg_ms'] for r in ok):.0f} ms")
    finally:
        for name in ("delegate", "relay"):
            app.stop(name)
        if os.environ.get("CEP_BENCH_KEEP") is None:
            import shutil
            shutil.rmtree(app.home, ignore_errors=True)


if __name__ == "__main__":
    main()
