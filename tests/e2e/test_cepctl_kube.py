"""cepctl's Kubernetes commands against the Kubernetes API test server
(tests/kubeapi/): `connectors` (reachability, version, a dead cluster that
does not stall the listing), `rbac` (manifests the server and the real
kubectl accept) and `check` (SelfSubjectAccessReview per delegate verb).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kubeapi"))
from harness import KubeAPI  # noqa: E402

BIN = os.environ.get("CEP_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))

ADMIN = [{"namespaces": ["*"], "groups": ["*"], "resources": ["*"], "verbs": ["*"]}]
FULL = [{"namespaces": ["shop"], "groups": [""], "resources": ["pods"],
         "verbs": ["create", "get", "list", "watch", "delete"]},
        {"namespaces": ["shop"], "groups": [""], "resources": ["secrets"],
         "verbs": ["create", "get", "list", "delete"]}]
# the same, less `delete pods`
WEAK = [{"namespaces": ["shop"], "groups": [""], "resources": ["pods"],
         "verbs": ["create", "get", "list", "watch"]},
        {"namespaces": ["shop"], "groups": [""], "resources": ["secrets"],
         "verbs": ["create", "get", "list", "delete"]}]
USERS = [{"name": "admin", "token": "t-admin", "rules": ADMIN},
         {"name": "delegate", "token": "t-deleg", "rules": FULL},
         {"name": "weak", "token": "t-weak", "rules": WEAK}]


def closed_port():
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CepctlKube(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="cep-kube-e2e-")
        cls.api = KubeAPI()
        cls.api.start(os.path.join(cls.tmp, "kubeapi"), users=USERS, namespaces=["shop"])

    @classmethod
    def tearDownClass(cls):
        cls.api.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.home = tempfile.mkdtemp(prefix="home-", dir=self.tmp)
        self.cepctl("init", "--appliance", "e2e", check=True)
        self.cdir = os.path.join(self.home, "config", "connectors.d")

    def tearDown(self):
        shutil.rmtree(self.home, ignore_errors=True)

    def cepctl(self, *args, check=False, timeout=60):
        r = subprocess.run([os.path.join(BIN, "cepctl"), "--home", self.home, *args],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"cepctl {args} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def connector(self, name, kubeconfig, namespaces=("shop",), extra=""):
        with open(os.path.join(self.cdir, name + ".yaml"), "w") as f:
            f.write(f"kubeconfig: {kubeconfig}\n"
                    f"namespaces: {json.dumps(list(namespaces))}\n"
                    "runner: {image: cep/runner:test}\n" + extra)

    def dead_kubeconfig(self):
        """A kubeconfig for a server that is not there (connection refused)."""
        path = os.path.join(self.cdir, "dead.kubeconfig")
        with open(os.path.join(self.api.dir, "ca.crt")) as f:
            ca = f.read()
        with open(os.path.join(self.cdir, "dead-ca.crt"), "w") as f:
            f.write(ca)
        with open(path, "w") as f:
            f.write("apiVersion: v1\nkind: Config\n"
                    "clusters:\n- name: dead\n  cluster:\n"
                    f"    server: https://127.0.0.1:{closed_port()}\n"
                    "    certificate-authority: dead-ca.crt\n"
                    "users:\n- name: u\n  user: {token: nothing}\n"
                    "contexts:\n- name: dead\n  context: {cluster: dead, user: u}\n"
                    "current-context: dead\n")
        os.chmod(path, 0o600)
        return path

    # ---- connectors -------------------------------------------------------
    def test_init_writes_example_that_is_not_loaded(self):
        self.assertTrue(os.path.isfile(os.path.join(self.cdir, "example.yaml.sample")))
        r = self.cepctl("connectors", "--output", "json", check=True)
        self.assertEqual(json.loads(r.stdout), [])

    def test_connectors_reachable_and_dead(self):
        self.connector("shop", self.api.kubeconfig("delegate"))
        self.connector("dead", "dead.kubeconfig")
        self.dead_kubeconfig()
        t0 = time.monotonic()
        r = self.cepctl("connectors", "--output", "json")
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)  # one unreachable
        got = {c["name"]: c for c in json.loads(r.stdout)}
        self.assertEqual(set(got), {"shop", "dead"})
        shop, dead = got["shop"], got["dead"]
        self.assertTrue(shop["reachable"], shop)
        self.assertEqual(shop["server"], self.api.url)
        # the version the server itself reports
        code, _, ver = self.api.request("GET", "/version")
        self.assertEqual(code, 200)
        self.assertEqual(shop["version"], ver["gitVersion"])
        self.assertEqual(shop["namespaces"], ["shop"])
        self.assertFalse(dead["reachable"])
        self.assertIsNone(dead["version"])
        self.assertRegex(dead["error"], r"(?i)connect")
        self.assertLess(took, 10, "a dead cluster stalled the listing")
        # text: one row each, the dead one's error spelled out
        r = self.cepctl("connectors")
        self.assertEqual(r.returncode, 1)
        rows = {ln.split()[0]: ln.split() for ln in r.stdout.splitlines()[1:3]}
        self.assertEqual(rows["shop"][4:6], ["yes", ver["gitVersion"]])
        self.assertEqual(rows["dead"][4], "no")
        self.assertRegex(r.stdout, r"(?m)^dead: .*onnect")

    def test_connectors_slow_cluster_is_bounded(self):
        """A server that accepts but never answers: reported within the
        probe timeout while the others are listed."""
        hang = socket.socket()
        hang.bind(("127.0.0.1", 0))
        hang.listen(8)
        try:
            path = os.path.join(self.cdir, "hang.kubeconfig")
            with open(path, "w") as f:
                f.write("apiVersion: v1\nkind: Config\nclusters:\n- name: h\n  cluster:\n"
                        f"    server: https://127.0.0.1:{hang.getsockname()[1]}\n"
                        f"    certificate-authority: {os.path.join(self.api.dir, 'ca.crt')}\n"
                        "users:\n- name: u\n  user: {token: x}\ncontexts:\n"
                        "- name: h\n  context: {cluster: h, user: u}\ncurrent-context: h\n")
            os.chmod(path, 0o600)
            self.connector("hang", "hang.kubeconfig", extra="timeouts: {request: 2s}\n")
            self.connector("shop", self.api.kubeconfig("delegate"))
            t0 = time.monotonic()
            r = self.cepctl("connectors", "--output", "json")
            took = time.monotonic() - t0
        finally:
            hang.close()
        got = {c["name"]: c for c in json.loads(r.stdout)}
        self.assertTrue(got["shop"]["reachable"])
        self.assertFalse(got["hang"]["reachable"])
        self.assertLess(took, 9, f"listing took {took:.1f}s")

    def test_bad_connector_file_is_an_error(self):
        with open(os.path.join(self.cdir, "bad.yaml"), "w") as f:
            f.write("kubeconfig: /k\nnamespaces: [shop]\nrunner: {image: r}\nnamespace: x\n")
        r = self.cepctl("connectors")
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad.yaml:4:1: unknown key 'namespace'", r.stderr)

    # ---- rbac ------------------------------------------------------------
    def test_rbac_manifests_accepted_by_server(self):
        self.connector("shop", self.api.kubeconfig("admin"))
        r = self.cepctl("rbac", "shop", "--namespace", "shop", "--faults",
                        "pod-delete,deployment-scale,node-cordon,k8s", check=True)
        # --validate=false: ../shared/k8s-openapi has no document for
        # rbac.authorization.k8s.io, so kubectl's client-side schema check
        # cannot run here; the server still decodes and stores every object
        k = self.api.kubectl("create", "--validate=false", "-f", "-", input=r.stdout)
        self.assertEqual(k.returncode, 0, k.stderr + "\n" + r.stdout)
        for kind, name in (("serviceaccount", "cep-delegate"), ("role", "cep-delegate"),
                           ("rolebinding", "cep-delegate"), ("serviceaccount", "cep-runner"),
                           ("role", "cep-runner"), ("rolebinding", "cep-runner")):
            g = self.api.kubectl("get", kind, name, "-n", "shop", "-o", "json")
            self.assertEqual(g.returncode, 0, g.stderr)
            obj = json.loads(g.stdout)
            self.assertEqual(obj["metadata"]["labels"]["app.kubernetes.io/managed-by"], "cep")
        role = json.loads(self.api.kubectl("get", "role", "cep-delegate", "-n", "shop",
                                           "-o", "json", check=True).stdout)
        self.assertEqual(role["rules"], [
            {"apiGroups": [""], "resources": ["pods"],
             "verbs": ["create", "get", "list", "watch", "delete"]},
            {"apiGroups": [""], "resources": ["secrets"],
             "verbs": ["create", "get", "list", "delete"]},
            # the undo verbs of deployment-scale, for when its runner dies
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
            {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]}])
        dcr = json.loads(self.api.kubectl("get", "clusterrole", "cep-delegate", "-o", "json",
                                          check=True).stdout)
        self.assertEqual(dcr["rules"], [{"apiGroups": [""], "resources": ["nodes"],
                                         "verbs": ["get", "patch"]}])
        self.api.kubectl("get", "clusterrolebinding", "cep-delegate-shop", check=True)
        cr = json.loads(self.api.kubectl("get", "clusterrole", "cep-runner", "-o", "json",
                                         check=True).stdout)
        self.assertEqual(cr["rules"], [{"apiGroups": [""], "resources": ["nodes"],
                                        "verbs": ["get", "list", "patch"]}])
        self.api.kubectl("get", "clusterrolebinding", "cep-runner-shop", check=True)
        self.api.kubectl("delete", "-f", "-", input=r.stdout, check=True)

    def test_rbac_refusals(self):
        self.connector("shop", self.api.kubeconfig("admin"), namespaces=["*"])
        r = self.cepctl("rbac", "shop", "--namespace", "kube-system")
        self.assertEqual(r.returncode, 2)
        self.assertIn("kube-system is denied unless", r.stderr)
        r = self.cepctl("rbac", "shop", "--namespace", "cep-system")
        self.assertEqual(r.returncode, 2)
        r = self.cepctl("rbac", "shop", "--namespace", "shop", "--faults", "pod-explode")
        self.assertEqual(r.returncode, 2)
        self.assertIn("pod-explode", r.stderr)
        r = self.cepctl("rbac", "nosuch", "--namespace", "shop")
        self.assertEqual(r.returncode, 2)
        self.assertIn('no connector "nosuch"', r.stderr)

    # ---- check -----------------------------------------------------------
    def test_check_all_present(self):
        self.connector("shop", self.api.kubeconfig("delegate"))
        r = self.cepctl("check", "shop", "--namespace", "shop")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("delegate: all 9 permissions present", r.stdout)

    def test_check_names_missing_verb(self):
        self.connector("shop", self.api.kubeconfig("weak"))
        r = self.cepctl("check", "shop")  # the connector's namespaces
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("1 of 9 permissions MISSING", r.stdout)
        self.assertRegex(r.stdout, r"(?m)^\s+delete pods in shop: denied")
        self.assertNotRegex(r.stdout, r"(?m)^\s+(create|get|list|watch) pods in shop: denied")

    def test_check_runner_is_a_hint_not_a_verdict(self):
        self.connector("shop", self.api.kubeconfig("delegate"))
        r = self.cepctl("check", "shop", "--namespace", "shop", "--faults", "pod-delete")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("kubectl auth can-i delete pods -n shop "
                      "--as system:serviceaccount:shop:cep-runner", r.stdout)

    def test_check_unreachable_is_an_error(self):
        self.dead_kubeconfig()
        self.connector("dead", "dead.kubeconfig")
        r = self.cepctl("check", "dead", "--namespace", "shop")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertRegex(r.stderr, r"(?i)connect")


if __name__ == "__main__":
    unittest.main()
