"""The policy's host facts under a real systemd, with the units as shipped.

This machine's root is booted volatile in `systemd-nspawn` (systemd as
PID 1, a tmpfs root with the host's /usr, the build's binaries layered
over /usr/bin) with every unit of appliance/systemd. cep-delegate then
runs as its unit makes it: user cep-delegate, no capability,
`ProtectProc=invisible`, `ProcSubset=pid`, `ProtectHome=yes`. It can see
no root process in /proc and no file under /root - the policy's checks of
`pid`, network namespace and `disk-fill` targets therefore come from
cep-launcher's Inspect call (docs/privsep.md, "Host facts for the
policy"). Inside, with no step after boot:

- the delegate's unit hides other users' processes (a root process is
  not in its /proc) and its CapEff is 0;
- a network-loss on the `pid` of a root process in a network namespace
  passes the policy and the run passes;
- a disk-fill of a directory under /root (hidden from the delegate)
  passes the policy and the run passes, and one that would fill it past
  policy.maxDiskFillPercent is refused with the figure;
- a root process named sshd is refused by name (policy.targets.deny),
  and a pid that does not exist is "no such process".

Needs root, systemd-nspawn and systemd on this machine; skipped otherwise
(and reported as skipped, not passed: tests/CMakeLists.txt).
"""
import unittest

from nspawn_e2e import all_units, boot, can_boot

CHECK = r"""#!/bin/bash
exec >/out/result.txt 2>&1
for _ in $(seq 100); do cepctl status >/dev/null 2>&1 && break; sleep 0.2; done
echo "ACTIVE $(systemctl is-active cep-launcher cep-delegate cep-relay | tr '\n' ' ')"
dpid=$(systemctl show -p MainPID --value cep-delegate.service)
grep CapEff /proc/$dpid/status | sed 's/^/DELEGATE /'
echo "PROTECTPROC $(systemctl show -p ProtectProc --value cep-delegate.service)"
ip netns add cepi
ip -n cepi link set lo up
ip netns exec cepi sleep 600 &
target=$!
mkdir -p /tmp/bin && cp "$(command -v sleep)" /tmp/bin/sshd
ip netns exec cepi /tmp/bin/sshd 600 &
sshd=$!
sleep 0.5
mkdir -p /root/fill
# what the delegate's own eyes see: in its unit's mount namespace, as its
# user, no root process in /proc, and /root empty
nsenter -t "$dpid" -m setpriv --reuid cep-delegate --regid cep --init-groups \
    test -e "/proc/$target" && echo "HIDDEN no" || echo "HIDDEN yes"
nsenter -t "$dpid" -m test -e /root/fill && echo "HOME visible" || echo "HOME hidden"
exp() { # name faults...
    printf 'apiVersion: cep.io/v1\nkind: Experiment\nmetadata:\n  name: %s\nspec:\n  target:\n    kind: host\n  duration: 2s\n  faults:\n' "$1"
    shift
    printf '%s\n' "$@"
}
exp rootpid "    - name: loss" "      type: network-loss" "      pid: $target" \
    "      percent: 30" >/tmp/rootpid.yaml
exp fill "    - name: fill" "      type: disk-fill" "      path: /root/fill" \
    "      mib: 1" >/tmp/fill.yaml
exp full "    - name: fill" "      type: disk-fill" "      path: /root/fill" \
    "      percent: 99" >/tmp/full.yaml
exp sshd "    - name: loss" "      type: network-loss" "      pid: $sshd" \
    "      percent: 30" >/tmp/sshd.yaml
exp gone "    - name: kill" "      type: process-kill" "      pid: 4194304" >/tmp/gone.yaml
for e in rootpid fill full sshd gone; do
    echo "RUN $e: $(timeout 90 cepctl run /tmp/$e.yaml 2>&1 | grep -E '^verdict|policy:' | head -1)"
    echo "TIME $e ${SECONDS}s"
done
echo "TARGET $target SSHD $sshd"
echo "LEFT $(ls -A /root/fill | wc -l)"
kill "$target" "$sshd"   # this unit ends, and the machine powers off, now
journalctl -u cep-delegate --no-pager -o cat | grep 'delegate up' | tail -1
echo DONE
systemctl poweroff
"""


@unittest.skipUnless(can_boot(), "needs root, systemd-nspawn and systemd")
class InspectUnderSystemd(unittest.TestCase):
    def test_policy_host_facts_through_the_launcher(self):
        daemons = ("cep-launcher.service", "cep-relay.service", "cep-delegate.service")
        res, why = boot(CHECK, "cep-insd", all_units(), after=daemons, wants=daemons,
                        private_network=True, timeout=400)
        self.assertIn("DONE", res, why)
        self.assertIn("ACTIVE active active active", res, why)
        self.assertIn("DELEGATE CapEff:\t0000000000000000", res, why)
        self.assertIn("PROTECTPROC invisible", res, why)
        # the delegate's own eyes could not have checked these targets
        self.assertIn("HIDDEN yes", res, why)
        self.assertIn("HOME hidden", res, why)
        ids = dict(line.split()[i:i + 2] for line in res.splitlines()
                   if line.startswith("TARGET ") for i in (0, 2))
        self.assertIn("RUN rootpid: verdict: Pass", res, why)
        self.assertIn("RUN fill: verdict: Pass", res, why)
        self.assertIn('RUN full: cepctl run: refused: policy: fault "fill" would fill '
                      '/root/fill to 99%, exceeds policy.maxDiskFillPercent 95', res, why)
        self.assertIn(f'RUN sshd: cepctl run: refused: policy: fault "loss" targets pid '
                      f'{ids["SSHD"]}, process "sshd", denied by policy.targets.deny "sshd"',
                      res, why)
        self.assertIn('RUN gone: cepctl run: refused: policy: fault "kill" targets pid '
                      '4194304: no such process', res, why)
        self.assertIn("LEFT 0", res, why)
        self.assertIn("host facts launcher", res, why)


if __name__ == "__main__":
    unittest.main()
