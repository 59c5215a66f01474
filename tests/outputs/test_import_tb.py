"""TensorBoard import on the seed study's real event files, checked against tbparse's reading."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from torch.utils.tensorboard import SummaryWriter

from lrscope.errors import InputError
from lrscope.outputs.import_tb import ImportSummary, import_logdirs
from lrscope.outputs.lr_shape import shape_of
from lrscope.study.stats.leaderboard import leaderboard
from lrscope.study.store.sqlite import Store
from seed_logs import SEED_LOGS

pytestmark = pytest.mark.skipif(not SEED_LOGS.is_dir(), reason="the seed study's logs are absent")


@pytest.fixture(scope="module")
def tbparse_scalars():  # an independent reader of the same files
    tbparse = pytest.importorskip("tbparse")
    with warnings.catch_warnings():  # tbparse's own use of a deprecated pandas argument
        warnings.simplefilter("ignore")
        reader = tbparse.SummaryReader(str(SEED_LOGS), extra_columns={"dir_name", "file_name"})
        return reader.scalars


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, ImportSummary]]:
    store = Store.in_dir(tmp_path_factory.mktemp("seed"))
    (summary,) = import_logdirs(store, [SEED_LOGS])
    yield store, summary
    store.close()


def test_runs_and_attempts_are_counted(imported: tuple[Store, ImportSummary]) -> None:
    store, summary = imported
    folders = sorted(p.name for p in SEED_LOGS.iterdir() if p.is_dir())
    files = sorted(SEED_LOGS.glob("*/events.out.tfevents.*"))
    schedules = [f for f in folders if f != "exponentially_inc_Lr"]  # the range test is none
    assert len(summary.labels) == len(schedules)
    assert len(summary.attempts) == len(files) == len(store.trials(summary.run_id)) + 1
    assert [r.kind for r in store.runs()] == ["import"]
    for folder in schedules:
        trials = [t for t in store.trials(summary.run_id) if t.key.startswith(folder + "/")]
        assert sorted(t.seed for t in trials) == list(range(len(list((SEED_LOGS / folder)
                                                                     .glob("events*")))))
    families = {t.label: t.family for t in store.trials(summary.run_id)}
    assert families["StepLR"] == "step" and families["OneCycleLR_max_1.1"] == "onecycle"


def test_metrics_match_an_independent_reader(imported: tuple[Store, ImportSummary],
                                             tbparse_scalars) -> None:
    store, summary = imported
    tag_of = {"train_loss": "Loss/train", "lr": "LR/train", "test_loss": "Loss/test"}
    for trial in store.trials(summary.run_id):
        name = Path(trial.config["source"]).name
        mine = tbparse_scalars[tbparse_scalars["file_name"] == name]
        for metric, tag in tag_of.items():
            expected = mine[mine["tag"] == tag].sort_values("step")
            steps, values = store.metric_series(trial.id, metric)
            assert steps.tolist() == expected["step"].tolist(), (trial.key, metric)
            # TensorBoard keeps float32; the store keeps what it was given exactly.
            np.testing.assert_allclose(values, expected["value"].to_numpy(), rtol=1e-6)


def test_diverged_attempts_are_found_at_their_first_nan(imported: tuple[Store, ImportSummary],
                                                        tbparse_scalars) -> None:
    store, summary = imported
    losses = tbparse_scalars[tbparse_scalars["tag"].isin(["Loss/train", "Loss/test"])]
    bad = losses[~np.isfinite(losses["value"].to_numpy())]
    expected = {name: int(group["step"].min()) for name, group in bad.groupby("file_name")}
    assert len(expected) >= 1
    diverged = {Path(t.config["source"]).name: t.diverged_at_step
                for t in store.trials(summary.run_id, status="diverged")}
    assert diverged == expected
    assert sum(a.status == "diverged" for a in summary.attempts) == len(expected)


def test_the_range_test_folder_becomes_the_runs_range_test(
        imported: tuple[Store, ImportSummary]) -> None:
    store, summary = imported
    assert summary.range_test_label == "exponentially_inc_Lr"
    rt = store.range_test(summary.run_id)
    assert rt is not None and len(rt.lrs) == len(rt.losses) > 1000
    assert np.all(np.diff(rt.lrs) > 0) and rt.lrs[-1] / rt.lrs[0] > 1e5
    assert rt.suggestion is not None and rt.lrs[0] < rt.suggestion < rt.lrs[-1]
    assert [step for step, _ in rt.config["test_loss"]] == [469, 938, 1407, 1876, 2345]


def test_issue19_item12_the_range_test_is_not_ranked_as_a_schedule(
        imported: tuple[Store, ImportSummary]) -> None:
    store, summary = imported
    rows = leaderboard(store, summary.run_id)
    assert "exponentially_inc_Lr" not in [r.label for r in rows]
    assert "ramp" not in {t.family for t in store.trials(summary.run_id)}
    assert len(rows) == len(summary.labels) == 8
    assert "range test: exponentially_inc_Lr" in summary.line()


def test_issue19_item12_runs_are_named_by_what_they_are(
        imported: tuple[Store, ImportSummary]) -> None:
    """The seed's ``ParallelMode.GLOBAL_rank_0`` is CyclicLR (a triangle wave: 50 steps up from
    base_lr to 1, 100 down); folders named for a schedule keep their names."""
    store, summary = imported
    named = {t.key.split("/")[0]: (t.label, t.family) for t in store.trials(summary.run_id)}
    assert named["ParallelMode.GLOBAL_rank_0"] == ("CyclicLR (ParallelMode.GLOBAL_rank_0)",
                                                  "cyclic")
    assert named["StepLR"] == ("StepLR", "step")
    assert named["CyclicLR_base_0.1_max_1"] == ("CyclicLR_base_0.1_max_1", "cyclic")
    assert {family for _, family in named.values()} == {"step", "exponential", "onecycle",
                                                       "cyclic"}
    # Where a folder names its schedule, its attempts' curves mostly agree: the names are read.
    exponential = [shape_of(store.metric_series(t.id, "lr")[1])
                   for t in store.trials(summary.run_id) if t.family == "exponential"]
    assert exponential.count("exponential") >= len(exponential) - 2  # two blew up upwards


def test_importing_again_duplicates_nothing(imported: tuple[Store, ImportSummary]) -> None:
    store, first = imported
    before = {(t.id, t.key, t.status) for t in store.trials()}
    rows_before = sum(len(store.metric_series(t.id, "train_loss")[0]) for t in store.trials())
    (second,) = import_logdirs(store, [SEED_LOGS])
    assert second.run_id == first.run_id and all(a.skipped for a in second.attempts)
    assert {(t.id, t.key, t.status) for t in store.trials()} == before
    assert sum(len(store.metric_series(t.id, "train_loss")[0])
               for t in store.trials()) == rows_before
    assert len(store.runs()) == 1


def test_event_files_written_by_torch_with_accuracy_in_percent(tmp_path: Path) -> None:
    logdir = tmp_path / "my_run"
    writer = SummaryWriter(str(logdir))
    for step in range(20):
        writer.add_scalar("LR/train", 0.1, step)
        writer.add_scalar("Loss/train", math.nan if step >= 15 else 2.0 - step / 10, step)
        writer.add_scalar("Accuracy/test", 10.0 + 4 * step, step)
        writer.add_scalar("Grad/norm", 1.0, step)
    writer.close()
    with Store.in_dir(tmp_path / "out") as store:
        (summary,) = import_logdirs(store, [logdir])
        (trial,) = store.trials()
        assert summary.labels == ["constant LR (my_run)"] == [trial.label]  # named by its LR
        assert (trial.status, trial.diverged_at_step) == ("diverged", 15)
        accuracy = store.metric_series(trial.id, "test_accuracy")[1]
        assert accuracy.max() == pytest.approx(0.86) and accuracy.min() == pytest.approx(0.10)
        assert "Grad/norm" in store.metric_names(trial.id)


def test_missing_or_empty_logdir_is_one_clear_error(tmp_path: Path) -> None:
    with Store.in_dir(tmp_path / "out") as store:
        with pytest.raises(InputError, match="no such directory"):
            import_logdirs(store, [tmp_path / "absent"])
        (tmp_path / "empty").mkdir()
        with pytest.raises(InputError, match="no TensorBoard event files"):
            import_logdirs(store, [tmp_path / "empty"])
        assert store.runs() == []
