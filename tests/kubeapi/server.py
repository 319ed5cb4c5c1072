"""server.py - the HTTPS front of the test API server.

A ThreadingHTTPServer (daemon threads, HTTP/1.1 keep-alive) on 127.0.0.1.
Each connection is peeked in its own thread: a TLS ClientHello gets TLS, plain
HTTP is served only for /_test/ controls. Routes: discovery (/version, /api,
/apis, group resource lists from openapi/discovery), /openapi/v3,
resource paths (/api/v1/..., /apis/<g>/<v>/...) with get/list/watch/create/
update/patch/delete/deletecollection, the subresources status, scale,
eviction, log, the authorization reviews, and the /_test/ controls. Errors
are Status objects shaped as the real server's (see store.ApiError).
"""
import hashlib
import json
import os
import random
import re
import socket
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import auth as authmod
import openapi_gen
import pb
from store import RESOURCES, ApiError

HERE = os.path.dirname(os.path.abspath(__file__))

TRACE = os.environ.get("KUBEAPI_TRACE") == "1"
REVIEWS = {"selfsubjectaccessreviews": "SelfSubjectAccessReview",
           "selfsubjectrulesreviews": "SelfSubjectRulesReview",
           "subjectaccessreviews": "SubjectAccessReview",
           "localsubjectaccessreviews": "LocalSubjectAccessReview"}
GROUP_VERSIONS = {"": "v1", "apps": "v1", "authorization.k8s.io": "v1", "coordination.k8s.io": "v1",
                  "networking.k8s.io": "v1", "policy": "v1", "rbac.authorization.k8s.io": "v1"}
VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0", "gitCommit": "0" * 40,
           "gitTreeState": "clean", "buildDate": "2024-12-11T17:59:15Z", "goVersion": "go1.23.3",
           "compiler": "gc", "platform": "linux/amd64"}


class Api:
    """Everything a request needs: store, auth, schemas, discovery, switches."""

    def __init__(self, store, auth, schemas, openapi_dir, pod_log_dir=None, latency_ms=0):
        self.store, self.auth, self.schemas = store, auth, schemas
        self.openapi_dir = openapi_dir
        self.pod_log_dir = pod_log_dir
        self.latency_ms = latency_ms
        self.faults = {"rate": 0.0}
        self.drop_gen = 0
        self.stopping = False
        self.stats_lock = threading.Lock()
        self.stats = {"requests": 0, "byVerb": {}, "injected": 0}
        self.port = 0
        self._load_discovery()
        # protobuf bodies of built-in kinds (kubectl create <kind>): decoded with
        # the generated.proto files next to the OpenAPI documents, if present
        proto_dir = os.path.join(os.path.dirname(os.path.abspath(openapi_dir)), "k8s-fixtures", "proto")
        self.protos = pb.Protos(proto_dir, schemas) if os.path.isdir(proto_dir) and schemas else None

    # ---- discovery -----------------------------------------------------------
    def _load_discovery(self):
        self.discovery = {}
        ddir = os.path.join(HERE, "openapi", "discovery")  # byte copies of ../shared's (SOURCE.txt)
        for group, version in GROUP_VERSIONS.items():
            fname = "api__v1.json" if not group else "apis__%s__%s.json" % (group, version)
            if group == "networking.k8s.io":  # not in the shared folder
                doc = json.loads(json.dumps(openapi_gen.NETWORKING_DISCOVERY))
            else:
                with open(os.path.join(ddir, fname)) as f:
                    doc = json.load(f)
            keep = []
            for r in doc["resources"]:
                base, _, sub = r["name"].partition("/")
                if group == "authorization.k8s.io":
                    keep.append(r)
                    continue
                spec = RESOURCES.get((group, base))
                if spec is None or (sub and sub not in spec[4]):
                    continue
                r = dict(r)
                if not sub and "list" in r["verbs"] and "watch" not in r["verbs"]:
                    r["verbs"] = sorted(r["verbs"] + ["watch"])
                keep.append(r)
            doc["resources"] = keep
            doc.setdefault("apiVersion", "v1")
            self.discovery[group] = doc
        # the shared documents, byte for byte, and the generated ones (openapi_gen.py)
        self.openapi_docs = dict(self.schemas.docs) if self.schemas is not None else {}
        if not self.openapi_docs and os.path.isdir(self.openapi_dir):
            for name in sorted(os.listdir(self.openapi_dir)):
                if name.endswith("_openapi.json"):
                    with open(os.path.join(self.openapi_dir, name), "rb") as f:
                        self.openapi_docs[name[:-len("_openapi.json")].replace("__", "/")] = f.read()
        self.openapi_hash = {k: hashlib.sha512(v).hexdigest().upper() for k, v in self.openapi_docs.items()}

    def group_list(self):
        groups = []
        for g, v in GROUP_VERSIONS.items():
            if g:
                gv = {"groupVersion": "%s/%s" % (g, v), "version": v}
                groups.append({"name": g, "versions": [gv], "preferredVersion": gv})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def count(self, verb, injected=False):
        with self.stats_lock:
            self.stats["requests"] += 1
            self.stats["byVerb"][verb] = self.stats["byVerb"].get(verb, 0) + 1
            if injected:
                self.stats["injected"] += 1

    def fault_for(self, method, path):
        f = self.faults
        if not f.get("rate"):
            return None
        if f.get("methods") and method not in f["methods"]:
            return None
        if f.get("pathRegex") and not re.search(f["pathRegex"], path):
            return None
        with self.stats_lock:  # "first": the next N matching calls fail for sure
            forced = f.get("first", 0) > 0
            if forced:
                f["first"] -= 1
        if not forced and random.random() >= f["rate"]:
            return None
        code = random.choice(f.get("codes") or [429])
        ra = int(f.get("retryAfter", 1))
        if code == 429:
            return ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                            {"retryAfterSeconds": ra}, retry_after=ra)
        if code == 503:
            return ApiError(503, "ServiceUnavailable", "the server is currently unable to handle the request",
                            {"retryAfterSeconds": ra} if f.get("retryAfter") else None,
                            retry_after=ra if f.get("retryAfter") else None)
        if code == 504:
            return ApiError(504, "Timeout", "the server was unable to return a response in the time allotted, "
                            "but may still be processing the request")
        return ApiError(code, "InternalError", "Internal error occurred: injected fault",
                        {"causes": [{"message": "injected fault"}]})


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def finish_request(self, request, client_address):
        conn = request
        try:
            request.settimeout(300)
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            first = request.recv(1, socket.MSG_PEEK)
            if not first:
                return
            if first[0] == 0x16:
                conn = self.ssl_ctx.wrap_socket(request, server_side=True)
            self.RequestHandlerClass(conn, client_address, self)
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            if conn is not request:
                try:
                    conn.close()
                except OSError:
                    pass


class Server:
    def __init__(self, api, certfile, keyfile):
        self.api = api
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(certfile, keyfile)
        self.ctx.set_alpn_protocols(["http/1.1"])
        self.httpd = None

    def start(self, port=0):
        self.httpd = _HTTPServer(("127.0.0.1", port), Handler)
        self.httpd.ssl_ctx = self.ctx
        self.httpd.api = self.api
        self.api.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, name="kubeapi-http", daemon=True).start()
        return self.api.port

    def stop(self):
        self.api.stopping = True
        self.api.store.close()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()


def _qs(query):
    return {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}


def _truthy(v):
    return v in ("1", "true", "True")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kubeapi-test"
    sys_version = ""
    timeout = 300

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    # ---- plumbing --------------------------------------------------------
    def _body(self):
        if getattr(self, "_raw", None) is not None:
            return self._raw
        raw = b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                n = int(self.rfile.readline().strip().split(b";")[0], 16)
                if n == 0:
                    self.rfile.readline()
                    break
                raw += self.rfile.read(n)
                self.rfile.readline()
        else:
            try:
                n = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                n = -1
            if n < 0:
                self.close_connection = True
                raise ApiError(400, "BadRequest", "invalid Content-Length")
            if n > 16 << 20:
                raise ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")
            raw = self.rfile.read(n) if n else b""
        self._raw = raw
        return raw

    def _json_body(self, required=True):
        raw = self._body()
        if not raw.strip():
            if required:
                raise ApiError(400, "BadRequest", "the server rejected our request due to an error in our "
                               "request")
            return {}
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith(pb.PROTOBUF):
            protos = self.server.api.protos
            try:
                if "/authorization.k8s.io/" in self.path:
                    return pb.decode_review(raw)
                if protos is None:
                    raise ApiError(415, "UnsupportedMediaType", 'the body of the request was in an unknown format '
                                   '- accepted media types include: application/json, application/yaml')
                return protos.decode_object(raw)
            except (ValueError, IndexError, UnicodeDecodeError) as e:
                raise ApiError(400, "BadRequest", "unable to decode protobuf body: %s" % e)
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ApiError(400, "BadRequest", "couldn't get version/kind; json parse error: %s" % e)

    def _send(self, code, payload, ctype="application/json", headers=None):
        body = payload if isinstance(payload, bytes) else \
            json.dumps(payload, separators=(",", ":")).encode() + b"\n"
        self.send_response(code)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        # headers and body in one write: two small writes meet Nagle + delayed ACK (40 ms per call)
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(body)
        self.flush_headers()

    def _error(self, e):
        headers = {}
        if e.retry_after is not None:
            headers["Retry-After"] = str(e.retry_after)
        try:
            self._body()  # drain so keep-alive stays in sync
        except Exception:
            self.close_connection = True
        self._send(e.code, e.status(), headers=headers)

    def _serve(self):
        self._raw = None
        api = self.server.api
        url = urlsplit(self.path)
        path, q = url.path, _qs(url.query)
        if TRACE:
            print("kubeapi: %s %s ct=%s accept=%s" % (self.command, self.path, self.headers.get("Content-Type"),
                                                     self.headers.get("Accept")), file=sys.stderr, flush=True)
        try:
            if path.startswith("/_test/"):
                return self._control(path)
            if not isinstance(self.connection, ssl.SSLSocket):
                self.close_connection = True
                return self._send(400, b"Client sent an HTTP request to an HTTPS server.\n", "text/plain")
            user = api.auth.authenticate(self.headers.get("Authorization"))
            if user is None:
                api.count("unauthorized")
                raise ApiError(401, "Unauthorized", "Unauthorized")
            as_user = self.headers.get("Impersonate-User")
            if as_user and user != "system:anonymous":
                ok, _ = api.auth.authorize(user, "impersonate", "", "users", "", "")
                if not ok:
                    raise ApiError(403, "Forbidden", 'users "%s" is forbidden: User "%s" cannot impersonate resource '
                                   '"users" in API group "" at the cluster scope' % (as_user, user),
                                   {"name": as_user, "kind": "users"})
                user = as_user
            self.user = user
            if api.latency_ms:
                time.sleep(api.latency_ms / 1000.0)
            if self._nonresource(path, user):
                api.count("discovery")
                return
            route = self._route(path)
            verb = self._verb(route, q)
            fault = api.fault_for(self.command, path)
            api.count(verb, injected=fault is not None)
            if fault:
                raise fault
            self._authorize(user, verb, route)
            self._dispatch(verb, route, q)
        except ApiError as e:
            self._error(e)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # a server bug: answer 500 rather than hang the client
            import traceback
            traceback.print_exc()
            self._error(ApiError(500, "InternalError", "Internal error occurred: %s" % e))

    # ---- non-resource paths -----------------------------------------------
    def _nonresource(self, path, user):
        api = self.server.api
        p = path.rstrip("/") or "/"
        if p in ("/healthz", "/livez", "/readyz"):
            self._send(200, b"ok", "text/plain; charset=utf-8")
        elif p == "/version":
            self._send(200, VERSION)
        elif user == "system:anonymous" and (p in ("/api", "/apis") or p.startswith(("/api/", "/apis/",
                                                                                      "/openapi"))):
            raise ApiError(403, "Forbidden", 'forbidden: User "system:anonymous" cannot get path "%s"' % path,
                           {})
        elif p == "/api":
            self._send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:%d" % api.port}]})
        elif p == "/apis":
            self._send(200, api.group_list())
        elif p == "/api/v1":
            self._send(200, api.discovery[""])
        elif p.startswith("/apis/") and p.count("/") == 2:
            g = p.split("/")[2]
            grp = next((x for x in api.group_list()["groups"] if x["name"] == g), None)
            if grp is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            self._send(200, dict(grp, kind="APIGroup", apiVersion="v1"))
        elif p.startswith("/apis/") and p.count("/") == 3:
            _, _, g, v = p.split("/")
            if GROUP_VERSIONS.get(g) != v:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            self._send(200, api.discovery[g])
        elif p == "/openapi/v3":
            self._send(200, {"paths": {k: {"serverRelativeURL": "/openapi/v3/%s?hash=%s" % (k, h)}
                                       for k, h in api.openapi_hash.items()}})
        elif p.startswith("/openapi/v3/"):
            key = p[len("/openapi/v3/"):]
            if key not in api.openapi_hash:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            self._send(200, api.openapi_docs[key], headers={"Etag": '"%s"' % api.openapi_hash[key]})
        elif p.startswith("/openapi/"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        else:
            return False
        return True

    # ---- routing ---------------------------------------------------------------
    def _route(self, path):
        parts = [x for x in path.split("/") if x]
        if len(parts) >= 2 and parts[0] == "api" and parts[1] == "v1":
            group, rest = "", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis" and GROUP_VERSIONS.get(parts[1]) == parts[2]:
            group, rest = parts[1], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        ns = ""
        if len(rest) >= 3 and rest[0] == "namespaces" and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
            ns, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        resource = rest[0]
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if group == "authorization.k8s.io" and resource in REVIEWS:
            return {"group": group, "resource": resource, "ns": ns, "name": name, "sub": sub, "review": True}
        spec = RESOURCES.get((group, resource))
        if spec is None or (sub and sub not in spec[4]) or (ns and not spec[2]):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return {"group": group, "resource": resource, "ns": ns, "name": name, "sub": sub, "review": False,
                "namespaced": spec[2]}

    def _verb(self, route, q):
        m = self.command
        if m in ("GET", "HEAD"):
            if _truthy(q.get("watch", "")):
                return "watch"
            return "get" if route["name"] else "list"
        if m == "POST":
            return "create"
        if m == "PUT":
            return "update"
        if m == "PATCH":
            return "patch"
        if m == "DELETE":
            return "delete" if route["name"] else "deletecollection"
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _authorize(self, user, verb, r):
        ok, _ = self.server.api.auth.authorize(user, verb, r["group"], r["resource"], r["sub"], r["ns"])
        if not ok:
            msg = authmod.forbidden_message(user, verb, r["group"], r["resource"], r["sub"], r["ns"], r["name"])
            d = {}
            if r["name"]:
                d["name"] = r["name"]
            if r["group"]:
                d["group"] = r["group"]
            d["kind"] = r["resource"]
            raise ApiError(403, "Forbidden", msg, d)

    # ---- resource verbs -----------------------------------------------------------
    def _dispatch(self, verb, r, q):
        import handlers
        handlers.dispatch(self, verb, r, q)

    # ---- /_test/ controls ------------------------------------------------------------
    def _control(self, path):
        api = self.server.api
        user = api.auth.authenticate(self.headers.get("Authorization"))
        if user != "admin":
            raise ApiError(401 if user in (None, "system:anonymous") else 403,
                           "Unauthorized" if user in (None, "system:anonymous") else "Forbidden",
                           "test controls need the admin token")
        if path == "/_test/stats" and self.command == "GET":
            with api.stats_lock:
                return self._send(200, json.loads(json.dumps(api.stats)))
        if self.command != "POST":
            raise ApiError(405, "MethodNotAllowed", "POST only")
        body = self._json_body(required=False)
        if path == "/_test/faults":
            api.faults = body if body.get("rate") else {"rate": 0.0}
        elif path == "/_test/latency":
            api.latency_ms = int(body.get("ms", 0))
        elif path == "/_test/drop-watches":
            with api.store.cond:
                api.drop_gen += 1
                api.store.cond.notify_all()
        elif path == "/_test/compact":
            api.store.compact()
        elif path == "/_test/expire-token":
            api.auth.expire(body["user"])
        elif path == "/_test/revoke":
            api.auth.revoke(body["user"], body.get("namespace"), body.get("group"), body["resource"], body["verb"])
        else:
            raise ApiError(404, "NotFound", "unknown test control %s" % path)
        self._send(200, {"ok": True, "resourceVersion": str(api.store.rv())})

