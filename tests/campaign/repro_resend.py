#!/usr/bin/env python3
"""repro_resend.py - the campaign's relay finding, at will (run by hand, root, strace).

    CEP_BIN_DIR=build-rel/bin tests/campaign/repro_resend.py

A run with a 200 ms probe, through the reference control plane. The plane
is killed (no upload can now be stored and left uncommitted), strace holds
every fsync of the relay for 4 s (an append is then on disk but its
runner has no ack yet), the relay is killed in that hold and restarted,
then the plane. The runner sends the unacked batch again. Prints how many
events reached the plane twice: some before relay_spool_append_new (the
restarted relay spooled the batch again), 0 with it.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import cp_e2e  # noqa: E402
from cep_e2e import experiment, wait_until  # noqa: E402

FINAL = ("PASSED", "FAILED", "ABORTED", "ERROR")
TICKS = {"name": "tick", "type": "cmd", "mode": "continuous", "command": ["true"],
         "interval": "200ms"}


def main():
    site = cp_e2e.Site()
    try:
        app = site.appliance("a1")
        tid = site.submit(experiment("resend", duration="20s", deadman="15s", probes=[TICKS]),
                          "resend")
        run_id = app.wait_run(lambda r: r.get("task_id") == tid and r["state"] == "RUNNING",
                              30)["run_id"]
        time.sleep(3)
        site.cp.kill9()
        time.sleep(1.5)
        st = subprocess.Popen(["strace", "-f", "-qq", "-p", str(app.procs["relay"].pid),
                               "-e", "trace=fsync", "-e", "inject=fsync:delay_exit=4000000"],
                              stderr=subprocess.DEVNULL)
        time.sleep(2.5)
        app.kill9("relay")
        st.wait()
        app.start("relay")
        time.sleep(3)
        site.cp.start()
        app.wait_run(lambda r: r["run_id"] == run_id and r["state"] in FINAL, 60)
        n = cp_e2e.delegate_last_seq(app, run_id)
        wait_until(lambda: len(site.events(run_id)["events"]) >= n, 60, 0.5)
        time.sleep(1)
        ev = site.events(run_id)
        print(f"journalled {n}, at the plane {len(ev['events'])}, arrived twice "
              f"{ev['duplicates']} (seq {ev['duplicate_seqs']})")
        return 1 if ev["duplicates"] or len(ev["events"]) < n else 0
    finally:
        site.close()


if __name__ == "__main__":
    sys.exit(main())
