"""cp_report.py - a run's HTML report from the events the plane stores.

GET /admin/report?run_id=R answers with the page `cepctl report --html`
makes (docs/report.md), rendered by cepctl itself from what the plane has:
the run's events, as the relay uploaded them (every one, once, in seq
order), written as one cep.v1.EventBatch, and the task's spec. One
renderer for the appliance and the plane; the plane needs nothing from
the appliance (which may be gone) to show a run. cepctl is --cepctl, or
`cepctl` on PATH; without it the call is refused (501) by name.
"""
import os
import subprocess
import tempfile

from cp_store import NOT_FOUND, CpError

UNIMPLEMENTED, INTERNAL = 12, 13


def render(plane, run_id):
    """The page as bytes, or CpError."""
    if not plane.cepctl:
        raise CpError(501, UNIMPLEMENTED, "no cepctl to render reports with: start cep_cp.py with --cepctl PATH")
    evs, _ = plane.store.events(run_id)
    if not evs:
        raise CpError(404, NOT_FOUND, "no events of run %s" % run_id)
    batch = plane.pb.EventBatch(run_id=run_id)
    for _, body in evs:
        batch.events.add().ParseFromString(body)
    spec = plane.store.spec_of_run(run_id)
    with tempfile.TemporaryDirectory(prefix="cep-cp-report-") as d:
        events = os.path.join(d, "events.pb")
        with open(events, "wb") as f:
            f.write(batch.SerializeToString())
        args = [plane.cepctl, "report", "--events", events, "--html", "-"]
        if spec is not None:
            path = os.path.join(d, os.path.basename(spec[1] or "experiment.yaml") or "experiment.yaml")
            with open(path, "w") as f:
                f.write(spec[0])
            args += ["--spec", path]
        try:
            r = subprocess.run(args, capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise CpError(500, INTERNAL, "cepctl report: %s" % e)
    if r.returncode != 0:
        raise CpError(500, INTERNAL, "cepctl report: %s" % r.stderr.decode(errors="replace").strip())
    return r.stdout
