"""cep-signer under a real systemd: this machine's own root booted with
`systemd-nspawn --volatile=yes` (a tmpfs root with the host's /usr, so
nothing of the host changes), the build's binaries layered over /usr/bin,
the units, sysusers and tmpfiles files of appliance/systemd bound in.

Inside, with no step after boot: cep-firstboot.service makes the CA (one
line), cep-signer.service comes up (Type=notify) with CapEff 0 and a
`systemd-analyze security` exposure <= 2.0; neither cep-delegate nor
cep-relay can read ca.key, cep-relay cannot reach the signer's socket;
the delegate, run as cep-delegate, gets the CA certificate from the signer
and a host experiment passes with an identity the signer signed.

Needs root, systemd-nspawn and systemd on this machine; skipped otherwise.
"""
import re
import unittest

from nspawn_e2e import boot, can_boot

CHECK = r"""#!/bin/sh
exec >/out/result.txt 2>&1
sleep 1
echo "ACTIVE $(systemctl is-active cep-firstboot.service) $(systemctl is-active cep-signer.service)"
echo "STATUS $(systemctl show -p StatusText --value cep-signer.service)"
journalctl -u cep-firstboot --no-pager -o cat | grep '^first boot:'
pid=$(systemctl show -p MainPID --value cep-signer.service)
grep CapEff /proc/$pid/status
ls -ln /var/lib/cep-signer/ca.key /run/cep-signer/signer.sock
for u in cep-delegate cep-relay; do
    setpriv --reuid $u --regid cep --init-groups cat /var/lib/cep-signer/ca.key >/dev/null 2>&1 \
        && echo "KEY $u readable" || echo "KEY $u denied"
done
setpriv --reuid cep-relay --regid cep --init-groups sh -c 'test -w /run/cep-signer/signer.sock' \
    && echo "SOCK relay reachable" || echo "SOCK relay denied"
systemd-analyze security cep-signer.service --no-pager | grep 'Overall exposure'
# relay, launcher and delegate by hand (their units are not under test
# here; tests/appliance boots them all); /run/cep as tmpfiles.d makes it;
# the relay's key handed over as LoadCredential=cep:/etc/cep/relay would
unset JOURNAL_STREAM
chown root:cep /run/cep && chmod 1770 /run/cep
mkdir -p /var/lib/cep-relay && chown cep-relay:cep /var/lib/cep-relay
mkdir -p /run/credentials/cep-relay.service
for f in /etc/cep/relay/*; do
    install -o cep-relay -m 0400 "$f" "/run/credentials/cep-relay.service/cep_${f##*/}"
done
CREDENTIALS_DIRECTORY=/run/credentials/cep-relay.service \
setpriv --reuid cep-relay --regid cep --init-groups /usr/bin/cep-relay >/out/relay.log 2>&1 &
mkdir -p /run/cep-launcher && chown root:cep /run/cep-launcher && chmod 0710 /run/cep-launcher
/usr/bin/cep-launcher >/out/launcher.log 2>&1 &
sleep 1
setpriv --reuid cep-delegate --regid cep --init-groups /usr/bin/cep-delegate >/out/delegate.log 2>&1 &
cat > /tmp/e.yaml <<'Y'
apiVersion: cep.io/v1
kind: Experiment
metadata:
  name: signed
spec:
  target:
    kind: host
  duration: 2s
  probes:
    - name: ok
      type: cmd
      mode: edge
      command: ["true"]
Y
timeout 90 cepctl run /tmp/e.yaml | grep '^verdict'
journalctl -u cep-signer --no-pager -o cat | grep 'signed runner identity'
systemctl stop cep-signer.service
journalctl -u cep-signer --no-pager -o cat | tail -2
echo DONE
systemctl poweroff
"""


@unittest.skipUnless(can_boot(), "needs root, systemd-nspawn and systemd")
class SignerUnderSystemd(unittest.TestCase):
    def test_first_boot_and_signer_unit(self):
        res, why = boot(CHECK, "cep-sgsd", ("cep-signer.service", "cep-firstboot.service"),
                        after=("cep-signer.service",), wants=("cep-signer.service",),
                        outputs=("result.txt", "delegate.log", "relay.log", "launcher.log"))
        self.assertIn("DONE", res, why)
        self.assertIn("ACTIVE active active", res, why)
        self.assertRegex(res, r"first boot: created a new CA \(SHA-256 [0-9A-F:]{95}\) "
                              r"in /var/lib/cep-signer", why)
        self.assertIn("STATUS serving", res, why)
        self.assertIn("CapEff:\t0000000000000000", res, why)
        self.assertIn("KEY cep-delegate denied", res, why)
        self.assertIn("KEY cep-relay denied", res, why)
        self.assertIn("SOCK relay denied", res, why)
        m = re.search(r"Overall exposure level for cep-signer.service: ([0-9.]+)", res)
        self.assertIsNotNone(m, why)
        print(f"systemd-analyze security cep-signer.service: {m.group(1)}")
        self.assertLessEqual(float(m.group(1)), 2.0, why)
        self.assertIn("signer cep-signer", res, why)
        self.assertIn("verdict: Pass", res, why)
        self.assertRegex(res, r"signed runner identity cep://cep-sgsd/local/host/r-[0-9a-f]{16}", why)
        self.assertIn("stopped", res, why)


if __name__ == "__main__":
    unittest.main()
