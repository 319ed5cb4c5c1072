"""cp_store.py - the reference control plane's state, in sqlite.

Tasks, leases, appliances, events and commands live in one sqlite database
(STATE/cp.sqlite3, WAL) so the server can be killed -9 and restarted with the
same --state and go on. One lock guards everything; `cond` (on that lock)
wakes long-polls when a task is queued or a command is posted.

Errors are raised as CpError(http, code, message); the server turns them
into an HTTP status with a CpStatus body.
"""
import json
import os
import sqlite3
import threading
import time
import uuid

# gRPC codes used here
INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, ABORTED = 3, 5, 7, 10
FINAL_STATES = {5: "PASSED", 6: "FAILED", 7: "ABORTED", 8: "ERROR"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS appliances (
  name TEXT PRIMARY KEY, version TEXT, started_ms INTEGER, registered_ms INTEGER,
  last_heartbeat_ms INTEGER, active_runs INTEGER, connectors TEXT, auth TEXT);
CREATE TABLE IF NOT EXISTS tasks (
  qorder INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT UNIQUE NOT NULL,
  spec_yaml TEXT, spec_name TEXT, state TEXT NOT NULL, appliance TEXT, run_id TEXT,
  attempt INTEGER NOT NULL DEFAULT 0, lease_until_ms INTEGER, run_state INTEGER,
  verdict TEXT, score REAL, reason TEXT, error TEXT, on_lease_expiry TEXT, max_attempts INTEGER,
  created_ms INTEGER, updated_ms INTEGER);
CREATE TABLE IF NOT EXISTS leases (
  id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT, appliance TEXT, attempt INTEGER,
  start_ms INTEGER, end_ms INTEGER, outcome TEXT);
CREATE TABLE IF NOT EXISTS events (
  run_id TEXT NOT NULL, seq INTEGER NOT NULL, appliance TEXT, stored_ms INTEGER, body BLOB,
  PRIMARY KEY (run_id, seq));
CREATE TABLE IF NOT EXISTS arrivals (
  id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, seq INTEGER, duplicate INTEGER, time_ms INTEGER);
CREATE INDEX IF NOT EXISTS arrivals_run ON arrivals(run_id, id);
CREATE TABLE IF NOT EXISTS commands (
  appliance TEXT NOT NULL, seq INTEGER NOT NULL, kind INTEGER, run_id TEXT, task_id TEXT,
  reason TEXT, created_ms INTEGER, acked INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (appliance, seq));
"""


class CpError(Exception):
    def __init__(self, http, code, message, headers=None):
        Exception.__init__(self, message)
        self.http, self.code, self.message, self.headers = http, code, message, headers


def now_ms():
    return int(time.time() * 1000)


class Store:
    def __init__(self, state_dir, lease_ms=10000, on_lease_expiry="fail", max_attempts=3):
        os.makedirs(state_dir, exist_ok=True)
        self.lease_ms = lease_ms
        self.on_lease_expiry = on_lease_expiry
        self.max_attempts = max_attempts
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.db = sqlite3.connect(os.path.join(state_dir, "cp.sqlite3"), check_same_thread=False,
                                  isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        try:  # databases from before the tunnel: add the appliance CA column
            self.db.execute("ALTER TABLE appliances ADD COLUMN ca_pem TEXT")
        except sqlite3.OperationalError:
            pass

    # ---- helpers (lock held) --------------------------------------------------
    def _tx(self):
        return _Tx(self.db)

    def _task(self, task_id):
        return self.db.execute("SELECT * FROM tasks WHERE task_id=?", (task_id,)).fetchone()

    def _end_lease(self, task_id, appliance, outcome, t):
        self.db.execute("UPDATE leases SET end_ms=?, outcome=? WHERE id=(SELECT max(id) FROM leases "
                        "WHERE task_id=? AND appliance=? AND end_ms IS NULL)", (t, outcome, task_id, appliance))

    def _held(self, task_id, appliance, what):
        """The task row if `appliance` holds its lease, else 409 ABORTED."""
        row = self._task(task_id)
        if row is None:
            raise CpError(404, NOT_FOUND, "%s: no task %r" % (what, task_id))
        if row["state"] not in ("leased", "acked") or row["appliance"] != appliance:
            raise CpError(409, ABORTED, "%s: task %s is not leased to appliance %s (state %s%s)" % (
                what, task_id, appliance, row["state"],
                ", holder %s" % row["appliance"] if row["appliance"] and row["state"] in ("leased", "acked") else ""))
        return row

    def sweep(self):
        """Expire leases whose lease_until_ms has passed. Returns how many expired."""
        with self.lock:
            t = now_ms()
            rows = self.db.execute("SELECT * FROM tasks WHERE state IN ('leased','acked') AND lease_until_ms<?",
                                   (t,)).fetchall()
            if not rows:
                return 0
            with self._tx():
                for r in rows:
                    maxa = r["max_attempts"] or self.max_attempts
                    if r["state"] == "leased":
                        policy = "requeue"
                    else:
                        policy = r["on_lease_expiry"] or self.on_lease_expiry
                    why = "lease expired: appliance %s stopped heartbeating" % r["appliance"]
                    if policy == "requeue" and r["attempt"] < maxa:
                        self._end_lease(r["task_id"], r["appliance"], "expired, requeued", t)
                        self.db.execute("UPDATE tasks SET state='queued', appliance=NULL, run_id=NULL, "
                                        "lease_until_ms=NULL, run_state=NULL, error=?, updated_ms=? WHERE task_id=?",
                                        (why, t, r["task_id"]))
                    else:
                        if policy == "requeue":
                            why += " (attempts exhausted: %d of %d)" % (r["attempt"], maxa)
                        self._end_lease(r["task_id"], r["appliance"], "expired, failed", t)
                        self.db.execute("UPDATE tasks SET state='failed', lease_until_ms=NULL, error=?, "
                                        "updated_ms=? WHERE task_id=?", (why, t, r["task_id"]))
            self.cond.notify_all()
            return len(rows)

    # ---- appliances -------------------------------------------------------------
    def register(self, name, version, started_ms, connectors, auth, ca_pem=""):
        with self.lock, self._tx():
            t = now_ms()
            self.db.execute("INSERT INTO appliances(name, version, started_ms, registered_ms, last_heartbeat_ms, "
                            "active_runs, connectors, auth, ca_pem) VALUES(?,?,?,?,?,0,?,?,?) ON CONFLICT(name) "
                            "DO UPDATE SET version=excluded.version, started_ms=excluded.started_ms, registered_ms="
                            "excluded.registered_ms, last_heartbeat_ms=excluded.last_heartbeat_ms, connectors="
                            "excluded.connectors, auth=excluded.auth, ca_pem=excluded.ca_pem",
                            (name, version, started_ms, t, t, json.dumps(connectors), auth, ca_pem or None))

    def appliance_cas(self):
        """{appliance: CA PEM} of every appliance that registered one (the tunnel's trust)."""
        with self.lock:
            return {r["name"]: r["ca_pem"] for r in
                    self.db.execute("SELECT name, ca_pem FROM appliances WHERE ca_pem IS NOT NULL")}

    def known(self, name):
        with self.lock:
            return self.db.execute("SELECT 1 FROM appliances WHERE name=?", (name,)).fetchone() is not None

    def heartbeat(self, name, task_ids, active_runs, connectors):
        """Renew the leases `name` holds among task_ids; -> the ids it no longer holds."""
        with self.lock:
            self.sweep()
            if not self.known(name):
                raise CpError(404, NOT_FOUND, "appliance %s is not registered: Register again" % name)
            t = now_ms()
            lost = []
            with self._tx():
                self.db.execute("UPDATE appliances SET last_heartbeat_ms=?, active_runs=?, connectors=? "
                                "WHERE name=?", (t, active_runs, json.dumps(connectors), name))
                for tid in task_ids:
                    r = self._task(tid)
                    if r is None or r["state"] not in ("leased", "acked") or r["appliance"] != name:
                        lost.append(tid)
                    else:
                        self.db.execute("UPDATE tasks SET lease_until_ms=? WHERE task_id=?",
                                        (t + self.lease_ms, tid))
            return lost

    def appliances(self):
        with self.lock:
            out = []
            for r in self.db.execute("SELECT * FROM appliances ORDER BY name"):
                d = dict(r)
                d["connectors"] = json.loads(d["connectors"] or "[]")
                d.pop("ca_pem", None)
                out.append(d)
            return out

    # ---- tasks ----------------------------------------------------------------
    def add_task(self, spec_yaml, spec_name, on_lease_expiry=None, max_attempts=None):
        with self.lock:
            tid = "t-" + uuid.uuid4().hex[:12]
            t = now_ms()
            with self._tx():
                self.db.execute("INSERT INTO tasks(task_id, spec_yaml, spec_name, state, attempt, on_lease_expiry, "
                                "max_attempts, created_ms, updated_ms) VALUES(?,?,?,'queued',0,?,?,?,?)",
                                (tid, spec_yaml, spec_name, on_lease_expiry, max_attempts, t, t))
            self.cond.notify_all()
            return tid

    def lease(self, appliance, n):
        """Lease up to n queued tasks to appliance (lock held by the caller or taken here)."""
        with self.lock:
            t = now_ms()
            rows = self.db.execute("SELECT * FROM tasks WHERE state='queued' ORDER BY qorder LIMIT ?",
                                   (n,)).fetchall()
            out = []
            with self._tx():
                for r in rows:
                    until = t + self.lease_ms
                    self.db.execute("UPDATE tasks SET state='leased', appliance=?, attempt=attempt+1, "
                                    "lease_until_ms=?, updated_ms=? WHERE task_id=?",
                                    (appliance, until, t, r["task_id"]))
                    self.db.execute("INSERT INTO leases(task_id, appliance, attempt, start_ms) VALUES(?,?,?,?)",
                                    (r["task_id"], appliance, r["attempt"] + 1, t))
                    out.append({"task_id": r["task_id"], "spec_yaml": r["spec_yaml"] or "",
                                "spec_name": r["spec_name"] or "", "attempt": r["attempt"] + 1,
                                "lease_until_ms": until})
            return out

    def poll(self, appliance, n, wait_s, stop=None):
        deadline = time.monotonic() + wait_s
        with self.lock:
            if not self.known(appliance):
                raise CpError(404, NOT_FOUND, "appliance %s is not registered: Register again" % appliance)
            while True:
                self.sweep()
                got = self.lease(appliance, n)
                left = deadline - time.monotonic()
                if got or left <= 0 or (stop is not None and stop.is_set()):
                    return got
                self.cond.wait(min(left, 0.5))

    def ack(self, appliance, task_id, accepted, run_id, error):
        with self.lock:
            self.sweep()
            r = self._held(task_id, appliance, "AckTask")
            t = now_ms()
            if r["state"] == "acked":
                return r["run_id"]  # a retried ack keeps the first run id
            with self._tx():
                if accepted:
                    self._end_lease_note(task_id, appliance, "acked")
                    self.db.execute("UPDATE tasks SET state='acked', run_id=?, updated_ms=? WHERE task_id=?",
                                    (run_id, t, task_id))
                else:
                    self._end_lease(task_id, appliance, "refused", t)
                    self.db.execute("UPDATE tasks SET state='failed', error=?, lease_until_ms=NULL, updated_ms=? "
                                    "WHERE task_id=?", ("refused by %s: %s" % (appliance, error or "no reason"),
                                                        t, task_id))
            return run_id

    def _end_lease_note(self, task_id, appliance, note):
        self.db.execute("UPDATE leases SET outcome=? WHERE id=(SELECT max(id) FROM leases WHERE task_id=? AND "
                        "appliance=? AND end_ms IS NULL)", (note, task_id, appliance))

    def report(self, appliance, task_id, run_id, state, reason, verdict, score):
        with self.lock:
            self.sweep()
            r = self._task(task_id)
            final = state in FINAL_STATES
            if (r is not None and r["state"] in ("done", "failed") and r["appliance"] == appliance
                    and r["run_id"] == run_id and r["run_state"] == state):
                return  # a repeated final report: idempotent
            r = self._held(task_id, appliance, "ReportRun")
            if r["run_id"] and run_id != r["run_id"]:
                raise CpError(409, ABORTED, "ReportRun: task %s is carried out by run %s, not %s" % (
                    task_id, r["run_id"], run_id))
            t = now_ms()
            with self._tx():
                if not final:
                    self.db.execute("UPDATE tasks SET run_id=?, run_state=?, reason=?, updated_ms=? WHERE task_id=?",
                                    (run_id, state, reason, t, task_id))
                    return
                done = "done" if state in (5, 6) else "failed"
                err = None if done == "done" else "run %s ended %s: %s" % (run_id, FINAL_STATES[state], reason)
                self._end_lease(task_id, appliance, "completed " + FINAL_STATES[state], t)
                self.db.execute("UPDATE tasks SET state=?, run_id=?, run_state=?, reason=?, verdict=?, score=?, "
                                "error=?, lease_until_ms=NULL, updated_ms=? WHERE task_id=?",
                                (done, run_id, state, reason, verdict, score, err, t, task_id))

    def run_of_task(self, task_id):
        with self.lock:
            r = self._task(task_id)
            return r["run_id"] if r is not None else None

    def spec_of_run(self, run_id):
        """(spec_yaml, spec_name) of the task that ran run_id, or None."""
        with self.lock:
            r = self.db.execute("SELECT spec_yaml, spec_name FROM tasks WHERE run_id=?", (run_id,)).fetchone()
            return (r["spec_yaml"], r["spec_name"]) if r is not None else None

    def tasks(self):
        with self.lock:
            out = []
            for r in self.db.execute("SELECT * FROM tasks ORDER BY qorder").fetchall():
                d = dict(r)
                del d["qorder"]
                d["history"] = [dict(h) for h in self.db.execute(
                    "SELECT appliance, attempt, start_ms, end_ms, outcome FROM leases WHERE task_id=? ORDER BY id",
                    (r["task_id"],))]
                out.append(d)
            return out

    # ---- events -----------------------------------------------------------------
    def store_events(self, appliance, batches):
        """batches: [(run_id, [(seq, serialized_event), ...])], already validated. -> (stored, dups)."""
        stored = dups = 0
        with self.lock, self._tx():
            t = now_ms()
            for run_id, events in batches:
                for seq, body in events:
                    cur = self.db.execute("INSERT OR IGNORE INTO events(run_id, seq, appliance, stored_ms, body) "
                                          "VALUES(?,?,?,?,?)", (run_id, seq, appliance, t, body))
                    dup = cur.rowcount == 0
                    stored += not dup
                    dups += dup
                    self.db.execute("INSERT INTO arrivals(run_id, seq, duplicate, time_ms) VALUES(?,?,?,?)",
                                    (run_id, seq, int(dup), t))
        return stored, dups

    def events(self, run_id):
        with self.lock:
            ev = [(r["seq"], r["body"]) for r in self.db.execute(
                "SELECT seq, body FROM events WHERE run_id=? ORDER BY seq", (run_id,))]
            arr = [(r["seq"], r["duplicate"]) for r in self.db.execute(
                "SELECT seq, duplicate FROM arrivals WHERE run_id=? ORDER BY id", (run_id,))]
            return ev, arr

    # ---- commands ---------------------------------------------------------------
    def add_command(self, appliance, kind, run_id, task_id, reason):
        with self.lock:
            if task_id and not run_id:
                run_id = self.run_of_task(task_id) or ""
            row = self.db.execute("SELECT max(seq) FROM commands WHERE appliance=?", (appliance,)).fetchone()
            seq = (row[0] or 0) + 1
            with self._tx():
                self.db.execute("INSERT INTO commands(appliance, seq, kind, run_id, task_id, reason, created_ms) "
                                "VALUES(?,?,?,?,?,?,?)", (appliance, seq, kind, run_id, task_id, reason, now_ms()))
            self.cond.notify_all()
            return seq, run_id

    def watch(self, appliance, after_seq, wait_s, stop=None):
        deadline = time.monotonic() + wait_s
        with self.lock:
            with self._tx():
                self.db.execute("UPDATE commands SET acked=1 WHERE appliance=? AND seq<=?", (appliance, after_seq))
            while True:
                rows = [dict(r) for r in self.db.execute(
                    "SELECT * FROM commands WHERE appliance=? AND seq>? ORDER BY seq", (appliance, after_seq))]
                left = deadline - time.monotonic()
                if rows or left <= 0 or (stop is not None and stop.is_set()):
                    return rows
                self.cond.wait(min(left, 0.5))

    def commands(self):
        with self.lock:
            return [dict(r) for r in self.db.execute("SELECT * FROM commands ORDER BY appliance, seq")]

    def close(self):
        with self.lock:
            self.db.close()


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on an exception)."""

    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        return False
