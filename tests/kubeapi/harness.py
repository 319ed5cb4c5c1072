"""harness.py - start and drive the test API server from Python tests.

    api = KubeAPI()
    api.start(tmpdir, users=[...], namespaces=["shop"], exec_images={"img": "/path"})
    api.kubectl("get", "pods", "-n", "shop")       # real /usr/bin/kubectl, own HOME
    api.request("GET", "/api/v1/namespaces/shop/pods", user="delegate") -> (code, headers, json)
    api.control("faults", {"rate": 0.2, "codes": [429]})
    api.stop()

Each instance gives kubectl its own HOME (DIR/home) and KUBECONFIG, so no
discovery cache leaks between servers or tests.
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
KUBECTL = os.environ.get("KUBECTL", "/usr/bin/kubectl")


class KubeAPI:
    def __init__(self):
        self.proc = None
        self.dir = None
        self.port = None
        self.tokens = {}
        self._ctx = None

    # ---- lifecycle ----------------------------------------------------------
    def start(self, directory, users=None, namespaces=(), exec_images=None, nodes=3, latency_ms=0,
              extra_args=(), timeout=30, pod_netns=(), image_archives=None):
        self.dir = os.path.abspath(directory)
        os.makedirs(self.dir, exist_ok=True)
        args = [sys.executable, os.path.join(HERE, "kubeapi.py"), "--dir", self.dir, "--nodes", str(nodes)]
        if users is not None:
            if isinstance(users, str):
                path = users
            else:
                path = os.path.join(self.dir, "users.json")
                with open(path, "w") as f:
                    json.dump({"users": users}, f)
            args += ["--users", path]
        for ns in namespaces:
            args += ["--namespace", ns]
        for img, path in (exec_images or {}).items():
            args += ["--exec-image", "%s=%s" % (img, path)]
        for repo, path in (image_archives or {}).items():
            args += ["--image-archive", "%s=%s" % (repo, path)]
        for img in pod_netns:
            args += ["--pod-netns", img]
        if latency_ms:
            args += ["--latency-ms", str(latency_ms)]
        shared = os.environ.get("CEP_SHARED_DIR")
        if shared:
            args += ["--openapi", os.path.join(shared, "k8s-openapi")]
        args += list(extra_args)
        self.log = open(os.path.join(self.dir, "kubeapi.log"), "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        ready = os.path.join(self.dir, "ready")
        deadline = time.monotonic() + timeout
        while not os.path.exists(ready):
            if self.proc.poll() is not None:
                raise RuntimeError("kubeapi exited with %d; log:\n%s" % (self.proc.returncode, self.read_log()))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("kubeapi not ready after %ds; log:\n%s" % (timeout, self.read_log()))
            time.sleep(0.05)
        with open(os.path.join(self.dir, "port")) as f:
            self.port = int(f.read())
        with open(os.path.join(self.dir, "tokens.json")) as f:
            self.tokens = json.load(f)
        self.home = os.path.join(self.dir, "home")
        os.makedirs(self.home, exist_ok=True)
        self._ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "ca.crt"))
        return self

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self.log.close()
        return rc

    def read_log(self):
        try:
            with open(os.path.join(self.dir, "kubeapi.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # ---- credentials ----------------------------------------------------------
    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def token(self, user="admin"):
        return self.tokens[user]

    def kubeconfig(self, user="admin"):
        return os.path.join(self.dir, "kubeconfig" if user == "admin" else "kubeconfig-" + user)

    # ---- clients ---------------------------------------------------------------
    def kubectl(self, *args, user="admin", check=False, input=None, timeout=60):
        """Run the real kubectl; -> CompletedProcess with text stdout/stderr."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home,
               "KUBECONFIG": self.kubeconfig(user)}
        r = subprocess.run([KUBECTL, "--kubeconfig", self.kubeconfig(user)] + list(args), env=env,
                           input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("kubectl %s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr))
        return r

    def conn(self, timeout=30):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self._ctx, timeout=timeout)

    def request(self, method, path, body=None, user="admin", ctype="application/json", headers=None,
                token=None, timeout=30):
        """One HTTPS call; -> (status, headers dict, parsed JSON or raw bytes)."""
        h = {"Accept": "application/json"}
        tok = token if token is not None else (self.tokens.get(user) if user else None)
        if tok:
            h["Authorization"] = "Bearer " + tok
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h["Content-Type"] = ctype
        h.update(headers or {})
        c = self.conn(timeout)
        try:
            c.request(method, path, body=data, headers=h)
            resp = c.getresponse()
            raw = resp.read()
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            c.close()
        try:
            return resp.status, hdrs, json.loads(raw)
        except ValueError:
            return resp.status, hdrs, raw

    def watch(self, path, user="admin", timeout=30):
        """Open a watch; -> (connection, response). Read events with next_event()."""
        c = self.conn(timeout)
        c.request("GET", path, headers={"Authorization": "Bearer " + self.tokens[user],
                                        "Accept": "application/json"})
        return c, c.getresponse()

    @staticmethod
    def next_event(resp):
        line = resp.readline()
        return json.loads(line) if line else None

    def control(self, path, body=None):
        """POST /_test/<path> (GET for stats) with the admin token, over plain HTTP."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            h = {"Authorization": "Bearer " + self.tokens["admin"], "Content-Type": "application/json"}
            method = "GET" if path == "stats" else "POST"
            c.request(method, "/_test/" + path, body=None if method == "GET" else json.dumps(body or {}), headers=h)
            resp = c.getresponse()
            raw = resp.read()
            if resp.status != 200:
                raise RuntimeError("control %s: %d %s" % (path, resp.status, raw[:200]))
            return json.loads(raw)
        finally:
            c.close()
