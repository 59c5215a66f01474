"""Issue 18: ``run_study(..., wanted=)`` trains a subset of the full study's trials (a predict
study's phases); ``compare(strategy=, budget=)`` is checked before any work."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lrscope
from lrscope.errors import InputError, InputTypeError
from lrscope.rangetest.settings import RangeTestSettings
from lrscope.session import run_plan
from lrscope.study.api import prepare_compare
from lrscope.study.run import run_study
from lrscope.study.store.sqlite import Store

G = torch.Generator().manual_seed(0)
X = torch.randn(64, 4, generator=G)
Y = (X.sum(1) > 0).long()
SCHEDULES = ["constant(lr=0.1)", "cosine(lr=0.3)", "linear(lr=0.2)"]


def train_data(seed: int):
    return torch.utils.data.DataLoader(list(zip(X, Y, strict=True)), batch_size=16,
                                       shuffle=True,
                                       generator=torch.Generator().manual_seed(seed))


def _make_model() -> nn.Module:
    return nn.Linear(4, 2)


def _sgd(params):
    return torch.optim.SGD(params, lr=0.1)


def _prepared(out, **changes):
    kwargs = {"loss_fn": nn.functional.cross_entropy, "val_data": train_data(99),
              "schedules": SCHEDULES, "steps": 8, "seeds": 2, "out": out, "quiet": True,
              "parallel": "none", "range_test": RangeTestSettings(steps=10), **changes}
    return prepare_compare(_make_model, _sgd, train_data, **kwargs)


def _keys(out) -> list[str]:
    with Store.in_dir(out, create=False) as store:
        return sorted(t.key for t in store.trials())


def test_issue18_run_study_wanted_trains_only_the_keys_asked_for(tmp_path):
    call = _prepared(tmp_path)
    suite = run_study(call.plan, tmp_path, call.engine, wanted=set())
    assert suite.labels() == SCHEDULES and _keys(tmp_path) == []  # range test + suite only
    with Store.in_dir(tmp_path, create=False) as store:
        run = store.find_run("study")
        assert run is not None and store.range_test(run.id) is not None
    run_study(call.plan, tmp_path, call.engine, wanted={"cosine(lr=0.3)/seed1", "no/seed9"})
    assert _keys(tmp_path) == ["cosine(lr=0.3)/seed1"]
    run_study(call.plan, tmp_path, call.engine)  # None: every trial; the one done is kept
    assert _keys(tmp_path) == sorted(f"{s}/seed{seed}" for s in SCHEDULES for seed in (0, 1))


@pytest.mark.parametrize(("changes", "error", "field"), [
    ({"strategy": "quick"}, InputError, "strategy='quick'"),
    ({"strategy": "predict", "budget": 0.0}, InputError, "budget=0.0"),
    ({"strategy": "predict", "budget": 2}, InputError, "budget=2"),
    ({"strategy": "predict", "budget": "1/6"}, InputTypeError, "budget='1/6'"),
])
def test_issue18_compare_refuses_bad_strategy_or_budget_before_any_work(tmp_path, changes,
                                                                        error, field):
    out = tmp_path / "never"
    with pytest.raises(error) as caught:
        lrscope.compare(_make_model, _sgd, train_data, loss_fn=nn.functional.cross_entropy,
                        schedules=SCHEDULES, steps=8, out=out, quiet=True, **changes)
    assert "\n" not in str(caught.value) and field in str(caught.value)
    assert not out.exists()  # nothing written


def test_issue18_run_plan_refuses_a_bad_strategy(tmp_path):
    call = _prepared(tmp_path / "never")
    with pytest.raises(InputError, match="run_plan: strategy='Predict'"):
        run_plan(call.plan, call.out, call.engine, strategy="Predict")
    assert not call.out.exists()
