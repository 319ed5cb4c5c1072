"""The reference control plane's runner tunnel (controlplane/cp_tunnel.py):
a runner's call in, TunnelPoll/TunnelReply, the reply out; and every bad
input refused with a CpStatus: no or foreign certificate, malformed or
mismatched Envelope, bad session, oversized body, unknown reply id, no
answer in time (504), a runner identity used as an appliance credential.

Run: cd tests/controlplane && python3 -m unittest -v test_cp_tunnel
"""
import datetime
import http.client
import os
import shutil
import ssl
import sys
import tempfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from cp_harness import ControlPlane, make_pki  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

RUN = "r-0123456789abcdef"
SESSION = "00112233445566778899aabbccddeeff"
TMP = None


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def make_runner(d, ca, ca_key, uri, tag):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name("runner")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    crt, kf = os.path.join(d, tag + ".crt"), os.path.join(d, tag + ".key")
    with open(crt, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(kf, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return crt, kf


def setUpModule():
    global TMP
    TMP = tempfile.mkdtemp(prefix="cp-tunnel-")


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


class Tunnel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        pki = make_pki(os.path.join(TMP, "pki"))
        cls.cp = ControlPlane(os.path.join(TMP, "cp"), pki).start()
        cls.pb = cls.cp.pb
        cls.ca1, k1 = make_ca("appliance a1 CA")
        cls.ca2, k2 = make_ca("appliance a2 CA")
        for name, ca in (("a1", cls.ca1), ("a2", cls.ca2)):
            cls.cp.ok("Register", cls.pb.CpRegister(appliance=name, version="t", ca_pem=ca.public_bytes(
                serialization.Encoding.PEM).decode()))
        cls.good = make_runner(TMP, cls.ca1, k1, "cep://a1/local/host/" + RUN, "good")
        # issued by a2's CA but naming a1: must not speak for a1
        cls.forged = make_runner(TMP, cls.ca2, k2, "cep://a1/local/host/" + RUN, "forged")

    @classmethod
    def tearDownClass(cls):
        assert cls.cp.stop() == 0

    def post(self, body, method="cep.v1.Runner/Challenge", cert=None, session=SESSION, ctype="application/x-protobuf",
             length=None):
        ctx = ssl.create_default_context(cafile=self.cp.pki["ca"])
        if cert:
            ctx.load_cert_chain(*cert)
        c = http.client.HTTPSConnection("127.0.0.1", self.cp.port, context=ctx, timeout=30)
        h = {"Content-Type": ctype}
        if session:
            h["X-Cep-Tunnel-Session"] = session
        if length is not None:
            h["Content-Length"] = str(length)
        try:
            c.request("POST", "/v1/tunnel/" + method, body=body, headers=h)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def envelope(self, method="cep.v1.Runner/Challenge", timeout_ms=5000):
        return self.pb.Envelope(method=method, call_id=7, timeout_ms=timeout_ms,
                                body=self.pb.ChallengeRequest(run_id=RUN).SerializeToString()).SerializeToString()

    def status(self, data):
        st = self.pb.CpStatus()
        st.ParseFromString(data)
        return st

    def test_call_polled_answered_and_returned(self):
        out = {}
        t = threading.Thread(target=lambda: out.update(r=self.post(self.envelope(), cert=self.good)))
        t.start()
        calls = self.cp.ok("TunnelPoll", self.pb.CpTunnelPoll(appliance="a1", wait_ms=5000, max=8)).calls
        self.assertEqual(len(calls), 1)
        c = calls[0]
        self.assertEqual((c.run_id, c.session, c.envelope), (RUN, SESSION, self.envelope()))
        # a1's call is not a2's to poll or answer
        self.assertEqual(len(self.cp.ok("TunnelPoll", self.pb.CpTunnelPoll(appliance="a2", wait_ms=10,
                                                                            max=8)).calls), 0)
        st, _, _ = self.cp.call("TunnelReply", self.pb.CpTunnelReply(appliance="a2", id=c.id, envelope=b"x"))
        self.assertEqual(st, 404)
        reply = self.pb.Envelope(call_id=7, body=b"\x0a\x01z").SerializeToString()
        self.cp.ok("TunnelReply", self.pb.CpTunnelReply(appliance="a1", id=c.id, envelope=reply))
        t.join(30)
        self.assertEqual(out["r"], (200, reply))

    def test_unknown_reply_id_is_not_found(self):
        st, _, out = self.cp.call("TunnelReply", self.pb.CpTunnelReply(appliance="a1", id=999999, envelope=b""))
        self.assertEqual((st, out.code), (404, 5))

    def test_no_answer_in_time_is_504(self):
        st, data = self.post(self.envelope(timeout_ms=100), cert=self.good)
        self.assertEqual((st, self.status(data).code), (504, 4))
        # the abandoned call is gone: nothing left to poll
        self.assertEqual(len(self.cp.ok("TunnelPoll", self.pb.CpTunnelPoll(appliance="a1", wait_ms=10,
                                                                            max=8)).calls), 0)

    def test_bad_input_refused_with_a_status(self):
        cases = [
            (dict(body=self.envelope()), 401),                                     # no certificate
            (dict(body=self.envelope(), cert=self.forged), 403),                   # another appliance's CA
            (dict(body=b"\xff\xff\xff", cert=self.good), 400),                     # not an Envelope
            (dict(body=self.envelope("cep.v1.Runner/Prove"), cert=self.good), 400),  # method != path
            (dict(body=self.envelope(), cert=self.good, session="NOT-HEX"), 400),
            (dict(body=self.envelope(), cert=self.good, session=None), 400),
            (dict(body=self.envelope(), cert=self.good, ctype="text/plain"), 415),
            (dict(body=self.envelope(), cert=self.good, method="cep.v1.Admin/Abort"), 404),
            (dict(body=b"\0" * ((4 << 20) + 2048), cert=self.good), 413),
        ]
        for kw, want in cases:
            st, data = self.post(**kw)
            self.assertEqual(st, want, kw.get("method", "") + " " + str(self.status(data)))
            self.assertTrue(self.status(data).message)

    def test_runner_identity_is_not_an_appliance_credential(self):
        self.cp.pki["client"]["runner"] = self.good
        st, _, out = self.cp.call("Heartbeat", self.pb.CpHeartbeat(appliance="a1"), token=None, client="runner")
        self.assertEqual((st, out.code), (401, 16))


if __name__ == "__main__":
    unittest.main()
