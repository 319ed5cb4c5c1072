"""Kubernetes runs from the runner image that ships (issue 11, item 3): the
test server's kubelet pulls the runner Pod's image from the OCI archive of
scripts/runner-image.sh (`$CEP_RUNNER_IMAGE`, built by the ctest fixture
runner_image; built here from this build's runner when unset) and runs it
chrooted in the image's root filesystem: the runner and the libraries in
the image, nothing of the host's. The connector pins runner.image by digest,
as docs/kubernetes.md tells operators to; a wrong digest fails the pull."""
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import unittest

from cep_e2e import BIN, SRC, wait_until
from kube_e2e import NS, KubeEnv, harness, k8s_experiment, wait_proc
from test_kube_e2e import KubeCase

REPO = "registry.example/cep-runner"


def runner_image():
    """(archive path, image digest)."""
    path = os.environ.get("CEP_RUNNER_IMAGE", "")
    if not os.path.isfile(path):
        path = os.path.join(tempfile.mkdtemp(prefix="cep-img-"), "cep-runner-oci.tar")
        r = subprocess.run(["sh", os.path.join(SRC, "scripts", "runner-image.sh"),
                            os.path.join(BIN, "cep-runner"), path],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError("scripts/runner-image.sh: " + r.stdout + r.stderr)
    with tarfile.open(path) as tf:
        index = json.load(tf.extractfile("index.json"))
    return path, index["manifests"][0]["digest"]


class ImageCase(KubeCase):
    launch = "1m"

    def setUp(self):
        self.archive, self.digest = runner_image()
        self.env = KubeEnv(self.id().rsplit(".", 1)[-1][:20], image=self.image(),
                           image_archives={REPO: self.archive}, launch=self.launch)
        self.addCleanup(self.env.close)
        self.app = self.env.app

    def image(self):
        return f"{REPO}@{self.digest}"

    def submit(self, name):
        self.start()
        before = {r["run_id"] for r in self.app.runs()}
        p = self.app.run_async(self.app.write(f"{name}.yaml", k8s_experiment(name)))
        self.addCleanup(lambda: p.poll() is None and p.kill())
        return p, self.env.new_run_id(before)


class RunFromImage(ImageCase):
    def test_run_from_image_pinned_by_digest(self):
        """The run passes with the image's runner: the process the kubelet
        started is the image's /usr/bin/cep-runner, its root the image's
        (no shell in it), and the pod reports the archive's digest."""
        p, run_id = self.submit("img-run")
        pod, _ = self.env.wait_runner_pod(run_id, phase="Running")
        pids = wait_until(self.runner_procs, 20, 0.1)
        self.assertTrue(pids, "no runner process:\n" + self.env.logs())
        rootfs = os.path.join(self.env.dir, "images", self.digest.replace(":", "-"), "rootfs")
        exe = os.stat(os.path.join(rootfs, "usr", "bin", "cep-runner"))
        for pid in pids:
            st = os.stat(f"/proc/{pid}/exe")
            self.assertEqual((st.st_dev, st.st_ino), (exe.st_dev, exe.st_ino),
                             f"runner {pid} is not the image's binary")
            self.assertTrue(os.path.isfile(f"/proc/{pid}/root/usr/bin/cep-runner"))
            for sh in ("bin/sh", "bin/bash", "usr/bin/python3"):
                self.assertFalse(os.path.exists(f"/proc/{pid}/root/{sh}"), sh)
        st = pod["status"]["containerStatuses"][0]
        self.assertEqual(st["image"], self.image())
        self.assertEqual(st["imageID"], self.image())

        rc, out, err = wait_proc(p, 120)
        self.assertEqual(rc, 0, out + err + self.env.logs())
        self.assertIn("verdict: Pass", out)
        self.assert_no_cep_objects()
        self.assert_no_runner_procs()


class WrongDigest(ImageCase):
    launch = "8s"

    def image(self):
        wrong = ("0" if self.digest[-1] != "0" else "1")
        return f"{REPO}@{self.digest[:-1]}{wrong}"

    def test_wrong_digest_is_not_pulled(self):
        """A digest the archive does not hold: the pod waits in ErrImagePull /
        ImagePullBackOff as with a real registry, the run ends at the launch
        timeout naming the reason, and nothing is left."""
        p, run_id = self.submit("img-wrong")
        seen = set()

        def waiting():
            pod, _ = self.env.runner_objects(run_id)
            for cs in (pod or {}).get("status", {}).get("containerStatuses", []):
                w = cs.get("state", {}).get("waiting", {})
                if w.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
                    seen.add(w["reason"])
                    self.assertEqual(cs["imageID"], "")
                    self.assertEqual(pod["status"]["phase"], "Pending")
                    if w["reason"] == "ErrImagePull":
                        self.assertIn(f"{self.image()}: not found", w["message"])
            return seen == {"ErrImagePull", "ImagePullBackOff"}
        self.assertTrue(wait_until(waiting, 8, 0.2), f"seen {seen}:\n" + self.env.logs())
        events = self.env.kubectl_json("get", "events", "-n", NS, "--field-selector",
                                       f"involvedObject.name=cep-runner-{run_id}")["items"]
        self.assertIn("Error: ErrImagePull", [e["message"] for e in events])
        self.assertEqual(self.runner_procs(), [])

        rc, out, err = wait_proc(p, 90)
        self.assertNotEqual(rc, 0, out + err)
        self.assertIn("not running after 8s: ImagePullBackOff", out + err)
        self.assert_no_cep_objects()


class PullByTag(unittest.TestCase):
    """The kubelet alone: a tag resolves through the archive's ref.name, the
    image's Entrypoint takes the Pod's args; another tag is not found."""

    def test_tag_resolves_to_the_archive(self):
        path, digest = runner_image()
        with tarfile.open(path) as tf:
            tag = json.load(tf.extractfile("index.json"))["manifests"][0]["annotations"][
                "org.opencontainers.image.ref.name"]
        api = harness.KubeAPI()
        tmp = tempfile.mkdtemp(prefix="cep-imgtag-")
        self.addCleanup(shutil.rmtree, tmp, True)
        api.start(os.path.join(tmp, "kube"), namespaces=[NS], image_archives={REPO: path})
        self.addCleanup(api.stop)
        for name, img in (("tagged", f"{REPO}:{tag}"), ("other", f"{REPO}:{tag}-nope")):
            code, _, body = api.request("POST", f"/api/v1/namespaces/{NS}/pods", body={
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
                "spec": {"restartPolicy": "Never", "securityContext": {"runAsNonRoot": True},
                         "containers": [{"name": "r", "image": img, "args": ["--version"]}]}})
            self.assertEqual(code, 201, body)

        def status(name):
            return api.request("GET", f"/api/v1/namespaces/{NS}/pods/{name}")[2]["status"]
        self.assertTrue(wait_until(lambda: status("tagged").get("phase") == "Succeeded", 20, 0.2),
                        json.dumps(status("tagged")) + api.read_log())
        cs = status("tagged")["containerStatuses"][0]
        self.assertEqual(cs["imageID"], f"{REPO}@{digest}")
        with open(os.path.join(api.dir, "pods", f"{NS}_tagged.log")) as f:
            self.assertIn("cep-runner", f.read())
        self.assertTrue(wait_until(lambda: status("other")["containerStatuses"][0]["state"]
                                   .get("waiting", {}).get("reason") == "ErrImagePull", 10, 0.2))
        self.assertEqual(status("other")["phase"], "Pending")


if __name__ == "__main__":
    unittest.main()
