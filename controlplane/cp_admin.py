"""cp_admin.py - the reference control plane's admin API (plain HTTP JSON, loopback only, no auth).

    POST   /admin/tasks      {"spec_yaml", "spec_name", "on_lease_expiry"?, "max_attempts"?} -> {"task_id"}
    GET    /admin/tasks      -> {"tasks": [...]}
    GET    /admin/events?run_id=R -> {"events": [...], "arrivals": [seq...], "duplicates": n, ...}
    GET    /admin/report?run_id=R -> text/html: the run's report from its events (cp_report.py)
    GET    /admin/appliances -> {"appliances": [...]}
    POST   /admin/commands   {"appliance", "kind": "abort_run"|"abort_all", "run_id"?, "task_id"?, "reason"}
                             -> {"seq", "run_id"}
    GET    /admin/commands   -> {"commands": [...]}
    POST   /admin/faults     {"method", "mode", "status"?, "retry_after"?, "delay_ms"?, "count"?, "every"?}
    GET    /admin/faults     -> {"faults": [...]}
    DELETE /admin/faults     -> {"cleared": true}
    GET    /admin/log        -> {"calls": [{time_ms, method, appliance, status, auth, fault, error, peer_port}]}
"""
import http.server
import json
import urllib.parse

from google.protobuf import json_format

import cp_report
from cp_store import CpError

RUN_STATES = {0: "", 1: "PENDING", 2: "LAUNCHING", 3: "RUNNING", 4: "CLEANUP", 5: "PASSED", 6: "FAILED",
              7: "ABORTED", 8: "ERROR"}
KINDS = {"abort_run": 1, "abort_all": 2}


class AdminServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, plane):
        self.plane = plane
        http.server.ThreadingHTTPServer.__init__(self, addr, AdminHandler)


class BadRequest(Exception):
    pass


class AdminHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cep-cp-admin"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def _send(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return status

    def _json(self, status, obj):
        return self._send(status, "application/json", (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return {}
        try:
            obj = json.loads(raw)
        except ValueError as e:
            raise BadRequest("body is not JSON: %s" % e)
        if not isinstance(obj, dict):
            raise BadRequest("body must be a JSON object")
        return obj

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_DELETE(self):
        self._route("DELETE")

    def _route(self, verb):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        plane = self.server.plane
        try:
            handler = getattr(self, "_%s_%s" % (verb.lower(), u.path.strip("/").replace("/", "_")), None)
            if handler is None:
                status = self._json(404, {"error": "no such admin call: %s %s" % (verb, u.path)})
            else:
                out = handler(plane, q)
                status = (self._send(200, "text/html; charset=utf-8", out) if isinstance(out, bytes)
                          else self._json(200, out))
        except BadRequest as e:
            status = self._json(400, {"error": str(e)})
        except CpError as e:
            status = self._json(e.http, {"error": e.message})
        plane.log_line(admin=verb + " " + u.path, status=status)

    # ---- tasks --------------------------------------------------------------------
    def _post_admin_tasks(self, plane, q):
        b = self._body()
        spec, name = b.get("spec_yaml"), b.get("spec_name", "")
        if not isinstance(spec, str) or not spec.strip():
            raise BadRequest("spec_yaml (a non-empty string) is required")
        if not isinstance(name, str):
            raise BadRequest("spec_name must be a string")
        pol = b.get("on_lease_expiry")
        if pol not in (None, "requeue", "fail"):
            raise BadRequest("on_lease_expiry must be requeue or fail")
        ma = b.get("max_attempts")
        if ma is not None and (not isinstance(ma, int) or isinstance(ma, bool) or ma < 1):
            raise BadRequest("max_attempts must be an integer >= 1")
        return {"task_id": plane.store.add_task(spec, name, pol, ma)}

    def _get_admin_tasks(self, plane, q):
        tasks = plane.store.tasks()
        for t in tasks:
            t["run_state"] = RUN_STATES.get(t["run_state"] or 0, str(t["run_state"]))
        return {"tasks": tasks}

    # ---- events ---------------------------------------------------------------------
    def _get_admin_events(self, plane, q):
        run = (q.get("run_id") or [""])[0]
        if not run:
            raise BadRequest("run_id is required: /admin/events?run_id=R")
        evs, arr = plane.store.events(run)
        out = []
        for seq, body in evs:
            ev = plane.pb.Event()
            ev.ParseFromString(body)
            d = json_format.MessageToDict(ev, preserving_proto_field_name=True, including_default_value_fields=True,
                                          use_integers_for_enums=False)
            d["seq"], d["time_ms"] = int(ev.seq), int(ev.time_ms)  # int64 -> JSON number
            out.append(d)
        return {"run_id": run, "events": out, "arrivals": [s for s, dup in arr if not dup],
                "duplicate_seqs": [s for s, dup in arr if dup], "duplicates": sum(1 for _, d in arr if d)}

    def _get_admin_report(self, plane, q):
        run = (q.get("run_id") or [""])[0]
        if not run:
            raise BadRequest("run_id is required: /admin/report?run_id=R")
        return cp_report.render(plane, run)

    # ---- appliances, commands, faults, log ---------------------------------------------
    def _get_admin_appliances(self, plane, q):
        return {"appliances": plane.store.appliances()}

    def _post_admin_commands(self, plane, q):
        b = self._body()
        app, kind = b.get("appliance"), b.get("kind")
        if not isinstance(app, str) or not app:
            raise BadRequest("appliance is required")
        if kind not in KINDS:
            raise BadRequest("kind must be abort_run or abort_all")
        run, task = b.get("run_id") or "", b.get("task_id") or ""
        if kind == "abort_run" and not (run or task):
            raise BadRequest("abort_run needs run_id or task_id")
        seq, run = plane.store.add_command(app, KINDS[kind], run, task, str(b.get("reason") or ""))
        return {"seq": seq, "run_id": run}

    def _get_admin_commands(self, plane, q):
        return {"commands": plane.store.commands()}

    def _post_admin_faults(self, plane, q):
        try:
            r = plane.faults.add(self._body())
        except (ValueError, TypeError) as e:
            raise BadRequest(str(e))
        return {"fault": r}

    def _get_admin_faults(self, plane, q):
        return {"faults": plane.faults.list()}

    def _delete_admin_faults(self, plane, q):
        plane.faults.clear()
        return {"cleared": True}

    def _get_admin_log(self, plane, q):
        return {"calls": plane.call_log()}
