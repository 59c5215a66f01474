"""The results store on real SQLite files: schema, resume semantics, WAL, a concurrent reader."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrscope.errors import InputError
from lrscope.study.store.records import SCHEMA_VERSION
from lrscope.study.store.sqlite import STORE_FILENAME, MetricBuffer, Store


@pytest.fixture
def store(tmp_path: Path):
    with Store.in_dir(tmp_path) as s:
        yield s


def test_new_store_has_versioned_schema_in_wal_mode(tmp_path: Path) -> None:
    with Store.in_dir(tmp_path) as store:
        assert store.journal_mode == "wal"
        store.ensure_run("r")
        assert (tmp_path / (STORE_FILENAME + "-wal")).exists()
    db = sqlite3.connect(tmp_path / STORE_FILENAME)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "range_tests", "trials", "metrics"} <= tables
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.start_trial(999, "k", label="k")
    with pytest.raises(sqlite3.IntegrityError):
        store.add_metrics(12345, [(0, "lr", 1.0)])


def test_open_existing_refuses_missing_foreign_and_newer_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no results store"):
        Store.in_dir(tmp_path, create=False)
    with pytest.raises(InputError, match="no such directory"):
        Store.in_dir(tmp_path / "absent", create=False)
    (tmp_path / "junk.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(InputError, match="not an lrscope results store"):
        Store(tmp_path / "junk.sqlite", create=False)
    other = sqlite3.connect(tmp_path / "other.sqlite")
    other.execute("CREATE TABLE t (x)")
    other.commit()
    other.close()
    with pytest.raises(InputError, match="not an lrscope results store"):
        Store(tmp_path / "other.sqlite")
    Store(tmp_path / "newer.sqlite").close()
    db = sqlite3.connect(tmp_path / "newer.sqlite")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(InputError, match="newer"):
        Store(tmp_path / "newer.sqlite", create=False)


def test_ensure_run_returns_the_same_run_and_keeps_its_config(store: Store) -> None:
    first = store.ensure_run("study", config={"seeds": 3}, recipe="smith")
    again = store.ensure_run("study", config={"seeds": 5})
    assert again.id == first.id and again.config == {"seeds": 3} and again.recipe == "smith"
    store.update_run(first.id, config={"seeds": 5}, recipe="new recipe")
    assert store.run(first.id).config == {"seeds": 5}
    assert store.run(first.id).recipe == "new recipe"
    store.ensure_run("imported", kind="import")
    assert [r.name for r in store.runs()] == ["study", "imported"]
    assert [r.name for r in store.runs(kind="import")] == ["imported"]
    with pytest.raises(InputError, match="kind"):
        store.ensure_run("x", kind="bogus")


def test_finished_trial_is_skipped_unfinished_restarted_nothing_duplicated(store: Store) -> None:
    run = store.ensure_run("study").id
    done = store.start_trial(run, "a/seed0", label="a", family="step", seed=0)
    store.add_metrics(done.trial_id, [(s, "train_loss", 1.0 / (s + 1)) for s in range(10)])
    store.finish_trial(done.trial_id, wall_time=1.5)
    diverged = store.start_trial(run, "b/seed0", label="b", seed=0)
    store.finish_trial(diverged.trial_id, "diverged", diverged_at_step=3)
    broken = store.start_trial(run, "c/seed0", label="c", seed=0)
    store.add_metrics(broken.trial_id, [(s, "train_loss", 5.0) for s in range(7)])
    # ... the process dies here; the study is run again:
    again_done = store.start_trial(run, "a/seed0", label="a", family="step", seed=0)
    again_div = store.start_trial(run, "b/seed0", label="b", seed=0)
    again_broken = store.start_trial(run, "c/seed0", label="c", seed=0)
    assert (again_done.skip, again_done.trial_id) == (True, done.trial_id)
    assert (again_div.skip, again_div.trial_id) == (True, diverged.trial_id)
    assert again_broken.trial_id == broken.trial_id
    assert not again_broken.skip and again_broken.restarted
    assert len(store.metric_series(broken.trial_id, "train_loss")[0]) == 0
    assert len(store.metric_series(done.trial_id, "train_loss")[0]) == 10
    assert store.trial(broken.trial_id).status == "running"
    assert sorted(t.key for t in store.trials(run)) == ["a/seed0", "b/seed0", "c/seed0"]
    assert store.trial(diverged.trial_id).diverged_at_step == 3
    assert store.trial(done.trial_id).wall_time == 1.5


def test_failed_trial_is_retried_and_status_is_checked(store: Store) -> None:
    run = store.ensure_run("study").id
    t = store.start_trial(run, "k", label="k")
    store.finish_trial(t.trial_id, "failed", error="RuntimeError: boom")
    assert store.trial(t.trial_id).error == "RuntimeError: boom"
    retry = store.start_trial(run, "k", label="k")
    assert retry.restarted and store.trial(t.trial_id).error is None
    with pytest.raises(InputError, match="status"):
        store.finish_trial(t.trial_id, "done")


def test_same_step_logged_twice_is_replaced_not_duplicated(store: Store) -> None:
    t = store.start_trial(store.ensure_run("r").id, "k", label="k")
    store.add_metrics(t.trial_id, [(0, "lr", 1.0), (1, "lr", 2.0)])
    store.add_metrics(t.trial_id, [(1, "lr", 3.0)])
    steps, values = store.metric_series(t.trial_id, "lr")
    assert steps.tolist() == [0, 1] and values.tolist() == [1.0, 3.0]
    assert store.metric_names(t.trial_id) == ["lr"]


def test_a_long_trial_is_written_in_few_transactions(store: Store) -> None:
    t = store.start_trial(store.ensure_run("r").id, "k", label="k")
    commits = []
    store._db.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    with MetricBuffer(store, t.trial_id, flush_every=1000) as buffer:
        for step in range(2345):
            buffer.add_many(step, {"train_loss": 2.3 / (step + 1), "lr": 0.1})
    store._db.set_trace_callback(None)
    assert len(commits) == math.ceil(2345 * 2 / 1000)
    assert len(store.metric_series(t.trial_id, "train_loss")[0]) == 2345


def test_range_test_round_trips_exactly(store: Store) -> None:
    run = store.ensure_run("r").id
    lrs = np.geomspace(1e-5, 10, 50)
    losses = np.linspace(2.3, 0.5, 50)
    losses[-1] = np.nan
    store.save_range_test(run, lrs=lrs, losses=losses, smoothed=losses * 0.9,
                          suggestions={"steepest": 0.1, "valley": 0.05}, suggestion=0.1,
                          stopped="diverged", config={"start_lr": 1e-5})
    got = store.range_test(run)
    assert got is not None
    np.testing.assert_array_equal(got.lrs, lrs)
    np.testing.assert_array_equal(got.losses, losses)  # NaN compares equal here
    assert got.val_losses is None and got.suggestions == {"steepest": 0.1, "valley": 0.05}
    assert (got.stopped, got.suggestion, got.config) == ("diverged", 0.1, {"start_lr": 1e-5})
    store.save_range_test(run, lrs=lrs[:3], losses=losses[:3])
    replaced = store.range_test(run)
    assert replaced is not None and len(replaced.lrs) == 3
    assert store.range_test(store.ensure_run("other").id) is None


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=40, deadline=None)
@given(series=st.dictionaries(st.integers(0, 10**9), finite_or_not, max_size=60),
       name=st.text(min_size=1, max_size=12))
def test_metric_series_round_trip(tmp_path_factory: pytest.TempPathFactory,
                                  series: dict[int, float], name: str) -> None:
    with Store.in_dir(tmp_path_factory.mktemp("rt")) as store:
        t = store.start_trial(store.ensure_run("r").id, "k", label="k")
        store.add_metrics(t.trial_id, [(s, name, v) for s, v in series.items()])
        steps, values = store.metric_series(t.trial_id, name)
    expected_steps = sorted(series)
    assert steps.dtype == np.int64 and steps.tolist() == expected_steps
    np.testing.assert_array_equal(values, np.array([series[s] for s in expected_steps], float))


WRITER = textwrap.dedent("""
    import sys
    from lrscope.study.store.sqlite import Store
    store = Store(sys.argv[1])
    t = store.start_trial(store.ensure_run("r").id, "k", label="k")
    print(t.trial_id, flush=True)
    for batch in range(10_000):
        # 50 rows per transaction: a reader must only ever see multiples of 50.
        store.add_metrics(t.trial_id, [(batch * 50 + i, "lr", 0.1) for i in range(50)])
""")


def test_a_reader_sees_whole_transactions_while_a_process_writes(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILENAME
    Store(path).close()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert writer.stdout is not None
        trial_id = int(writer.stdout.readline())
        seen = []
        with Store(path, create=False) as reader:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and (len(seen) < 30 or seen[-1] == 0):
                seen.append(len(reader.metric_series(trial_id, "lr")[0]))
                assert reader.trial(trial_id).status == "running"
        assert all(n % 50 == 0 for n in seen), seen
        assert seen == sorted(seen) and seen[-1] > 0
    finally:
        writer.kill()
        writer.wait(timeout=10)
        if writer.stdout is not None:
            writer.stdout.close()
