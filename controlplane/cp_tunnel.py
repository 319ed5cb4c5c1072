"""cp_tunnel.py - the runners' tunnel through the reference control plane.

A runner that cannot reach its appliance's relay POSTs each of its calls
(an Envelope) to /v1/tunnel/cep.v1.Runner/<Method> with its per-run identity
as the TLS client certificate. The plane checks that certificate against the
CA of the appliance its URI SAN names (cep://<appliance>/<connector>/<ns>/<run>;
the CA came with Register), queues the call for that appliance and holds the
request until the relay answers through TunnelPoll/TunnelReply, or 504.

The plane is a courier here: it never sees the runner's key, the relay runs
its own Challenge/Prove over the tunnel, and what it relays back is the
relay's Envelope, untouched.
"""
import collections
import datetime
import itertools
import re
import ssl
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cp_store import CpError

RUNNER_METHODS = {"cep.v1.Runner/" + m for m in (
    "Challenge", "Prove", "GetAssignment", "PushEvents", "WatchCommands", "RecordFault", "FaultReverted")}
URI_RE = re.compile(r"^cep://([A-Za-z0-9._-]{1,63})/([A-Za-z0-9._-]{1,63})/([A-Za-z0-9._-]{1,63})/(r-[0-9a-f]{16})$")
SESSION_RE = re.compile(r"^[0-9a-f]{16,64}$")
MAX_ENVELOPE = (4 << 20) + 1024   # the relay refuses more (CEP_RPC_MAX_MSG) anyway
QUEUE_MAX = 1024                  # calls waiting per appliance
HOLD_CAP_S = 60.0


class _Call:
    __slots__ = ("id", "appliance", "run_id", "session", "envelope", "done", "reply", "taken")

    def __init__(self, cid, appliance, run_id, session, envelope):
        self.id, self.appliance, self.run_id, self.session, self.envelope = cid, appliance, run_id, session, envelope
        self.done = threading.Event()
        self.reply = None
        self.taken = False


class Tunnel:
    def __init__(self, ctx, cas=None):
        self.ctx = ctx
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.queues = {}     # appliance -> deque of _Call not taken yet
        self.pending = {}    # id -> _Call waiting for its reply
        self.ids = itertools.count(1)
        self.cas = {}        # appliance -> x509.Certificate
        for name, pem in (cas or {}).items():
            try:
                self.add_ca(name, pem)
            except CpError:
                pass

    # ---- trust ----------------------------------------------------------------
    def add_ca(self, appliance, pem):
        """The appliance's CA (from Register): its runners' certificates chain to it."""
        try:
            ca = x509.load_pem_x509_certificate(pem.encode())
        except ValueError as e:
            raise CpError(400, 3, "CpRegister.ca_pem is not a PEM certificate: %s" % e)
        with self.lock:
            old = self.cas.get(appliance)
            self.cas[appliance] = ca
        if old is None or old != ca:
            # the handshake must let runner certificates through; which
            # appliance a certificate may speak for is checked per call
            self.ctx.load_verify_locations(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
            if self.ctx.verify_mode == ssl.CERT_NONE:
                self.ctx.verify_mode = ssl.CERT_OPTIONAL

    def issued_by_appliance(self, der):
        """True when the certificate was issued by a registered appliance CA: a
        runner identity, which must never pass for an appliance credential."""
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            return False
        with self.lock:
            cas = list(self.cas.values())
        for ca in cas:
            try:
                cert.verify_directly_issued_by(ca)
                return True
            except Exception:  # InvalidSignature, or a key type that does not match
                continue
        return False

    def identify(self, der):
        """The (appliance, run id) a runner certificate speaks for, verified
        against that appliance's CA; CpError 403 otherwise."""
        try:
            cert = x509.load_der_x509_certificate(der)
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            uris = san.get_values_for_type(x509.UniformResourceIdentifier)
        except (ValueError, x509.ExtensionNotFound):
            raise CpError(403, 7, "client certificate is not a cep runner identity")
        m = next((URI_RE.match(u) for u in uris if URI_RE.match(u)), None)
        if m is None:
            raise CpError(403, 7, "client certificate has no cep:// identity URI")
        appliance, run_id = m.group(1), m.group(4)
        with self.lock:
            ca = self.cas.get(appliance)
        if ca is None:
            raise CpError(403, 7, "appliance %s has not registered a CA" % appliance)
        try:
            cert.verify_directly_issued_by(ca)
        except Exception:
            raise CpError(403, 7, "runner certificate is not issued by the CA of appliance %s" % appliance)
        now = datetime.datetime.now(datetime.timezone.utc)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise CpError(403, 7, "runner certificate of run %s is expired or not yet valid" % run_id)
        return appliance, run_id

    # ---- calls ----------------------------------------------------------------
    def call(self, appliance, run_id, session, envelope, hold_s, stop):
        """Queues one call and waits for the relay's reply Envelope (None: none in time)."""
        with self.cond:
            q = self.queues.setdefault(appliance, collections.deque())
            if len(q) >= QUEUE_MAX:
                raise CpError(503, 14, "%d tunnel calls already wait for appliance %s" % (len(q), appliance),
                              headers={"Retry-After": "1"})
            c = _Call(next(self.ids), appliance, run_id, session, envelope)
            q.append(c)
            self.pending[c.id] = c
            self.cond.notify_all()
        end = time.monotonic() + min(hold_s, HOLD_CAP_S)
        while not c.done.is_set() and not stop.is_set() and time.monotonic() < end:
            c.done.wait(min(0.5, max(0.0, end - time.monotonic())))
        with self.cond:
            self.pending.pop(c.id, None)
            if not c.taken:
                try:
                    self.queues[appliance].remove(c)
                except ValueError:
                    pass
        return c.reply

    def poll(self, appliance, max_calls, wait_s, stop):
        """Up to max_calls calls waiting for appliance, waiting up to wait_s for one."""
        end = time.monotonic() + wait_s
        with self.cond:
            while True:
                q = self.queues.get(appliance)
                if q or stop.is_set() or time.monotonic() >= end:
                    break
                self.cond.wait(min(0.5, max(0.0, end - time.monotonic())))
            out = []
            while q and len(out) < max_calls:
                c = q.popleft()
                c.taken = True
                out.append(c)
            return out

    def reply(self, appliance, cid, envelope):
        with self.cond:
            c = self.pending.get(cid)
            if c is None or c.appliance != appliance or not c.taken:
                raise CpError(404, 5, "no tunnel call %d waits for a reply from %s (its runner gave up?)"
                              % (cid, appliance))
            c.reply = bytes(envelope)
            c.done.set()

    def wake(self):
        with self.cond:
            self.cond.notify_all()
