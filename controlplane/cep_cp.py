#!/usr/bin/env python3
"""cep_cp.py - cep's *reference* control plane (docs/control-plane-reference.md).

A small HTTPS server implementing docs/control-plane-api.md: a task queue
with leases, an event store and abort commands, all in sqlite under --state.
It exists for trying the whole path and for the tests; it is not a product.

Server:
    cep_cp.py --listen 127.0.0.1:0 --port-file F --cert server.crt --key server.key
        [--client-ca ca.pem] [--tokens FILE] --state DIR [--lease-ms 10000]
        [--heartbeat-ms 2000] [--on-lease-expiry requeue|fail] [--max-attempts 3]
        --admin 127.0.0.1:0 --admin-port-file F2 [--proto PATH] [--cepctl PATH]

CLI (talks to the admin API):
    cep_cp.py submit --admin URL exp.yaml [--name N] [--on-lease-expiry P] [--max-attempts N]
    cep_cp.py tasks  --admin URL
    cep_cp.py events --admin URL RUN
    cep_cp.py abort  --admin URL (--run R | --task T | --all) --appliance A [--reason TEXT]
"""
import argparse
import ipaddress
import json
import os
import shutil
import signal
import ssl
import sys
import threading
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cp_proto  # noqa: E402

CLI_COMMANDS = ("submit", "tasks", "events", "abort")


def _hostport(s, what):
    host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit("cep_cp: %s must be HOST:PORT, not %r" % (what, s))
    return host.strip("[]") or "127.0.0.1", int(port)


def _write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def serve(argv):
    p = argparse.ArgumentParser(prog="cep_cp.py", description="cep reference control plane (not a product)")
    p.add_argument("--listen", default="127.0.0.1:0", help="HTTPS address HOST:PORT (port 0: any free port)")
    p.add_argument("--port-file", help="write the HTTPS port here once listening")
    p.add_argument("--cert", required=True, help="server certificate (PEM)")
    p.add_argument("--key", required=True, help="server key (PEM)")
    p.add_argument("--client-ca", help="accept client certificates issued by this CA (PEM)")
    p.add_argument("--tokens", help="file of accepted bearer tokens, one a line")
    p.add_argument("--state", required=True, help="folder for the sqlite database and the generated protobuf module")
    p.add_argument("--lease-ms", type=int, default=10000)
    p.add_argument("--heartbeat-ms", type=int, default=2000)
    p.add_argument("--on-lease-expiry", choices=("requeue", "fail"), default="fail",
                   help="what an expired lease of an acknowledged task does (default fail)")
    p.add_argument("--max-attempts", type=int, default=3)
    p.add_argument("--admin", default="127.0.0.1:0", help="admin API address, loopback only")
    p.add_argument("--admin-port-file", help="write the admin port here once listening")
    p.add_argument("--proto", default=cp_proto.DEFAULT_PROTO, help="cep.proto (default ../proto/cep.proto)")
    p.add_argument("--cepctl", default=shutil.which("cepctl"),
                   help="cepctl, which renders GET /admin/report (default: cepctl on PATH)")
    a = p.parse_args(argv)
    if a.lease_ms < 100 or a.heartbeat_ms < 10 or a.max_attempts < 1:
        p.error("--lease-ms >= 100, --heartbeat-ms >= 10 and --max-attempts >= 1 are required")
    if not a.tokens and not a.client_ca:
        p.error("give --tokens, --client-ca or both: otherwise no appliance can authenticate")
    admin_host, admin_port = _hostport(a.admin, "--admin")
    try:
        if not ipaddress.ip_address(admin_host).is_loopback:
            raise ValueError
    except ValueError:
        if admin_host != "localhost":
            p.error("--admin must be a loopback address (it has no authentication)")

    os.makedirs(a.state, exist_ok=True)
    pb = cp_proto.load(a.proto, os.path.join(a.state, "proto-cache"))
    from cp_admin import AdminServer
    from cp_server import CpServer, Plane, Tokens
    from cp_store import Store
    from cp_tunnel import Tunnel

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(["http/1.1"])
    if a.client_ca:
        ctx.load_verify_locations(a.client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL  # token clients still work

    stop = threading.Event()
    store = Store(a.state, a.lease_ms, a.on_lease_expiry, a.max_attempts)
    plane = Plane(store, pb, Tokens(a.tokens), a.heartbeat_ms, stop)
    plane.tunnel = Tunnel(ctx, store.appliance_cas())
    plane.cepctl = a.cepctl
    httpd = CpServer(_hostport(a.listen, "--listen"), ctx, plane)
    admin = AdminServer((admin_host, admin_port), plane)

    def sweeper():
        period = max(0.02, min(0.25, a.lease_ms / 20000.0))
        while not stop.wait(period):
            store.sweep()

    threads = [threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True),
               threading.Thread(target=admin.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True),
               threading.Thread(target=sweeper, daemon=True)]
    for t in threads:
        t.start()
    port, aport = httpd.server_address[1], admin.server_address[1]
    if a.port_file:
        _write_atomic(a.port_file, "%d\n" % port)
    if a.admin_port_file:
        _write_atomic(a.admin_port_file, "%d\n" % aport)
    plane.log_line(event="listening", https="%s:%d" % (httpd.server_address[0], port),
                   admin="http://%s:%d" % (admin.server_address[0], aport), state=a.state,
                   lease_ms=a.lease_ms, on_lease_expiry=a.on_lease_expiry)

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    with store.lock:
        store.cond.notify_all()  # long-polls answer now
    plane.tunnel.wake()
    httpd.shutdown()
    admin.shutdown()
    store.close()
    plane.log_line(event="stopped")
    return 0


# ---- CLI ------------------------------------------------------------------------------
def _admin_call(url, verb, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=verb,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise SystemExit("cep_cp: %s %s: %d %s" % (verb, path, e.code, e.read().decode(errors="replace").strip()))
    except urllib.error.URLError as e:
        raise SystemExit("cep_cp: cannot reach the admin API at %s: %s" % (url, e.reason))


def spec_name_of(text, fallback):
    """metadata.name of an experiment YAML (a line scan: no YAML library needed)."""
    in_meta = False
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            in_meta = line.rstrip() == "metadata:"
            continue
        if in_meta and line.strip().startswith("name:"):
            return line.split(":", 1)[1].strip().strip("'\"") or fallback
    return fallback


def cli(argv):
    p = argparse.ArgumentParser(prog="cep_cp.py")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("submit", help="queue an experiment as a task")
    s.add_argument("spec")
    s.add_argument("--name", help="spec name (default: metadata.name of the file)")
    s.add_argument("--on-lease-expiry", choices=("requeue", "fail"))
    s.add_argument("--max-attempts", type=int)
    sub.add_parser("tasks", help="list the tasks")
    e = sub.add_parser("events", help="the events of a run")
    e.add_argument("run")
    ab = sub.add_parser("abort", help="send an abort command to an appliance")
    g = ab.add_mutually_exclusive_group(required=True)
    g.add_argument("--run")
    g.add_argument("--task")
    g.add_argument("--all", action="store_true")
    ab.add_argument("--appliance", required=True)
    ab.add_argument("--reason", default="aborted from cep_cp.py")
    for sp in (s, sub.choices["tasks"], e, ab):
        sp.add_argument("--admin", required=True, help="admin API URL, e.g. http://127.0.0.1:8081")
    a = p.parse_args(argv)
    if a.cmd == "submit":
        with open(a.spec) as f:
            text = f.read()
        body = {"spec_yaml": text,
                "spec_name": a.name or spec_name_of(text, os.path.splitext(os.path.basename(a.spec))[0])}
        if a.on_lease_expiry:
            body["on_lease_expiry"] = a.on_lease_expiry
        if a.max_attempts:
            body["max_attempts"] = a.max_attempts
        print(_admin_call(a.admin, "POST", "/admin/tasks", body)["task_id"])
    elif a.cmd == "tasks":
        tasks = _admin_call(a.admin, "GET", "/admin/tasks")["tasks"]
        print("%-16s %-7s %-20s %-24s %3s %-9s %s" % ("TASK", "STATE", "APPLIANCE", "RUN", "ATT", "RUNSTATE",
                                                      "VERDICT/ERROR"))
        for t in tasks:
            print("%-16s %-7s %-20s %-24s %3d %-9s %s" % (
                t["task_id"], t["state"], t["appliance"] or "-", t["run_id"] or "-", t["attempt"],
                t["run_state"] or "-", t["verdict"] or t["error"] or ""))
    elif a.cmd == "events":
        r = _admin_call(a.admin, "GET", "/admin/events?run_id=" + urllib.request.quote(a.run))
        for ev in r["events"]:
            print(json.dumps(ev, sort_keys=True))
        print("# %d events, %d duplicates dropped" % (len(r["events"]), r["duplicates"]), file=sys.stderr)
    elif a.cmd == "abort":
        body = {"appliance": a.appliance, "reason": a.reason,
                "kind": "abort_all" if a.all else "abort_run"}
        if a.run:
            body["run_id"] = a.run
        if a.task:
            body["task_id"] = a.task
        r = _admin_call(a.admin, "POST", "/admin/commands", body)
        print("command %d queued for %s%s" % (r["seq"], a.appliance, " (run %s)" % r["run_id"] if r["run_id"] else ""))
    return 0


def main(argv):
    if argv and argv[0] in CLI_COMMANDS:
        return cli(argv)
    return serve(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
