"""Trial leases: claims, busy elsewhere, stale take-over, heartbeats, the v1 -> v2 migration."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lrscope.errors import InputError
from lrscope.study.store.lease import LEASE_ENV, lease_timeout, pid_namespace
from lrscope.study.store.records import SCHEMA, SCHEMA_VERSION
from lrscope.study.store.sqlite import STORE_FILENAME, Store


def test_a_fresh_lease_held_elsewhere_is_busy_a_stale_one_is_taken(tmp_path: Path) -> None:
    with Store.in_dir(tmp_path, lease_timeout=60) as a, \
            Store.in_dir(tmp_path, lease_timeout=60) as b:
        assert a.owner != b.owner
        run = a.ensure_run("study").id
        first = a.start_trial(run, "k/seed0", label="k")
        a.add_metrics(first.trial_id, [(0, "lr", 0.1)])
        busy = b.start_trial(run, "k/seed0", label="k")
        assert busy.skip and busy.busy and busy.trial_id == first.trial_id
        assert a.trial(first.trial_id).claims == 1 and a.owns(first.trial_id)
        # a's process dies: its heartbeat stops, and an hour later the lease is stale
        with sqlite3.connect(tmp_path / STORE_FILENAME) as db:
            db.execute("UPDATE trials SET heartbeat = ?", (time.time() - 3600,))
        taken = b.start_trial(run, "k/seed0", label="k")
        assert not taken.skip and taken.restarted and not taken.busy
        record = b.trial(first.trial_id)
        assert (record.owner, record.claims, record.status) == (b.owner, 2, "running")
        assert len(b.metric_series(first.trial_id, "lr")[0]) == 0  # from nothing
        assert not a.owns(first.trial_id) and b.owns(first.trial_id)
        b.finish_trial(first.trial_id)
        done = a.start_trial(run, "k/seed0", label="k")
        assert done.skip and not done.busy


def test_heartbeat_keeps_a_long_trial_from_being_taken_over(tmp_path: Path) -> None:
    with Store.in_dir(tmp_path, lease_timeout=0.4) as a, \
            Store.in_dir(tmp_path, lease_timeout=0.4) as b:
        run = a.ensure_run("study").id
        t = a.start_trial(run, "k", label="k")
        with a.heartbeat():
            time.sleep(1.2)  # three timeouts: only the heartbeats keep it fresh
            assert b.start_trial(run, "k", label="k").busy
        time.sleep(0.6)  # the beats stopped with the block: the lease goes stale
        assert not b.start_trial(run, "k", label="k").skip
        assert b.trial(t.trial_id).owner == b.owner


def test_lease_timeout_from_argument_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LEASE_ENV, raising=False)
    assert lease_timeout() == 120.0 and lease_timeout(5) == 5.0
    monkeypatch.setenv(LEASE_ENV, "7.5")
    assert lease_timeout() == 7.5
    monkeypatch.setenv(LEASE_ENV, "soon")
    with pytest.raises(InputError, match=LEASE_ENV):
        lease_timeout()
    with pytest.raises(InputError, match="positive"):
        lease_timeout(0)


def v1_schema() -> str:
    """The previous version's schema: today's without the lease columns."""
    dropped = ("owner ", "heartbeat ", "claims ")
    return "\n".join(line for line in SCHEMA.splitlines()
                     if not line.strip().startswith(dropped))


def test_a_version_1_store_opens_migrated_and_resumes(tmp_path: Path) -> None:
    assert SCHEMA_VERSION == 2
    path = tmp_path / STORE_FILENAME
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(f"BEGIN; {v1_schema()} PRAGMA user_version = 1; COMMIT;")
    db.execute("INSERT INTO runs (name, kind, created, config) VALUES ('s', 'study', 't', '{}')")
    for key, status in (("done/seed0", "finished"), ("cut/seed0", "running")):
        db.execute("INSERT INTO trials (run_id, key, label, seed, status, started) "
                   "VALUES (1, ?, ?, 0, ?, 't')", (key, key.split("/")[0], status))
    db.execute("INSERT INTO metrics VALUES (2, 'lr', 0, 0.1)")
    db.close()
    with Store(path, create=False) as store:
        done = store.start_trial(1, "done/seed0", label="done")
        cut = store.start_trial(1, "cut/seed0", label="cut")  # no owner: a dead process's
        assert done.skip and not cut.skip and cut.restarted
        assert len(store.metric_series(cut.trial_id, "lr")[0]) == 0
        assert store.trial(cut.trial_id).claims == 1 and store.trial(done.trial_id).claims == 0
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    Store(path, create=False).close()  # a migrated store opens as it is


def _gone_pid() -> str:
    """The pid of a process of this namespace that has exited."""
    return subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()


def _holding(tmp_path: Path, store: Store, run: int, key: str, holder: str) -> None:
    """``holder`` claims ``key`` (a fresh heartbeat), through a store that stays registered as
    open only when ``holder`` is this process's."""
    with Store(tmp_path / STORE_FILENAME, owner=holder) as other:
        t = other.start_trial(run, key, label=key)
    assert store.trial(t.trial_id).owner == holder


@pytest.mark.skipif(not pid_namespace(), reason="no /proc: no lease is taken over by pid")
def test_a_lease_of_a_process_gone_from_this_host_is_void_at_once(tmp_path: Path) -> None:
    host, ns = socket.gethostname(), pid_namespace()
    with Store.in_dir(tmp_path, lease_timeout=3600) as store:
        run = store.ensure_run("study").id
        _holding(tmp_path, store, run, "dead", f"{host}:{_gone_pid()}:ab:{ns}")
        _holding(tmp_path, store, run, "alive", f"{host}:{os.getppid()}:other:{ns}")
        assert not store.start_trial(run, "dead", label="dead").skip  # taken without waiting
        assert store.start_trial(run, "alive", label="alive").busy  # that pid still lives


def test_issue16_item13_same_hostname_other_pid_namespace_waits_for_the_heartbeat(
        tmp_path: Path) -> None:
    """A holder with this hostname but another pid namespace (a container with host networking,
    another boot) or none recorded (a lease written before namespaces were) is never taken over
    by its pid, even a pid that is dead here: only once its heartbeat is stale."""
    host, dead = socket.gethostname(), _gone_pid()
    holders = {"other-namespace": f"{host}:{dead}:ab:{'0' * 8}-0000-0000-0000-{'0' * 12}/1",
               "other-inode": f"{host}:{dead}:ab:{pid_namespace().partition('/')[0]}/1",
               "unrecorded": f"{host}:{dead}:ab"}
    with Store.in_dir(tmp_path, lease_timeout=0.5) as store:
        run = store.ensure_run("study").id
        for key, holder in holders.items():
            _holding(tmp_path, store, run, key, holder)
        for key in holders:
            assert store.start_trial(run, key, label=key).busy, key
        time.sleep(0.6)  # no heartbeat: the leases go stale
        for key in holders:
            taken = store.start_trial(run, key, label=key)
            assert not taken.skip and store.owns(taken.trial_id), key
