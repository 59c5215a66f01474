"""Trial leases: two processes on one store never run the same trial.

A process claims a trial just before it runs it, in one ``BEGIN IMMEDIATE`` transaction (so two
claims queue on SQLite's write lock and the second sees the first's row):

* finished or diverged: skip it (done);
* running, held by another owner whose heartbeat is younger than the lease timeout: skip it
  (busy elsewhere), unless that owner is provably gone: a process of this pid namespace (same
  host boot and namespace, recorded in the owner's name) that no longer exists, or a store of
  this very process that was closed (a call that failed or was interrupted: a rerun in the same
  notebook never waits on its own earlier call). An owner that shares the hostname but not
  provably the pid namespace (containers with host networking, another machine of that name, a
  lease written before lrscope recorded namespaces) is only taken over when its heartbeat is
  stale;
* otherwise (new, failed, ours, or running with a stale heartbeat: its process died): take it,
  from nothing: its metrics are deleted, ``owner`` and ``heartbeat`` set, ``claims`` counted.

While a study runs, a :class:`Heartbeat` thread refreshes its owner's running trials every
``timeout / 4`` seconds, so a long trial is not taken over; a killed process stops beating and
its trials go stale after ``timeout`` seconds. Heartbeats are Unix times from each host's clock:
processes on several hosts sharing one store need clocks in step (well within the timeout).

The timeout is :data:`DEFAULT_LEASE_TIMEOUT` seconds, or ``$LRSCOPE_LEASE_TIMEOUT``, or the
``lease_timeout`` a :class:`~lrscope.study.store.sqlite.Store` is given.

>>> owner_id().count(":") >= 2
True
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any

from lrscope._checks import seconds
from lrscope.study.store.records import TrialStart, dumps_config, now_utc

DEFAULT_LEASE_TIMEOUT = 120.0
LEASE_ENV = "LRSCOPE_LEASE_TIMEOUT"
DONE_STATUSES = ("finished", "diverged")


# Owners of this process's open stores (Store registers on open, forgets on close): a lease
# held by another owner of this pid is void unless that owner is still open here.
_OPEN_OWNERS: set[str] = set()


def pid_namespace() -> str:
    """Which pid namespace this process is in, across hosts: the kernel's boot id and the
    namespace's inode (the inode alone repeats on every host: the initial namespace's is the
    same everywhere). Empty where there is no /proc (then no lease is taken over by pid)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        return f"{boot}/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""


def owner_id() -> str:
    """This process's name on its leases: host, pid, a random suffix (pids are reused) and its
    pid namespace (:func:`pid_namespace`)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}:{pid_namespace()}"


def opened(owner: str) -> None:
    """``owner`` is a store open in this process (its leases are live while it stays open)."""
    _OPEN_OWNERS.add(owner)


def closed(owner: str) -> None:
    _OPEN_OWNERS.discard(owner)


def died_here(holder: str) -> bool:
    """Whether ``holder`` is provably gone: a process of this pid namespace that no longer
    exists, or a closed store of this process. Its lease is void at once (a killed or failed
    study reruns without waiting out the timeout). Elsewhere, only time tells.

    >>> mine = owner_id()
    >>> opened(mine); died_here(mine), died_here("some-other-host:1:ab:x/1"), died_here("junk")
    (False, False, False)
    >>> closed(mine); died_here(mine) == bool(pid_namespace())  # a closed store of this process
    True
    """
    host, pid, _, namespace = [*holder.split(":", 3), "", "", ""][:4]
    ours = pid_namespace()
    if (os.name != "posix" or host != socket.gethostname() or not pid.isdigit() or not ours
            or namespace != ours):
        return False
    if int(pid) == os.getpid():
        return holder not in _OPEN_OWNERS
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


def lease_timeout(given: float | None = None) -> float:
    """``given``, else ``$LRSCOPE_LEASE_TIMEOUT``, else the default (seconds, > 0)."""
    return seconds(given, LEASE_ENV, DEFAULT_LEASE_TIMEOUT, "lease timeout")


def claim_trial(db: sqlite3.Connection, run_id: int, key: str, *, owner: str, timeout: float,
                fields: Mapping[str, Any]) -> TrialStart:
    """Claim trial ``key`` of ``run_id`` for ``owner`` (see the module docstring); ``fields``:
    label, spec, family, seed, config. ``db`` is in autocommit mode; this is one transaction."""
    values = (fields["label"], fields["spec"], fields["family"], int(fields["seed"]),
              dumps_config(fields["config"]))
    db.execute("BEGIN IMMEDIATE")
    try:
        start = _claim(db, run_id, key, owner, timeout, values)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return start


def claim_decision(trial_id: int, status: str, holder: str | None, beat: float | None, *,
                   owner: str, timeout: float, now: float) -> TrialStart | None:
    """The lease rule for an existing trial (see the module docstring), the one every store
    backend calls: a skip (done, or busy elsewhere), or None when ``owner`` takes it over.

    >>> claim_decision(1, "finished", None, None, owner="me", timeout=60, now=0).skip
    True
    >>> claim_decision(1, "running", "other-host:1:ab:x/1", 0.0, owner="me", timeout=60,
    ...                now=30).busy
    True
    >>> claim_decision(1, "running", "other-host:1:ab:x/1", 0.0, owner="me", timeout=60, now=90)
    """
    if status in DONE_STATUSES:
        return TrialStart(trial_id=trial_id, skip=True, restarted=False)
    if (status == "running" and holder is not None and holder != owner
            and beat is not None and now - beat < timeout and not died_here(holder)):
        return TrialStart(trial_id=trial_id, skip=True, restarted=False, busy=True)
    return None


def _claim(db: sqlite3.Connection, run_id: int, key: str, owner: str, timeout: float,
           values: tuple[Any, ...]) -> TrialStart:
    row = db.execute("SELECT id, status, owner, heartbeat FROM trials WHERE run_id = ? AND key = ?",
                     (run_id, key)).fetchone()
    now = time.time()
    if row is not None:
        skip = claim_decision(*row, owner=owner, timeout=timeout, now=now)
        if skip is not None:
            return skip
    if row is None:
        cur = db.execute(
            "INSERT INTO trials (run_id, key, label, spec, family, seed, config, started, status,"
            " owner, heartbeat, claims) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, 1)",
            (run_id, key, *values, now_utc(), owner, now))
        assert cur.lastrowid is not None
        return TrialStart(trial_id=cur.lastrowid, skip=False, restarted=False)
    # Unfinished: its process died (or failed, or this owner restarts it): again from nothing.
    db.execute("DELETE FROM metrics WHERE trial_id = ?", (row[0],))
    db.execute(
        "UPDATE trials SET label = ?, spec = ?, family = ?, seed = ?, config = ?, started = ?, "
        "status = 'running', finished = NULL, diverged_at_step = NULL, wall_time = NULL, "
        "error = NULL, owner = ?, heartbeat = ?, claims = claims + 1 WHERE id = ?",
        (*values, now_utc(), owner, now, row[0]))
    return TrialStart(trial_id=row[0], skip=False, restarted=True)


class Heartbeat:
    """A daemon thread that keeps an owner's running trials fresh every ``timeout / 4`` s.

    ``beats()`` is entered in the thread and gives the function that refreshes them (SQLite's
    opens a connection of the thread's own). Use as a context manager around the trials;
    leaving it stops the thread (and waits for it).
    """

    def __init__(self, timeout: float,
                 beats: Callable[[], AbstractContextManager[Callable[[], None]]]) -> None:
        self.interval, self._beats = timeout / 4, beats
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lrscope-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        with self._beats() as beat:
            while not self._stop.wait(self.interval):
                beat()


@contextmanager
def sqlite_beats(path: str | Path, owner: str) -> Iterator[Callable[[], None]]:
    """:class:`Heartbeat`'s refresh for an SQLite store, on a connection of its own."""
    db = sqlite3.connect(Path(path), timeout=60.0, isolation_level=None)

    def beat() -> None:
        with suppress(sqlite3.OperationalError):  # locked for a minute: try again next beat
            db.execute("UPDATE trials SET heartbeat = ? WHERE owner = ? AND status = 'running'",
                       (time.time(), owner))

    try:
        yield beat
    finally:
        db.close()
