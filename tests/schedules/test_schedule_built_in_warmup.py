"""Issue 17 item 6: a family's own ``warmup_steps`` is the ``warmup()`` combinator in front of
the family over the steps left, built in one place (:mod:`lrscope.schedules.warmup`).

The values themselves are held to the combinator step for step by
``test_schedule_combinators.py::test_warmup_of_a_family_is_its_built_in_warmup`` and to torch
by ``test_schedule_parity.py``; here: the structure, and the peaks the combinator alone would
not give (the family's ``lr`` exactly).
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from lrscope import schedules as S
from lrscope.errors import InputError
from lrscope.schedules.polynomial import InverseSqrtDecay
from lrscope.schedules.warmup import BuiltInWarmup

WITH_WARMUP = sorted(family for family, cls in S.REGISTRY.items()
                     if any(f.name == "warmup_steps" for f in dataclasses.fields(cls)))
EXAMPLES = {  # (family with warmup_steps=150 over 2000 steps, the family over the 1850 left)
    "constant": ("constant(lr=0.5, warmup_steps=150)", "constant(lr=0.5)"),
    "cosine": ("cosine(lr=0.5, total_steps=2000, warmup_steps=150, min_lr=0.01)",
               "cosine(lr=0.5, total_steps=1850, min_lr=0.01)"),
    "linear": ("linear(lr=0.5, total_steps=2000, start_factor=0.5, end_factor=0.1, "
               "warmup_steps=150)", "linear(lr=0.5, total_steps=1850, start_factor=0.5, "
               "end_factor=0.1)"),
    "polynomial": ("polynomial(lr=0.5, total_steps=2000, power=2.0, warmup_steps=150)",
                   "polynomial(lr=0.5, total_steps=1850, power=2.0)"),
    # the cooldown keeps its length: a fraction is of the whole run, warmup included
    "wsd": ("wsd(lr=0.5, total_steps=2000, warmup_steps=150, decay_fraction=0.2)",
            "wsd(lr=0.5, total_steps=1850, decay_steps=400)"),
    "inverse_sqrt": ("inverse_sqrt(lr=0.5, warmup_steps=150)", None),
}


def test_issue17_item6_the_families_with_warmup_steps_are_the_known_ones() -> None:
    assert set(WITH_WARMUP) == set(EXAMPLES), "a new family with warmup_steps: add it here"


@pytest.mark.parametrize("family", WITH_WARMUP)
def test_issue17_item6_every_warmup_steps_is_built_on_the_combinator(family: str) -> None:
    cls = S.REGISTRY[family]
    # The ramp is the combinator's: the family writes only its LR without a warmup.
    assert issubclass(cls, BuiltInWarmup) and "lr_at" not in vars(cls)
    built_in_spec, rest_spec = EXAMPLES[family]
    built_in = S.parse(built_in_spec)
    assert isinstance(built_in, BuiltInWarmup)
    combined = built_in.as_warmup
    assert isinstance(combined, S.Warmup) and combined.steps == 150
    if rest_spec is not None:
        assert built_in.after_warmup() == S.parse(rest_spec)
        combinator = S.parse(f"warmup({rest_spec}, steps=150)")
        assert combinator.lrs(2100) == built_in.lrs(2100)
    assert built_in.lrs(2100) == combined.lrs(2100)


def test_issue17_item6_inverse_sqrt_decays_from_its_warmups_length() -> None:
    schedule = S.InverseSqrt(lr=0.5, warmup_steps=100)
    assert schedule.after_warmup() == InverseSqrtDecay(lr=0.5, since=100)
    assert schedule(99) == 0.5 * 100 / 101 and schedule(100) == 0.5
    assert schedule(400) == 0.5 * math.sqrt(100 / 400)
    assert S.InverseSqrt(lr=0.5).lrs(5) == [0.5, 0.5] + [0.5 * math.sqrt(1 / t) for t in (2, 3, 4)]


def test_issue17_item6_a_family_warmup_climbs_to_its_lr_exactly() -> None:
    # wsd whose cooldown starts right after the warmup: the warmup still climbs to lr, not to
    # the cooldown's first value (what warmup(...) in front of the rest would climb to).
    wsd = S.parse("wsd(lr=1, total_steps=10, warmup_steps=2, decay_steps=8)")
    assert wsd.lrs(4) == [1 / 3, 2 / 3, 0.875, 0.75]
    # cosine whose first value rounds away from lr (min_lr + (lr - min_lr) != lr in floats)
    lr, low = 0.3, 0.03
    assert low + (lr - low) != lr
    cosine = S.Cosine(lr=lr, total_steps=100, warmup_steps=3, min_lr=low)
    assert cosine.lrs(3) == [lr * k / 4 for k in (1, 2, 3)]


def test_issue17_item6_an_unfilled_family_says_what_is_missing_at_every_step() -> None:
    for spec in ("cosine(lr=1, warmup_steps=5)", "wsd(lr=1, warmup_steps=5)",
                 "linear(lr=1, warmup_steps=5)", "polynomial(lr=1, warmup_steps=5)"):
        for step in (0, 5):
            with pytest.raises(InputError, match=r"^missing total steps for "):
                S.parse(spec)(step)
