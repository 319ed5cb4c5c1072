"""The test API server's kubelet and workload controllers, observed from outside:
pod status through the API (and kubectl), the pod's own view of its files and
environment (its log), and the process table (/proc) for what runs and what
is gone. Each test starts its own server and stops it."""
import base64
import os
import shutil
import signal
import sys
import tempfile
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "kubeapi"))

from harness import KubeAPI  # noqa: E402

IMAGE = """#!/bin/sh
# a tiny "image": prints what the pod sees, then behaves as MODE says
echo "argv: $*"
echo "env: FOO=$FOO PW=$PW OPT=[$OPT] NAME=$MY_NAME NS=$MY_NS IP=$MY_IP NODE=$MY_NODE SA=$MY_SA"
echo "svc: $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"
echo "uid: $(id -u) gid: $(id -g) pid: $$ ppid: $PPID host: $(hostname)"
for f in /etc/creds/*; do echo "file: $f=$(cat $f) mode=$(stat -L -c %a $f)"; done
SA=/var/run/secrets/kubernetes.io/serviceaccount
[ -f $SA/token ] && echo "token: $(cat $SA/token)"
[ -f $SA/namespace ] && echo "namespace: $(cat $SA/namespace)"
[ -f $SA/ca.crt ] && echo "ca: $(head -1 $SA/ca.crt)"
for f in $EXTRA; do echo "extra: $f=$(cat $f)"; done
touch /etc/creds/x 2>/dev/null && echo "creds: writable" || echo "creds: read-only"
case "$MODE" in
  exit*) exit "${MODE#exit}" ;;
  trap) trap 'echo "got TERM"; exit 0' TERM; echo started; while :; do sleep 0.05; done ;;
  sleep) echo started; sleep 300 ;;
esac
"""


def wait_until(pred, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def pids_with(marker):
    """Live (non-zombie) processes whose command line contains marker."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read()
            with open("/proc/%s/stat" % d) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmd and state != "Z":
            out.append(int(d))
    return out


def b64(s):
    return base64.b64encode(s.encode()).decode()


class KubeletTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kubelet-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        os.chmod(self.tmp, 0o755)   # the image runs as uid 1000 in some tests
        self.image = os.path.join(self.tmp, "image.sh")
        with open(self.image, "w") as f:
            f.write(IMAGE)
        os.chmod(self.image, 0o755)
        self.marker = "m" + uuid.uuid4().hex[:12]
        self.api = KubeAPI().start(os.path.join(self.tmp, "srv"), namespaces=["shop"],
                                   exec_images={"test/image:1": self.image})

    def tearDown(self):
        if self.api.proc is not None:
            self.assertEqual(self.api.stop(), 0)
        self.assertEqual(wait_until(lambda: not pids_with(self.marker), 5), True,
                         "pod processes left behind")

    # ---- helpers -----------------------------------------------------------
    def create(self, path, obj):
        code, _, body = self.api.request("POST", path, obj)
        self.assertEqual(code, 201, body)
        return body

    def pod(self, name, ns="default"):
        code, _, body = self.api.request("GET", "/api/v1/namespaces/%s/pods/%s" % (ns, name))
        return body if code == 200 else None

    def secret(self, name, data, ns="default"):
        return self.create("/api/v1/namespaces/%s/secrets" % ns,
                           {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                            "data": {k: b64(v) for k, v in data.items()}})

    def exec_pod(self, name, mode, ns="default", **spec):
        c = {"name": "main", "image": "test/image:1", "args": [self.marker, "$(FOO)"],
             "env": [{"name": "MODE", "value": mode}] + spec.pop("env", [])}
        if "volumeMounts" in spec:
            c["volumeMounts"] = spec.pop("volumeMounts")
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": dict({"restartPolicy": "Never", "containers": [c]}, **spec)}
        return self.create("/api/v1/namespaces/%s/pods" % ns, body)

    def phase(self, name, ns="default"):
        p = self.pod(name, ns)
        return p and p.get("status", {}).get("phase")

    def wait_phase(self, name, phases, timeout=10, ns="default"):
        got = wait_until(lambda: self.phase(name, ns) in phases and self.phase(name, ns), timeout)
        self.assertIn(got, phases, "pod %s: %s\nlog:%s" % (name, self.pod(name, ns), self.log(name, ns)))
        return self.pod(name, ns)

    def log(self, name, ns="default"):
        try:
            with open(os.path.join(self.api.dir, "pods", "%s_%s.log" % (ns, name))) as f:
                return f.read()
        except OSError:
            return ""

    def events(self, ns, **fields):
        sel = ",".join("%s=%s" % kv for kv in fields.items())
        code, _, body = self.api.request("GET", "/api/v1/namespaces/%s/events?fieldSelector=%s" % (ns, sel))
        self.assertEqual(code, 200, body)
        return body["items"]

    def cond(self, pod, typ):
        return next((c for c in pod["status"].get("conditions", []) if c["type"] == typ), {})

    # ---- exec pods -----------------------------------------------------------
    def test_exec_pod_sees_its_volumes_env_and_token(self):
        self.secret("creds", {"password": "hunter2", "user": "bob"}, ns="shop")
        env = [{"name": "FOO", "value": "bar"},
               {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
               {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "x", "optional": True}}},
               {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
               {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
               {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
               {"name": "MY_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
               {"name": "MY_SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
               {"name": "EXTRA", "value": "/kt-%s/u /opt/kt-%s" % (self.marker, self.marker)}]
        self.exec_pod("reader", "exit0", ns="shop", env=env,
                      securityContext={"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1001},
                      volumeMounts=[{"name": "c", "mountPath": "/etc/creds"},
                                    {"name": "c", "mountPath": "/kt-" + self.marker},
                                    {"name": "c", "mountPath": "/opt/kt-" + self.marker, "subPath": "pw"}],
                      volumes=[{"name": "c", "secret": {"secretName": "creds", "defaultMode": 0o440,
                                                        "items": [{"key": "password", "path": "pw"},
                                                                  {"key": "user", "path": "u", "mode": 0o400}]}}])
        pod = self.wait_phase("reader", ("Succeeded", "Failed"), ns="shop")
        out = self.log("reader", "shop")
        self.assertEqual(pod["status"]["phase"], "Succeeded", out)
        self.assertIn("argv: %s bar" % self.marker, out)
        self.assertIn("env: FOO=bar PW=hunter2 OPT=[] NAME=reader NS=shop IP=127.0.0.1 NODE=node-1 SA=default", out)
        self.assertIn("svc: 127.0.0.1:%d" % self.api.port, out)
        # pid 1 of its own pid namespace, its parent outside, its hostname the pod's name
        self.assertIn("uid: 1000 gid: 1000 pid: 1 ppid: 0 host: reader", out)
        # files are root's; fsGroup owns them and can read them (as the real kubelet sets them)
        self.assertIn("file: /etc/creds/pw=hunter2 mode=440", out)
        self.assertIn("file: /etc/creds/u=bob mode=440", out)
        self.assertIn("creds: read-only", out)
        self.assertIn("extra: /kt-%s/u=bob" % self.marker, out)
        self.assertIn("extra: /opt/kt-%s=hunter2" % self.marker, out)
        self.assertIn("namespace: shop", out)
        self.assertIn("ca: -----BEGIN CERTIFICATE-----", out)
        token = out.split("token: ", 1)[1].split()[0]
        # the token is the pod's service account's: authenticated, yet without rights
        code, _, body = self.api.request("GET", "/api/v1/namespaces/shop/pods", token=token)
        self.assertEqual(code, 403, body)
        self.assertIn("system:serviceaccount:shop:default", body["message"])
        cs = pod["status"]["containerStatuses"][0]
        self.assertEqual(cs["state"]["terminated"]["exitCode"], 0)
        self.assertEqual(cs["state"]["terminated"]["reason"], "Completed")
        self.assertEqual(self.cond(pod, "Ready").get("reason"), "PodCompleted")
        self.assertTrue(pod["status"]["startTime"])
        # the pod's paths were its own: nothing appeared on the host
        for path in ("/etc/creds", "/kt-" + self.marker, "/opt/kt-" + self.marker):
            self.assertFalse(os.path.lexists(path), path)
        self.assertFalse(os.path.exists("/var/run/secrets/kubernetes.io"))

    def test_exit_code_failed_and_restarts(self):
        self.exec_pod("fails", "exit3", automountServiceAccountToken=False)
        pod = self.wait_phase("fails", ("Failed",))
        self.assertIn("argv: ", self.log("fails"))
        self.assertNotIn("token: ", self.log("fails"))
        term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        self.assertEqual((term["exitCode"], term["reason"]), (3, "Error"))
        self.assertEqual(self.cond(pod, "Ready").get("status"), "False")
        # OnFailure: restarted at once, then CrashLoopBackOff, phase stays Running
        self.exec_pod("loops", "exit2", restartPolicy="OnFailure")

        def backoff():
            p = self.pod("loops")
            cs = (p.get("status", {}).get("containerStatuses") or [{}])[0]
            return cs.get("restartCount", 0) >= 1 and cs.get("state", {}).get("waiting", {}).get("reason") \
                == "CrashLoopBackOff" and p
        p = wait_until(backoff, 10)
        self.assertTrue(p, self.pod("loops"))
        self.assertEqual(p["status"]["phase"], "Running")
        self.assertEqual(p["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"], 2)
        self.assertEqual(self.log("loops").count("argv: "), 2)

    def test_pending_until_the_secret_exists(self):
        self.exec_pod("vol", "exit0", volumeMounts=[{"name": "c", "mountPath": "/etc/creds"}],
                      volumes=[{"name": "c", "secret": {"secretName": "late"}}])
        self.exec_pod("env", "exit0", env=[{"name": "PW", "valueFrom": {
            "secretKeyRef": {"name": "late", "key": "password"}}}])
        time.sleep(1.0)
        for name, reason in (("vol", "ContainerCreating"), ("env", "CreateContainerConfigError")):
            pod = self.pod(name)
            self.assertEqual(pod["status"]["phase"], "Pending", pod)
            self.assertEqual(pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"], reason)
            self.assertEqual(self.log(name), "")
        self.assertIn('secret "late" not found',
                      self.pod("env")["status"]["containerStatuses"][0]["state"]["waiting"]["message"])
        self.secret("late", {"password": "p4ss"})
        for name in ("vol", "env"):
            self.assertEqual(self.wait_phase(name, ("Succeeded", "Failed"), timeout=5)["status"]["phase"],
                             "Succeeded")
        self.assertIn("file: /etc/creds/password=p4ss mode=644", self.log("vol"))
        ev = self.events("default", reason="FailedMount")
        self.assertTrue(ev and ev[0]["type"] == "Warning" and ev[0]["involvedObject"]["name"] == "vol", ev)
        self.assertIn('secret "late" not found', ev[0]["message"])
        self.assertIn("PW=p4ss", self.log("env"))

    def test_unpullable_image_stays_pending_in_image_pull_backoff(self):
        img = "unpullable.invalid/cep-runner:1"
        r = self.api.kubectl("run", "stuck", "-n", "shop", "--image=" + img, "--restart=Never")
        self.assertEqual(r.returncode, 0, r.stderr)
        jp = "{.status.phase} {.status.containerStatuses[0].state.waiting.reason}"
        got = wait_until(lambda: self.api.kubectl("get", "pod", "stuck", "-n", "shop", "-o",
                                                  "jsonpath=" + jp).stdout, 5)
        self.assertIn(got, ("Pending ErrImagePull", "Pending ImagePullBackOff"))
        got = wait_until(lambda: (lambda o: o if o == "Pending ImagePullBackOff" else None)(
            self.api.kubectl("get", "pod", "stuck", "-n", "shop", "-o", "jsonpath=" + jp).stdout), 5)
        self.assertEqual(got, "Pending ImagePullBackOff")
        r = self.api.kubectl("get", "pod", "stuck", "-n", "shop", "--no-headers")
        self.assertRegex(r.stdout, r"^stuck\s+0/1\s+ImagePullBackOff\s+0\s", r.stderr)
        pod = self.pod("stuck", "shop")
        w = pod["status"]["containerStatuses"][0]["state"]["waiting"]
        self.assertEqual(w["message"], 'Back-off pulling image "%s"' % img)
        self.assertFalse(pod["status"]["containerStatuses"][0]["ready"])
        for typ in ("Ready", "ContainersReady"):
            c = self.cond(pod, typ)
            self.assertEqual((c.get("status"), c.get("reason")), ("False", "ContainersNotReady"), c)
        reasons = [(e["type"], e["reason"], e["message"]) for e in self.events("shop", **{
            "involvedObject.name": "stuck"})]
        self.assertIn(("Normal", "BackOff", 'Back-off pulling image "%s"' % img), reasons)
        self.assertIn(("Warning", "Failed", "Error: ErrImagePull"), reasons)
        self.assertIn(("Warning", "Failed", "Error: ImagePullBackOff"), reasons)
        time.sleep(1.5)   # still nothing runs: the back-off is 10 s, and the pull never succeeds
        self.assertEqual(self.phase("stuck", "shop"), "Pending")

    def test_active_deadline_kills_the_process(self):
        self.exec_pod("slow", "sleep", activeDeadlineSeconds=2)
        wait_until(lambda: "started" in self.log("slow"), 5)
        self.assertTrue(pids_with(self.marker))
        pod = self.wait_phase("slow", ("Failed",), timeout=6)
        self.assertEqual(pod["status"]["reason"], "DeadlineExceeded")
        self.assertEqual(pod["status"]["message"], "Pod was active on the node longer than the specified deadline")
        self.assertEqual(pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 137)
        self.assertEqual(wait_until(lambda: not pids_with(self.marker), 3), True, pids_with(self.marker))

    def test_graceful_delete_sigterms_then_removes(self):
        self.exec_pod("polite", "trap")
        self.exec_pod("stubborn", "sleep", terminationGracePeriodSeconds=1)
        self.assertTrue(wait_until(lambda: "started" in self.log("polite") and "started" in self.log("stubborn"), 5))
        code, _, body = self.api.request("DELETE", "/api/v1/namespaces/default/pods/polite",
                                          {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 20})
        self.assertEqual(code, 200, body)
        self.assertTrue(body["metadata"].get("deletionTimestamp"))
        self.assertTrue(wait_until(lambda: self.pod("polite") is None, 5), "pod not removed after SIGTERM")
        self.assertIn("got TERM", self.log("polite"))
        ev = self.events("default", reason="Killing")
        self.assertEqual([e["message"] for e in ev], ["Stopping container main"])
        # a shell without a trap is pid 1 and, as in a real container, ignores
        # SIGTERM: it is SIGKILLed when the 1 s grace period ends
        t0 = time.monotonic()
        r = self.api.kubectl("delete", "pod", "stubborn", "--wait=false")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_until(lambda: self.pod("stubborn") is None, 6))
        self.assertGreater(time.monotonic() - t0, 0.9)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(wait_until(lambda: not pids_with(self.marker), 3), True)

    def test_force_delete_kills_at_once(self):
        self.exec_pod("victim", "sleep")
        self.assertTrue(wait_until(lambda: "started" in self.log("victim"), 5))
        r = self.api.kubectl("delete", "pod", "victim", "--grace-period=0", "--force")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(wait_until(lambda: not pids_with(self.marker), 3), True)

    def test_killed_server_leaves_no_pod_process(self):
        for i in range(2):
            self.exec_pod("bg%d" % i, "sleep")
        self.assertTrue(wait_until(lambda: len(pids_with(self.marker)) == 2, 5), pids_with(self.marker))
        os.kill(self.api.proc.pid, signal.SIGKILL)   # the server alone, not its process group
        self.api.proc.wait()
        self.api.proc = None
        self.api.log.close()
        self.assertEqual(wait_until(lambda: not pids_with(self.marker), 5), True, pids_with(self.marker))

    # ---- controllers -----------------------------------------------------------
    def deployment(self, name, replicas):
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}

    def dstatus(self, name):
        code, _, d = self.api.request("GET", "/apis/apps/v1/namespaces/shop/deployments/" + name)
        return d.get("status", {}) if code == 200 else {}

    def live_pods(self, app):
        code, _, body = self.api.request("GET", "/api/v1/namespaces/shop/pods?labelSelector=app%3D" + app)
        return [p for p in body["items"] if not p["metadata"].get("deletionTimestamp")]

    def wait_ready(self, name, n, timeout=8):
        ok = wait_until(lambda: self.dstatus(name).get("readyReplicas", 0) == n and
                        self.dstatus(name).get("replicas") == n and len(self.live_pods(name)) == n, timeout)
        self.assertTrue(ok, "%s: %s" % (name, self.dstatus(name)))

    def test_deployment_keeps_replicas_and_scales(self):
        self.create("/apis/apps/v1/namespaces/shop/deployments", self.deployment("web", 3))
        self.wait_ready("web", 3)
        st = self.dstatus("web")
        self.assertEqual((st["availableReplicas"], st["updatedReplicas"]), (3, 3))
        conds = {c["type"]: c for c in st["conditions"]}
        self.assertEqual(conds["Available"]["status"], "True")
        self.assertEqual(conds["Progressing"]["reason"], "NewReplicaSetAvailable")
        code, _, rsl = self.api.request("GET", "/apis/apps/v1/namespaces/shop/replicasets")
        self.assertEqual(len(rsl["items"]), 1)
        rs = rsl["items"][0]
        h = rs["metadata"]["labels"]["pod-template-hash"]
        self.assertEqual(rs["metadata"]["name"], "web-" + h)
        self.assertTrue(rs["metadata"]["ownerReferences"][0]["controller"])
        self.assertEqual(rs["status"]["readyReplicas"], 3)
        pods = self.live_pods("web")
        for p in pods:
            self.assertTrue(p["metadata"]["name"].startswith("web-%s-" % h))
            self.assertEqual(p["metadata"]["labels"]["pod-template-hash"], h)
            self.assertEqual(p["metadata"]["ownerReferences"][0]["uid"], rs["metadata"]["uid"])
            self.assertEqual(p["status"]["phase"], "Running")
            self.assertTrue(p["status"]["podIP"].startswith("10.244."))
        created = self.events("shop", reason="SuccessfulCreate")
        self.assertEqual(len(created), 3)
        self.assertEqual(created[0]["source"]["component"], "replicaset-controller")
        scaled = self.events("shop", reason="ScalingReplicaSet")
        self.assertEqual([e["message"] for e in scaled], ["Scaled up replica set web-%s from 0 to 3" % h])
        # a deleted pod is replaced: readyReplicas dips, then recovers
        victim = pods[0]["metadata"]["name"]
        self.assertEqual(self.api.kubectl("delete", "pod", "-n", "shop", victim, "--wait=false").returncode, 0)
        self.assertTrue(wait_until(lambda: self.dstatus("web").get("readyReplicas") == 2, 3))
        self.wait_ready("web", 3)
        self.assertNotIn(victim, [p["metadata"]["name"] for p in self.live_pods("web")])
        # scale up and down through the scale subresource (kubectl scale)
        for n in (5, 1):
            r = self.api.kubectl("scale", "deployment", "web", "-n", "shop", "--replicas=%d" % n)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.wait_ready("web", n)
        # deleting the deployment lets the garbage collector take RS and pods
        self.assertEqual(self.api.kubectl("delete", "deployment", "web", "-n", "shop", "--wait=false").returncode, 0)
        self.assertTrue(wait_until(lambda: not self.live_pods("web") and not self.api.request(
            "GET", "/apis/apps/v1/namespaces/shop/replicasets")[2]["items"], 5))

    def test_rolling_update_replaces_the_replicaset(self):
        self.create("/apis/apps/v1/namespaces/shop/deployments", self.deployment("api", 4))
        self.wait_ready("api", 4)
        code, _, body = self.api.request(
            "PATCH", "/apis/apps/v1/namespaces/shop/deployments/api",
            {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}},
            ctype="application/strategic-merge-patch+json")
        self.assertEqual(code, 200, body)

        def rolled():
            pods = self.live_pods("api")
            st = self.dstatus("api")
            return len(pods) == 4 and all(p["spec"]["containers"][0]["image"] == "nginx:1.28" for p in pods) \
                and st.get("updatedReplicas") == 4 and st.get("readyReplicas") == 4 and st.get("replicas") == 4
        self.assertTrue(wait_until(rolled, 15), self.dstatus("api"))
        code, _, rsl = self.api.request("GET", "/apis/apps/v1/namespaces/shop/replicasets")
        self.assertEqual(sorted(r["spec"]["replicas"] for r in rsl["items"]), [0, 4])
        code, _, d = self.api.request("GET", "/apis/apps/v1/namespaces/shop/deployments/api")
        self.assertEqual(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2")


if __name__ == "__main__":
    unittest.main()
