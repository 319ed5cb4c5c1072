"""sandbox.py - what makes a pod of the test kubelet look like a pod to a
node-level tool: its own network namespace (the "pod sandbox") and a
cgroup per container whose path names the container id, laid out as
kubelet's cgroupfs driver does with containerd:

    <cgroup root>/kubepods/besteffort/pod<uid>/<64-hex container id>

The network namespace is held by a holder process (the "pause" container
of a real runtime): it is created once per pod, shared by the pod's
containers, kept across container restarts, and ends with the pod. It has
only `lo` (there is no CNI here): a pod in it reaches nothing outside,
which is why the kubelet gives one only to pods whose image is listed
with --pod-netns (others share the host's network as with hostNetwork).

Cgroups: cgroup v2 where it is mounted (/sys/fs/cgroup, or
/sys/fs/cgroup/unified on hybrid hosts), else each v1 hierarchy of
V1_CONTROLLERS that is mounted. Not writable (not root): no cgroup,
and the container runs in the kubelet's.
"""
import ctypes
import os
import signal
import subprocess
import sys

CG = "/sys/fs/cgroup"
CGROUP2_MAGIC = 0x63677270
V1_CONTROLLERS = ("memory", "cpu", "pids", "systemd")

HOLDER = r"""
import ctypes, os, signal, subprocess, sys
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.prctl(1, signal.SIGKILL, 0, 0, 0)          # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
if libc.unshare(0x40000000) != 0:               # CLONE_NEWNET
    sys.exit(2)
subprocess.run(["ip", "link", "set", "lo", "up"], check=False)
sys.stdout.write("ready\n")
sys.stdout.flush()
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
while True:
    signal.pause()
"""


class NetnsHolder:
    """One pod's network namespace: /proc/<pid>/ns/net of the holder."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-I", "-c", HOLDER, str(os.getpid())],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            self.close()
            raise OSError("pod network namespace: the holder did not start")
        self.path = "/proc/%d/ns/net" % self.proc.pid

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


def _fs_magic(path):
    class StatFS(ctypes.Structure):
        _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_long * 15)]
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    st = StatFS()
    if libc.statfs(path.encode(), ctypes.byref(st)) != 0:
        return None
    return st.f_type & 0xffffffff


def roots():
    """Where container cgroups go on this host."""
    for r in (CG, os.path.join(CG, "unified")):
        if _fs_magic(r) == CGROUP2_MAGIC:
            return [r]
    return [os.path.join(CG, c) for c in V1_CONTROLLERS if os.path.ismount(os.path.join(CG, c))]


def container_cgroups(pod_uid, container_id):
    """Creates the container's cgroup directories; [] when we cannot."""
    cid = container_id.split("://", 1)[-1]
    rel = os.path.join("kubepods", "besteffort", "pod" + pod_uid, cid)
    made = []
    for r in roots():
        d = os.path.join(r, rel)
        try:
            os.makedirs(d, exist_ok=True)
        except OSError:
            continue
        made.append(d)
    return made


def remove_cgroups(dirs):
    """rmdir each container cgroup and its pod directory, once empty
    (EBUSY while a process is left: then it stays, as a real one would)."""
    for d in dirs:
        for p in (d, os.path.dirname(d)):
            try:
                os.rmdir(p)
            except OSError:
                break


def kill_cgroup(dirs):
    """SIGKILL whatever is still in the container's cgroups (workers a
    container left that outlived its pid 1 because the pod had hostPID)."""
    for d in dirs:
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids = [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            continue
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
