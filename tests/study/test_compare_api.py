"""``lrscope.compare`` on the problems users have (issue 10 item 1): a DataLoader of dict batches
with a model that returns its own loss, a regression ranked by RMSE, a BatchNorm CNN with bf16
autocast and clipping. Each is paired (the same initial weights and data order per seed across
schedules) and deterministic (the same call twice gives the same leaderboard)."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import lrscope
from lrscope.rangetest.settings import RangeTestSettings
from lrscope.study.store.sqlite import Store

SCHEDULES = ["constant(lr=0.05)", "cosine(lr=0.2)"]


class OwnLoss(nn.Module):
    """A Hugging Face-style model: a dict batch in, an object with .loss out."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.head = nn.Embedding(20, 8), nn.Linear(8, 2)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.head(self.embed(input_ids).mean(1))
        return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}


def _dict_data(seed: int) -> DataLoader:
    g = torch.Generator().manual_seed(123)
    ids = torch.randint(0, 20, (192, 6), generator=g)
    rows = [{"input_ids": i, "labels": int(i[0] >= 10)} for i in ids]
    return DataLoader(rows, batch_size=16, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


def _leaderboard(res: lrscope.CompareResult) -> list[tuple[str, float]]:
    return [(row.label, row.rank_loss) for row in res.leaderboard]


def _assert_paired(out) -> None:
    """Every schedule at a seed starts from the same weights and sees the same first batch:
    their first training losses (before any update differs) agree exactly."""
    with Store.in_dir(out, create=False) as store:
        firsts: dict[int, set[float]] = {}
        for trial in store.trials():
            _, losses = store.metric_series(trial.id, "train_loss")
            firsts.setdefault(trial.seed, set()).add(float(losses[0]))
    assert len(firsts) >= 2 and all(len(values) == 1 for values in firsts.values()), firsts
    assert len({next(iter(v)) for v in firsts.values()}) == len(firsts)  # seeds differ


def test_dict_batches_and_a_model_returning_its_own_loss(tmp_path):
    def run(out):
        return lrscope.compare(OwnLoss, lambda p: torch.optim.Adam(p, lr=1e-3), _dict_data,
                               step_fn=lambda model, batch: model(**batch)["loss"],
                               evaluate=lambda model: {"loss": float(sum(
                                   model(**b)["loss"] for b in _dict_data(99)) / 12)},
                               schedules=SCHEDULES, steps=24, seeds=2, parallel="none",
                               range_test=RangeTestSettings(
                                   start=1e-5, steps=12), out=out, quiet=True)

    first, again = run(tmp_path / "a"), run(tmp_path / "b")
    assert len(first.leaderboard) == 2 and first.leaderboard[0].label in SCHEDULES
    assert first.best == (None if first.tie else first.leaderboard[0].label)
    assert _leaderboard(first) == _leaderboard(again)  # deterministic
    assert first.leaderboard[0].ranked_on == "val_loss"
    _assert_paired(tmp_path / "a")


def test_a_regression_ranked_by_rmse(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(320, 5, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.1 * torch.randn(320, generator=g)
    train, val = list(zip(x[:256], y[:256], strict=True)), (x[256:], y[256:])

    def train_data(seed):
        return DataLoader(train, batch_size=32, shuffle=True,
                          generator=torch.Generator().manual_seed(seed))

    def rmse(model):
        return {"rmse": float(torch.sqrt(((model(val[0]).squeeze(1) - val[1]) ** 2).mean()))}

    def mse(out, target):
        return nn.functional.mse_loss(out.squeeze(1), target)

    def run(out):
        return lrscope.compare(lambda: nn.Linear(5, 1), lambda p: torch.optim.SGD(p, lr=0.01),
                               train_data, loss_fn=mse, evaluate=rmse, rank_by="rmse",
                               schedules=["constant(lr=0.001)", "constant(lr=0.05)"], steps=40,
                               seeds=2, parallel="none", out=out, quiet=True,
                               range_test=RangeTestSettings(start=1e-5, steps=20))

    res = run(tmp_path)
    assert _leaderboard(res) == _leaderboard(run(tmp_path / "again"))
    _assert_paired(tmp_path)
    rows = res.leaderboard
    assert rows[0].ranked_on == "val_rmse" and not rows[0].rank_max
    # the faster LR fits this linear problem better (2 seeds cannot separate it: a tie)
    assert rows[0].label == "constant(lr=0.05)" and res.best is None and res.tie
    assert rows[0].rank_loss < rows[1].rank_loss
    with Store.in_dir(tmp_path, create=False) as store:
        trial = store.trials()[0]
        assert "val_rmse" in store.metric_names(trial.id)
        assert "test_accuracy" not in store.metric_names(trial.id)
    assert math.isfinite(rows[0].rank_loss)


def test_a_batchnorm_cnn_with_bf16_and_clipping(tmp_path):
    from lrscope.data.tasks import get_task

    task = get_task("digits", limit_train=256, limit_test=128)

    def cnn():
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                             nn.Flatten(), nn.Linear(8 * 64, 10))

    def train_data(seed):
        return DataLoader(list(zip(task.train_x, task.train_y, strict=True)), batch_size=32,
                          shuffle=True, generator=torch.Generator().manual_seed(seed))

    val = list(DataLoader(list(zip(task.test_x, task.test_y, strict=True)), batch_size=64))
    kwargs = dict(loss_fn=nn.functional.cross_entropy, val_data=val, schedules=SCHEDULES,
                  steps=16, seeds=2, parallel="auto", precision="bf16", clip_grad_norm=1.0,
                  quiet=True, range_test=RangeTestSettings(
                      start=1e-4, steps=12))
    first = lrscope.compare(cnn, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                            train_data, out=tmp_path / "a", **kwargs)
    again = lrscope.compare(cnn, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                            train_data, out=tmp_path / "b", **kwargs)
    assert _leaderboard(first) == _leaderboard(again)
    assert all(row.n_finished == 2 for row in first.leaderboard)
    assert first.leaderboard[0].final_test_accuracy.mean is None  # no test_data: nothing reported
    _assert_paired(tmp_path / "a")
    with Store.in_dir(tmp_path / "a", create=False) as store:
        names = store.metric_names(store.trials()[0].id)
    assert {"val_loss", "val_accuracy"} <= set(names)


def test_bad_input_is_one_clear_error_before_any_work(tmp_path):
    def data(seed):
        return [(torch.zeros(2, 3), torch.zeros(2).long())]

    def model():
        return nn.Linear(3, 2)

    def opt(p):
        return torch.optim.SGD(p, lr=0.1)

    with pytest.raises(ValueError, match="give steps=N or epochs=E"):
        lrscope.compare(model, opt, data, loss_fn=nn.functional.cross_entropy, out=tmp_path)
    with pytest.raises(TypeError, match="give loss_fn"):
        lrscope.compare(model, opt, data, steps=4, out=tmp_path)
    with pytest.raises(ValueError, match="rank_by"):
        lrscope.compare(model, opt, data, loss_fn=nn.functional.cross_entropy, steps=4,
                        rank_by=("rmse", "up"), out=tmp_path)
    with pytest.raises(ValueError, match="parallel='many'"):
        lrscope.compare(model, opt, data, loss_fn=nn.functional.cross_entropy, steps=4,
                        parallel="many", out=tmp_path)
    assert not (tmp_path / "study.sqlite").exists()


PROBLEM_TASK = """
import torch
from torch import nn
from torch.utils.data import DataLoader
from lrscope.data.problem import Problem

g = torch.Generator().manual_seed(0)
X = torch.randn(128, 4, generator=g)
Y = (X.sum(1) > 0).long()
ROWS = list(zip(X, Y))


def train_data(seed):
    return DataLoader(ROWS, batch_size=16, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


def build():
    return Problem("loaders", lambda: nn.Linear(4, 2), train_data,
                   loss_fn=nn.functional.cross_entropy, val_data=list(train_data(99)))
"""


def test_a_user_task_returning_a_problem_runs_in_the_cli(tmp_path, monkeypatch):
    from lrscope.cli import main

    (tmp_path / "loader_task.py").write_text(PROBLEM_TASK)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "study"
    assert main(["compare", "--task", "loader_task:build", "--steps", "16", "--seeds", "2",
                 "--schedules", *SCHEDULES, "--range-steps", "10", "--parallel", "none",
                 "--out", str(out)]) == 0
    with Store.in_dir(out, create=False) as store:
        trials = store.trials()
        assert len(trials) == 4 and all(t.status == "finished" for t in trials)
        assert "val_loss" in store.metric_names(trials[0].id)
    assert (out / "report.html").exists()


def _digits_study(out, parallel: str, steps: int = 40) -> lrscope.CompareResult:
    from lrscope.data.tasks import get_task

    task = get_task("digits", limit_train=512, limit_test=256)
    return lrscope.compare(task.make_model, functools.partial(torch.optim.SGD, lr=0.1,
                                                              momentum=0.9),
                           task, schedules=["constant(lr=0.02)", "onecycle(max_lr=0.3)",
                                            "constant(lr=50)"], steps=steps, seeds=2,
                           eval_every=steps // 2, parallel=parallel, out=out, quiet=True,
                           range_test=RangeTestSettings(start=1e-4, steps=20))


def _rows(res: lrscope.CompareResult) -> list[tuple]:
    return [(r.label, r.rank, r.n_finished, r.n_diverged, r.rank_loss) for r in res.leaderboard]


def _same_rows(got: lrscope.CompareResult, reference: lrscope.CompareResult) -> None:
    """The same trials in a worker process: the same rows, the losses to float precision (a
    worker is not bit-identical on every machine: CI's once differed in the 9th digit)."""
    assert [row[:4] for row in _rows(got)] == [row[:4] for row in _rows(reference)]
    assert [row[4] for row in _rows(got)] == pytest.approx([row[4] for row in _rows(reference)],
                                                          rel=1e-6, nan_ok=True)


@pytest.mark.slow
def test_processes_and_auto_leaderboards_equal_nones(tmp_path):
    import json

    reference = _digits_study(tmp_path / "none", "none")
    assert reference.parallel is None  # only auto chooses, and says so
    processes = _digits_study(tmp_path / "processes", "processes")
    _same_rows(processes, reference)
    auto = _digits_study(tmp_path / "auto", "auto")  # small: not measured, runs none
    assert _rows(auto) == _rows(reference)  # the same process: to the last bit
    saved = json.loads((tmp_path / "auto" / "parallel.json").read_text())["study"]
    assert saved["line"] == auto.parallel and auto.parallel.startswith("parallel auto: ")
    assert saved["mode"] in ("none", "batched", "processes")


def _tiny(seed):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(64, 3, generator=g)
    return [(x[i:i + 16], (x[i:i + 16].sum(1) > 0).long()) for i in range(0, 64, 16)]


def test_issue16_item4_a_rank_by_metric_nothing_measures_stops_before_any_trial(tmp_path):
    def model():
        return nn.Linear(3, 2)

    def opt(p):
        return torch.optim.SGD(p, lr=0.1)

    ce = nn.functional.cross_entropy
    with pytest.raises(ValueError, match=r"rank_by='acc'.*accuracy, loss"):
        lrscope.compare(model, opt, _tiny, loss_fn=ce, val_data=_tiny(0), rank_by="acc",
                        steps=4, seeds=1, out=tmp_path, quiet=True)
    with pytest.raises(ValueError, match=r"rank_by='loss'.*measured are rmse"):
        lrscope.compare(model, opt, _tiny, loss_fn=ce, evaluate=lambda m: {"rmse": 1.0},
                        steps=4, seeds=1, out=tmp_path, quiet=True)
    assert not (tmp_path / "study.sqlite").exists()  # no trial ran


@pytest.mark.slow
def test_issue16_item5_every_trial_diverged_names_no_best(tmp_path):
    res = lrscope.compare(lambda: nn.Linear(3, 2), lambda p: torch.optim.SGD(p, lr=0.1), _tiny,
                          loss_fn=nn.functional.cross_entropy, val_data=_tiny(0),
                          schedules=["constant(lr=1e9)", "constant(lr=1e10)"], steps=8,
                          seeds=1, parallel="none", out=tmp_path, quiet=True,
                          range_test=RangeTestSettings(start=1e-5, steps=5))
    assert all(r.n_finished == 0 for r in res.leaderboard) and len(res.leaderboard) == 2
    assert res.best is None
    assert "Nothing finished" in (tmp_path / "report.md").read_text(encoding="utf-8")


def _readme_compare_block() -> str:
    """The README's lrscope.compare example, as written (the block after its marker)."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    after = readme.split("<!-- readme-compare", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
def test_issue19_item3_the_readme_compare_example_runs_and_compares(tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(_readme_compare_block(), "README.md", "exec"), scope)
    res = scope["res"]
    assert res.leaderboard[0].n_finished and len(res.leaderboard) == 3
    assert res.best == (None if res.tie else res.leaderboard[0].label)
    # no test_data: "vs best" compares on what was ranked (validation loss), over 3 seeds
    others = res.leaderboard[1:]
    assert all(r.versus_on.stored == "val_loss" and r.vs_best.n == 3 for r in others)
    assert "no test loss" not in capsys.readouterr().out



_VAL = [(torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))]


@pytest.mark.parametrize(("extra", "named"), [
    ({"val_data": _VAL}, "val_data"),
    ({"evaluate": lambda m: {"accuracy": 1.0}, "loss_fn": nn.functional.nll_loss},
     "loss_fn, evaluate"),
    ({"test_data": _VAL, "step_fn": lambda m, b: torch.zeros(())}, "step_fn, test_data"),
    ({"model": lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10))}, "model"),
])
def test_issue16_item15_a_task_with_arguments_it_would_ignore_is_refused(
        tmp_path, extra, named):
    """A Task brings its own model, loss and data: whatever the call adds would be silently
    dropped (and selection would read the test set, not the user's val_data). One line naming
    the arguments, before anything is written."""
    from lrscope.data.tasks import get_task

    task = get_task("digits", limit_train=64, limit_test=32)
    kwargs = dict(extra)
    model = kwargs.pop("model", task.make_model)
    with pytest.raises(lrscope.InputError) as caught:
        lrscope.compare(model, lambda p: torch.optim.SGD(p, lr=0.1), task, steps=4, seeds=1,
                        out=tmp_path / "study", quiet=True, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and f"so {named} would be ignored" in message
    assert "'digits'" in message and "task.with_validation" in message
    assert not (tmp_path / "study").exists()


@pytest.mark.parametrize("scales", [[], [1, 1], [0.3, -1], [0, 1]])
def test_issue17_item3_compare_refuses_bad_lr_scales_as_the_config_does(tmp_path, scales):
    """One check for lr_scales (lrscope.study.recipes.lr_scales_problem), used by compare() and
    the config: compare(lr_scales=[]) once ran a study with no schedules. One line naming the
    argument, before anything is written, with the config's wording."""
    from lrscope.config.study import load_study_config

    with pytest.raises(lrscope.InputError) as caught:
        lrscope.compare(lambda: nn.Linear(4, 2), lambda p: torch.optim.SGD(p, lr=0.1),
                        lambda seed: [(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))],
                        loss_fn=nn.functional.cross_entropy, schedules=["constant(lr=0.1)"],
                        steps=4, seeds=1, lr_scales=scales, out=tmp_path / "study", quiet=True)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"compare: lr_scales={scales!r} must be")
    assert not (tmp_path / "study").exists()
    with pytest.raises(lrscope.InputError) as in_config:
        load_study_config(overrides={"lr_scales": scales})
    assert message.split(" must be ")[1] in str(in_config.value)


def test_issue17_item7_the_leaderboard_is_typed_with_its_row_class() -> None:
    """CompareResult.leaderboard is a list of LeaderboardRow, which ``lrscope`` exports."""
    import typing

    from lrscope.study.stats.leaderboard import LeaderboardRow

    assert lrscope.LeaderboardRow is LeaderboardRow and "LeaderboardRow" in lrscope.__all__
    hints = typing.get_type_hints(lrscope.CompareResult)
    assert hints["leaderboard"] == list[LeaderboardRow]
