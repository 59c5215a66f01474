"""The range test's defaults (lrscope.rangetest.settings.RangeTestSettings) and who reads them."""

from __future__ import annotations

import dataclasses
import inspect

import lrscope
from lrscope.config.sections import RangeTestConfig
from lrscope.integrations.transformers import find_lr
from lrscope.rangetest.settings import DEFAULT_NUM_STEPS, RANGE_TEST_DEFAULTS, RangeTestSettings
from lrscope.study.plan import StudyPlan


def test_issue17_item3_range_test_defaults_are_defined_once() -> None:
    """One default per setting: range_test's signature, the config's [range_test] table, the
    study's plan and the Transformers finder read RangeTestSettings' defaults (the same
    objects, not equal copies that could drift apart)."""
    signature = inspect.signature(lrscope.range_test).parameters
    kwargs = RANGE_TEST_DEFAULTS.range_test_kwargs()
    for name, value in kwargs.items():
        assert signature[name].default is value, name
    assert signature["val_every"].default is RANGE_TEST_DEFAULTS.val_every
    config = RangeTestConfig()
    for field in dataclasses.fields(RangeTestSettings):
        assert getattr(config, field.name) is getattr(RANGE_TEST_DEFAULTS, field.name), field.name
    plan_default = next(f for f in dataclasses.fields(StudyPlan) if f.name == "range_test")
    assert plan_default.default_factory() == RANGE_TEST_DEFAULTS  # type: ignore[misc]
    transformers = inspect.signature(find_lr).parameters
    for name in ("end_lr", "mode", "prefer", "beta", "diverge_th"):
        assert transformers[name].default is kwargs[name], name
    assert transformers["num_steps"].default is DEFAULT_NUM_STEPS
