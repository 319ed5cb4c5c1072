"""cp_harness.py - start the reference control plane and talk to it strictly, from Python tests.

    certs = make_pki(tmpdir)                  # CA, server cert, client certs (openssl CLI)
    cp = ControlPlane(tmpdir + "/cp", certs, tokens=["t0"]).start(lease_ms=10000)
    st, hdrs, reply = cp.call("Register", cp.pb.CpRegister(appliance="a1"), token="t0")
    cp.admin("POST", "/admin/tasks", {"spec_yaml": "...", "spec_name": "x"})
    cp.stop() / cp.kill9()

call() is strict: a 200 must carry application/x-protobuf and decode as the
method's reply; any other status must carry a CpStatus body.
"""
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
CP = os.path.join(SRC, "controlplane", "cep_cp.py")
sys.path.insert(0, os.path.join(SRC, "controlplane"))
sys.path.insert(0, os.path.join(SRC, "tests", "kubeapi"))

import cp_proto  # noqa: E402
from kubeapi import _openssl, make_certs  # noqa: E402  (the CA and server certificate)

REPLIES = {"Register": "CpRegistered", "Heartbeat": "CpHeartbeatReply", "PollTasks": "CpTasks",
           "AckTask": "CpAck", "ReportRun": "CpAck", "UploadEvents": "CpUploadReply",
           "WatchCommands": "CpCommands", "TunnelPoll": "CpTunnelCalls", "TunnelReply": "CpAck"}


def make_client_cert(d, name):
    """A client certificate for appliance `name` (CN and DNS SAN), issued by d/ca.key."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-new", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=DNS:%s\nextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n" % name)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial",
             str(int.from_bytes(os.urandom(8), "big")), "-days", "2", "-extfile", name + ".ext",
             "-out", name + ".crt", cwd=d)
    return os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")


def make_pki(d):
    os.makedirs(d, exist_ok=True)
    make_certs(d)
    return {"dir": d, "ca": os.path.join(d, "ca.crt"), "cert": os.path.join(d, "server.crt"),
            "key": os.path.join(d, "server.key"), "client": {"app-cert": make_client_cert(d, "app-cert")}}


class ControlPlane:
    def __init__(self, directory, pki, tokens=("t-good",)):
        self.dir = os.path.abspath(directory)
        self.pki = pki
        self.tokens = list(tokens)
        self.proc = None
        self.pb = cp_proto.load(None, os.path.join(self.dir, "..", "proto-cache"))
        self.args = None

    def start(self, lease_ms=10000, heartbeat_ms=2000, extra=(), timeout=20):
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "tokens"), "w") as f:
            f.write("# test tokens\n" + "".join(t + "\n" for t in self.tokens))
        for name in ("port", "admin-port"):
            try:
                os.unlink(os.path.join(self.dir, name))
            except FileNotFoundError:
                pass
        if self.args is None:
            self.args = [sys.executable, CP, "--listen", "127.0.0.1:0", "--port-file", os.path.join(self.dir, "port"),
                         "--cert", self.pki["cert"], "--key", self.pki["key"], "--client-ca", self.pki["ca"],
                         "--tokens", os.path.join(self.dir, "tokens"), "--state", os.path.join(self.dir, "state"),
                         "--lease-ms", str(lease_ms), "--heartbeat-ms", str(heartbeat_ms),
                         "--admin", "127.0.0.1:0", "--admin-port-file", os.path.join(self.dir, "admin-port")]
            self.args += list(extra)
        self.log = open(os.path.join(self.dir, "cp.log"), "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not os.path.exists(os.path.join(self.dir, "admin-port")):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("cep_cp did not start; log:\n" + self.read_log())
            time.sleep(0.05)
        with open(os.path.join(self.dir, "port")) as f:
            self.port = int(f.read())
        with open(os.path.join(self.dir, "admin-port")) as f:
            self.admin_port = int(f.read())
        return self

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        rc, self.proc = self.proc.returncode, None
        self.log.close()
        return rc

    def kill9(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None
        self.log.close()

    def read_log(self):
        with open(os.path.join(self.dir, "cp.log"), errors="replace") as f:
            return f.read()

    @property
    def admin_url(self):
        return "http://127.0.0.1:%d" % self.admin_port

    # ---- the ControlPlane API, strictly ---------------------------------------------------
    def context(self, client=None):
        ctx = ssl.create_default_context(cafile=self.pki["ca"])
        if client:
            ctx.load_cert_chain(*self.pki["client"][client])
        return ctx

    def raw(self, method, body, token="t-good", client=None, ctype="application/x-protobuf", verb="POST",
            timeout=40):
        """One HTTPS call; -> (status, headers lower-cased, body bytes). Exceptions propagate."""
        h = {}
        if token:
            h["Authorization"] = "Bearer " + token
        if ctype:
            h["Content-Type"] = ctype
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(client), timeout=timeout)
        try:
            c.request(verb, "/v1/cep.v1.ControlPlane/" + method, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def call(self, method, msg, **kw):
        """-> (status, headers, reply message or CpStatus). Raises AssertionError on a non-conforming answer."""
        st, hdrs, data = self.raw(method, msg.SerializeToString(), **kw)
        if hdrs.get("content-type") != "application/x-protobuf":
            raise AssertionError("%s: %d with Content-Type %r" % (method, st, hdrs.get("content-type")))
        out = getattr(self.pb, REPLIES.get(method, "CpStatus") if st == 200 else "CpStatus")()
        out.ParseFromString(data)
        if st != 200 and (not out.code or not out.message):
            raise AssertionError("%s: %d without a CpStatus code and message" % (method, st))
        return st, hdrs, out

    def ok(self, method, msg, **kw):
        st, _, out = self.call(method, msg, **kw)
        if st != 200:
            raise AssertionError("%s: %d %s" % (method, st, out))
        return out

    # ---- admin ---------------------------------------------------------------------------
    def admin(self, verb, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=30)
        try:
            data = json.dumps(body).encode() if body is not None else None
            c.request(verb, path, body=data, headers={"Content-Type": "application/json"} if data else {})
            r = c.getresponse()
            raw = r.read()
            if r.status != 200:
                raise AssertionError("admin %s %s: %d %s" % (verb, path, r.status, raw[:300]))
            return json.loads(raw)
        finally:
            c.close()

    def task(self, task_id):
        for t in self.admin("GET", "/admin/tasks")["tasks"]:
            if t["task_id"] == task_id:
                return t
        raise AssertionError("no task " + task_id)

    def submit(self, name="exp", **kw):
        body = {"spec_yaml": "apiVersion: cep.io/v1\nkind: Experiment\nmetadata:\n  name: %s\n" % name,
                "spec_name": name}
        body.update(kw)
        return self.admin("POST", "/admin/tasks", body)["task_id"]
