"""accounting - the campaign's counts, and how events are counted.

Ground truth for events. A runner numbers its events 1, 2, 3... per run
with no gap (proto Event.seq; docs/internals.md, "A run, call by call",
step 5), and drops an event only once the delegate acked it
(EventAck.acked_seq: the delegate acks only what it journalled, with
fsync). So for each run:

- every seq the plane holds says the runner made events 1..seq: a seq
  missing below the highest one the plane holds is lost, whatever any
  journal says;
- every seq up to the acked high-water mark left the runner for good, so
  it must reach the plane: the delegate's count for the run (`cepctl runs`,
  the last seq it journalled and acked) is that mark, read from outside
  through the admin API;
- a runner killed before an ack loses its unacked tail by design: those
  events never left its memory, nobody acked them, and they are not
  counted as lost.

So lost = |{1 .. max(acked, highest seq at the plane)} - {seqs at the
plane}|, counted at the plane's admin API (/admin/events, its SQLite
store), never from cep's journal files. Delivered twice = a (run, seq)
the plane holds more than once (what its consumers would see twice; the
plane's contract is to store each once, docs/control-plane-api.md).
Apart from that, and not a must-be-0 count: re-sent = arrivals the plane
recorded as repeats of a (run, seq) it already held and dropped. A relay
killed after the plane stored an upload and before it committed its spool
cursor re-sends by design (the uploader is at-least-once; the plane's
(run, seq) check makes it exactly-once); so does, today, a relay killed
after spooling a runner's batch and before the runner got the ack (the
runner re-sends the batch, the new relay spools it again): see
docs/testing.md, "Results".
"""
from collections import Counter
import time

from cep_e2e import wait_until

MUST_BE_ZERO = ("events lost", "events delivered twice", "runs without a final state",
                "faults left", "daemon crashes")


class Counts:
    def __init__(self):
        self.n = {k: 0 for k in MUST_BE_ZERO}
        self.detail = []          # (round, what) of every non-zero count
        self.kills = {}
        self.states = {}
        self.events = 0
        self.runs = 0
        self.resent = 0

    def add(self, key, r, amount, what):
        self.n[key] += amount
        self.detail.append((r, f"{key} +{amount}: {what}"))
        print(f"  round {r}: {key} +{amount}: {what}", flush=True)

    def crash(self, r, what):
        self.add("daemon crashes", r, 1, what)

    def unfinished(self, r, what):
        self.add("runs without a final state", r, len(what), "; ".join(what))

    def left(self, r, found):
        n = sum(len(v) for v in found.values())
        self.add("faults left", r, n, "; ".join(f"{k}: {v}" for k, v in found.items()))

    def note_kill(self, r, victim):
        self.kills[victim] = self.kills.get(victim, 0) + 1

    def run(self, run):
        self.runs += 1
        self.states[run["state"]] = self.states.get(run["state"], 0) + 1

    def report(self, seed, rounds, total):
        print(f"\ncampaign counts (seed {seed}, {rounds} rounds, {total:.0f} s):")
        for k in MUST_BE_ZERO:
            print(f"  {k:28s} {self.n[k]}")
        print(f"  kills: " + ", ".join(f"{k} {v}" for k, v in sorted(self.kills.items())))
        print(f"  runs: {self.runs} (" + ", ".join(f"{k} {v}" for k, v in sorted(self.states.items()))
              + f"), events at the plane {self.events}, re-sent and dropped by the plane "
              f"{self.resent}")
        for r, what in self.detail:
            print(f"  round {r}: {what}")
        return sum(self.n.values())


def plane_events(site, run_id):
    ev = site.events(run_id)
    return [e["seq"] for e in ev["events"]], ev.get("duplicates", 0), ev.get("duplicate_seqs", [])


def count_events(counts, r, site, app, run):
    """Lost and twice-delivered events of one final run (see the module's
    comment for what counts as sent)."""
    run_id, acked = run["run_id"], int(run.get("events", 0))
    # the relay uploads from its spool in the background: give it time to
    # bring the plane up to the acked mark before counting
    wait_until(lambda: len(plane_events(site, run_id)[0]) >= acked, 60, 0.5)
    time.sleep(0.2)
    seqs, dups, dup_seqs = plane_events(site, run_id)
    top = max([acked] + seqs)
    missing = sorted(set(range(1, top + 1)) - set(seqs))
    counts.events += len(seqs)
    if missing:
        counts.add("events lost", r, len(missing),
                   f"run {run_id} ({run['state']}): acked {acked}, plane holds {len(seqs)}, "
                   f"missing seq {missing[:20]}")
    twice = sorted(s for s, k in Counter(seqs).items() if k > 1)
    if twice:
        counts.add("events delivered twice", r, len(twice),
                   f"run {run_id}: the plane holds seq {twice[:20]} more than once")
    if dups:
        counts.resent += dups
        what = f"run {run_id} seq {sorted(set(dup_seqs))[:20]} arrived again, dropped by the plane"
        counts.detail.append((r, f"re-sent {dups} (not a must-be-0 count): {what}"))
        print(f"  round {r}: re-sent {dups}: {what}", flush=True)
