#!/usr/bin/env python3
"""runner_image_test.py ARCHIVE RUNNER SRC: what the runner's OCI image
(scripts/runner-image.sh) is made of, checked on the archive itself:
- an OCI image layout: oci-layout, index.json with one manifest tagged by
  org.opencontainers.image.ref.name, every blob matching its digest;
- the config matches the runner Pod (delegate/kube_pod.c sets only args):
  Entrypoint the runner, no Cmd, User = CEP_KPOD_UID of kube_pod.h;
- no shell, no package manager, no program but the runner; every ELF file
  is the runner, its loader (PT_INTERP) or in its ldd closure, and every
  one of those is there; the only other file is the CA bundle;
- it starts: chrooted in the unpacked layers (plus /proc, which a runtime
  mounts and ASan needs), `cep-runner --version` answers (so the closure is complete without the host's libraries);
- reproducible: built again from RUNNER it is the same bytes;
- skopeo, a registry client, reads it and reports the same digest.
Python 3 standard library, readelf, ldd, skopeo."""
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest

ARCHIVE, RUNNER, SRC = sys.argv[1:4] if len(sys.argv) >= 4 else (None, None, None)
FORBIDDEN = re.compile(r"(^|/)(sh|bash|dash|ash|busybox|apt|apt-get|dpkg|rpm|dnf|yum|apk|python3?)$")


def blobs(tf):
    out = {}
    for m in tf.getmembers():
        if m.isfile() and m.name.startswith("blobs/sha256/"):
            out["sha256:" + m.name.rsplit("/", 1)[1]] = tf.extractfile(m).read()
    return out


def closure(runner):
    """Absolute paths: the loader and every library ldd resolves, for
    the runner and for libcurl (loaded on first use, lib/http/curl_lazy.c)."""
    interp = re.search(r"Requesting program interpreter: (\S+)\]",
                       subprocess.run(["readelf", "-l", runner], capture_output=True,
                                      text=True, check=True).stdout).group(1)
    ldd = subprocess.run(["ldd", runner], capture_output=True, text=True, check=True).stdout
    libs = set(re.findall(r"=> (/\S+) \(0x", ldd))
    cache = subprocess.run([shutil.which("ldconfig") or "/sbin/ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    curl = re.search(r"^\s*libcurl\.so\.4 .*=> (/\S+)$", cache, re.M).group(1)
    ldd = subprocess.run(["ldd", curl], capture_output=True, text=True, check=True).stdout
    return {interp, curl} | libs | set(re.findall(r"=> (/\S+) \(0x", ldd))


class RunnerImage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with tarfile.open(ARCHIVE) as tf:
            cls.names = tf.getnames()
            cls.layout = json.load(tf.extractfile("oci-layout"))
            cls.index = json.load(tf.extractfile("index.json"))
            cls.blobs = blobs(tf)
        cls.digest = cls.index["manifests"][0]["digest"]
        cls.manifest = json.loads(cls.blobs[cls.digest])
        cls.config = json.loads(cls.blobs[cls.manifest["config"]["digest"]])
        cls.files = {}   # path in the image -> (TarInfo, bytes)
        for layer in cls.manifest["layers"]:
            data = cls.blobs[layer["digest"]]
            if layer["mediaType"].endswith("+gzip"):
                data = gzip.decompress(data)
            with tarfile.open(fileobj=io.BytesIO(data)) as lt:
                for m in lt.getmembers():
                    body = lt.extractfile(m).read() if m.isfile() else b""
                    cls.files["/" + os.path.normpath(m.name)] = (m, body)

    def test_oci_layout(self):
        self.assertEqual(self.layout, {"imageLayoutVersion": "1.0.0"})
        self.assertEqual(len(self.index["manifests"]), 1)
        m = self.index["manifests"][0]
        self.assertEqual(m["mediaType"], "application/vnd.oci.image.manifest.v1+json")
        self.assertTrue(m["annotations"]["org.opencontainers.image.ref.name"])
        for digest, data in self.blobs.items():
            self.assertEqual("sha256:" + hashlib.sha256(data).hexdigest(), digest)
        self.assertEqual(self.config["os"], "linux")

    def test_config_matches_the_runner_pod(self):
        with open(os.path.join(SRC, "delegate", "kube_pod.h")) as f:
            uid = re.search(r"#define CEP_KPOD_UID (\d+)", f.read()).group(1)
        cfg = self.config["config"]
        self.assertEqual(cfg["Entrypoint"], ["/usr/bin/cep-runner"])
        self.assertNotIn("Cmd", cfg)
        self.assertEqual(cfg["User"], f"{uid}:{uid}")

    def test_no_shell_no_package_manager_only_the_closure(self):
        bad = [p for p in self.files if FORBIDDEN.search(p)]
        self.assertEqual(bad, [], "forbidden files in the image")
        self.assertFalse(any(p.startswith(("/var/lib/dpkg", "/etc/apt", "/usr/sbin", "/sbin/"))
                             for p in self.files))
        elves = {p for p, (m, body) in self.files.items() if body[:4] == b"\x7fELF"}
        want = {"/usr/bin/cep-runner"} | closure(RUNNER)
        self.assertEqual(elves, want, "ELF files other than the runner's closure, or missing ones")
        others = {p for p, (m, _) in self.files.items() if m.isfile()} - elves
        self.assertEqual(others, {"/etc/ssl/certs/ca-certificates.crt"})
        self.assertFalse([p for p, (m, _) in self.files.items() if not (m.isfile() or m.isdir())],
                         "only files and directories")
        for p, (m, _) in self.files.items():
            self.assertEqual((m.uid, m.gid, m.mode & 0o7000), (0, 0, 0), p)

    def test_runner_starts_from_the_image_alone(self):
        with tempfile.TemporaryDirectory() as root:
            for p, (m, body) in sorted(self.files.items()):
                dst = root + p
                if m.isdir():
                    os.makedirs(dst, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                with open(dst, "wb") as f:
                    f.write(body)
                os.chmod(dst, m.mode & 0o777)
            if os.geteuid() == 0:   # nothing of the host's in reach but /proc, as in a runtime
                argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        'mkdir "$1/proc" && mount -t proc proc "$1/proc" && '
                        'exec chroot "$1" /usr/bin/cep-runner --version', "sh", root]
            else:                   # the image's loader and libraries first
                interp = [p for p in closure(RUNNER) if "/ld-" in p][0]
                dirs = sorted({os.path.dirname(root + p) for p in closure(RUNNER)})
                argv = [root + interp, "--inhibit-cache", "--library-path", ":".join(dirs),
                        root + "/usr/bin/cep-runner", "--version"]
            r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("cep-runner", r.stdout + r.stderr)

    def test_reproducible(self):
        # the same inputs, its SOURCE_DATE_EPOCH included (every mtime in
        # the archive): by default that is the last commit's time, which a
        # commit made since the archive was built would change
        with tarfile.open(ARCHIVE) as t:
            epochs = {m.mtime for m in t.getmembers()}
        self.assertEqual(len(epochs), 1, "mtimes in the archive: %s" % sorted(epochs))
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(epochs.pop()))
        with tempfile.TemporaryDirectory() as d:
            again = os.path.join(d, "again.tar")
            subprocess.run(["sh", os.path.join(SRC, "scripts", "runner-image.sh"), RUNNER, again,
                            self.index["manifests"][0]["annotations"]
                            ["org.opencontainers.image.ref.name"]],
                           check=True, capture_output=True, timeout=120, env=env)
            with open(ARCHIVE, "rb") as a, open(again, "rb") as b:
                self.assertEqual(hashlib.sha256(a.read()).hexdigest(),
                                 hashlib.sha256(b.read()).hexdigest())

    def test_skopeo_reads_it(self):
        r = subprocess.run(["skopeo", "inspect", "oci-archive:" + ARCHIVE],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["Digest"], self.digest)


if __name__ == "__main__":
    if ARCHIVE is None:
        sys.exit("usage: runner_image_test.py ARCHIVE RUNNER SRC")
    unittest.main(argv=sys.argv[:1], verbosity=2)
