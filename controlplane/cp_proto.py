"""cp_proto.py - the cep protobuf messages for Python, generated at run time.

    pb = cp_proto.load(proto_path, cache_dir)   # -> the cep_pb2 module

Runs `protoc --python_out` on proto/cep.proto into cache_dir/<hash>/ (once
per version of the .proto) and imports the result. Needs Debian's
protobuf-compiler (protoc) and python3-protobuf. When the interpreter in use
is not Debian's own (a pyenv or venv Python of the same version), Debian's
dist-packages folder is appended to sys.path so python3-protobuf is found.
"""
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PROTO = os.path.normpath(os.path.join(HERE, "..", "proto", "cep.proto"))
DEBIAN_DIST = "/usr/lib/python3/dist-packages"


def _ensure_runtime():
    try:
        import google.protobuf  # noqa: F401
        return
    except ImportError:
        pass
    if os.path.isdir(DEBIAN_DIST) and DEBIAN_DIST not in sys.path:
        sys.path.append(DEBIAN_DIST)
        for name in [m for m in sys.modules if m == "google" or m.startswith("google.")]:
            del sys.modules[name]
    try:
        import google.protobuf  # noqa: F401
    except ImportError:
        raise SystemExit("cep_cp: the Python protobuf runtime is missing (apt-get install python3-protobuf)")


def load(proto_path=None, cache_dir=None):
    """Generate (if needed) and import cep_pb2 from proto_path."""
    _ensure_runtime()
    proto_path = os.path.abspath(proto_path or DEFAULT_PROTO)
    with open(proto_path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    if cache_dir is None:
        import tempfile
        cache_dir = os.path.join(tempfile.gettempdir(), "cep-cp-proto-%d" % os.getuid())
    out = os.path.join(os.path.abspath(cache_dir), digest)
    stem = os.path.splitext(os.path.basename(proto_path))[0]
    module_file = os.path.join(out, stem + "_pb2.py")
    if not os.path.exists(module_file):
        protoc = shutil.which("protoc")
        if not protoc:
            raise SystemExit("cep_cp: protoc not found (apt-get install protobuf-compiler)")
        tmp = out + ".tmp%d" % os.getpid()
        os.makedirs(tmp, exist_ok=True)
        r = subprocess.run([protoc, "-I", os.path.dirname(proto_path), "--python_out=" + tmp, proto_path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise SystemExit("cep_cp: protoc failed on %s: %s" % (proto_path, r.stderr.decode(errors="replace")))
        try:
            os.rename(tmp, out)
        except OSError:  # another process generated it first
            shutil.rmtree(tmp, ignore_errors=True)
    name = "cep_cp_pb2_" + digest
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, module_file)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
