"""hostile - the attacker's side of the hostile relay port test (issue 13).

Everything an outsider can do to the runners' port without a runner
identity: idle TCP connections, slowloris (9 bytes of a ClientHello, then
silence), TLS garbage, an oversized TLS record, a client with a valid
certificate of another CA (TLS completes: the relay takes client
certificates optionally so that refusals reach Prove), and a client that
completes TLS and the SP handshake and then floods calls.

Every loop is bounded in count and time, and targets the loopback only.
Attackers use their own source addresses (127.0.0.2 and up) so that the
per-peer limits meet them and not the real runner on 127.0.0.1.

  python3 hostile.py PORT [--idle N] [--slow N] [--hold S]   (a manual run)
Python standard library only (certificates of another CA: openssl(1)).
"""
import os
import random
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

from test_metrics import pb_code, pb_field, recv_exact

# 9 bytes of a TLS 1.2 ClientHello: record header (handshake, 3.1, 512
# bytes follow), then the handshake header's first 4 bytes.
CLIENT_HELLO_9 = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC])
SP_REQ0 = b"\x00SP\x00\x00\x30\x00\x00"   # SP header, protocol req0 (48)


def _conn(port, src, timeout=5.0):
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def _is_closed(s, wait=0.0):
    """True when the peer closed (EOF or reset) within wait seconds."""
    s.settimeout(wait if wait > 0 else 0.001)
    try:
        return s.recv(4096) == b""
    except (socket.timeout, BlockingIOError):
        return False
    except OSError:
        return True


class Holders:
    """n connections from src that hold still after sending first (b"" =
    idle, CLIENT_HELLO_9 = slowloris); a closed one is reopened (an attacker
    who keeps trying) at most `reopen` times in all. Counts what the relay
    closed."""

    def __init__(self, port, n, src, first=b"", reopen=0):
        self.port, self.n, self.src, self.first = port, n, src, first
        self.reopen_left = reopen
        self.socks, self.closed_by_peer, self.refused = [], 0, 0
        self.stop_ev = threading.Event()
        self.thread = None

    def _open_one(self):
        try:
            s = _conn(self.port, self.src)
            if self.first:
                s.sendall(self.first)
            s.setblocking(False)
            self.socks.append(s)
        except OSError:
            self.refused += 1

    def open(self):
        for _ in range(self.n):
            self._open_one()
        return self

    def _sweep(self):
        keep = []
        for s in self.socks:
            if _is_closed(s):
                self.closed_by_peer += 1
                s.close()
            else:
                keep.append(s)
        self.socks = keep
        while len(self.socks) < self.n and self.reopen_left > 0:
            self.reopen_left -= 1
            self._open_one()

    def start(self, period=0.5):
        def loop():
            while not self.stop_ev.wait(period):
                self._sweep()
        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()
        return self

    def open_now(self):
        """Connections still open from our side that the relay has not closed."""
        self._sweep() if self.thread is None else None
        return len(self.socks)

    def close(self):
        self.stop_ev.set()
        if self.thread:
            self.thread.join()
        self._sweep()
        for s in self.socks:
            s.close()
        self.socks = []


def garbage(port, src, rounds=20):
    """Random bytes in place of TLS; returns how many connections the
    relay closed within 5 s."""
    closed = 0
    for _ in range(rounds):
        try:
            s = _conn(port, src)
            s.sendall(os.urandom(random.randint(1, 4096)))
            closed += _is_closed(s, 5.0)
            s.close()
        except OSError:
            closed += 1
    return closed


def oversized_record(port, src, rounds=5):
    """A TLS record header announcing 65,535 bytes (over TLS's 16 KiB +
    2,048) and then a stream of bytes; returns how many the relay closed."""
    closed = 0
    for _ in range(rounds):
        try:
            s = _conn(port, src)
            s.sendall(bytes([0x16, 0x03, 0x01, 0xFF, 0xFF]) + os.urandom(20000))
            closed += _is_closed(s, 5.0)
            s.close()
        except OSError:
            closed += 1
    return closed


def other_ca(tmp):
    """(cert, key) paths of a client certificate signed by a CA of our own."""
    def sh(*a):
        subprocess.run(a, check=True, capture_output=True)
    ca_key, ca_crt = os.path.join(tmp, "ca.key"), os.path.join(tmp, "ca.crt")
    key, csr, crt = (os.path.join(tmp, n) for n in ("c.key", "c.csr", "c.crt"))
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
       "-nodes", "-keyout", ca_key, "-out", ca_crt, "-days", "1", "-subj", "/CN=evil-ca")
    sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", key, "-out", csr, "-subj", "/CN=evil-runner")
    sh("openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
       "-CAcreateserial", "-out", crt, "-days", "1")
    return crt, key


def envelope(method, call_id, body=b""):
    return (pb_field(1, 2, method.encode()) + pb_field(2, 0, call_id) +
            pb_field(3, 0, 5000) + pb_field(6, 2, body))


class SpClient:
    """TLS (a certificate of another CA) + the SP req0 handshake; then
    unary calls as nng's req0 frames them."""

    def __init__(self, port, src, cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(cert, key)
        self.s = ctx.wrap_socket(_conn(port, src, 10.0))
        self.s.sendall(SP_REQ0)
        recv_exact(self.s, 8)
        self.req = random.randint(1, 1 << 30)

    def call(self, method, body=b""):
        """The reply's status code."""
        self.req += 1
        frame = struct.pack(">I", self.req | 0x80000000) + envelope(method, self.req, body)
        self.s.sendall(struct.pack(">Q", len(frame)) + frame)
        n = struct.unpack(">Q", recv_exact(self.s, 8))[0]
        return pb_code(recv_exact(self.s, n)[4:])

    def send_oversized_frame(self, size=64 << 20):
        """Announces an SP frame larger than the relay takes: nng closes."""
        self.s.sendall(struct.pack(">Q", size) + b"\0" * 4096)
        self.s.settimeout(5.0)
        try:
            return self.s.recv(1) == b""
        except OSError:
            return True

    def close(self):
        self.s.close()


def flood(port, src, cert, key, seconds=5.0, max_calls=20000):
    """Calls Challenge (needs no identity) as fast as one connection can;
    returns {code: count}."""
    codes = {}
    c = SpClient(port, src, cert, key)
    end = time.monotonic() + seconds
    n = 0
    try:
        while time.monotonic() < end and n < max_calls:
            code = c.call("cep.v1.Runner/Challenge")
            codes[code] = codes.get(code, 0) + 1
            n += 1
    except (OSError, AssertionError):   # recv_exact: closed
        codes["closed"] = codes.get("closed", 0) + 1
    c.close()
    return codes


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def established(pid, port):
    """Connections to port that pid holds ESTABLISHED: live ones. One the
    relay has shut down is in FIN_WAIT until its owner (nng) closes it."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    n = 0
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as f:
            for line in f.readlines()[1:]:
                col = line.split()
                if (int(col[1].rsplit(":", 1)[1], 16) == port and col[3] == "01"
                        and col[9] in inodes):
                    n += 1
    return n


def sanitized(pid):
    """True for an AddressSanitizer build (its quarantine keeps freed
    memory: RSS says nothing then)."""
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--slow", type=int, default=200)
    ap.add_argument("--hold", type=float, default=40)
    ap.add_argument("--pid", type=int, default=0)
    a = ap.parse_args()
    t0 = time.monotonic()
    idle = Holders(a.port, a.idle, "127.0.0.2").open().start()
    slow = Holders(a.port, a.slow, "127.0.0.3", CLIENT_HELLO_9).open().start()
    print(f"opened {len(idle.socks)} idle ({idle.refused} refused), "
          f"{len(slow.socks)} slowloris in {time.monotonic() - t0:.1f}s")
    end = time.monotonic() + a.hold
    while time.monotonic() < end:
        time.sleep(5)
        extra = f" relay rss {rss_kb(a.pid)} kB fds {fds(a.pid)}" if a.pid else ""
        print(f"t={time.monotonic() - t0:.0f}s idle open {len(idle.socks)} "
              f"(closed by relay {idle.closed_by_peer}), slowloris open {len(slow.socks)} "
              f"(closed {slow.closed_by_peer}){extra}", flush=True)
    idle.close()
    slow.close()
