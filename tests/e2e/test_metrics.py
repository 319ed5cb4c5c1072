"""The relay's and the delegate's Prometheus endpoints, scraped over HTTP
while a real experiment runs through them (docs/metrics.md)."""
import os
import re
import socket
import ssl
import struct
import unittest
import urllib.error
import urllib.request

from cep_e2e import Appliance, experiment, wait_until

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

RELAY = ["cep_relay_runners_connected", "cep_relay_calls_total", "cep_relay_refusals_total",
         "cep_relay_events_in_total", "cep_relay_events_out_total"]
DELEGATE = ["cep_delegate_runs_active", "cep_delegate_runs_total",
            "cep_delegate_launches_total", "cep_delegate_launch_failures_total",
            "cep_delegate_events_total"]


def parse(text):
    """{(name, frozenset(labels)): value}, and {name: type} from TYPE lines.
    Strict: a line that is neither a comment nor a sample fails."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("# HELP ") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples, types


def value(samples, name, **labels):
    """The sum over series of name whose labels include the given ones."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def pb_varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def pb_field(num, wire, payload):
    if wire == 0:
        return pb_varint(num << 3) + pb_varint(payload)
    return pb_varint(num << 3 | 2) + pb_varint(len(payload)) + payload


def pb_code(buf):
    """Field 4 (code) of an Envelope."""
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = read_varint(buf, i)
            if num == 4:
                return v
        elif wire == 2:
            n, i = read_varint(buf, i)
            i += n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return 0


def read_varint(buf, i):
    shift = v = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise AssertionError("connection closed")
        data += chunk
    return data


def set_metrics(app, relay, delegate):
    """Rewrites relay.metrics and delegate.metrics in app's cep.yaml
    (whether or not `cepctl init` wrote them itself)."""
    path = os.path.join(app.home, "config", "cep.yaml")
    with open(path) as f:
        text = f.read()
    assert re.search(r"^relay:\n", text, re.M), text
    text = re.sub(r"^delegate:\n(?:[ #].*\n)*", "", text, flags=re.M)
    text = re.sub(r"^  metrics:.*\n", "", text, flags=re.M)
    text = re.sub(r"^relay:\n", f'relay:\n  metrics: "{relay}"\n', text, count=1, flags=re.M)
    text += f'delegate:\n  metrics: "{delegate}"\n'
    with open(path, "w") as f:
        f.write(text)


class Metrics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.app = Appliance("metrics")
        set_metrics(cls.app, "127.0.0.1:0", "127.0.0.1:0")
        cls.app.start_all()
        cls.ports = {}
        for name in ("relay", "delegate"):
            f = os.path.join(cls.app.home, "run", f"{name}.metrics-port")
            assert wait_until(lambda: os.path.exists(f), 10), cls.app.logs()
            with open(f) as fh:
                cls.ports[name] = int(fh.read())

    @classmethod
    def tearDownClass(cls):
        cls.app.close()

    def get(self, name, path="/metrics"):
        url = f"http://127.0.0.1:{self.ports[name]}{path}"
        handler = urllib.request.ProxyHandler({})  # never through a proxy
        with urllib.request.build_opener(handler).open(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()

    def scrape(self, name):
        status, ctype, body = self.get(name)
        self.assertEqual(status, 200)
        self.assertEqual(ctype, "text/plain; version=0.0.4; charset=utf-8")
        return parse(body)

    def test_1_endpoints_listen_on_loopback_with_every_family(self):
        with open("/proc/net/tcp") as f:
            listening = {line.split()[1] for line in f.readlines()[1:]
                         if line.split()[3] == "0A"}
        for name, families in (("relay", RELAY), ("delegate", DELEGATE)):
            port = self.ports[name]
            self.assertIn(f"0100007F:{port:04X}", listening, f"{name} not on 127.0.0.1:{port}")
            samples, types = self.scrape(name)
            for fam in families:
                self.assertIn(fam, types, f"{name}: no TYPE line for {fam}")
                self.assertEqual(types[fam], "counter" if fam.endswith("_total") else "gauge")
            with self.assertRaises(urllib.error.HTTPError) as cm:
                self.get(name, "/")
            self.assertEqual(cm.exception.code, 404)
            with self.assertRaises(urllib.error.HTTPError) as cm:
                self.get(name, "/metrics/extra")
            self.assertEqual(cm.exception.code, 404)

    def test_2_a_run_moves_the_counters(self):
        before_r, _ = self.scrape("relay")
        before_d, _ = self.scrape("delegate")
        exp = experiment("metrics-run", duration="1s", probes=[
            {"name": "t", "type": "cmd", "mode": "end-of-test", "command": ["true"]}])
        r = self.app.cepctl("run", self.app.write("m.yaml", exp), "--output", "json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.app.logs())

        d, _ = self.scrape("delegate")
        self.assertEqual(value(d, "cep_delegate_launches_total", executor="local") -
                         value(before_d, "cep_delegate_launches_total", executor="local"), 1)
        self.assertEqual(value(d, "cep_delegate_runs_total", state="PASSED") -
                         value(before_d, "cep_delegate_runs_total", state="PASSED"), 1)
        self.assertEqual(value(d, "cep_delegate_launch_failures_total"), 0)
        self.assertGreater(value(d, "cep_delegate_events_total"),
                           value(before_d, "cep_delegate_events_total"))
        self.assertEqual(value(d, "cep_delegate_runs_active"), 0)

        rl, _ = self.scrape("relay")
        ev_in = value(rl, "cep_relay_events_in_total") - value(before_r, "cep_relay_events_in_total")
        ev_out = value(rl, "cep_relay_events_out_total") - value(before_r, "cep_relay_events_out_total")
        self.assertGreater(ev_in, 0)
        self.assertGreater(ev_out, 0)
        self.assertLessEqual(ev_out, ev_in)
        # every event the delegate journaled came through the relay
        self.assertGreaterEqual(ev_out, value(d, "cep_delegate_events_total") -
                                value(before_d, "cep_delegate_events_total"))
        self.assertGreaterEqual(value(rl, "cep_relay_calls_total", method="Runner/Prove",
                                      code="OK"), 1)
        self.assertGreaterEqual(value(rl, "cep_relay_calls_total", method="Runner/PushEvents",
                                      code="OK"), 1)
        self.assertGreaterEqual(value(rl, "cep_relay_calls_total", method="Relay/SyncRuns",
                                      code="OK"), 1)
        # the runner has gone: nothing stays connected
        self.assertTrue(wait_until(lambda: value(self.scrape("relay")[0],
                                                 "cep_relay_runners_connected") == 0, 10))

    def test_3_a_stranger_is_refused_and_counted(self):
        before, _ = self.scrape("relay")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        env = (pb_field(1, 2, b"cep.v1.Runner/GetAssignment") + pb_field(2, 0, 7) +
               pb_field(3, 0, 5000) + pb_field(6, 2, pb_field(1, 2, b"r-nobody")))
        msg = struct.pack(">I", 0x80000001) + env
        with socket.create_connection(("127.0.0.1", self.app.port), timeout=10) as raw:
            with ctx.wrap_socket(raw) as s:
                s.sendall(b"\x00SP\x00\x00\x30\x00\x00")   # SP header: req0
                self.assertEqual(recv_exact(s, 8)[:4], b"\x00SP\x00")
                s.sendall(struct.pack(">Q", len(msg)) + msg)
                n = struct.unpack(">Q", recv_exact(s, 8))[0]
                reply = recv_exact(s, n)
        self.assertEqual(pb_code(reply[4:]), 16, "UNAUTHENTICATED expected")
        rl, _ = self.scrape("relay")
        self.assertEqual(value(rl, "cep_relay_refusals_total", reason="tls_unverified") -
                         value(before, "cep_relay_refusals_total", reason="tls_unverified"), 1)
        self.assertEqual(value(rl, "cep_relay_calls_total", method="Runner/GetAssignment",
                               code="UNAUTHENTICATED") -
                         value(before, "cep_relay_calls_total", method="Runner/GetAssignment",
                               code="UNAUTHENTICATED"), 1)
        self.assertIn("reason=tls_unverified", self.app.logs())

    def test_4_a_busy_port_is_logged_not_fatal(self):
        other = Appliance("metrics-busy")
        try:
            # the first appliance's relay holds this port
            set_metrics(other, f"127.0.0.1:{self.ports['relay']}", "")
            other.start_all()   # both daemons come up and serve cepctl
            self.assertTrue(wait_until(lambda: "running without metrics" in other.logs(), 10),
                            other.logs())
            self.assertFalse(os.path.exists(os.path.join(other.home, "run",
                                                         "relay.metrics-port")))
            self.assertFalse(os.path.exists(os.path.join(other.home, "run",
                                                         "delegate.metrics-port")))
            # and the first relay still answers on it
            self.scrape("relay")
        finally:
            other.close()


if __name__ == "__main__":
    unittest.main()
