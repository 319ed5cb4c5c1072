"""test_kubeapi_kubectl - the real kubectl, an independent client, works
against the Kubernetes API test server: get, create -f, delete, scale,
cordon/uncordon, auth can-i (protobuf SelfSubjectAccessReview), and reads the
server's 403 Status as it reads a real one. Each test has its own server and
its own kubectl HOME (no discovery cache shared).
"""
import json
import os
import shutil
import sys
import tempfile
import unittest

SRC = os.environ.get("CEP_SRC_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
sys.path.insert(0, os.path.join(SRC, "tests", "kubeapi"))

from harness import KUBECTL, KubeAPI  # noqa: E402

USERS = [
    {"name": "admin", "token": "t-admin",
     "rules": [{"namespaces": ["*"], "groups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
    {"name": "delegate", "token": "t-deleg",
     "rules": [{"namespaces": ["shop"], "groups": [""], "resources": ["pods", "secrets"],
                "verbs": ["get", "list", "watch", "create", "delete"]}]},
]

MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  mode: chaos
"""


@unittest.skipUnless(os.access(KUBECTL, os.X_OK), "kubectl not installed")
class Kubectl(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kubeapi-kubectl-")
        self.api = KubeAPI().start(os.path.join(self.tmp, "srv"), users=USERS, namespaces=["shop"])

    def tearDown(self):
        rc = self.api.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(rc, 0)

    def k(self, *args, **kw):
        return self.api.kubectl(*args, **kw)

    def get(self, path):
        st, _, out = self.api.request("GET", path)
        return st, out

    def test_get_create_delete(self):
        r = self.k("get", "nodes", "-o", "name", check=True)
        self.assertEqual(r.stdout.split(), ["node/node-1", "node/node-2", "node/node-3"])
        path = os.path.join(self.tmp, "m.yaml")
        with open(path, "w") as f:
            f.write(MANIFEST)
        r = self.k("create", "-f", path, check=True)
        self.assertIn("deployment.apps/web created", r.stdout)
        self.assertIn("configmap/settings created", r.stdout)
        st, d = self.get("/apis/apps/v1/namespaces/shop/deployments/web")
        self.assertEqual((st, d["spec"]["replicas"]), (200, 2))
        r = self.k("create", "-f", path)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('deployments.apps "web" already exists', r.stderr)
        r = self.k("get", "configmap", "settings", "-n", "shop", "-o", "json", check=True)
        self.assertEqual(json.loads(r.stdout)["data"], {"mode": "chaos"})
        r = self.k("get", "configmaps", "-n", "shop", "-l", "app!=x", "-o", "name", check=True)
        self.assertIn("configmap/settings", r.stdout.split())
        r = self.k("delete", "configmap", "settings", "-n", "shop", check=True)
        self.assertIn('configmap "settings" deleted', r.stdout)
        self.assertEqual(self.get("/api/v1/namespaces/shop/configmaps/settings")[0], 404)
        r = self.k("run", "p1", "-n", "shop", "--image=busybox:1.36", "--restart=Never", check=True)
        r = self.k("delete", "pod", "p1", "-n", "shop", "--grace-period=0", "--force", check=True)
        self.assertEqual(self.get("/api/v1/namespaces/shop/pods/p1")[0], 404)
        r = self.k("get", "pod", "nope", "-n", "shop")
        self.assertIn('pods "nope" not found', r.stderr)
        self.assertTrue(os.path.isdir(os.path.join(self.api.home, ".kube", "cache")))  # own HOME

    def test_typed_creates_send_protobuf(self):
        # kubectl create <kind> uses typed clients: protobuf bodies the server decodes
        self.k("create", "namespace", "n2", check=True)
        self.k("-n", "shop", "create", "secret", "generic", "s1", "--from-literal=a=b", check=True)
        self.k("-n", "shop", "create", "deployment", "web", "--image=nginx:1.25", "--replicas=3", check=True)
        self.assertEqual(self.get("/api/v1/namespaces/n2")[0], 200)
        self.assertEqual(self.get("/api/v1/namespaces/shop/secrets/s1")[1]["data"], {"a": "Yg=="})
        d = self.get("/apis/apps/v1/namespaces/shop/deployments/web")[1]
        self.assertEqual(d["spec"]["replicas"], 3)
        self.assertEqual(d["spec"]["selector"], {"matchLabels": {"app": "web"}})
        self.assertEqual(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.25")

    def test_scale_deployment(self):
        path = os.path.join(self.tmp, "m.yaml")
        with open(path, "w") as f:
            f.write(MANIFEST)
        self.k("create", "-f", path, check=True)
        r = self.k("scale", "deployment", "web", "-n", "shop", "--replicas=5", check=True)
        self.assertIn("deployment.apps/web scaled", r.stdout)
        st, d = self.get("/apis/apps/v1/namespaces/shop/deployments/web")
        self.assertEqual(d["spec"]["replicas"], 5)
        r = self.k("get", "deployment", "web", "-n", "shop", "-o", "jsonpath={.spec.replicas}", check=True)
        self.assertEqual(r.stdout, "5")

    def test_cordon_uncordon(self):
        r = self.k("cordon", "node-2", check=True)
        self.assertIn("node/node-2 cordoned", r.stdout)
        self.assertTrue(self.get("/api/v1/nodes/node-2")[1]["spec"].get("unschedulable"))
        r = self.k("get", "nodes", check=True)  # server-side Table printing
        rows = [line.split() for line in r.stdout.splitlines()]
        self.assertEqual(rows[0][:3], ["NAME", "STATUS", "ROLES"])
        self.assertEqual(rows[2][:2], ["node-2", "Ready,SchedulingDisabled"])
        r = self.k("uncordon", "node-2", check=True)
        self.assertIn("node/node-2 uncordoned", r.stdout)
        self.assertFalse(self.get("/api/v1/nodes/node-2")[1]["spec"].get("unschedulable", False))

    def test_auth_can_i_protobuf(self):
        r = self.k("auth", "can-i", "delete", "pods", "-n", "shop", user="delegate")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "yes"), r.stderr)
        r = self.k("auth", "can-i", "delete", "pods", "-n", "default", user="delegate")
        self.assertEqual((r.returncode, r.stdout.strip()), (1, "no"), r.stderr)
        r = self.k("auth", "can-i", "patch", "deployments.apps", "-n", "shop", "--subresource=scale",
                   user="delegate")
        self.assertEqual(r.stdout.strip(), "no")
        r = self.k("auth", "can-i", "patch", "deployments.apps", "-n", "shop", "--subresource=scale")
        self.assertEqual(r.stdout.strip(), "yes")
        r = self.k("auth", "can-i", "list", "secrets", "-n", "shop", "--as=delegate")  # admin may impersonate
        self.assertEqual(r.stdout.strip(), "yes")
        r = self.k("auth", "can-i", "list", "secrets", "-n", "default", "--as=delegate")
        self.assertEqual(r.stdout.strip(), "no")
        r = self.k("get", "pods", "-n", "shop", "--as=admin", user="delegate")
        self.assertIn('users "admin" is forbidden: User "delegate" cannot impersonate resource "users"', r.stderr)
        self.api.control("revoke", {"user": "delegate", "namespace": "shop", "resource": "pods", "verb": "delete"})
        r = self.k("auth", "can-i", "delete", "pods", "-n", "shop", user="delegate")
        self.assertEqual(r.stdout.strip(), "no")

    def test_forbidden_and_unauthorized(self):
        r = self.k("get", "pods", "-n", "default", user="delegate")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('pods is forbidden: User "delegate" cannot list resource "pods" in API group "" in the '
                      'namespace "default"', r.stderr)
        self.api.control("expire-token", {"user": "delegate"})
        r = self.k("get", "pods", "-n", "shop", user="delegate")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Unauthorized", r.stderr)


if __name__ == "__main__":
    unittest.main()
