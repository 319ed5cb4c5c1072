"""ociimage.py - images the test kubelet "pulls" from OCI image archives.

`--image-archive REPO=PATH` (kubeapi.py): PATH is an OCI image layout in a
tar (what scripts/runner-image.sh builds, `oci-archive:` to skopeo) and
serves repository REPO, as a registry would:
- `REPO@sha256:D` (also `REPO:TAG@sha256:D`) resolves when D is the digest
  of the archive's manifest (sha256 of the manifest blob: the image digest);
- `REPO:TAG` (`REPO` = `REPO:latest`) when TAG is the manifest's
  `org.opencontainers.image.ref.name` in index.json;
- anything else under REPO is not found: the pull fails as containerd says
  it, and the kubelet shows ErrImagePull / ImagePullBackOff (imagepull.py).
The first pull checks every blob against its digest and unpacks the layers
in order (tar or tar+gzip) into DIR/images/<digest>/rootfs, once. Entries
that would escape the rootfs, hard links, device nodes and whiteouts (`.wh.*`: no layer
of ours deletes anything) make the pull fail with a message naming them.
The container then runs chrooted in that rootfs (podproc.py): the runner
and the libraries that ship, nothing of the host's /usr.
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import threading

INDEX_MT = "application/vnd.oci.image.index.v1+json"
MANIFEST_MT = "application/vnd.oci.image.manifest.v1+json"
LAYER_MTS = ("application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip")
REF_NAME = "org.opencontainers.image.ref.name"
MAX_JSON = 1 << 20


class PullError(Exception):
    pass


def split_ref(image):
    """'cep.io/runner:1@sha256:ab' -> ('cep.io/runner', '1', 'sha256:ab')."""
    name, _, digest = image.partition("@")
    repo, tag = name, None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = name.rsplit(":", 1)
    if not digest and tag is None:
        tag = "latest"
    return repo, tag, digest or None


class Image:
    """The image config the kubelet needs to start a container."""

    def __init__(self, archive, config):
        cfg = config.get("config") or {}
        self.archive = archive
        self.entrypoint = list(cfg.get("Entrypoint") or [])
        self.cmd = list(cfg.get("Cmd") or [])
        self.env = dict(e.split("=", 1) for e in cfg.get("Env") or [] if "=" in e)
        self.workdir = cfg.get("WorkingDir") or "/"
        user = (cfg.get("User") or "").split(":")
        self.uid = int(user[0]) if user[0].isdigit() else None
        self.gid = int(user[1]) if len(user) > 1 and user[1].isdigit() else None

    @property
    def rootfs(self):
        return self.archive.rootfs

    def image_id(self, repo):
        return "%s@%s" % (repo, self.archive.digest)


class Archive:
    def __init__(self, repo, path, workdir):
        self.repo, self.path, self.workdir = repo, os.path.abspath(path), workdir
        self.lock = threading.Lock()
        self.rootfs = None
        self.image = None
        self.error = None
        self.digest, self.tag = self._index()

    # ---- reading the archive -----------------------------------------------------
    def _member(self, tf, name, limit=None):
        try:
            f = tf.extractfile(name)
        except KeyError:
            f = None
        if f is None:
            raise PullError("%s: no %s in the image archive" % (self.path, name))
        return f.read(limit) if limit else f.read()

    def _json(self, tf, name):
        data = self._member(tf, name, MAX_JSON + 1)
        if len(data) > MAX_JSON:
            raise PullError("%s: %s larger than %d bytes" % (self.path, name, MAX_JSON))
        try:
            return json.loads(data)
        except ValueError as e:
            raise PullError("%s: %s: %s" % (self.path, name, e)) from None

    def _blob(self, tf, digest):
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64 or not all(c in "0123456789abcdef" for c in hexd):
            raise PullError("%s: unsupported digest %r" % (self.path, digest))
        data = self._member(tf, "blobs/sha256/" + hexd)
        if hashlib.sha256(data).hexdigest() != hexd:
            raise PullError("%s: blob %s does not match its digest" % (self.path, digest))
        return data

    def _index(self):
        try:
            with tarfile.open(self.path) as tf:
                idx = self._json(tf, "index.json")
        except (OSError, tarfile.TarError) as e:
            raise PullError("%s: %s" % (self.path, e)) from None
        ms = [m for m in idx.get("manifests") or [] if m.get("mediaType") == MANIFEST_MT]
        if len(ms) != 1:
            raise PullError("%s: index.json lists %d image manifests, expected 1" % (self.path, len(ms)))
        return ms[0].get("digest", ""), (ms[0].get("annotations") or {}).get(REF_NAME)

    # ---- resolving and pulling ---------------------------------------------------
    def resolves(self, image):
        repo, tag, digest = split_ref(image)
        if repo != self.repo:
            return None     # not this archive's repository
        return digest == self.digest if digest else tag == self.tag

    def pull(self):
        """The Image, unpacked on the first call; PullError if it cannot be
        (the archive does not change while the server runs: kept)."""
        with self.lock:
            if self.error is not None:
                raise self.error
            if self.image is None:
                try:
                    self._unpack()
                except PullError as e:
                    self.error = e
                    raise
            return self.image

    def _unpack(self):
        dest = os.path.join(self.workdir, self.digest.replace(":", "-"))
        shutil.rmtree(dest, ignore_errors=True)
        root = os.path.join(dest, "rootfs")
        os.makedirs(root, 0o755)
        try:
            with tarfile.open(self.path) as tf:
                manifest = json.loads(self._blob(tf, self.digest))
                config = json.loads(self._blob(tf, manifest["config"]["digest"]))
                for layer in manifest.get("layers") or []:
                    if layer.get("mediaType") not in LAYER_MTS:
                        raise PullError("%s: layer media type %r not supported"
                                        % (self.path, layer.get("mediaType")))
                    data = self._blob(tf, layer["digest"])
                    if layer["mediaType"].endswith("+gzip"):
                        data = gzip.decompress(data)
                    apply_layer(root, data, layer["digest"])
        except (OSError, tarfile.TarError, ValueError, KeyError, TypeError) as e:
            shutil.rmtree(dest, ignore_errors=True)
            raise PullError("%s: %s" % (self.path, e)) from None
        except PullError:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        self.rootfs = root
        self.image = Image(self, config)


def _inside(root, path):
    return path == root or path.startswith(root + os.sep)


def apply_layer(root, data, what):
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf.getmembers():
            name = os.path.normpath(m.name.lstrip("/"))
            base = os.path.basename(name)
            if base.startswith(".wh."):
                raise PullError("layer %s: whiteout %s: not supported by this kubelet" % (what, m.name))
            dst = os.path.join(root, name)
            parent = os.path.realpath(os.path.dirname(dst))
            if name.startswith("..") or not _inside(root, parent):
                raise PullError("layer %s: %s leaves the root filesystem" % (what, m.name))
            if not (m.isreg() or m.isdir() or m.issym()):
                raise PullError("layer %s: %s: only files, directories and symlinks" % (what, m.name))
            if os.path.islink(dst) or (os.path.lexists(dst) and not (m.isdir() and os.path.isdir(dst))):
                # an entry replaces what an earlier layer had there; never
                # written through an old symlink
                if os.path.isdir(dst) and not os.path.islink(dst):
                    shutil.rmtree(dst)
                else:
                    os.unlink(dst)
            m.mode &= 0o1777   # no set-id bits
            tf.extract(m, root, set_attrs=True)


class Archives:
    """opts.image_archives: REPO -> Archive."""

    def __init__(self, specs, workdir):
        self.by_repo = {}
        for repo, path in specs.items():
            self.by_repo[repo] = Archive(repo, path, workdir)

    def archive(self, image):
        return self.by_repo.get(split_ref(image)[0])

    def image(self, image):
        """The Image when `image` resolves to an archive and unpacks, else None."""
        a = self.archive(image)
        if a is None or not a.resolves(image):
            return None
        try:
            return a.pull()
        except PullError:
            return None

    def pull_error(self, image):
        """containerd's error when `image` names an archive's repository and
        cannot be pulled from it; None otherwise."""
        a = self.archive(image)
        if a is None:
            return None
        if not a.resolves(image):
            return ('rpc error: code = NotFound desc = failed to pull and unpack image "%s": '
                    'failed to resolve reference "%s": %s: not found' % (image, image, image))
        try:
            a.pull()
        except PullError as e:
            return ('rpc error: code = Unknown desc = failed to pull and unpack image "%s": %s'
                    % (image, e))
        return None
