"""The TOML experiment file: valid files load, every kind of mistake is one line with its place."""

from __future__ import annotations

import json
import re
import textwrap
import tomllib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from lrscope.config import find as find_module
from lrscope.config import study as study_module
from lrscope.config.base import save_config
from lrscope.config.find import FindConfig, load_config
from lrscope.config.sections import OptimizerConfig, RangeTestConfig
from lrscope.config.study import load_study_config
from lrscope.config.toml_text import dump_toml, key_lines
from lrscope.errors import InputError

VALID = """\
# a find experiment
task = "digits"
model = "lenet"
seed = 3
batch_size = 32

[optimizer]
name = "adamw"
momentum = 0.85
weight_decay = 0.001

[range_test]
start = 1e-5
end = 1          # an integer is a fine float
steps = 40
mode = "linear"
val_every = 5
"""


def _write(tmp_path: Path, text: str, name: str = "find.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(path: Path | None = None, overrides: dict[str, Any] | None = None,
           flags: dict[str, str] | None = None) -> str:
    with pytest.raises(InputError) as info:
        load_config(path, overrides, flags)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_valid_file_loads(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, VALID))
    assert (cfg.task, cfg.model, cfg.seed, cfg.batch_size) == ("digits", "lenet", 3, 32)
    assert cfg.optimizer == OptimizerConfig(name="adamw", momentum=0.85, weight_decay=0.001)
    assert cfg.range_test.start == 1e-5 and cfg.range_test.end == 1.0
    assert isinstance(cfg.range_test.end, float)
    rt = cfg.range_test
    assert (rt.steps, rt.mode, rt.val_every) == (40, "linear", 5)
    assert cfg.engine == "local" and cfg.out is None


def test_defaults_without_a_file() -> None:
    cfg = load_config()
    assert cfg == FindConfig()
    assert (cfg.task, cfg.range_test.start, cfg.range_test.end) == ("digits", 1e-7, 10.0)


def test_config_is_frozen() -> None:
    cfg = load_config()
    with pytest.raises(ValidationError):
        cfg.seed = 4  # type: ignore[misc]


@pytest.mark.parametrize(("text", "expected"), [
    ('task = "digits"\n\n[range_test]\nstart = 1e-5\nstpes = 3\n',
     "find.toml:5: unknown key 'stpes' in [range_test] (did you mean 'steps'?); allowed: start"),
    ('seed = 1\nsteps = 3\n', "find.toml:2: unknown key 'steps' (it belongs in [range_test])"),
    ('[range_test]\nsteps = "100"\n', 'find.toml:2: range_test.steps = "100": must be a whole'),
    ('[optimizer]\n\nmomentum = "high"\n', 'find.toml:3: optimizer.momentum = "high": must be a '
                                          'number'),
    ('seed = 1.5\n', "find.toml:1: seed = 1.5: must be a whole number"),
    ('[range_test]\nstart = 1.0\nend = 0.1\n',
     "find.toml:3: range_test.end = 0.1: must be greater than start = 1.0"),
    ('[range_test]\nstart = 1.0\nend = 1.0\n', "find.toml:3: range_test.end = 1.0: must be "),
    ('[range_test]\nsteps = 0\n', "find.toml:2: range_test.steps = 0: must be greater than or "
                                  "equal to 2"),
    ('[range_test]\nstart = -1e-3\n', "find.toml:2: range_test.start = -0.001: must be greater"),
    ('[range_test]\nmode = "log"\n', "find.toml:2: range_test.mode = \"log\": must be 'exp' or "
                                     "'linear'"),
    ('task = "digit"\n', "find.toml:1: task = \"digit\": unknown task 'digit' (did you mean "
                         "'digits'?)"),
    ('model = "lenett"\n', "find.toml:1: model = \"lenett\": unknown model 'lenett' for task "
                           "digits (did you mean 'lenet'?)"),
    ('optimizer = { name = "sgdd" }\n', "find.toml:1: optimizer.name = \"sgdd\": must be 'sgd', "
                                        "'adam' or 'adamw' (did you mean 'sgd'?)"),
    ('[range_test]\nsteps = 10\nepochs = 2\n', "find.toml:3: range_test.epochs = 2: give steps "
                                               "or epochs, not both"),
    ('out = 2024-01-01\n', "find.toml:1: out = 2024-01-01: must be a string"),
    ('[range_test]\nend = inf\n', "find.toml:2: range_test.end = inf: must be a finite number"),
    ('seed = -1\n[range_test]\nsteps = 1\n',
     "find.toml:1: seed = -1: must be greater than or equal to 0 (and 1 more problem)"),
])
def test_each_mistake_is_one_line_with_field_value_and_line(tmp_path: Path, text: str,
                                                             expected: str) -> None:
    path = _write(tmp_path, text)
    message = _error(path)
    assert message.startswith(f"{tmp_path}/{expected}"), message


def test_malformed_toml_and_missing_file(tmp_path: Path) -> None:
    assert "not valid TOML" in _error(_write(tmp_path, "task = \n"))
    assert "line 1" in _error(_write(tmp_path, "task = \n"))
    assert "does not exist" in _error(tmp_path / "nope.toml")


def test_command_line_overrides_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID)
    cfg = load_config(path, {"range_test.steps": 12, "model": None, "seed": 9})
    assert cfg.range_test.steps == 12 and cfg.seed == 9
    assert cfg.model == "lenet"  # None means "flag not given": the file's value stays
    assert cfg.range_test.mode == "linear"  # untouched keys keep the file's values


def test_override_error_names_the_flag(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID)
    message = _error(path, {"range_test.start": 100.0}, {"range_test.start": "--start"})
    # start=100 > the file's end=1: the problem shows at `end`, which came from the file.
    assert message.startswith(f"{path}:14: range_test.end = 1: must be greater than start = 100")
    message = _error(path, {"range_test.mode": "cubic"}, {"range_test.mode": "--mode"})
    assert message.startswith("--mode: range_test.mode = \"cubic\": must be")


def test_saved_config_reloads_to_the_same(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, VALID), {"out": str(tmp_path / "out")})
    json_path, toml_path = save_config(cfg, tmp_path / "saved")
    assert load_config(toml_path) == cfg
    assert json.loads(json_path.read_text()) == cfg.model_dump(mode="json")
    assert json.loads(json_path.read_text())["range_test"]["steps"] == 40


def test_optimizer_config_builds_torch_optimizers() -> None:
    params = [torch.zeros(2, requires_grad=True)]
    sgd = OptimizerConfig().build(params, lr=0.5)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9
    assert sgd.param_groups[0]["lr"] == 0.5
    adamw = OptimizerConfig(name="adamw", momentum=0.8).build(params)
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["betas"] == (0.8, 0.999)
    assert adamw.defaults["weight_decay"] == 0.01  # torch's AdamW default when unset
    plain = OptimizerConfig(momentum=0.0, weight_decay=0.1).build(params)
    assert plain.defaults["momentum"] == 0.0 and plain.defaults["weight_decay"] == 0.1


def test_task_section_builds_the_task_and_loss() -> None:
    cfg = load_config(overrides={"limit_train": 100, "batch_size": 10, "loss": "cross_entropy",
                                 "label_smoothing": 0.2})
    task = cfg.build_task()
    assert len(task.train_x) == 100 and task.steps_per_epoch == 10
    logits, targets = torch.tensor([[10.0, -10.0]]), torch.tensor([0])
    assert float(task.loss_fn(logits, targets)) > 0.05  # smoothing keeps it off zero
    assert float(load_config().build_task().loss_fn(logits, targets)) < 1e-6


def test_range_test_kwargs_match_the_api() -> None:
    import inspect

    import lrscope

    names = set(inspect.signature(lrscope.range_test).parameters)
    assert set(RangeTestConfig().range_test_kwargs()) <= names


def test_key_lines_handles_toml_forms() -> None:
    text = """\
title = "x"  # comment with = sign
a.b = 1
"quoted.key" = 2
arr = [
  1,
  2,
]
doc = '''
fake = 3
'''
[t]
k = { inner = 1 }
[[runs]]
seed = 1
[[runs]]
seed = 2
[t.sub]
z = "[not a table]"
"""
    tomllib.loads(text)
    lines = key_lines(text)
    assert lines["title"] == 1 and lines["a.b"] == 2 and lines["quoted.key"] == 3
    assert lines["arr"] == 4 and "fake" not in lines and lines["doc"] == 8
    assert lines["t"] == 11 and lines["t.k"] == 12
    assert lines["runs.0.seed"] == 14 and lines["runs.1.seed"] == 16
    assert lines["t.sub.z"] == 18


_names = st.from_regex(r"[a-z][a-z_]{0,6}", fullmatch=True)
_scalars = st.one_of(st.integers(-10**6, 10**6), st.booleans(), st.text(max_size=8),
                     st.floats(allow_nan=False, allow_infinity=False, width=32))
_tables = st.recursive(st.dictionaries(_names, _scalars, max_size=4),
                       lambda inner: st.dictionaries(_names, inner, max_size=3), max_leaves=12)


def _leaves(data: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        out += _leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else [prefix + key]
    return out


@settings(max_examples=60, deadline=None)
@given(_tables)
def test_dump_round_trips_and_every_leaf_gets_its_line(data: dict[str, Any]) -> None:
    text = dump_toml(data)
    assert tomllib.loads(text) == data
    lines, rows = key_lines(text), text.splitlines()
    for path in _leaves(data):
        assert rows[lines[path] - 1].startswith(path.rsplit(".", 1)[-1] + " = ")


def _docstring_example(module: ModuleType) -> str:
    """The indented block after the first ``::`` of ``module``'s docstring, dedented."""
    lines = (module.__doc__ or "").splitlines()
    start = next(i for i, line in enumerate(lines) if line.rstrip().endswith("::")) + 1
    block = []
    for line in lines[start:]:
        if line.strip() and not line.startswith(" "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)).strip() + "\n"


def _alternatives(line: str) -> list[str]:
    """The lines a trailing comment offers instead of ``line``: any ``key = value`` written in
    it (``# or epochs = 2``, ``(plugin = ...)``), ``# a | b`` and ``# or "x", "y"`` (values)."""
    code, _, comment = line.partition("#")
    key, eq, value = (part.strip() for part in code.partition("="))
    if not eq or not comment:
        return []
    found = [m.group(0) for m in re.finditer(r'\b\w+ = ("[^"]*"|[\w.+-]+)', comment)]
    words = re.sub(r"\(.*?\)", "", comment).strip()
    quote = '"' if value.startswith('"') else ""
    if re.fullmatch(r"\w+( \| \w+)+", words):
        found += [f"{key} = {quote}{word}{quote}" for word in words.split(" | ")]
    elif words.startswith("or "):
        found += [f"{key} = {other}" for other in re.findall(r'"[^"]*"', words)]
    return found


def _example_variants(example: str) -> list[str]:
    """The example as written, with every commented-out key set, and each alternative its
    comments name substituted in turn."""
    full = re.sub(r"(?m)^# (\w+ = )", r"\1", example)
    lines = full.splitlines()
    variants = [example, full]
    for i, line in enumerate(lines):
        for alternative in _alternatives(line):
            variants.append("\n".join([*lines[:i], alternative, *lines[i + 1:]]) + "\n")
    return variants


# issue 8 item 10
@pytest.mark.parametrize(("module", "load"), [(find_module, load_config),
                                              (study_module, load_study_config)])
def test_docstring_examples_load(tmp_path: Path, module: ModuleType,
                                 load: Callable[[Path], Any]) -> None:
    example = _docstring_example(module)
    assert example.count("\n") > 5, example  # the block was found
    variants = _example_variants(example)
    for n, text in enumerate(variants):
        try:
            load(_write(tmp_path, text, f"example{n}.toml"))
        except InputError as err:
            pytest.fail(f"{module.__name__}'s example does not load: {err}\n{text}")
    if module is find_module:  # the variants do cover the documented alternatives
        assert any('plugin = "torch_ddp"' in v for v in variants)
        assert any('plugin = "low_level_zero"' in v for v in variants)
        assert any("epochs = 2" in v and "steps = 100" not in v for v in variants)


@pytest.mark.parametrize("load", [load_config, load_study_config], ids=["find", "compare"])
def test_gemini_takes_adam_or_adamw_and_only_on_the_colossalai_engine(load: Any) -> None:
    for name in ("adam", "adamw"):
        config = load(overrides={"engine": "colossalai", "plugin": "gemini",
                                 "optimizer.name": name})
        assert (config.plugin, config.optimizer.name) == ("gemini", name)
    # The local engine ignores the plugin, so nothing is refused there.
    assert load(overrides={"engine": "local", "plugin": "gemini"}).plugin == "gemini"
    with pytest.raises(InputError, match=r'^config: plugin = "gemini": needs Adam or AdamW .*'
                                         r'not SGD \(optimizer.name = "sgd"\)'):
        load(overrides={"engine": "colossalai", "plugin": "gemini"})


def test_issue17_item3_config_and_compare_share_one_budget_rule() -> None:
    """One steps/eval_every rule (lrscope.study.plan.steps_in_epochs, default_eval_every): the
    config's plan and compare() (study/api.py _steps) turn epochs into steps, and leave the
    cadence to its default, through the same functions."""
    from lrscope.config.plans import study_plan
    from lrscope.config.study import load_study_config
    from lrscope.study.api import _steps
    from lrscope.study.plan import default_eval_every, steps_in_epochs

    config = load_study_config(overrides={"epochs": 2, "accumulation_steps": 3,
                                          "limit_train": 200, "schedules": ["constant(lr=0.1)"],
                                          "run_range_test": False})
    plan = study_plan(config)
    per_epoch = plan.task.steps_per_epoch
    assert per_epoch is not None
    assert plan.steps == steps_in_epochs(2, per_epoch, 3) == _steps(None, 2, per_epoch, 3)
    assert plan.eval_every == default_eval_every(per_epoch, plan.steps) == per_epoch


def test_issue17_item3_the_study_config_does_not_load_finds_config() -> None:
    """The shared sections (task keys, [optimizer], [range_test]) live in
    lrscope.config.sections, named for what they are: the study's config no longer reaches
    into ``lrscope find``'s module for them."""
    import subprocess
    import sys

    code = ("import sys, lrscope.config.study as s; "
            "print(s.StudyConfig.__mro__[1].__module__, 'lrscope.config.find' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["lrscope.config.sections", "False"]
