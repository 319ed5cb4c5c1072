#!/usr/bin/env python3
"""cp_stub.py - a strict, scripted HTTPS control plane for lib_test_cp only.

    python3 tests/lib/cp/cp_stub.py --dir DIR [--require-cert]

Makes its certificates with the Kubernetes test server's helper
(tests/kubeapi/kubeapi.py make_certs): DIR/ca.crt + server.crt, a client
certificate DIR/client.crt/.key signed by that CA, and a second,
unrelated CA in DIR/other/ (for "server certificate not trusted").
Writes DIR/port, then DIR/ready (the protocol of kubeapi_fixture.c).

Each request is checked (POST, /v1/cep.v1.ControlPlane/<Method>, the
protobuf Content-Type), recorded as one JSON line in DIR/requests.jsonl
(method, path, headers, body as hex, client certificate CN), and answered
as DIR/next says - a JSON object read at every request, so the test
scripts the next answers by rewriting it:

    {"kind": "ok", "hex": "0a0374"}            200, that body
    {"kind": "status", "http": 429, "code": 8, "msg": "...",
     "retry_after": "7"}                        CpStatus error body
    {"kind": "raw", "http": 502, "body": "<html>..."}   non-protobuf body
    {"kind": "echo_auth", "http": 401}         CpStatus quoting Authorization
    {"kind": "garbage"}                         200, undecodable bytes
    {"kind": "truncated"}                       Content-Length 100, 10 sent
    {"kind": "slow", "sleep": 3}                sleeps, then ok
    {"kind": "oversized"}                       200, 9 MiB
    {"kind": "wrongtype"}                       200, text/html
    {"kind": "redirect", "to": "https://localhost:1/x"}   302
"""
import argparse
import json
import os
import signal
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "kubeapi"))
from kubeapi import _openssl, _write, make_certs  # noqa: E402

PB = "application/x-protobuf"
PREFIX = "/v1/cep.v1.ControlPlane/"
LOCK = threading.Lock()


def make_client_cert(d, cn):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-new", *ec, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=" + cn, cwd=d)
    _write(os.path.join(d, "client.ext"), "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", "7",
             "-days", "7", "-extfile", "client.ext", "-out", "client.crt", cwd=d)
    for name in ("client.csr", "client.ext"):
        os.unlink(os.path.join(d, name))
    os.chmod(os.path.join(d, "client.key"), 0o600)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def cp_status(code, msg):
    m = msg.encode()
    return b"\x08" + varint(code) + b"\x12" + varint(len(m)) + m


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cp-stub"
    sys_version = ""

    def log_message(self, fmt, *args):
        sys.stderr.write("cp_stub: " + (fmt % args) + "\n")

    def _record(self, body):
        cert = self.connection.getpeercert() if hasattr(self.connection, "getpeercert") else None
        cn = ""
        for rdn in (cert or {}).get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    cn = v
        rec = {"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
               "body": body.hex(), "client_cn": cn}
        with LOCK, open(os.path.join(self.server.dir, "requests.jsonl"), "a") as f:
            f.write(json.dumps(rec) + "\n")

    def _send(self, http, ctype, body, extra=()):
        self.send_response(http)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _strict(self):
        """What any plane would refuse, before the script is consulted."""
        if self.command != "POST" or not self.path.startswith(PREFIX):
            return 404, "no such call"
        if self.headers.get("Content-Type") != PB:
            return 400, "Content-Type must be " + PB
        return None

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        self._record(body)
        bad = self._strict()
        if bad:
            return self._send(bad[0], PB, cp_status(3, bad[1]))
        try:
            with open(os.path.join(self.server.dir, "next")) as f:
                act = json.load(f)
        except (OSError, ValueError):
            act = {"kind": "ok", "hex": ""}
        k = act.get("kind")
        if k == "ok":
            self._send(200, PB, bytes.fromhex(act.get("hex", "")))
        elif k == "status":
            extra = [("Retry-After", act["retry_after"])] if "retry_after" in act else []
            self._send(act["http"], PB, cp_status(act.get("code", 2), act.get("msg", "")), extra)
        elif k == "raw":
            self._send(act["http"], act.get("ctype", "text/html"), act.get("body", "").encode())
        elif k == "echo_auth":
            self._send(act.get("http", 401), PB, cp_status(16, "bad credentials: " +
                                                           self.headers.get("Authorization", "")))
        elif k == "garbage":
            self._send(200, PB, b"\xff\xff\xff\xff\x0f\x0a\x80")
        elif k == "truncated":
            self.send_response(200)
            self.send_header("Content-Type", PB)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"\x0a\x08" + b"x" * 8)
            self.wfile.flush()
            self.close_connection = True
            try:  # a clean TLS close: the client sees EOF, not an error
                self.connection.unwrap().close()
            except (OSError, ssl.SSLError):
                pass
        elif k == "slow":
            time.sleep(act.get("sleep", 3))
            try:
                self._send(200, PB, b"")
            except OSError:
                pass
        elif k == "oversized":
            self._send(200, PB, b"\x0a\x00" * (9 * 1024 * 1024 // 2))
        elif k == "wrongtype":
            self._send(200, "text/html", b"<html>hello</html>")
        elif k == "redirect":
            self._send(302, "text/plain", b"moved", [("Location", act["to"])])
        else:
            self._send(500, "text/plain", b"stub: unknown kind")

    def do_GET(self):
        self._record(b"")
        self._send(405, PB, cp_status(12, "POST only"))


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, ctx, d):
        super().__init__(addr, Handler)
        self.ctx, self.dir = ctx, d

    def get_request(self):
        sock, addr = super().get_request()
        # the handshake runs in the handler's thread: a slow or failing
        # client must not block accept()
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        # TLS failures (a client that does not trust us) are expected
        sys.stderr.write("cp_stub: connection error: %s\n" % (sys.exc_info()[1],))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--require-cert", action="store_true")
    a = p.parse_args()
    d = os.path.abspath(a.dir)
    make_certs(d)
    make_client_cert(d, "appliance-1")
    os.makedirs(os.path.join(d, "other"), exist_ok=True)
    make_certs(os.path.join(d, "other"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, "server.crt"), os.path.join(d, "server.key"))
    ctx.set_alpn_protocols(["http/1.1"])
    if a.require_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(os.path.join(d, "ca.crt"))
    srv = Server(("127.0.0.1", 0), ctx, d)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _write(os.path.join(d, "port"), "%d\n" % srv.server_address[1])
    _write(os.path.join(d, "ready"), "%d\n" % os.getpid())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(3600):
        pass
    srv.shutdown()


if __name__ == "__main__":
    main()
