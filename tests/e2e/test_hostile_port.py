"""The runners' port under attack (issue 13 item 2; docs/testing.md
"Hostile relay port"): idle connections, slowloris, TLS garbage, oversized
records, a certificate of another CA, and a client that floods calls, all
at once against the real cep-relay and cep-delegate, with the limits of
relay.limits set low enough for CI. A real run started during the attack
must prove and pass; the limits must have been hit (metrics) and have
closed the connections over them; the relay must survive and its RSS come
back near where it was (printed; only a generous bound is asserted).

HOSTILE_IDLE / HOSTILE_SLOW scale it up (the figures of docs/testing.md:
1000 and 200)."""
import os
import re
import tempfile
import time
import unittest
import urllib.request

import hostile
from cep_e2e import Appliance, experiment, wait_until

IDLE = int(os.environ.get("HOSTILE_IDLE", "300"))
SLOW = int(os.environ.get("HOSTILE_SLOW", "50"))
# handshakes + the 60 negotiated clients of another CA exceed
# maxConnections, so every limit is met
LIMITS = {"maxConnections": 150 if IDLE <= 300 else 500,
          "maxConnectionsPerPeer": 100 if IDLE <= 300 else 400,
          "maxHandshakes": 120 if IDLE <= 300 else 450,
          "handshakeTimeout": "3s", "callsPerSecond": 20, "callBurst": 20,
          "logInterval": "5s"}
TS = re.compile(r'^ts=(\S+) .*msg="(.*)"$')


def set_limits(app, limits):
    path = os.path.join(app.home, "config", "cep.yaml")
    with open(path) as f:
        text = f.read()
    block = "  limits:\n" + "".join(f"    {k}: {v}\n" for k, v in limits.items())
    text, n = re.subn(r"^relay:\n", "relay:\n" + block, text, count=1, flags=re.M)
    assert n == 1, text
    with open(path, "w") as f:
        f.write(text)


def metrics_port(app):
    with open(os.path.join(app.home, "run", "relay.metrics-port")) as f:
        return int(f.read())


def scrape(app, family="cep_relay_limited_total"):
    port = metrics_port(app)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(family + r'\{reason="(\w+)"\} (\S+)$', line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def epoch(ts):
    """'2026-12-07T13:50:45.878Z' -> seconds (only differences matter)."""
    t = time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")
    return time.mktime(t) + float("0" + ts[19:-1])


class HostilePort(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.app = Appliance("hostile")
        set_limits(cls.app, LIMITS)
        cls.app.start_all()
        cls.pid = cls.app.procs["relay"].pid
        cls.tmp = tempfile.mkdtemp(prefix="cep-hostile-ca-")
        cls.cert, cls.key = hostile.other_ca(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        cls.app.close()

    def run_once(self, name):
        """A real run: (exit code, seconds to prove, seconds in all)."""
        exp = experiment(name, duration="1s", probes=[
            {"name": "t", "type": "cmd", "mode": "end-of-test", "command": ["true"]}])
        t0 = time.monotonic()
        r = self.app.cepctl("run", self.app.write(f"{name}.yaml", exp), "--output", "json",
                            timeout=120)
        total = time.monotonic() - t0
        return r, self.prove_s(), total

    def prove_s(self):
        """Launch (delegate) to proof (relay) of the latest run, from the logs."""
        def last(daemon, needle):
            with open(os.path.join(self.app.home, "log", f"{daemon}.log")) as f:
                hits = [TS.match(l) for l in f if needle in l]
            hits = [h for h in hits if h]
            return epoch(hits[-1].group(1)) if hits else None
        a, b = last("delegate", "runner started"), last("relay", "runner proved")
        return (b - a) if a is not None and b is not None else float("nan")

    def test_attack_mix(self):
        app = self.app
        rss0 = hostile.rss_kb(self.pid)
        cpu0 = hostile.cpu_s(self.pid)
        r, prove_quiet, total_quiet = self.run_once("quiet")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + app.logs())
        rss_warm = hostile.rss_kb(self.pid)
        before = scrape(app)

        port = app.port
        # slowloris alone first (fewer than maxHandshakes): the handshake
        # timeout is what closes them
        slow = hostile.Holders(port, SLOW, "127.0.0.3", hostile.CLIENT_HELLO_9,
                               reopen=SLOW).open().start()
        time.sleep(3.5)
        # then all at once: negotiated clients of another CA that hold on
        # (.8), idle floods over the per-peer (.2) and the handshake limits,
        # and together over the total (.4)
        held_tls = []
        for _ in range(60):
            try:
                held_tls.append(hostile.SpClient(port, "127.0.0.8", self.cert, self.key))
            except (OSError, AssertionError):
                pass
        idle = hostile.Holders(port, IDLE, "127.0.0.2", reopen=IDLE).open().start()
        idle2 = hostile.Holders(port, IDLE // 3, "127.0.0.4", reopen=IDLE).open().start()
        rss_peak = hostile.rss_kb(self.pid)
        fds_peak = live_peak = 0
        for _ in range(10):   # what the relay holds while the attack goes on
            fds_peak = max(fds_peak, hostile.fds(self.pid))
            live_peak = max(live_peak, hostile.established(self.pid, port))
            time.sleep(0.1)
        garbage_closed = hostile.garbage(port, "127.0.0.5", rounds=10)
        oversized_closed = hostile.oversized_record(port, "127.0.0.5", rounds=5)
        flood = hostile.flood(port, "127.0.0.6", self.cert, self.key, seconds=3)
        # another CA's clients ask to Prove, 4 connections x 20 calls (the
        # call burst): 80 refusals from one address, within logInterval
        wrong_ca_codes = {}
        for _ in range(4):
            other = hostile.SpClient(port, "127.0.0.7", self.cert, self.key)
            for _ in range(20):
                code = other.call("cep.v1.Runner/Prove")
                wrong_ca_codes[code] = wrong_ca_codes.get(code, 0) + 1
            other.close()
        big = hostile.SpClient(port, "127.0.0.7", self.cert, self.key)
        big_closed = big.send_oversized_frame()
        big.close()

        r, prove_attack, total_attack = self.run_once("under-attack")
        rss_peak = max(rss_peak, hostile.rss_kb(self.pid))
        held = {"idle": len(idle.socks), "idle2": len(idle2.socks), "slow": len(slow.socks)}
        for h in (idle, idle2, slow):
            h.close()
        for c in held_tls:
            c.close()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + app.logs())
        self.assertIsNone(app.procs["relay"].poll(), "the relay died:\n" + app.logs())

        after = scrape(app)
        hit = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        time.sleep(1)
        rss_after = hostile.rss_kb(self.pid)
        cpu = hostile.cpu_s(self.pid) - cpu0
        print(f"\nhostile port: {IDLE}+{IDLE // 3} idle, {SLOW} slowloris; limits {LIMITS}\n"
              f"  prove {prove_quiet * 1000:.0f} ms quiet, {prove_attack * 1000:.0f} ms "
              f"under attack; run {total_quiet:.2f} s / {total_attack:.2f} s\n"
              f"  limited {hit}\n  still open at the end (attacker side) {held}; "
              f"closed by the relay: idle {idle.closed_by_peer + idle2.closed_by_peer}, "
              f"slowloris {slow.closed_by_peer}, garbage {garbage_closed}/10, "
              f"oversized records {oversized_closed}/5, oversized frame {big_closed}\n"
              f"  flood {flood}; wrong CA Prove -> {wrong_ca_codes}\n"
              f"  relay during the attack: at most {live_peak} connections established, "
              f"{fds_peak} descriptors\n"
              f"  relay RSS {rss0} kB start, {rss_warm} kB after a run, peak {rss_peak} kB, "
              f"{rss_after} kB after; CPU {cpu:.2f} s", flush=True)

        for reason in ("connections", "per_peer", "handshakes", "handshake_timeout",
                       "call_rate"):
            self.assertGreater(hit.get(reason, 0), 0, f"limit {reason} not hit: {hit}")
        # nothing far over the limits stays established in the relay: the
        # gate looks every 100 ms and what nng accepted meanwhile comes on
        # top (a few hundred a second under ASan on a loaded machine);
        # what it shut down nng closes when it gets to it
        self.assertLess(live_peak, LIMITS["maxConnections"] * 2 + 100)
        self.assertGreater(idle.closed_by_peer + idle2.closed_by_peer, 0)
        self.assertGreater(slow.closed_by_peer, 0)
        self.assertEqual(garbage_closed, 10)
        self.assertEqual(oversized_closed, 5)
        self.assertTrue(big_closed)
        self.assertEqual(flood.get(8, 0) > 0, True, f"no RESOURCE_EXHAUSTED: {flood}")
        self.assertNotIn(0, wrong_ca_codes, "another CA's client proved")
        # the relay lets go: connections close, memory returns
        self.assertTrue(wait_until(lambda: hostile.fds(self.pid) < 64, 15),
                        f"relay still holds {hostile.fds(self.pid)} descriptors")
        if not hostile.sanitized(self.pid):   # ASan's quarantine keeps it all
            self.assertLess(rss_after, rss_warm + 40 * 1024, "RSS did not come back")
        # refusals are logged per peer per interval, not per connection
        with open(os.path.join(app.home, "log", "relay.log")) as f:
            log = f.readlines()
        lines = [l for l in log if "over its limits" in l]
        refused = sum(hit.values())
        self.assertLess(len(lines), 40, f"{len(lines)} log lines for {refused} refusals")
        # Prove refusals: each counted, lines up to a burst of 50 a peer
        prove = [l for l in log if "refused Prove from 127.0.0.7" in l]
        self.assertGreaterEqual(sum(wrong_ca_codes.values()), 80)
        self.assertTrue(1 <= len(prove) <= 50, f"{len(prove)} lines for 80 refusals")

    def test_metrics_listener(self):
        """The relay's metrics endpoint: 16 a peer, 64 in all, 10 s a
        connection (lib/metrics/metrics_http.c); scrapes still answer."""
        port = metrics_port(self.app)
        idle = hostile.Holders(port, 100, "127.0.0.2").open().start()
        slow = hostile.Holders(port, 20, "127.0.0.3", b"GET /metr").open().start()
        # over the per-peer limit: closed within a few sweeps
        self.assertTrue(wait_until(lambda: len(idle.socks) <= 16, 5),
                        f"{len(idle.socks)} idle connections still open")
        t0 = time.monotonic()
        hit = scrape(self.app, "cep_metrics_limited_total")
        took = time.monotonic() - t0
        self.assertGreater(hit.get("per_peer", 0), 0, hit)
        self.assertLess(took, 5)
        # the rest (a slow request) goes at the request timeout
        self.assertTrue(wait_until(lambda: len(slow.socks) == 0, 15),
                        f"{len(slow.socks)} slow requests still open")
        self.assertGreater(scrape(self.app, "cep_metrics_limited_total")
                           .get("handshake_timeout", 0), 0)
        print(f"\nmetrics listener: scrape in {took * 1000:.0f} ms under 120 held "
              f"connections; closed idle {idle.closed_by_peer}, slow {slow.closed_by_peer}")
        idle.close()
        slow.close()


if __name__ == "__main__":
    unittest.main()
