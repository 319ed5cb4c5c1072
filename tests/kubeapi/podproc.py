"""podproc.py - runs one container of a pod as a real process (the "runtime").

The kubelet (kubelet.py) starts `python3 podproc.py SPEC KUBELET_PID` with
start_new_session=True. SPEC is a JSON file (mode 0600, removed once read):
    {"argv": [...], "env": {...}, "cwd": "/", "uid": 1000|null, "gid": ...|null,
     "groups": [...], "hostname": "pod", "mounts": [{"src", "dst", "ro"}],
     "state": "/dir/for/pid+error/files", "stage": "/dir/for/our/tmpfs/mounts",
     "rootfs": "/unpacked/image/rootfs" | null}

Process tree:
    P  podproc (host pid namespace, child of the kubelet, PDEATHSIG=KILL):
       joins the container's cgroups ("cgroups": dirs) and the pod's network
       namespace ("netns": a path, see sandbox.py) when given, unshares
       mount + pid (not with "host_pid": true) + uts namespaces, sets the
       pod's mounts up, forks
       A, forwards SIGTERM & co to it, waits for it, exits with its status
       (128+N when it was killed by signal N).
    A  the container's command: pid 1 of the pod's pid namespace, as in a real
       container (getppid() == 0; like any pid 1 it only gets the signals it
       has a handler for, SIGKILL aside - a shell without `trap` ignores the
       SIGTERM of a graceful delete and is killed when the grace period ends).
       Own session, runAsUser/runAsGroup, PDEATHSIG=KILL. When A dies the
       kernel kills everything else in the namespace, so no process of a pod
       outlives it, even when the server is SIGKILLed.
With "rootfs" (an image from an --image-archive, ociimage.py) A runs
chrooted in a bind mount of it, as a runtime runs a container: the host's
/proc, /sys (read-only), /dev/{null,zero,full,random,urandom,tty},
/etc/hosts and /etc/resolv.conf (the host network's, as for hostNetwork
pods) and the pod's mounts are mounted into it; nothing else of the host.
Mounts never touch the host: the namespace is private, and a missing
directory is created by "shadowing" its nearest existing ancestor with a tmpfs
that holds bind mounts of the ancestor's entries (or chroot when it is /).
"""
import ctypes
import json
import os
import select
import signal
import sys

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWPID = 0x00020000, 0x04000000, 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
FORWARD = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
           signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)

libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def mount(src, dst, fstype, flags, data=None):
    enc = (lambda s: s.encode() if s is not None else None)
    _check(libc.mount(enc(src), enc(dst), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {src} on {dst}")


def pdeathsig():
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Mounter:
    """Creates mount points inside the private mount namespace."""

    def __init__(self, stage):
        self.stage, self.n, self.ours = stage, 0, []

    def _staging(self):
        self.n += 1
        d = os.path.join(self.stage, f"shadow-{self.n}")
        os.makedirs(d, 0o755, exist_ok=True)
        mount("tmpfs", d, "tmpfs", 0, "mode=755")
        return d

    def _populate(self, staging, d):
        st = os.stat(d)
        os.chmod(staging, st.st_mode & 0o7777)
        os.chown(staging, st.st_uid, st.st_gid)
        for e in os.scandir(d):
            dst = os.path.join(staging, e.name)
            if e.is_symlink():
                os.symlink(os.readlink(e.path), dst)
            elif e.is_dir(follow_symlinks=False):
                os.mkdir(dst)
                mount(e.path, dst, None, MS_BIND | MS_REC)
            else:
                open(dst, "w").close()
                try:
                    mount(e.path, dst, None, MS_BIND)
                except OSError:
                    os.unlink(dst)

    def shadow(self, d):
        """Make directory d writable in this namespace only, keeping its content."""
        staging = self._staging()
        self._populate(staging, d)
        if d == "/":
            # Mounting over / does not change our root: enter the copy instead.
            os.chroot(staging)
            os.chdir("/")
            self.ours.append("/")
        else:
            mount(staging, d, None, MS_BIND | MS_REC)
            libc.umount2(staging.encode(), MNT_DETACH)
            self.ours.append(d)

    def _is_ours(self, d):
        # Only the shadowed directories and those we created live on our tmpfs;
        # anything else below them is a bind mount of the host's.
        return d in self.ours

    def ensure(self, path, is_dir):
        """Make path exist (dir or empty file); resolve symlinks as the kernel would."""
        parts = [p for p in os.path.normpath(path).split("/") if p]
        cur = "/"
        for i, comp in enumerate(parts):
            nxt = os.path.join(cur, comp)
            last = i == len(parts) - 1
            if os.path.lexists(nxt):
                real = os.path.realpath(nxt)
                if last:
                    return real
                if not os.path.isdir(real):
                    raise OSError(f"{nxt} is not a directory")
                cur = real
                continue
            if not self._is_ours(cur):
                self.shadow(cur)
            rest = os.path.join(cur, *parts[i:])
            for j in range(i, len(parts) if is_dir else len(parts) - 1):
                cur = os.path.join(cur, parts[j])
                os.mkdir(cur, 0o755)
                self.ours.append(cur)
            if not is_dir:
                open(rest, "w").close()
            return rest
        return cur

    def bind(self, src, dst, ro):
        target = self.ensure(dst, os.path.isdir(src))
        mount(src, target, None, MS_BIND | MS_REC)
        if ro:
            mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


ROOTFS_BINDS = [("/proc", False), ("/sys", True)] + \
    [("/dev/" + d, False) for d in ("null", "zero", "full", "random", "urandom", "tty")] + \
    [("/etc/hosts", True), ("/etc/resolv.conf", True)]


def container_root(m, spec):
    """The container's root: "" (the host's, private mounts) or, with an
    image rootfs, a bind mount of it set up as a runtime would; spec["root"]
    tells run_app where to chroot."""
    if not spec.get("rootfs"):
        return ""
    root = os.path.join(spec["stage"], "rootfs")
    os.makedirs(root, 0o755, exist_ok=True)
    mount(spec["rootfs"], root, None, MS_BIND | MS_REC)
    for src, ro in ROOTFS_BINDS:
        if os.path.exists(src):
            m.bind(src, root + src, ro)
    spec["root"] = root
    return root


def _parent_gone(fd):
    r, _, _ = select.select([fd], [], [], 0)
    return bool(r)


def run_app(spec, state, alive_fd):
    """Child A (pid 1 of the new namespace): become the container's process."""
    try:
        os.setsid()
        pdeathsig()
        if _parent_gone(alive_fd):
            os._exit(137)
        os.close(alive_fd)
        for s in FORWARD + (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(s, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        if spec.get("root"):
            os.chroot(spec["root"])
        os.chdir(spec.get("cwd") or "/")
        uid, gid = spec.get("uid"), spec.get("gid")
        if uid is not None or gid is not None:
            os.setgroups([int(g) for g in spec.get("groups") or []])
            os.setgid(int(gid if gid is not None else 0))
            if uid is not None:
                os.setuid(int(uid))
            pdeathsig()  # a credential change clears it
        argv = spec["argv"]
        os.execvpe(argv[0], argv, spec["env"])
    except BaseException as e:  # noqa: BLE001 - reported as StartError, exits
        try:
            with open(os.path.join(state, "start-error"), "w") as f:
                f.write(start_error(spec, e))
        finally:
            os._exit(128)


def start_error(spec, e):
    """The container runtime's wording (containerd + runc)."""
    exe = (spec.get("argv") or [""])[0]
    if isinstance(e, FileNotFoundError):
        why = ("stat %s: no such file or directory" % exe) if "/" in exe else "executable file not found in $PATH"
    elif isinstance(e, PermissionError):
        why = "permission denied"
    else:
        why = str(e)
    return ('failed to create containerd task: failed to create shim task: OCI runtime create failed: runc '
            'create failed: unable to start container process: error during container init: exec: "%s": %s: '
            'unknown' % (exe, why))


def status_code(st):
    if os.WIFSIGNALED(st):
        return 128 + os.WTERMSIG(st)
    return os.WEXITSTATUS(st)


def main():
    spec_path, kubelet_pid = sys.argv[1], int(sys.argv[2])
    pdeathsig()
    if os.getppid() != kubelet_pid:
        sys.exit(137)
    with open(spec_path) as f:
        spec = json.load(f)
    os.unlink(spec_path)
    state = spec["state"]
    try:
        # the container's cgroups and the pod's network namespace
        # (sandbox.py) before anything else: the container inherits both
        for d in spec.get("cgroups") or []:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        if spec.get("netns"):
            fd = os.open(spec["netns"], os.O_RDONLY | os.O_CLOEXEC)
            try:
                _check(libc.setns(fd, CLONE_NEWNET), "setns " + spec["netns"])
            finally:
                os.close(fd)
        # hostPID: the container sees and is seen with the node's pids
        pid_ns = 0 if spec.get("host_pid") else CLONE_NEWPID
        _check(libc.unshare(CLONE_NEWNS | pid_ns | CLONE_NEWUTS), "unshare")
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        host = (spec.get("hostname") or "pod")[:63].encode()
        _check(libc.sethostname(host, len(host)), "sethostname")
        m = Mounter(spec["stage"])
        root = container_root(m, spec)
        for mt in sorted(spec.get("mounts", []), key=lambda x: x["dst"].count("/")):
            m.bind(mt["src"], root + mt["dst"], mt.get("ro", False))
    except OSError as e:
        with open(os.path.join(state, "start-error"), "w") as f:
            f.write(f"failed to create containerd task: {e}")
        sys.exit(128)
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(w)
        run_app(spec, state, r)
    os.close(r)
    with open(os.path.join(state, "init.pid.tmp"), "w") as f:
        f.write(str(child))
    os.rename(os.path.join(state, "init.pid.tmp"), os.path.join(state, "init.pid"))

    def forward(sig, _frame):
        try:
            os.kill(child, sig)
        except OSError:
            pass
    for s in FORWARD:
        signal.signal(s, forward)
    _, st = os.waitpid(child, 0)
    os._exit(status_code(st))


if __name__ == "__main__":
    main()
