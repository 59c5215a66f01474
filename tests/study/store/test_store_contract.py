"""The store contract (lrscope.study.store.base), run on every backend: SQLite and in-memory
(issue 17 item 5). A new backend joins BACKENDS and passes the same suite, as optuna's storages
pass its storage tests."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lrscope.errors import InputError
from lrscope.study.store import MemoryStore, MetricBuffer, ResultsStore, Store


class SQLiteBackend:
    """Handles on one SQLite file, as processes opening the same folder are."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "study.sqlite"

    def open(self, **options: Any) -> ResultsStore:
        return Store(self.path, **options)


class MemoryBackend:
    """Handles on one in-memory store (MemoryStore(shares=...))."""

    def __init__(self, tmp_path: Path) -> None:
        self.first: MemoryStore | None = None

    def open(self, **options: Any) -> ResultsStore:
        store = MemoryStore(shares=self.first, **options)
        self.first = self.first or store
        return store


BACKENDS = {"sqlite": SQLiteBackend, "memory": MemoryBackend}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return BACKENDS[request.param](tmp_path)


@pytest.fixture
def store(backend: Any) -> Any:
    with backend.open() as opened:
        yield opened


def test_issue17_item5_every_backend_is_a_results_store(store: ResultsStore) -> None:
    assert isinstance(store, ResultsStore)


# -- runs ----------------------------------------------------------------------------------------
def test_issue17_item5_runs(store: ResultsStore) -> None:
    first = store.ensure_run("study", config={"seeds": (0, 1), "when": Path("x")}, recipe="r")
    again = store.ensure_run("study", config={"seeds": [9]})  # the stored config is not changed
    assert again == first and first.config == {"seeds": [0, 1], "when": "x"}  # JSON's answer
    imported = store.ensure_run("logs", kind="import")
    assert [r.name for r in store.runs()] == ["study", "logs"]
    assert [r.name for r in store.runs(kind="import")] == ["logs"]
    assert store.find_run("logs") == imported and store.find_run("nothing") is None
    assert (store.run(first.id).kind, store.run(first.id).recipe) == ("study", "r")
    with pytest.raises(KeyError):
        store.run(first.id + imported.id + 100)
    with pytest.raises(InputError, match="kind"):
        store.ensure_run("x", kind="bogus")
    with pytest.raises(InputError, match="name"):
        store.ensure_run("")
    first.config["seeds"].append(5)  # a record is a snapshot: changing it changes no store
    assert store.run(first.id).config["seeds"] == [0, 1]


def test_issue17_item5_config_update_and_merge(store: ResultsStore) -> None:
    run = store.ensure_run("study", config={"a": 1})
    store.update_run(run.id, recipe="smith")
    assert (store.run(run.id).config, store.run(run.id).recipe) == ({"a": 1}, "smith")
    store.update_run(run.id, config={"b": 2})
    assert store.run(run.id).config == {"b": 2}
    assert store.merge_run_config(run.id, lambda c: {**c, "c": 3}) == {"b": 2, "c": 3}

    def refuse(config: dict[str, Any]) -> dict[str, Any]:
        config["b"] = "changed in place"
        raise InputError("no")

    with pytest.raises(InputError):
        store.merge_run_config(run.id, refuse)
    assert store.run(run.id).config == {"b": 2, "c": 3}  # as it was
    with pytest.raises(KeyError):
        store.merge_run_config(run.id + 100, dict)
    with pytest.raises(KeyError):
        store.update_run(run.id + 100, recipe="x")


def test_issue17_item5_config_merges_from_two_owners_are_all_kept(backend: Any) -> None:
    with backend.open() as store:
        run_id = store.ensure_run("study").id
    errors: list[BaseException] = []

    def grow(prefix: str) -> None:
        try:
            with backend.open() as mine:  # a handle per thread, as a process has its own
                for i in range(15):
                    mine.merge_run_config(run_id, lambda c, i=i: {**c, f"{prefix}{i}": i})
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=grow, args=(p,)) for p in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with backend.open() as store:
        assert len(store.run(run_id).config) == 30


# -- range tests ---------------------------------------------------------------------------------
def test_issue17_item5_range_tests(store: ResultsStore) -> None:
    run = store.ensure_run("study")
    assert store.range_test(run.id) is None
    lrs = np.geomspace(1e-7, 10, 7)
    losses = np.array([2.3, 2.2, np.nan, 1.1, np.inf, -np.inf, 0.1 + 0.2])
    store.save_range_test(run.id, lrs=lrs, losses=losses, smoothed=losses[::-1],
                          suggestions={"steepest": 1e-3}, suggestion=1e-3, stopped="diverged",
                          config={"steps": 7})
    saved = store.range_test(run.id)
    assert saved is not None
    np.testing.assert_array_equal(saved.lrs, lrs)
    np.testing.assert_array_equal(saved.losses, losses)  # NaN, inf and every bit kept
    np.testing.assert_array_equal(saved.smoothed, losses[::-1])
    assert saved.val_losses is None
    assert (saved.suggestions, saved.suggestion, saved.stopped, saved.config) == (
        {"steepest": 1e-3}, 1e-3, "diverged", {"steps": 7})
    store.save_range_test(run.id, lrs=[1.0, 2.0], losses=[3.0, 4.0])  # replaces it
    replaced = store.range_test(run.id)
    assert replaced is not None and replaced.losses.tolist() == [3.0, 4.0]
    assert replaced.stopped == "completed" and replaced.suggestion is None
    with pytest.raises(ValueError, match="equal length"):
        store.save_range_test(run.id, lrs=[1.0], losses=[1.0, 2.0])
    with pytest.raises(KeyError):
        store.save_range_test(run.id + 100, lrs=[1.0], losses=[1.0])


# -- trials --------------------------------------------------------------------------------------
def test_issue17_item5_trials(store: ResultsStore) -> None:
    run = store.ensure_run("study").id
    other = store.ensure_run("other").id
    first = store.start_trial(run, "a/seed0", label="a", spec="constant(lr=0.1)",
                              family="constant", seed=0, config={"steps": 5})
    assert (first.skip, first.restarted, first.busy) == (False, False, False)
    second = store.start_trial(other, "a/seed0", label="a")  # a key is unique in its run only
    third = store.start_trial(run, "b/seed1", label="b", seed=1)
    record = store.trial(first.trial_id)
    assert (record.key, record.label, record.spec, record.family, record.seed, record.config,
            record.status, record.owner, record.claims) == (
        "a/seed0", "a", "constant(lr=0.1)", "constant", 0, {"steps": 5}, "running",
        store.owner, 1)
    store.finish_trial(first.trial_id, wall_time=1.5)
    store.finish_trial(third.trial_id, status="diverged", diverged_at_step=3)
    assert record.status == "running"  # the record returned before is a snapshot
    assert [t.key for t in store.trials(run)] == ["a/seed0", "b/seed1"]
    assert [t.id for t in store.trials()] == [first.trial_id, third.trial_id, second.trial_id]
    assert [t.key for t in store.trials(run, status="diverged")] == ["b/seed1"]
    done = store.trial(third.trial_id)
    assert (done.status, done.diverged_at_step, done.finished is not None) == ("diverged", 3, True)
    assert store.trial(first.trial_id).wall_time == 1.5
    for key in ("a/seed0", "b/seed1"):  # finished or diverged: done, skipped
        again = store.start_trial(run, key, label="a")
        assert again.skip and not again.busy
    with pytest.raises(InputError, match="status"):
        store.finish_trial(second.trial_id, status="running")
    with pytest.raises(InputError, match="key"):
        store.start_trial(run, "", label="a")
    with pytest.raises(KeyError):
        store.finish_trial(third.trial_id + 100)
    with pytest.raises(KeyError):
        store.trial(third.trial_id + 100)


def test_issue17_item5_a_failed_trial_is_taken_again_from_nothing(store: ResultsStore) -> None:
    run = store.ensure_run("study").id
    start = store.start_trial(run, "a/seed0", label="a", config={"v": 1})
    store.add_metrics(start.trial_id, [(0, "lr", 0.1), (1, "lr", 0.2)])
    store.finish_trial(start.trial_id, status="failed", error="boom")
    assert store.trial(start.trial_id).error == "boom"
    again = store.start_trial(run, "a/seed0", label="a2", config={"v": 2})
    assert (again.trial_id, again.skip, again.restarted) == (start.trial_id, False, True)
    record = store.trial(start.trial_id)
    assert (record.status, record.error, record.label, record.config, record.claims) == (
        "running", None, "a2", {"v": 2}, 2)
    assert store.metric_names(start.trial_id) == []  # its partial metrics are gone


# -- leases --------------------------------------------------------------------------------------
def test_issue17_item5_a_fresh_lease_held_by_another_owner_is_busy(backend: Any) -> None:
    with backend.open(lease_timeout=60) as a, backend.open(lease_timeout=60) as b:
        assert a.owner != b.owner
        run = a.ensure_run("study").id
        held = a.start_trial(run, "k/seed0", label="k")
        busy = b.start_trial(run, "k/seed0", label="k")
        assert (busy.trial_id, busy.skip, busy.busy) == (held.trial_id, True, True)
        assert a.owns(held.trial_id) and not b.owns(held.trial_id)
        ours = a.start_trial(run, "k/seed0", label="k")  # its own owner restarts it
        assert not ours.skip and ours.restarted and a.trial(held.trial_id).claims == 2


def test_issue17_item5_a_stale_lease_is_taken_over(backend: Any) -> None:
    with backend.open(lease_timeout=0.3) as a, backend.open(lease_timeout=0.3) as b:
        run = a.ensure_run("study").id
        held = a.start_trial(run, "k/seed0", label="k")
        a.add_metrics(held.trial_id, [(0, "lr", 0.1)])
        time.sleep(0.5)  # a stops beating (its process hangs or died elsewhere)
        taken = b.start_trial(run, "k/seed0", label="k")
        assert (taken.trial_id, taken.skip, taken.restarted) == (held.trial_id, False, True)
        record = b.trial(held.trial_id)
        assert (record.owner, record.claims, record.status) == (b.owner, 2, "running")
        assert b.metric_names(held.trial_id) == []  # from nothing
        assert not a.owns(held.trial_id) and b.owns(held.trial_id)


def test_issue17_item5_a_closed_handle_of_this_process_holds_nothing(backend: Any) -> None:
    a = backend.open(lease_timeout=60)
    run = a.ensure_run("study").id
    held = a.start_trial(run, "k/seed0", label="k")
    a.close()  # a call that failed: a rerun in the same process must not wait out the lease
    with backend.open(lease_timeout=60) as b:
        taken = b.start_trial(run, "k/seed0", label="k")
        assert not taken.skip and taken.restarted and b.owns(held.trial_id)


def test_issue17_item5_the_heartbeat_keeps_a_long_trial_held(backend: Any) -> None:
    with backend.open(lease_timeout=0.4) as a, backend.open(lease_timeout=0.4) as b:
        run = a.ensure_run("study").id
        held = a.start_trial(run, "k/seed0", label="k")
        with a.heartbeat():
            time.sleep(1.0)  # well past the timeout, beating every 0.1 s
            assert b.start_trial(run, "k/seed0", label="k").busy
        assert a.owns(held.trial_id)
        beat = a.trial(held.trial_id).heartbeat
        assert beat is not None and time.time() - beat < 0.4


# -- metrics -------------------------------------------------------------------------------------
def test_issue17_item5_metrics(store: ResultsStore) -> None:
    run = store.ensure_run("study").id
    trial = store.start_trial(run, "a/seed0", label="a").trial_id
    other = store.start_trial(run, "b/seed0", label="b").trial_id
    assert store.add_metrics(trial, [(2, "train_loss", 0.5), (0, "train_loss", math.nan),
                                     (1, "train_loss", 1.0), (0, "lr", 0.1)]) == 4
    assert store.add_metrics(trial, [(1, "train_loss", 0.75)]) == 1  # a step again: replaced
    assert store.add_metrics(trial, []) == 0
    steps, values = store.metric_series(trial, "train_loss")
    assert steps.dtype == np.int64 and values.dtype == np.float64
    assert steps.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(values, [math.nan, 0.75, 0.5])  # NaN kept
    assert store.metric_names(trial) == ["lr", "train_loss"]
    assert store.metric_names(other) == []
    empty_steps, empty_values = store.metric_series(other, "train_loss")
    assert (empty_steps.dtype, empty_values.dtype, len(empty_steps)) == (np.int64, np.float64, 0)
    with MetricBuffer(store, other, flush_every=7) as buffer:
        for step in range(20):
            buffer.add_many(step, {"lr": 0.1 * step, "train_loss": 1.0 / (step + 1)})
    assert store.metric_series(other, "lr")[0].tolist() == list(range(20))


def test_issue17_item5_readers_import_the_interface_package_not_a_backend() -> None:
    import lrscope

    root = Path(lrscope.__file__).parent
    backend = root / "study" / "store"
    found = [str(path.relative_to(root)) for path in sorted(root.rglob("*.py"))
             if backend not in path.parents
             and "lrscope.study.store.sqlite" in path.read_text(encoding="utf-8")]
    assert not found, found
