"""cp_server.py - the HTTPS side of the reference control plane.

    POST /v1/cep.v1.ControlPlane/<Method>   Content-Type: application/x-protobuf
    POST /v1/tunnel/cep.v1.Runner/<Method>  a runner's call for its relay (cp_tunnel.py)

Checks, in this order: path (404 NOT_FOUND / UNIMPLEMENTED), HTTP method
(405), authentication (401), content type (415), body size (413), body
decoding (400), the request's own fields (400). Then a fault switch may
fire (see Faults), then the call is carried out by the Store. Every error
is an HTTP status with a CpStatus{code, message} protobuf body.
"""
import collections
import hmac
import http.server
import os
import socket
import ssl
import sys
import threading
import time

from cp_store import CpError, now_ms
from cp_tunnel import MAX_ENVELOPE, RUNNER_METHODS, SESSION_RE

PREFIX = "/v1/cep.v1.ControlPlane/"
TUNNEL_PREFIX = "/v1/tunnel/"
PB_TYPE = "application/x-protobuf"
MAX_BODY = 16 << 20
REPLY_LIMIT = 8 << 20  # the appliance refuses replies larger than this
LONG_POLL_CAP_S = 30.0
# method -> (request message, reply message)
METHODS = {
    "Register": ("CpRegister", "CpRegistered"),
    "Heartbeat": ("CpHeartbeat", "CpHeartbeatReply"),
    "PollTasks": ("CpPoll", "CpTasks"),
    "AckTask": ("CpTaskAck", "CpAck"),
    "ReportRun": ("CpRunReport", "CpAck"),
    "UploadEvents": ("CpEventUpload", "CpUploadReply"),
    "WatchCommands": ("CpWatch", "CpCommands"),
    "TunnelPoll": ("CpTunnelPoll", "CpTunnelCalls"),
    "TunnelReply": ("CpTunnelReply", "CpAck"),
}
FAULT_MODES = ("status", "malformed", "truncated", "slow", "oversized", "wrongtype")
HTTP_TO_CODE = {400: 3, 401: 16, 403: 7, 404: 5, 409: 10, 413: 8, 429: 8, 500: 13, 501: 12, 503: 14, 504: 4}


def logfmt(**kv):
    parts = []
    for k, v in kv.items():
        if v is None or v == "":
            continue
        s = str(v)
        if any(c in s for c in ' "=\n') or not s:
            s = '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        parts.append("%s=%s" % (k, s))
    return " ".join(parts)


class Tokens:
    """The --tokens file: one token a line (blank lines and # comments ignored), re-read when it changes."""

    def __init__(self, path):
        self.path = path
        self._stamp = None
        self._tokens = []
        self._lock = threading.Lock()

    def check(self, token):
        if not self.path or not token:
            return False
        with self._lock:
            try:
                st = os.stat(self.path)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
                if stamp != self._stamp:
                    with open(self.path) as f:
                        self._tokens = [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
                    self._stamp = stamp
            except OSError:
                self._tokens = []
            toks = list(self._tokens)
        ok = False
        for t in toks:  # compare with every token: no early exit
            ok |= hmac.compare_digest(t.encode(), token.encode())
        return ok


class Faults:
    """Fault switches: {method|"*", mode, status, retry_after, delay_ms, count, every}.

    count N: the next N matching calls (default 1 without every). every N: every Nth matching
    call (forever unless count also given, then N firings). Exhausted rules are removed."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []

    def add(self, rule):
        method = rule.get("method")
        mode = rule.get("mode")
        if method != "*" and method not in METHODS:
            raise ValueError("method must be one of %s or \"*\"" % ", ".join(METHODS))
        if mode not in FAULT_MODES:
            raise ValueError("mode must be one of %s" % ", ".join(FAULT_MODES))
        r = {"method": method, "mode": mode, "status": int(rule.get("status", 503)),
             "retry_after": rule.get("retry_after"), "delay_ms": int(rule.get("delay_ms", 1000)),
             "count": rule.get("count"), "every": rule.get("every"), "seen": 0, "fired": 0}
        for k in ("count", "every", "retry_after"):
            if r[k] is not None and (not isinstance(r[k], int) or r[k] < (0 if k == "retry_after" else 1)):
                raise ValueError("%s must be a positive integer" % k)
        if mode == "status" and not 400 <= r["status"] <= 599:
            raise ValueError("status must be an HTTP error code (400..599)")
        if r["count"] is None and r["every"] is None:
            r["count"] = 1
        with self.lock:
            self.rules.append(r)
        return r

    def clear(self):
        with self.lock:
            self.rules = []

    def list(self):
        with self.lock:
            return [dict(r) for r in self.rules]

    def take(self, method):
        with self.lock:
            hit = None
            for r in self.rules:
                if r["method"] not in ("*", method):
                    continue
                r["seen"] += 1
                if hit is None and (r["every"] is None or r["seen"] % r["every"] == 0):
                    r["fired"] += 1
                    hit = dict(r)
            self.rules = [r for r in self.rules if r["count"] is None or r["fired"] < r["count"]]
            return hit


class CpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, ctx, plane):
        self.ctx = ctx
        self.plane = plane
        http.server.ThreadingHTTPServer.__init__(self, addr, Handler)

    def finish_request(self, request, client_address):
        # the TLS handshake happens here, in the connection's own thread
        request.settimeout(60)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.plane.log_line(event="tls_handshake_failed", peer=client_address[0], error=str(e))
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


class Plane:
    """What the handlers share: store, pb module, tokens, faults, settings, the call log."""

    def __init__(self, store, pb, tokens, heartbeat_ms, stop):
        self.store, self.pb, self.tokens = store, pb, tokens
        self.heartbeat_ms = heartbeat_ms
        self.faults = Faults()
        self.calls = collections.deque(maxlen=1000)
        self.calls_lock = threading.Lock()
        self.stop = stop
        self.log_lock = threading.Lock()
        self.tunnel = None  # cp_tunnel.Tunnel, set by the server's main
        self.cepctl = None  # renders GET /admin/report (cp_report.py), set by the server's main

    def log_line(self, **kv):
        line = logfmt(time=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), **kv)
        with self.log_lock:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def record(self, entry):
        with self.calls_lock:
            self.calls.append(entry)

    def call_log(self):
        with self.calls_lock:
            return list(self.calls)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cep-cp-reference"
    sys_version = ""

    def log_message(self, fmt, *args):  # replaced by one logfmt line per call
        pass

    @property
    def plane(self):
        return self.server.plane

    # ---- replies --------------------------------------------------------------
    def _send(self, status, body, ctype=PB_TYPE, headers=None, length=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self._status = status

    def _error(self, http_status, code, message, headers=None):
        st = self.plane.pb.CpStatus(code=code, message=message)
        self._error_msg = message
        self._send(http_status, st.SerializeToString(), headers=headers)

    def do_GET(self):
        self._dispatch(False)

    def do_PUT(self):
        self._dispatch(False)

    def do_DELETE(self):
        self._dispatch(False)

    def do_POST(self):
        self._dispatch(True)

    def _dispatch(self, is_post):
        t0 = time.monotonic()
        self._status, self._error_msg, self._appliance, self._fault, self._auth = 0, "", "", "", ""
        self._body_read = False
        method = self.path[len(PREFIX):] if self.path.startswith(PREFIX) else ""
        if self.path.startswith(TUNNEL_PREFIX):
            method = "tunnel/" + self.path[len(TUNNEL_PREFIX):][:64]
        try:
            self._call(method, is_post)
        except CpError as e:
            if not self._body_read:
                self.close_connection = True  # the unread body would spoil the next request
            self._error(e.http, e.code, e.message, headers=e.headers)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True
            self._status = self._status or 499
        except Exception as e:  # a bug here: answer 500 and say so in the log
            self.close_connection = True
            try:
                self._error(500, 13, "internal error: %s" % e)
            except OSError:
                pass
        entry = {"time_ms": now_ms(), "method": method or self.path, "appliance": self._appliance,
                 "status": self._status, "auth": self._auth, "fault": self._fault, "error": self._error_msg,
                 "peer_port": self.client_address[1]}  # one per TCP connection
        self.plane.record(entry)
        self.plane.log_line(method=method or self.path, appliance=self._appliance, status=self._status,
                            ms=int((time.monotonic() - t0) * 1000), auth=self._auth, fault=self._fault,
                            error=self._error_msg, peer=self.client_address[0])

    def _authenticate(self):
        authz = self.headers.get("Authorization", "")
        if authz.startswith("Bearer ") and self.plane.tokens.check(authz[7:].strip()):
            return "token", None
        cert = None
        try:
            cert = self.connection.getpeercert()
        except (ValueError, AttributeError):
            cert = None
        if cert:
            der = self.connection.getpeercert(binary_form=True)
            if self.plane.tunnel is not None and der and self.plane.tunnel.issued_by_appliance(der):
                raise CpError(401, 16, "a runner identity is not an appliance credential")
            names = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
            names += [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
            return "cert", names
        raise CpError(401, 16, "unauthenticated: a valid bearer token or client certificate is required")

    def _read_body(self):
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise CpError(411, 3, "Content-Length is required (no chunked bodies)")
        n = self.headers.get("Content-Length")
        try:
            n = int(n)
            if n < 0:
                raise ValueError
        except (TypeError, ValueError):
            self.close_connection = True
            raise CpError(411, 3, "Content-Length is required")
        if n > MAX_BODY:
            self.close_connection = True
            raise CpError(413, 8, "request body of %d bytes is over the limit of %d" % (n, MAX_BODY))
        body = self.rfile.read(n)
        self._body_read = True
        return body

    def _call(self, method, is_post):
        pb = self.plane.pb
        if self.path.startswith(TUNNEL_PREFIX):
            return self._tunnel(is_post)
        # read the body first (even for a request refused below): a reply sent over an unread body
        # may be lost to a TCP reset when the connection closes, and keep-alive needs it read
        body = self._read_body() if (is_post or self.headers.get("Content-Length")) else b""
        if not self.path.startswith(PREFIX):
            raise CpError(404, 5, "no such path %s: calls are POST %s<Method>" % (self.path, PREFIX))
        if method not in METHODS:
            raise CpError(404, 12, "unknown method %r (known: %s)" % (method, ", ".join(METHODS)))
        if not is_post:
            self.close_connection = True
            raise CpError(405, 12, "%s takes POST, not %s" % (method, self.command))
        kind, names = self._authenticate()
        self._auth = kind
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != PB_TYPE:
            raise CpError(415, 3, "Content-Type must be %s, not %r" % (PB_TYPE, ctype))
        req_t, rep_t = METHODS[method]
        req = getattr(pb, req_t)()
        try:
            req.ParseFromString(body)
        except Exception as e:
            raise CpError(400, 3, "the body is not a %s: %s" % (req_t, e))
        self._appliance = req.appliance
        if not req.appliance:
            raise CpError(400, 3, "%s.appliance is empty" % req_t)
        if kind == "cert" and req.appliance not in names:
            raise CpError(403, 7, "client certificate is for %s, not appliance %s" % (
                "/".join(names) or "no name", req.appliance))
        fault = self.plane.faults.take(method)
        if fault:
            self._fault = fault["mode"]
            if fault["mode"] == "status":
                hdr = {"Retry-After": str(fault["retry_after"])} if fault["retry_after"] is not None else None
                raise CpError(fault["status"], HTTP_TO_CODE.get(fault["status"], 2),
                              "injected fault: status %d" % fault["status"], headers=hdr)
            if fault["mode"] == "slow":
                time.sleep(fault["delay_ms"] / 1000.0)
        reply = getattr(self, "_m_" + method)(req, getattr(pb, rep_t)())
        out = reply.SerializeToString()
        mode = fault["mode"] if fault else None
        if mode == "malformed":
            self._send(200, b"\xff\xff\xff\xff\x0fnot a protobuf reply\x00")
        elif mode == "truncated":
            self.close_connection = True
            self._send(200, out, length=len(out) + 64)
        elif mode == "oversized":
            self._send(200, b"\x00" * (REPLY_LIMIT + 1))
        elif mode == "wrongtype":
            self._send(200, b"<html><body>not the control plane</body></html>", ctype="text/html")
        else:
            self._send(200, out)

    def _tunnel(self, is_post):
        """A runner's call for its relay: verified, queued, held until the relay answers."""
        tun = self.plane.tunnel
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = 0
        # read first (up to MAX_BODY, else _read_body refuses): a reply sent
        # over an unread body may be lost to a TCP reset
        body = self._read_body() if (is_post or self.headers.get("Content-Length")) else b""
        if n > MAX_ENVELOPE:
            raise CpError(413, 8, "tunnel call of %d bytes is over the limit of %d" % (n, MAX_ENVELOPE))
        method = self.path[len(TUNNEL_PREFIX):]
        if tun is None or method not in RUNNER_METHODS:
            raise CpError(404, 12, "no tunnel method %r" % method[:64])
        if not is_post:
            raise CpError(405, 12, "tunnel calls take POST, not %s" % self.command)
        der = None
        try:
            der = self.connection.getpeercert(binary_form=True)
        except (ValueError, AttributeError):
            pass
        if not der:
            raise CpError(401, 16, "tunnel calls need the runner's identity as TLS client certificate")
        appliance, run_id = tun.identify(der)
        self._appliance, self._auth = appliance, "runner"
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != PB_TYPE:
            raise CpError(415, 3, "Content-Type must be %s, not %r" % (PB_TYPE, ctype))
        session = self.headers.get("X-Cep-Tunnel-Session", "")
        if not SESSION_RE.match(session):
            raise CpError(400, 3, "X-Cep-Tunnel-Session must be 16 to 64 lowercase hex digits")
        env = self.plane.pb.Envelope()
        try:
            env.ParseFromString(body)
        except Exception as e:
            raise CpError(400, 3, "the body is not an Envelope: %s" % e)
        if env.method != method:
            raise CpError(400, 3, "the Envelope's method %r is not the path's %s" % (env.method[:64], method))
        hold = (env.timeout_ms or 30000) / 1000.0 + 2.0
        rep = tun.call(appliance, run_id, session, body, hold, self.plane.stop)
        if rep is None:
            raise CpError(504, 4, "appliance %s did not answer run %s's %s within %.0fs" % (
                appliance, run_id, method.rsplit("/", 1)[1], hold))
        self._send(200, rep)

    # ---- the calls ------------------------------------------------------------
    def _m_Register(self, req, rep):
        st = self.plane.store
        conns = [{"name": c.name, "reachable": c.reachable, "server_version": c.server_version,
                  "error": c.error} for c in req.connectors]
        if req.ca_pem and self.plane.tunnel is not None:
            self.plane.tunnel.add_ca(req.appliance, req.ca_pem)
        st.register(req.appliance, req.version, req.started_ms, conns, self._auth, req.ca_pem)
        rep.heartbeat_ms = self.plane.heartbeat_ms
        rep.lease_ms = st.lease_ms
        return rep

    def _m_Heartbeat(self, req, rep):
        conns = [{"name": c.name, "reachable": c.reachable, "server_version": c.server_version,
                  "error": c.error} for c in req.connectors]
        rep.lost_task_ids.extend(self.plane.store.heartbeat(req.appliance, list(req.task_ids),
                                                            req.active_runs, conns))
        return rep

    def _m_PollTasks(self, req, rep):
        if req.max < 1:
            raise CpError(400, 3, "CpPoll.max must be at least 1 (the free run slots)")
        wait = min(req.wait_ms / 1000.0, LONG_POLL_CAP_S)
        for t in self.plane.store.poll(req.appliance, req.max, wait, self.plane.stop):
            rep.tasks.add(**t)
        return rep

    def _m_AckTask(self, req, rep):
        if not req.task_id:
            raise CpError(400, 3, "CpTaskAck.task_id is empty")
        if req.accepted and not req.run_id:
            raise CpError(400, 3, "CpTaskAck: accepted without a run_id")
        self.plane.store.ack(req.appliance, req.task_id, req.accepted, req.run_id, req.error)
        rep.ok = True
        return rep

    def _m_ReportRun(self, req, rep):
        if not req.task_id or not req.run_id:
            raise CpError(400, 3, "CpRunReport needs task_id and run_id")
        if not 1 <= req.state <= 8:
            raise CpError(400, 3, "CpRunReport.state %d is not a run state" % req.state)
        self.plane.store.report(req.appliance, req.task_id, req.run_id, req.state, req.reason,
                                req.verdict, req.score)
        rep.ok = True
        return rep

    def _m_UploadEvents(self, req, rep):
        batches = []
        for i, b in enumerate(req.batches):
            if not b.run_id:
                raise CpError(400, 3, "batch %d has no run_id" % i)
            evs = []
            for ev in b.events:
                if ev.run_id != b.run_id:
                    raise CpError(400, 3, "batch %d for run %s holds an event of run %r" % (i, b.run_id, ev.run_id))
                if ev.seq == 0:
                    raise CpError(400, 3, "batch %d (run %s) holds an event with seq 0" % (i, b.run_id))
                evs.append((ev.seq, ev.SerializeToString()))
            batches.append((b.run_id, evs))
        rep.stored, rep.duplicates = self.plane.store.store_events(req.appliance, batches)
        return rep

    def _m_TunnelPoll(self, req, rep):
        wait = min(req.wait_ms / 1000.0, LONG_POLL_CAP_S)
        for c in self.plane.tunnel.poll(req.appliance, max(1, min(req.max or 64, 256)), wait, self.plane.stop):
            rep.calls.add(id=c.id, run_id=c.run_id, session=c.session, envelope=c.envelope)
        return rep

    def _m_TunnelReply(self, req, rep):
        if req.id == 0:
            raise CpError(400, 3, "CpTunnelReply.id is 0")
        self.plane.tunnel.reply(req.appliance, req.id, req.envelope)
        rep.ok = True
        return rep

    def _m_WatchCommands(self, req, rep):
        wait = min(req.wait_ms / 1000.0, LONG_POLL_CAP_S)
        for c in self.plane.store.watch(req.appliance, req.after_seq, wait, self.plane.stop):
            rep.commands.add(seq=c["seq"], kind=c["kind"], run_id=c["run_id"] or "",
                             task_id=c["task_id"] or "", reason=c["reason"] or "")
        return rep
