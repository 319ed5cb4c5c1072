"""test_jump_manifests - deploy/kubernetes/ (the jump-cluster form,
docs/jump-cluster.md) applied with the real kubectl to the Kubernetes API test
server: `kubectl apply --dry-run=server -f deploy/kubernetes/` passes and
stores nothing, a real apply stores what the manifests say (least-privilege
RBAC, Pod Security "restricted" without a warning), and a defect in a copy of
the manifests is refused as the real server refuses it, so the dry run can fail.
"""
import os
import re
import shutil
import sys
import tempfile
import unittest

SRC = os.environ.get("CEP_SRC_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
sys.path.insert(0, os.path.join(SRC, "tests", "kubeapi"))

from harness import KUBECTL, KubeAPI  # noqa: E402

MANIFESTS = os.path.join(SRC, "deploy", "kubernetes")
NS = "cep-system"
# every object of the folder: (API path without namespace part, name)
OBJECTS = [
    ("/api/v1/namespaces/%s/serviceaccounts" % NS, "cep-delegate"),
    ("/apis/rbac.authorization.k8s.io/v1/namespaces/%s/roles" % NS, "cep-delegate-lease"),
    ("/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings" % NS, "cep-delegate-lease"),
    ("/apis/coordination.k8s.io/v1/namespaces/%s/leases" % NS, "cep-delegate-leader"),
    ("/api/v1/namespaces/%s/secrets" % NS, "cep-signer-ca"),
    ("/api/v1/namespaces/%s/secrets" % NS, "cep-relay-tls"),
    ("/api/v1/namespaces/%s/secrets" % NS, "cep-control-plane"),
    ("/api/v1/namespaces/%s/secrets" % NS, "cep-connectors"),
    ("/api/v1/namespaces/%s/configmaps" % NS, "cep-config"),
    ("/apis/apps/v1/namespaces/%s/deployments" % NS, "cep"),
    ("/api/v1/namespaces/%s/services" % NS, "cep-relay"),
    ("/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies" % NS, "cep-default-deny"),
    ("/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies" % NS, "cep"),
]


@unittest.skipUnless(os.access(KUBECTL, os.X_OK), "kubectl not installed")
class JumpManifests(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="jump-manifests-")
        self.api = KubeAPI().start(os.path.join(self.tmp, "srv"))

    def tearDown(self):
        rc = self.api.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(rc, 0)

    def k(self, *args):
        return self.api.kubectl(*args)

    def get(self, path):
        st, _, out = self.api.request("GET", path)
        return st, out

    def namespace(self):
        # A dry run creates nothing, so the namespaced objects need the
        # namespace to exist, as on a real cluster.
        r = self.k("apply", "-f", os.path.join(MANIFESTS, "00-namespace.yaml"))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_dry_run_server_passes_and_stores_nothing(self):
        self.namespace()
        r = self.k("apply", "--dry-run=server", "-f", MANIFESTS)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("PodSecurity", r.stderr)
        self.assertNotIn("unknown field", r.stderr)
        lines = r.stdout.strip().splitlines()
        self.assertEqual(len(lines), len(OBJECTS) + 1, r.stdout)
        for line in lines:
            self.assertTrue(line.endswith("(server dry run)"), line)
        for path, name in OBJECTS:
            self.assertEqual(self.get(path + "/" + name)[0], 404, path + "/" + name)

    def test_apply_stores_the_least_privilege_form(self):
        r = self.k("apply", "-f", MANIFESTS)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("PodSecurity", r.stderr)
        for path, name in OBJECTS:
            self.assertEqual(self.get(path + "/" + name)[0], 200, path + "/" + name)
        ns = self.get("/api/v1/namespaces/" + NS)[1]
        self.assertEqual(ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted")
        role = self.get(OBJECTS[1][0] + "/cep-delegate-lease")[1]
        self.assertEqual(role["rules"], [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                                          "resourceNames": ["cep-delegate-leader"], "verbs": ["get", "update"]}])
        lease = self.get(OBJECTS[3][0] + "/cep-delegate-leader")[1]
        self.assertNotIn("holderIdentity", lease["spec"])
        dep = self.get(OBJECTS[9][0] + "/cep")[1]
        self.assertEqual(dep["spec"]["replicas"], 2)
        pod = dep["spec"]["template"]["spec"]
        self.assertIs(pod["automountServiceAccountToken"], False)
        names = {c["name"]: c for c in pod["containers"]}
        self.assertEqual(sorted(names), ["delegate", "relay", "signer"])
        for c in names.values():
            sc = c["securityContext"]
            self.assertEqual((sc["readOnlyRootFilesystem"], sc["allowPrivilegeEscalation"], sc["runAsNonRoot"],
                              sc["capabilities"]["drop"], sc["seccompProfile"]["type"]),
                             (True, False, True, ["ALL"], "RuntimeDefault"), c["name"])
            self.assertIn("/run/cep" if c["name"] != "signer" else "/run/cep-signer",
                          [m["mountPath"] for m in c["volumeMounts"]])
        # one user per daemon, one group; the signer answers the delegate's uid only
        uids = {n: c["securityContext"]["runAsUser"] for n, c in names.items()}
        self.assertEqual(len(set(uids.values())), 3, uids)
        self.assertEqual(names["signer"]["command"][-2:], ["--allow-uid", str(uids["delegate"])])
        # the jump cluster's token: the delegate's alone; the CA key: the signer's alone
        for name, c in names.items():
            mounts = {m["name"] for m in c["volumeMounts"]}
            self.assertEqual("sa-token" in mounts, name == "delegate", name)
            self.assertEqual("signer-ca" in mounts, name == "signer", name)
        svc = self.get(OBJECTS[10][0] + "/cep-relay")[1]
        self.assertEqual(svc["spec"]["ports"][0]["targetPort"], "runners")
        self.assertTrue(svc["spec"]["clusterIP"])
        # applying again changes nothing
        r = self.k("apply", "-f", MANIFESTS)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("created", r.stdout)

    def broken(self, fname, old, new):
        d = os.path.join(self.tmp, "broken")
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(MANIFESTS, d)
        with open(os.path.join(d, fname)) as f:
            text = f.read()
        self.assertIn(old, text)
        with open(os.path.join(d, fname), "w") as f:
            f.write(text.replace(old, new, 1))
        return self.k("apply", "--dry-run=server", "-f", d)

    def test_defects_are_refused(self):
        self.namespace()
        cases = [
            ("70-networkpolicy.yaml", "policyTypes: [\"Ingress\", \"Egress\"]\n  ingress:",
             "policyTypes: [\"Ingress\", \"Egress\"]\n  ingres:", r'strict decoding error: unknown field "spec\.ingres"'),
            ("70-networkpolicy.yaml", "{cidr: 192.0.2.0/24}", "{cidr: 192.0.2.0/33}",
             r'spec\.ingress\[0\]\.from\[0\]\.ipBlock\.cidr: Invalid value: "192\.0\.2\.0/33"'),
            ("20-lease.yaml", "leaseDurationSeconds: 15", "leaseDurationSeconds: \"15\"",
             r"cannot unmarshal string into Go struct field .*leaseDurationSeconds"),
            ("20-lease.yaml", "leaseDurationSeconds: 15", "leaseDurationSeconds: 0",
             r"spec\.leaseDurationSeconds: Invalid value: 0: must be greater than 0"),
            ("10-rbac.yaml", "roleRef:\n  apiGroup: rbac.authorization.k8s.io\n", "roleRef:\n",
             r'roleRef\.apiGroup: Unsupported value'),
            ("10-rbac.yaml", "  verbs: [\"get\", \"update\"]\n", "",
             r"rules\[0\]\.verbs: Required value"),
            ("60-service.yaml", "port: 7443", "port: 74430",
             r"spec\.ports\[0\]\.port: Invalid value: 74430: must be between 1 and 65535"),
            ("50-deployment.yaml", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true",
             r'would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
             r'\(container "relay" must set securityContext\.allowPrivilegeEscalation=false\)'),
            ("50-deployment.yaml", "runAsUser: 10003\n          runAsNonRoot: true",
             "runAsUser: 0\n          runAsNonRoot: true", r'would violate PodSecurity "restricted:latest": runAsUser=0 \(pod and containers must not set'),
        ]
        for fname, old, new, want in cases:
            with self.subTest(fname=fname, new=new):
                r = self.broken(fname, old, new)
                self.assertRegex(r.stderr, want)
                if "PodSecurity" not in want:   # a warning does not fail the apply
                    self.assertNotEqual(r.returncode, 0)


if __name__ == "__main__":
    unittest.main()
