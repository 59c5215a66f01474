"""LRScopeFinder and lrscope_scheduler in real (tiny, CPU) Lightning fits."""

from __future__ import annotations

import copy
import csv
import math

import pytest
import torch
from torch import nn

pl = pytest.importorskip("lightning.pytorch")

from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from lrscope.errors import InputError  # noqa: E402
from lrscope.integrations.lightning import (  # noqa: E402
    FIGURE_TAG,
    LRScopeFinder,
    lrscope_scheduler,
)
from lrscope.schedules import parse  # noqa: E402

STEPS = 24  # range-test steps: enough for every rule to answer, fast on one core


def _data(seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 8, generator=g)
    y = (x[:, :4].sum(1) > 0).long()
    return TensorDataset(x, y)


class MLP(pl.LightningModule):
    """Two layers with dropout (so RNG restoration matters) on a shuffled loader."""

    def __init__(self, lr: float = 0.01, returns: str = "tensor", schedule: str | None = None):
        super().__init__()
        self.lr = lr
        self.returns, self.schedule = returns, schedule
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)  # muted during the range test, logged in training
        return {"loss": loss} if self.returns == "dict" else loss

    def train_dataloader(self):
        return DataLoader(_data(), batch_size=32, shuffle=True)

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
        if self.schedule is None:
            return opt
        spec = self.schedule.format(lr=self.lr)  # a schedule built from self.lr
        return {"optimizer": opt,
                "lr_scheduler": lrscope_scheduler(opt, spec, trainer=self.trainer)}


class LearningRateModule(MLP):
    def __init__(self) -> None:
        super().__init__()
        del self.lr
        self.learning_rate = 0.01

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.learning_rate)


class Spy(pl.Callback):
    """Listed after the finder: what the model and optimizer hold once it has run."""

    def on_fit_start(self, trainer, pl_module):
        self.state = copy.deepcopy(pl_module.state_dict())
        self.training = [m.training for m in pl_module.modules()]
        self.rng = torch.get_rng_state()
        self.lr_at_fit_start = trainer.optimizers[0].param_groups[0]["lr"]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs = getattr(self, "lrs", [])
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def _trainer(callbacks, logger=False, max_steps=4) -> pl.Trainer:
    return pl.Trainer(max_steps=max_steps, accelerator="cpu", devices=1, logger=logger,
                      callbacks=callbacks, enable_checkpointing=False, log_every_n_steps=1,
                      enable_progress_bar=False, enable_model_summary=False)


def _fit(model, callbacks, logger=False, max_steps=4) -> pl.Trainer:
    trainer = _trainer(callbacks, logger, max_steps)
    trainer.fit(model)
    return trainer


def _finder(**kwargs) -> LRScopeFinder:
    return LRScopeFinder(min_lr=1e-4, max_lr=10.0, num_training_steps=STEPS, **kwargs)


def test_finder_sets_the_lr_and_logs_figure_and_suggestions_to_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    pl.seed_everything(0)
    model, finder, spy = MLP(), _finder(), Spy()
    trainer = _fit(model, [finder, spy], TensorBoardLogger(tmp_path, name="tb"))
    result = finder.result
    assert result is not None and result.steps >= 10 and result.lrs[0] == pytest.approx(1e-4)
    assert finder.suggestion == result.suggestion and 1e-4 < finder.suggestion < 10.0
    assert model.lr == finder.suggestion != 0.01
    assert spy.lr_at_fit_start == finder.suggestion  # the optimizer the trainer then used
    assert spy.lrs[0] == finder.suggestion
    assert trainer.global_step == 4  # the finder's steps are not the trainer's

    events = EventAccumulator(trainer.logger.log_dir, size_guidance={"images": 0})
    events.Reload()
    assert FIGURE_TAG in events.Tags()["images"]
    logged = {tag: events.Scalars(tag)[-1].value for tag in events.Tags()["scalars"]}
    assert logged["lrscope/suggestion"] == pytest.approx(finder.suggestion, rel=1e-6)
    for rule, lr in result.suggestions.items():
        if lr is not None:
            assert logged[f"lrscope/suggestion_{rule}"] == pytest.approx(lr, rel=1e-6)
    assert "train_loss" in events.Tags()["scalars"]  # training's own self.log still works


def test_the_model_is_bitwise_restored_and_training_equals_setting_the_lr_by_hand():
    pl.seed_everything(1)
    model = MLP(returns="dict")
    before = copy.deepcopy(model.state_dict())
    rng_before = torch.get_rng_state()
    finder, spy = _finder(), Spy()
    _fit(model, [finder, spy])
    assert finder.suggestion is not None
    assert spy.state.keys() == before.keys()
    assert all(torch.equal(spy.state[k], before[k]) for k in before)
    assert all(spy.training)
    assert torch.equal(spy.rng, rng_before)

    pl.seed_everything(1)
    by_hand = MLP(returns="dict")
    by_hand.lr = finder.suggestion
    _fit(by_hand, [])
    trained, expected = model.state_dict(), by_hand.state_dict()
    assert not torch.equal(trained["net.0.weight"], before["net.0.weight"])  # it trained
    assert all(torch.equal(trained[k], expected[k]) for k in expected)


class StoredLoaderMLP(MLP):
    """``train_dataloader()`` returns one DataLoader built once, with its own generator: the
    same object (and generator) serves the range test and then training."""

    def __init__(self) -> None:
        super().__init__()
        self.loader = DataLoader(_data(), batch_size=32, shuffle=True,
                                 generator=torch.Generator().manual_seed(7))

    def train_dataloader(self):
        return self.loader


def test_issue16_item18_a_stored_loader_with_its_own_generator_keeps_its_data_order():
    """The range test draws from the stored loader's generator; training afterwards must see
    the data order it would have seen without the finder (bit-identical weights after 8
    steps at the suggested LR)."""
    pl.seed_everything(2)
    model = StoredLoaderMLP()
    finder = _finder()
    _fit(model, [finder], max_steps=8)
    assert finder.suggestion is not None

    pl.seed_everything(2)
    by_hand = StoredLoaderMLP()
    by_hand.lr = finder.suggestion
    _fit(by_hand, [], max_steps=8)
    trained, expected = model.state_dict(), by_hand.state_dict()
    assert all(torch.equal(trained[k], expected[k]) for k in expected)


def test_issue16_item19_the_integrations_default_to_the_range_tests_headline_rule():
    """The finders suggest what ``lrscope.range_test``'s ``result.suggestion`` reads (the
    library's headline), not the steepest point."""
    import inspect

    from lrscope.rangetest.suggest import HEADLINE

    assert inspect.signature(LRScopeFinder).parameters["prefer"].default == HEADLINE
    pl.seed_everything(0)
    finder = _finder(update_attr=False)
    _fit(MLP(), [finder], max_steps=1)
    assert finder.result is not None and finder.result.rule == HEADLINE
    assert finder.suggestion == finder.result.suggestions[HEADLINE]


def test_csv_logger_gets_the_suggestions(tmp_path):
    pl.seed_everything(2)
    finder = _finder(prefer="valley")
    trainer = _fit(MLP(), [finder], CSVLogger(tmp_path, name="csv"))
    assert finder.result is not None and finder.result.rule == "valley"
    with open(f"{trainer.logger.log_dir}/metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    values = [float(r["lrscope/suggestion"]) for r in rows if r.get("lrscope/suggestion")]
    assert values == [pytest.approx(finder.suggestion, rel=1e-6)]


def test_learning_rate_attribute_and_explicit_attr_name():
    pl.seed_everything(3)
    model, finder = LearningRateModule(), _finder(mode="linear")
    trainer = _fit(model, [finder], max_steps=1)
    assert finder.result is not None and finder.result.mode == "linear"
    assert model.learning_rate == finder.suggestion == trainer.optimizers[0].param_groups[0]["lr"]

    pl.seed_everything(3)
    model = MLP()
    model.head_lr = 0.5
    finder = _finder(attr_name="head_lr")
    _fit(model, [finder], max_steps=1)
    assert model.head_lr == finder.suggestion and model.lr == 0.01


def test_update_attr_false_changes_nothing_but_keeps_the_result():
    pl.seed_everything(4)
    model, finder, spy = MLP(), _finder(update_attr=False, early_stop_threshold=None), Spy()
    _fit(model, [finder, spy], max_steps=1)
    assert finder.suggestion is not None and finder.result is not None
    assert finder.result.steps == STEPS  # no early stop by the smoothed loss
    assert model.lr == 0.01 and spy.lr_at_fit_start == 0.01


def test_a_scheduler_is_rebuilt_from_the_suggested_lr():
    pl.seed_everything(5)
    model, finder, spy = MLP(schedule="cosine(lr={lr}, warmup_steps=2)"), _finder(), Spy()
    _fit(model, [finder, spy], max_steps=3)
    assert finder.suggestion is not None
    expected = parse(f"cosine(lr={finder.suggestion}, warmup_steps=2)", total_steps=3)
    assert spy.lrs == [pytest.approx(expected(k), rel=1e-12) for k in range(3)]


class HardCoded(MLP):
    """configure_optimizers ignores self.lr; the head trains at 10x the body's LR."""

    def configure_optimizers(self):
        return torch.optim.SGD([{"params": self.net[0].parameters(), "lr": 0.05},
                                {"params": self.net[3].parameters(), "lr": 0.5}])


def test_an_optimizer_that_ignores_the_attribute_gets_the_lr_keeping_group_ratios():
    pl.seed_everything(7)
    model, finder, spy = HardCoded(), _finder(), Spy()
    trainer = _fit(model, [finder, spy], max_steps=1)
    body, head = (g["lr"] for g in trainer.optimizers[0].param_groups)
    assert model.lr == body == spy.lr_at_fit_start == finder.suggestion
    assert head == pytest.approx(10 * finder.suggestion, rel=1e-12)
    assert finder.result is not None and finder.result.lrs[0] == pytest.approx(1e-4)


class Manual(MLP):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False


def test_errors_name_the_problem():
    with pytest.raises(InputError, match="automatic optimization"):
        _fit(Manual(), [_finder()], max_steps=1)
    with pytest.raises(InputError, match="mode"):
        LRScopeFinder(mode="cubic")
    model = LearningRateModule()
    del model.learning_rate
    model.configure_optimizers = lambda: torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(InputError, match="learning_rate"):
        _fit(model, [_finder()], max_steps=1)
    with pytest.raises(InputError, match="attr_name='nope'"):
        _fit(MLP(), [_finder(attr_name="nope")], max_steps=1)


def test_schedule_helper_steps_once_per_optimizer_step():
    pl.seed_everything(6)
    n = 5
    model, spy = MLP(schedule="cosine(lr=0.2, min_lr=0.01)"), Spy()
    trainer = _fit(model, [spy], max_steps=n)
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    schedule = scheduler.schedule
    assert schedule.total_steps == n  # filled from trainer.estimated_stepping_batches
    assert trainer.lr_scheduler_configs[0].interval == "step"
    assert spy.lrs == [schedule(k) for k in range(n)]
    assert trainer.optimizers[0].param_groups[0]["lr"] == schedule(n)
    assert scheduler.last_epoch == n


def test_schedule_helper_needs_a_length():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(InputError, match="total_steps"):
        lrscope_scheduler(opt, "cosine(lr=1.0)")
    config = lrscope_scheduler(opt, "constant(lr=0.3)", name="lr")
    assert config["name"] == "lr" and math.isclose(opt.param_groups[0]["lr"], 0.3)
