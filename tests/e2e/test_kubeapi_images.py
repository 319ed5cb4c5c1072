"""The test kubelet's OCI image archives (tests/kubeapi/ociimage.py) on small
archives made here: references resolve by digest and by ref.name only,
layers apply in order, and what a real runtime would refuse or what this
kubelet does not implement (a blob not matching its digest, a whiteout, an
entry leaving the root, a device node) fails the pull with a message naming
it. The archive of the real runner image: tests/e2e/test_kube_image.py."""
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import unittest

from cep_e2e import SRC

sys.path.insert(0, os.path.join(SRC, "tests", "kubeapi"))
import ociimage  # noqa: E402

REPO = "registry.example/app"


def layer(entries):
    """A tar+gzip layer from (name, bytes | None for a dir | TarInfo)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, body in entries:
            if isinstance(body, tarfile.TarInfo):
                tf.addfile(body)
                continue
            ti = tarfile.TarInfo(name)
            if body is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(body), 0o4755
                tf.addfile(ti, io.BytesIO(body))
    return gzip.compress(buf.getvalue(), mtime=0)


def archive(path, layers, tag="1.0", tamper=False):
    """An OCI image layout in a tar; -> the manifest digest."""
    blobs = {}

    def blob(data):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return {"digest": d, "size": len(data)}
    config = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {
        "Entrypoint": ["/bin/app"], "User": "1000:1000"}}).encode())
    config["mediaType"] = "application/vnd.oci.image.config.v1+json"
    lays = [dict(blob(x), mediaType="application/vnd.oci.image.layer.v1.tar+gzip") for x in layers]
    man = blob(json.dumps({"schemaVersion": 2, "mediaType": ociimage.MANIFEST_MT,
                           "config": config, "layers": lays}).encode())
    index = {"schemaVersion": 2, "manifests": [dict(man, mediaType=ociimage.MANIFEST_MT,
                                                    annotations={ociimage.REF_NAME: tag})]}
    if tamper:
        blobs[lays[-1]["digest"]] += b"x"
    with tarfile.open(path, "w") as tf:
        for name, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                           ("index.json", json.dumps(index).encode())] + \
                [("blobs/sha256/" + d[7:], b) for d, b in blobs.items()]:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return man["digest"]


class Archives(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cep-oci-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.n = 0

    def make(self, layers, **kw):
        self.n += 1
        path = os.path.join(self.tmp, "a%d.tar" % self.n)
        digest = archive(path, layers, **kw)
        return ociimage.Archives({REPO: path}, os.path.join(self.tmp, "images%d" % self.n)), digest

    def test_resolves_by_digest_and_tag_only(self):
        a, digest = self.make([layer([("bin", None), ("bin/app", b"one")])])
        for ref in (f"{REPO}@{digest}", f"{REPO}:1.0", f"{REPO}:1.0@{digest}"):
            self.assertIsNone(a.pull_error(ref), ref)
            self.assertIsNotNone(a.image(ref), ref)
        wrong = digest[:-1] + ("0" if digest[-1] != "0" else "1")
        for ref in (f"{REPO}@{wrong}", f"{REPO}:2.0", REPO, f"{REPO}:1.0@{wrong}"):
            self.assertIn(f'{ref}: not found', a.pull_error(ref) or "", ref)
            self.assertIsNone(a.image(ref), ref)
        self.assertIsNone(a.pull_error("registry.example/other:1.0"))   # not its repository

    def test_layers_apply_in_order_and_config_is_read(self):
        a, digest = self.make([layer([("bin", None), ("bin/app", b"one")]),
                               layer([("bin/app", b"two"), ("etc", None)])])
        img = a.image(f"{REPO}@{digest}")
        with open(os.path.join(img.rootfs, "bin", "app"), "rb") as f:
            self.assertEqual(f.read(), b"two")
        st = os.stat(os.path.join(img.rootfs, "bin", "app"))
        self.assertEqual(st.st_mode & 0o7000, 0, "set-id bits are dropped")
        self.assertEqual((img.entrypoint, img.cmd, img.uid, img.gid), (["/bin/app"], [], 1000, 1000))
        self.assertEqual(img.image_id(REPO), f"{REPO}@{digest}")

    def refused(self, layers, what, **kw):
        a, digest = self.make(layers, **kw)
        err = a.pull_error(f"{REPO}@{digest}")
        self.assertIsNotNone(err)
        self.assertIn(what, err)
        self.assertIsNone(a.image(f"{REPO}@{digest}"))

    def test_tampered_blob_refused(self):
        self.refused([layer([("bin/app", b"x")])], "does not match its digest", tamper=True)

    def test_whiteout_refused(self):
        self.refused([layer([("bin/app", b"x")]), layer([("bin/.wh.app", b"")])],
                     "whiteout bin/.wh.app: not supported")

    def test_escape_refused(self):
        self.refused([layer([("../evil", b"x")])], "leaves the root filesystem")
        link = tarfile.TarInfo("lib")
        link.type, link.linkname = tarfile.SYMTYPE, "/"
        self.refused([layer([("lib", link), ("lib/tmp/evil", b"x")])], "leaves the root filesystem")

    def test_entry_replaces_an_earlier_symlink(self):
        """A later layer's file replaces an earlier symlink: it is never
        written through it (to the host)."""
        outside = os.path.join(self.tmp, "outside")
        link = tarfile.TarInfo("app")
        link.type, link.linkname = tarfile.SYMTYPE, outside
        a, digest = self.make([layer([("app", link)]), layer([("app", b"inside")])])
        img = a.image(f"{REPO}@{digest}")
        self.assertIsNotNone(img)
        self.assertFalse(os.path.lexists(outside))
        self.assertFalse(os.path.islink(os.path.join(img.rootfs, "app")))

    def test_device_refused(self):
        dev = tarfile.TarInfo("dev/mem")
        dev.type = tarfile.CHRTYPE
        self.refused([layer([("dev", None), ("dev/mem", dev)])], "only files, directories and symlinks")


if __name__ == "__main__":
    unittest.main()
