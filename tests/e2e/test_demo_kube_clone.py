"""`./scripts/demo --kubernetes` from a plain clone (issue 14 item 5).

The repository is cloned (git clone of CEP_SRC_DIR: its committed state)
into a temporary folder with no ../shared beside it, and the clone's
scripts/demo runs with the binaries of this build (CEP_BUILD_DIR, so no
second build): the test API server is the clone's tests/kubeapi, which then
has no OpenAPI documents and must say so in one line and serve the demo.
Needs root, like the demo.
"""
import os
import shutil
import subprocess
import tempfile
import unittest

from cep_e2e import BIN, SRC
from kube_e2e import run_cepctl_kube_demo


class DemoFromClone(unittest.TestCase):
    def test_kubernetes_demo_passes_in_a_clone_with_nothing_beside_it(self):
        tmp = tempfile.mkdtemp(prefix="cep-clone-")
        try:
            clone = os.path.join(tmp, "cep")
            subprocess.run(["git", "clone", "-q", SRC, clone], check=True, timeout=120)
            self.assertFalse(os.path.exists(os.path.join(tmp, "shared")))
            env = {k: v for k, v in os.environ.items()
                   if k not in ("CEP_KUBEAPI", "CEP_SHARED_DIR")}
            env["CEP_BUILD_DIR"] = os.path.dirname(BIN)
            r = run_cepctl_kube_demo(cmd=[os.path.join(clone, "scripts", "demo"), "--kubernetes"],
                                     env=env)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out)
        self.assertNotIn("Traceback", out)
        # the clone's server ran (the source tree's has ../shared beside it)
        self.assertIn("k8s  schema checks off: ../shared/k8s-openapi not found", r.stdout)
        self.assertIn("verdict: Pass", r.stdout)
        self.assertRegex(r.stdout, r"pod demo/web-\S+ (being deleted|removed)")
        self.assertIn("none: the run left nothing in the cluster", r.stdout)


if __name__ == "__main__":
    unittest.main()
