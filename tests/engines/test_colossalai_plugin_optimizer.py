"""Which optimizer each ColossalAI plugin trains with: Gemini's HybridAdam rule.

The refusals happen before ColossalAI is imported and need no mark. HybridAdam itself needs
ColossalAI's CPUAdam kernel, which a CPU-only install lacks: the conversion is checked against
a stand-in HybridAdam (arguments as ColossalAI's), and the real one only where it can be built.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from engine_problem import make_model

from lrscope.engines.colossalai_plugins import (
    optimizer_for_plugin,
    plugin_optimizer_problem,
    quiet_colossalai,
)
from lrscope.errors import InputError


def _grouped(kind: type[torch.optim.Optimizer], **options: Any) -> torch.optim.Optimizer:
    """Two param groups, the second with its own lr, betas, eps, weight decay and a user key."""
    first, second = make_model()[0], make_model()[2]
    return kind([{"params": first.parameters()},
                 {"params": second.parameters(), "lr": 0.3, "betas": (0.8, 0.99),
                  "eps": 1e-6, "weight_decay": 0.05, "name": "head"}],
                lr=0.1, betas=(0.85, 0.995), eps=1e-7, weight_decay=0.02, **options)


def test_gemini_refuses_sgd_in_one_line_naming_the_fix() -> None:
    sgd = torch.optim.SGD(make_model().parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(InputError) as caught:
        optimizer_for_plugin("gemini", sgd)
    assert str(caught.value) == (
        "plugin='gemini' needs Adam or AdamW (lrscope converts them to ColossalAI's HybridAdam), "
        "not SGD; use --optimizer adam|adamw or --plugin torch_ddp")
    assert sgd.param_groups[0]["lr"] == 0.1 and not sgd.state


@pytest.mark.parametrize("option", ["amsgrad", "maximize"])
def test_gemini_refuses_adam_options_hybrid_adam_lacks(option: str) -> None:
    adam = torch.optim.Adam(make_model().parameters(), **{option: True})
    with pytest.raises(InputError, match=f"HybridAdam has no {option}.*--plugin torch_ddp"):
        optimizer_for_plugin("gemini", adam)


@pytest.mark.parametrize("plugin", ["torch_ddp", "hybrid", "low_level_zero"])
def test_other_plugins_train_the_callers_optimizer(plugin: str) -> None:
    sgd = torch.optim.SGD(make_model().parameters(), lr=0.1)
    for optimizer in (sgd, _grouped(torch.optim.Adam)):
        assert optimizer_for_plugin(plugin, optimizer) is optimizer


def test_a_colossalai_adam_goes_to_gemini_as_it_is() -> None:
    hybrid = type("HybridAdam", (torch.optim.Adam,), {"__module__": "colossalai.nn.optimizer"})
    optimizer = hybrid(make_model().parameters(), lr=0.1)
    assert optimizer_for_plugin("gemini", optimizer) is optimizer


def test_the_rule_on_config_names() -> None:
    assert plugin_optimizer_problem("gemini", "adam") is None
    assert plugin_optimizer_problem("gemini", "adamw") is None
    assert plugin_optimizer_problem(None, "sgd") is None
    problem = plugin_optimizer_problem("gemini", "sgd", given=' (optimizer.name = "sgd")')
    assert problem is not None and 'not SGD (optimizer.name = "sgd"); use --optimizer' in problem


class _StandInHybridAdam(torch.optim.Optimizer):
    """Takes ColossalAI 0.5.0 HybridAdam's arguments and keeps them, like CPUAdam does."""

    def __init__(self, model_params: Any, lr: float = 1e-3, bias_correction: bool = True,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, adamw_mode: bool = True) -> None:
        super().__init__(model_params, {"lr": lr, "betas": betas, "eps": eps,
                                        "weight_decay": weight_decay,
                                        "bias_correction": bias_correction})
        self.adamw_mode = adamw_mode


ADAMS = [
    pytest.param(torch.optim.Adam, {}, False, id="Adam"),
    pytest.param(torch.optim.AdamW, {}, True, id="AdamW"),
    pytest.param(torch.optim.Adam, {"decoupled_weight_decay": True}, True,
                 id="Adam-decoupled"),
]


@pytest.mark.colossalai
@pytest.mark.parametrize(("kind", "options", "adamw_mode"), ADAMS)
def test_gemini_gets_a_hybrid_adam_with_the_same_groups_and_hyperparameters(
        kind: type[torch.optim.Optimizer], options: dict[str, Any], adamw_mode: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with quiet_colossalai():
        import colossalai.nn.optimizer

    monkeypatch.setattr(colossalai.nn.optimizer, "HybridAdam", _StandInHybridAdam)
    original = _grouped(kind, **options)
    before = original.state_dict()
    made = optimizer_for_plugin("gemini", original)
    assert isinstance(made, _StandInHybridAdam) and made.adamw_mode is adamw_mode
    assert made.defaults["lr"] == 0.1 and made.defaults["betas"] == (0.85, 0.995)
    assert (made.defaults["eps"], made.defaults["weight_decay"]) == (1e-7, 0.02)
    assert len(made.param_groups) == len(original.param_groups) == 2
    for new, old in zip(made.param_groups, original.param_groups, strict=True):
        assert all(a is b for a, b in zip(new["params"], old["params"], strict=True))
        for key in ("lr", "betas", "eps", "weight_decay"):
            assert new[key] == old[key], key
        assert new is not old and "amsgrad" not in new and "foreach" not in new
    assert made.param_groups[1]["name"] == "head"
    # The caller's optimizer is left alone: the LRs of the run go to the new one.
    made.param_groups[0]["lr"] = 5.0
    assert original.state_dict() == before


@pytest.mark.colossalai
@pytest.mark.parametrize(("kind", "options", "adamw_mode"), ADAMS)
def test_the_real_hybrid_adam_where_it_can_be_built(
        kind: type[torch.optim.Optimizer], options: dict[str, Any], adamw_mode: bool) -> None:
    try:
        made = optimizer_for_plugin("gemini", _grouped(kind, **options))
    except AssertionError as err:  # "No usable kernel found for CPUAdamLoader ..."
        pytest.skip(f"HybridAdam cannot be built here: {err}")
    assert type(made).__name__ == "HybridAdam" and made.adamw_mode is adamw_mode
    assert [g["lr"] for g in made.param_groups] == [0.1, 0.3]
    assert [g["betas"] for g in made.param_groups] == [(0.85, 0.995), (0.8, 0.99)]
    assert [g["eps"] for g in made.param_groups] == [1e-7, 1e-6]
    assert [g["weight_decay"] for g in made.param_groups] == [0.02, 0.05]


@pytest.mark.colossalai
def test_engine_setup_refuses_sgd_for_gemini_before_boosting(
        colossalai_engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Gemini needs CUDA to build an engine; the torch_ddp engine with its plugin name set to
    # gemini reaches the same check in setup, which must come before any Booster is made.
    engine = colossalai_engine("torch_ddp")
    monkeypatch.setattr(engine, "plugin", "gemini")
    model = make_model()
    with pytest.raises(InputError, match="plugin='gemini' needs Adam or AdamW"):
        engine.setup(model, torch.optim.SGD(model.parameters(), lr=0.1))
    assert not engine._boosted
