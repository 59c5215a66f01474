"""Issue 17 item 6: each family declares which of its fields are learning rates
(``Schedule.lr_fields``), and ``scaled(k)`` multiplies every LR each registered family produces."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import pytest

from lrscope import schedules as S
from lrscope.schedules.base import register

# One example per registered family, each with every LR-valued argument away from its default
# (a min_lr of 0 would scale to 0 whether declared or not). A new family adds its own here.
EXAMPLES = {
    "constant": "constant(lr=0.2, warmup_steps=5)",
    "step": "step(lr=0.2, step_size=7, gamma=0.5)",
    "multistep": "multistep(lr=0.2, milestones=[10, 30], gamma=0.3)",
    "exponential": "exponential(lr=0.2, gamma=0.97)",
    "onecycle": "onecycle(max_lr=0.6, total_steps=100)",
    "cyclic": "cyclic(base_lr=0.01, max_lr=0.3, step_size_up=9, mode=triangular2)",
    "cosine": "cosine(lr=0.5, total_steps=100, warmup_steps=10, min_lr=0.02)",
    "cosine_restarts": "cosine_restarts(lr=0.5, T_0=15, T_mult=2, min_lr=0.02)",
    "linear": "linear(lr=0.5, total_steps=100, warmup_steps=10, end_factor=0.1)",
    "polynomial": "polynomial(lr=0.5, total_steps=100, power=2.0, min_lr=0.02, warmup_steps=5)",
    "inverse_sqrt": "inverse_sqrt(lr=0.5, warmup_steps=8)",
    "wsd": "wsd(lr=0.5, total_steps=100, warmup_steps=10, decay_steps=30, min_lr=0.02)",
    "ramp": "ramp(start_lr=1e-4, end_lr=2.0, total_steps=100)",
    "warmup": "warmup(cosine(lr=0.5, min_lr=0.02), steps=10, start_lr=0.001)",
    "join": "join([constant(lr=0.01), wsd(lr=0.5, min_lr=0.02)], boundaries=[20])",
    "compress": "compress(cosine(lr=0.5, total_steps=300, warmup_steps=30), factor=3)",
}
STEPS = (0, 1, 3, 9, 10, 11, 25, 50, 77, 99, 120)


def looks_like_an_lr(name: str) -> bool:
    return name == "lr" or name.endswith("_lr")


def undeclared_lr_fields(cls: type[S.Schedule]) -> list[str]:
    """Fields named like an LR that ``cls.lr_fields`` leaves out."""
    return [f.name for f in dataclasses.fields(cls)
            if looks_like_an_lr(f.name) and f.name not in cls.lr_fields]


def test_issue17_item6_every_registered_family_has_an_example_here() -> None:
    assert set(EXAMPLES) == set(S.REGISTRY), "a new family: add an example to EXAMPLES"


@pytest.mark.parametrize("family", sorted(S.REGISTRY))
def test_issue17_item6_every_family_declares_its_lr_fields(family: str) -> None:
    cls = S.REGISTRY[family]
    names = {f.name for f in dataclasses.fields(cls)}
    assert set(cls.lr_fields) <= names
    assert undeclared_lr_fields(cls) == []


def test_issue17_item6_an_undeclared_lr_field_is_caught() -> None:
    @dataclass(frozen=True)
    class Peaky(S.Schedule):  # not registered: the registry stays as it is
        family = "peaky"
        lr_fields = ("lr",)
        lr: float
        peak_lr: float = 1.0

    assert undeclared_lr_fields(Peaky) == ["peak_lr"]
    typo = type("Typo", (Peaky,), {"lr_fields": ("lr", "peak")})
    with pytest.raises(TypeError, match=r"Typo.lr_fields names \['peak'\], which are not its"):
        register(typo)
    assert "peaky" not in S.REGISTRY


@pytest.mark.parametrize("family", sorted(S.REGISTRY))
@pytest.mark.parametrize("factor", [3.0, 0.25])
def test_issue17_item6_scaled_multiplies_every_lr_of_every_family(family: str,
                                                                   factor: float) -> None:
    schedule = S.parse(EXAMPLES[family], total_steps=100)
    scaled = schedule.scaled(factor)
    for step in STEPS:
        assert math.isclose(scaled(step), factor * schedule(step), rel_tol=1e-12), step
        assert scaled.momentum(step) == schedule.momentum(step)
    # Every declared LR moved (nested schedules' too): an example whose LR fields all sit at
    # their defaults would let an undeclared one through.
    changed = [f.name for f in dataclasses.fields(schedule)
               if f.name in schedule.lr_fields and getattr(schedule, f.name) is not None]
    for name in changed:
        assert getattr(scaled, name) == pytest.approx(factor * getattr(schedule, name))
