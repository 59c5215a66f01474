"""Issue 8, "Correct by construction": one test (or more) per silent wrong result, named by item.

Each of these failed on main before the fix (tests/test_correct_by_construction.py was run
against the tree before the fix to check that).
"""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import lrscope
from lrscope.cli import main
from lrscope.data.tasks import get_task
from lrscope.engines.local import LocalEngine
from lrscope.errors import InputError, InputTypeError
from lrscope.schedules import parse
from lrscope.study.store.sqlite import Store
from lrscope.trials.trial import run_trial

CE = nn.functional.cross_entropy
ACCURACY_COLUMNS = ("final_test_accuracy_mean", "best_test_accuracy_mean", "steps_to_target_mean",
                    "target_accuracy")


def _data(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, (x.sum(1) > 0).long()


def _batches(x: torch.Tensor, y: torch.Tensor, size: int = 16) -> list[tuple[torch.Tensor, ...]]:
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


# -- item 1: regression tasks have no accuracy ------------------------------------------------
REGRESSION_TASK = """
import torch
from torch import nn

class Column(nn.Module):
    def __init__(self, flat):
        super().__init__()
        self.linear, self.flat = nn.Linear(3, 1), flat
    def forward(self, x):
        out = self.linear(x)
        return out.squeeze(1) if self.flat else out

def build(flat=False):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(160, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1
    y = y if flat else y.unsqueeze(1)
    return dict(make_model=lambda: Column(flat), train_x=x[:128], train_y=y[:128],
                test_x=x[128:], test_y=y[128:], loss_fn=nn.functional.mse_loss, batch_size=32)

def build_column():
    return build(flat=False)

def build_flat():
    return build(flat=True)
"""


@pytest.mark.parametrize("function", ["build_column", "build_flat"])
def test_item1_regression_compare_ranks_by_loss_and_shows_no_accuracy(tmp_path, monkeypatch,
                                                                      function):
    (tmp_path / "regression_task.py").write_text(REGRESSION_TASK)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "study"
    code = main(["compare", "--task", f"regression_task:{function}", "--seeds", "2",
                 "--steps", "24", "--eval-every", "8", "--range-steps", "20", "--parallel",
                 "none", "--schedules", "constant(lr=0.05)", "cosine(lr=0.1)", "--out",
                 str(out)])
    assert code == 0
    with (out / "leaderboard.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["rank"] for row in rows] == ["1", "2"]
    for row in rows:
        assert all(row[column] == "" for column in ACCURACY_COLUMNS), row
        assert float(row["final_test_loss_mean"]) > 0
    with Store.in_dir(out, create=False) as store:
        names = {name for trial in store.trials() for name in store.metric_names(trial.id)}
    assert "test_accuracy" not in names and "test_loss" in names
    assert (out / "report.html").exists()


def test_item1_task_says_whether_it_has_classes():
    assert get_task("digits").has_classes
    x = torch.randn(8, 3)
    regression = lrscope.data.tasks.Task("r", lambda: nn.Linear(3, 1), x, x[:, :1], x, x[:, :1],
                                         loss_fn=nn.functional.mse_loss)
    assert not regression.has_classes


# -- item 2: every config field reaches what it configures ------------------------------------
def _smoothed_first_loss(task, seed: int, smoothing: float) -> float:
    torch.manual_seed(seed)
    model = task.make_model()
    x, y = next(iter(task.train_batches(seed)))
    with torch.no_grad():
        return float(CE(model(x), y, label_smoothing=smoothing))


def test_item2_compare_trains_and_range_tests_with_the_configured_loss(tmp_path):
    config = tmp_path / "study.toml"
    config.write_text(textwrap.dedent("""\
        task = "digits"
        limit_train = 256
        loss = "cross_entropy"
        label_smoothing = 0.3
        seeds = 1
        steps = 6
        schedules = ["constant(lr=0.01)"]
        parallel = "none"
        [range_test]
        steps = 10
        """))
    out = tmp_path / "study"
    assert main(["compare", "--config", str(config), "--out", str(out)]) == 0
    task = get_task("digits", limit_train=256).with_validation(0.1)  # the default split
    smoothed, plain = _smoothed_first_loss(task, 0, 0.3), _smoothed_first_loss(task, 0, 0.0)
    assert abs(smoothed - plain) > 1e-3  # far more than the rel=1e-5 checked below
    with Store.in_dir(out, create=False) as store:
        trial = store.trials()[0]
        _, train_loss = store.metric_series(trial.id, "train_loss")
        run = store.find_run("study")
        assert run is not None
        saved = store.range_test(run.id)
    assert train_loss[0] == pytest.approx(smoothed, rel=1e-5)
    assert saved is not None and saved.losses[0] == pytest.approx(smoothed, rel=1e-5)


FIND_FIELDS = [  # (flag(s), what result.json / the run must then say)
    (["--model", "lenet"], lambda r: r["model"] == "lenet"),
    (["--batch-size", "32"], lambda r: r["batch_size"] == 32),
    (["--limit-train", "200"], lambda r: r["train_examples"] == 200),
    (["--seed", "3"], lambda r: r["seed"] == 3),
    (["--start", "1e-4"], lambda r: r["start_lr"] == 1e-4),
    (["--end", "3.0"], lambda r: r["end_lr"] == 3.0),
    (["--steps", "12"], lambda r: r["num_steps"] == 12),
    (["--epochs", "1"], lambda r: r["num_steps"] == 4),  # 256 examples / 64 per batch
    (["--mode", "linear"], lambda r: r["mode"] == "linear"),
    (["--prefer", "minimum"], lambda r: r["rule"] in ("minimum", "steepest")),
    (["--optimizer", "adam"], lambda r: r["optimizer"] == "adam"),
    (["--device", "cpu"], lambda r: r["device"] == "cpu"),
]


@pytest.mark.parametrize(("flags", "check"), FIND_FIELDS, ids=[f[0][0] for f in FIND_FIELDS])
def test_item2_find_fields_reach_the_run(tmp_path, flags, check):
    import json

    out = tmp_path / "find"
    base = ["find", "--task", "digits", "--limit-train", "256", "--steps", "8", "--quiet",
            "--out", str(out)]
    if "--steps" in flags or "--epochs" in flags:
        base = [b for b in base if b not in ("--steps", "8")]
    if "--limit-train" in flags:
        base = [b for b in base if b not in ("--limit-train", "256")]
    assert main([*base, *flags]) == 0
    result = json.loads((out / "result.json").read_text())
    assert check(result), result


def test_item2_find_loss_fields_reach_the_range_test(tmp_path):
    out = tmp_path / "find"
    assert main(["find", "--task", "digits", "--limit-train", "256", "--steps", "8", "--quiet",
                 "--out", str(out), "--config", str(_loss_toml(tmp_path))]) == 0
    with (out / "history.csv").open() as handle:
        first = float(next(csv.DictReader(handle))["loss"])
    expected = _smoothed_first_loss(get_task("digits", limit_train=256), 0, 0.2)
    assert first == pytest.approx(expected, rel=1e-5)


def _loss_toml(tmp_path: Path) -> Path:
    path = tmp_path / "loss.toml"
    path.write_text('loss = "cross_entropy"\nlabel_smoothing = 0.2\n')
    return path


STUDY_FIELDS = [  # (override, check on the plan)
    ({"seeds": 2}, lambda p: p.seeds == (0, 1)),
    ({"seeds": [4, 7]}, lambda p: p.seeds == (4, 7)),
    ({"steps": 30}, lambda p: p.steps == 30),
    ({"epochs": 2}, lambda p: p.steps == 2 * p.task.steps_per_epoch),
    ({"eval_every": 7}, lambda p: p.eval_every == 7),
    ({"recipe": "seed"}, lambda p: p.recipe == "seed"),
    ({"schedules": ["constant(lr=0.1)"]}, lambda p: p.schedules == ("constant(lr=0.1)",)),
    ({"parallel": "none"}, lambda p: p.parallel == "none"),
    ({"run_range_test": False}, lambda p: p.range_test is None),
    ({"range_test.start": 1e-3}, lambda p: p.range_test.start == 1e-3),
    ({"range_test.val_examples": 64}, lambda p: p.range_test.val_examples == 64),
    ({"range_test.val_every": 0}, lambda p: not p.range_test.validates),
    ({"range_test.diverge_th": 3.0}, lambda p: p.range_test.range_test_kwargs()["diverge_th"] == 3),
    ({"batch_size": 16}, lambda p: p.task.batch_size == 16),
    ({"limit_test": 50}, lambda p: len(p.task.test_x) == 50),
    ({"model": "lenet"}, lambda p: p.task.model_name == "lenet"),
    ({"optimizer.name": "adamw"},
     lambda p: type(p.make_optimizer(p.task.make_model())) is torch.optim.AdamW),
    ({"optimizer.momentum": 0.5},
     lambda p: p.make_optimizer(p.task.make_model()).defaults["momentum"] == 0.5),
    ({"optimizer.weight_decay": 0.01},
     lambda p: p.make_optimizer(p.task.make_model()).defaults["weight_decay"] == 0.01),
    ({"target_accuracy": 0.5}, lambda p: p.config["target_accuracy"] == 0.5),
    ({"device": "cpu"}, lambda p: p.task.train_x.device.type == "cpu"),
]


@pytest.mark.parametrize(("override", "check"), STUDY_FIELDS,
                         ids=[next(iter(f[0])) + str(i) for i, f in enumerate(STUDY_FIELDS)])
def test_item2_study_fields_reach_the_plan(override, check):
    from lrscope.config.plans import study_plan
    from lrscope.config.study import load_study_config

    plan = study_plan(load_study_config(overrides={"limit_train": 128, **override}))
    assert check(plan)


def test_item2_study_loss_reaches_the_plan_task():
    from lrscope.config.plans import study_plan
    from lrscope.config.study import load_study_config

    plan = study_plan(load_study_config(overrides={"loss": "cross_entropy",
                                                   "label_smoothing": 0.25}))
    logits, targets = torch.tensor([[10.0, -10.0]]), torch.tensor([0])
    assert float(plan.task.loss_fn(logits, targets)) == pytest.approx(
        float(CE(logits, targets, label_smoothing=0.25)))


# -- item 3: a frozen group at lr 0 stays at 0 -------------------------------------------------
def test_item3_frozen_first_group_stays_at_zero_in_the_range_test():
    torch.manual_seed(0)
    body, head = nn.Linear(4, 8), nn.Linear(8, 2)
    model = nn.Sequential(body, nn.ReLU(), head)
    optimizer = torch.optim.SGD([{"params": body.parameters(), "lr": 0.0},
                                 {"params": head.parameters(), "lr": 0.1}], lr=0.1)
    seen: list[tuple[float, float]] = []
    frozen = body.weight.detach().clone()
    changed: list[bool] = []

    def callback(step, lr, loss, smoothed):
        seen.append((optimizer.param_groups[0]["lr"], optimizer.param_groups[1]["lr"]))
        changed.append(not torch.equal(body.weight, frozen))

    x, y = _data()
    result = lrscope.range_test(model, optimizer, CE, _batches(x, y), start_lr=1e-3,
                                end_lr=1.0, num_steps=10, callback=callback)
    assert result.steps == 10
    assert all(body_lr == 0.0 for body_lr, _ in seen)
    assert seen[-1][1] == pytest.approx(1.0)
    assert not any(changed)


def test_item3_the_same_rule_in_trials_and_the_batched_runner():
    from lrscope.schedules import apply_schedule, group_ratios
    from lrscope.trials.batched.stacked import StackedModel

    body, head = nn.Linear(4, 8), nn.Linear(8, 2)
    model = nn.Sequential(body, nn.ReLU(), head)
    optimizer = torch.optim.SGD([{"params": body.parameters(), "lr": 0.0},
                                 {"params": head.parameters(), "lr": 0.2}])
    assert group_ratios(optimizer) == [0.0, 1.0]
    apply_schedule(optimizer, parse("constant(lr=0.5)"), 0, group_ratios(optimizer))
    assert [g["lr"] for g in optimizer.param_groups] == [0.0, 0.5]
    used = {name for name, _ in model.named_parameters()}
    stack = StackedModel(model, optimizer, 2, CE, used, torch.device("cpu"))
    assert [g.ratio for g in stack.groups] == [0.0, 1.0]


# -- item 4: each module keeps its own train/eval flag ----------------------------------------
def _model_with_frozen_bn() -> nn.Module:
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    model[1].eval()  # frozen by its owner
    return model


def test_item4_range_test_leaves_a_frozen_batchnorm_frozen():
    torch.manual_seed(0)
    model = _model_with_frozen_bn()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    flags: list[bool] = []
    stats: list[bool] = []
    mean = model[1].running_mean.clone()
    x, y = _data()
    lrscope.range_test(model, optimizer, CE, _batches(x, y), start_lr=1e-3, end_lr=1.0,
                       num_steps=8, val_batches=_batches(x, y), val_every=4,
                       callback=lambda *a: (flags.append(model[1].training),
                                            stats.append(torch.equal(model[1].running_mean,
                                                                     mean))))
    assert flags == [False] * 8 and all(stats)
    assert model.training and not model[1].training


def test_item4_trial_leaves_a_frozen_batchnorm_frozen():
    made: list[nn.Module] = []

    def make_model() -> nn.Module:
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(),
                              nn.Linear(16, 10))
        model[2].eval()
        made.append(model)
        return model

    import dataclasses
    task = dataclasses.replace(get_task("digits", limit_train=128, limit_test=64),
                               make_model=make_model)
    result = run_trial(task, parse("constant(lr=0.1)"), seed=0, steps=6, eval_every=3)
    assert result.status == "finished"
    bn = made[0][2]
    assert not bn.training and made[0].training
    assert torch.equal(bn.running_mean, torch.zeros(16))  # never updated


# -- item 5: objects restored in place, RNG left as found -------------------------------------
def test_item5_param_group_dicts_and_state_are_the_same_objects_after_range_test():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = _data()
    CE(model(x), y).backward()
    optimizer.step()  # momentum buffers exist
    groups, group, state = optimizer.param_groups, optimizer.param_groups[0], optimizer.state
    buffer = optimizer.state[model[0].weight]["momentum_buffer"]
    saved = buffer.clone()
    lrscope.range_test(model, optimizer, CE, _batches(x, y), start_lr=1e-3, end_lr=1.0,
                       num_steps=8)
    assert optimizer.param_groups is groups and optimizer.param_groups[0] is group
    assert group["lr"] == 0.1
    assert optimizer.state is state
    assert optimizer.state[model[0].weight]["momentum_buffer"] is buffer
    assert torch.equal(buffer, saved)


def test_item5_trial_and_study_leave_the_global_rng_as_found(tmp_path):
    from lrscope.study.plan import StudyPlan
    from lrscope.study.run import run_study

    torch.manual_seed(1234)
    np.random.seed(5)
    before_torch, before_np = torch.get_rng_state(), np.random.get_state()[1].copy()
    task = get_task("digits", limit_train=128, limit_test=64)
    run_trial(task, parse("constant(lr=0.1)"), seed=0, steps=4, eval_every=2)
    assert torch.equal(torch.get_rng_state(), before_torch)
    plan = StudyPlan(name="s", task=task, config={"x": 1}, seeds=(0,), steps=4, eval_every=2,
                     schedules=("constant(lr=0.1)",))
    run_study(plan, tmp_path / "study")
    assert torch.equal(torch.get_rng_state(), before_torch)
    assert np.array_equal(np.random.get_state()[1], before_np)


# -- item 6: validation weighted by examples (targets), sequence-first inputs ------------------
class SeqFirst(nn.Module):
    """(T, B, F) in, (B, C) out: a GRU reading sequence-first input."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn, self.head = nn.GRU(3, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][-1])


def test_item6_validation_loss_and_batch_size_count_examples_not_time_steps():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(10, 24, 3, generator=g)  # T=10, B=24
    y = (x.sum((0, 2)) > 0).long()
    train = [(x[:, i:i + 8], y[i:i + 8]) for i in range(0, 24, 8)]
    val = [(x[:, :6], y[:6]), (x[:, 6:8], y[6:8])]  # 6 and 2 examples, both with T=10
    model = SeqFirst()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    expected: list[float] = []

    def callback(step, lr, loss, smoothed):
        if (step + 1) % 2 == 0:
            with torch.no_grad():
                model.eval()
                losses = [float(CE(model(v), t)) for v, t in val]
                model.train()
            expected.append((losses[0] * 6 + losses[1] * 2) / 8)

    result = lrscope.range_test(model, optimizer, CE, train, start_lr=1e-3, end_lr=0.1,
                                num_steps=6, val_batches=val, val_every=2, callback=callback)
    assert result.batch_size == 8  # examples per batch, not T
    assert result.val_losses is not None
    measured = [v for v in result.val_losses if not np.isnan(v)]
    # validation runs after the step's update and before its callback: the same weights
    assert measured == pytest.approx(expected, rel=1e-6)


# -- item 7: non-iterable batches are one clear error before any step --------------------------
@pytest.mark.parametrize("argument", ["batches", "val_batches"])
def test_item7_non_iterable_batches_are_refused_before_any_step(argument):
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _data()
    steps: list[int] = []
    kwargs = {"batches": _batches(x, y), "val_batches": _batches(x, y)}
    kwargs[argument] = 42
    with pytest.raises(InputTypeError, match=f"range_test: {argument} must be an iterable"):
        lrscope.range_test(model, optimizer, CE, num_steps=5, val_every=2,
                           callback=lambda step, *a: steps.append(step), **kwargs)
    assert steps == []


# -- item 8: an engine that moves or casts the model: device and dtype come back ---------------
class CastingEngine(LocalEngine):
    """What a precision plugin (or a move to the GPU) does: the caller's model converted in
    place in ``setup``. A real engine of the contract, used to check the restore."""

    name = "local"

    def setup(self, model, optimizer):
        model.to(torch.float64)
        for state in optimizer.state.values():  # as mixed-precision wrappers do
            for key, value in state.items():
                if torch.is_tensor(value) and value.is_floating_point() and key != "step":
                    state[key] = value.double()
        return model, optimizer


def test_item8_model_and_optimizer_return_to_their_dtype_and_values():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = _data()
    CE(model(x), y).backward()
    optimizer.step()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    exp_avg = optimizer.state[model[0].weight]["exp_avg"].clone()
    lrscope.range_test(model, optimizer, lambda out, t: CE(out, t),
                       [(b.double(), t) for b, t in _batches(x, y)], start_lr=1e-4,
                       end_lr=0.1, num_steps=6, engine=CastingEngine())
    for name, value in model.state_dict().items():
        assert value.dtype == weights[name].dtype, name
        assert torch.equal(value, weights[name]), name
    state = optimizer.state[model[0].weight]
    assert state["exp_avg"].dtype == torch.float32 and torch.equal(state["exp_avg"], exp_avg)


@pytest.mark.colossalai
def test_item8_colossalai_bf16_plugin_leaves_the_users_weights_as_they_were():
    from lrscope.engines import get_engine

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = _data(64)
    CE(model(x), y).backward()
    optimizer.step()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    buffer = optimizer.state[model[0].weight]["momentum_buffer"].clone()
    options = {"tp_size": 1, "pp_size": 1, "precision": "bf16"}  # casts the model it boosts
    with get_engine("colossalai", plugin="hybrid", plugin_options=options) as engine:
        result = lrscope.range_test(model, optimizer, CE, _batches(x, y), start_lr=1e-3,
                                    end_lr=1.0, num_steps=6, engine=engine)
    assert result.steps == 6
    for name, value in model.state_dict().items():
        assert value.dtype == torch.float32 and torch.equal(value, before[name]), name
    state = optimizer.state[model[0].weight]["momentum_buffer"]
    assert state.dtype == torch.float32 and torch.equal(state, buffer)
    # the plugin's fp32 master copies are gone: the caller's optimizer trains the caller's model
    assert all(p is q for p, q in zip(optimizer.param_groups[0]["params"], model.parameters(),
                                      strict=True))
    CE(model(x), y).backward()
    optimizer.step()
    assert not torch.equal(model[0].weight, before["0.weight"])


# -- item 11: --device / device= on the local engine -------------------------------------------
def test_item11_device_auto_is_this_machines_and_cuda_without_one_is_refused():
    from lrscope.engines.local import resolve_device

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert LocalEngine("cpu").device == torch.device("cpu")
    with pytest.raises(InputError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA device"):
            resolve_device("cuda:0")


def test_item11_cli_device_flag(tmp_path, capsys):
    import json

    out = tmp_path / "find"
    assert main(["find", "--task", "digits", "--limit-train", "128", "--steps", "6", "--quiet",
                 "--device", "auto", "--out", str(out)]) == 0
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert json.loads((out / "result.json").read_text())["device"].startswith(expected)
    if not torch.cuda.is_available():
        assert main(["find", "--device", "cuda", "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--device" in err[0]


def test_item11_in_memory_data_moves_once():
    task = get_task("digits", limit_train=64)
    assert task.to("cpu") is task  # already there: nothing copied
    batches = task.train_batches(0)
    assert all(x.device == task.train_x.device for x, _ in batches)
