"""Whether a rerun may resume a stored study, and the run's config after it.

A study's stored config has three kinds of setting (:data:`REPORT_ONLY` and :data:`MAY_GROW`,
the policy every :class:`~lrscope.study.plan.StudyPlan` resumes under unless it names its own):

* compared: anything that would change a finished trial's result (task, model, data, budget,
  optimizer, range test, recipe, ...) must equal the stored value, or the rerun is refused with
  the setting named;
* report-only (e.g. ``target_accuracy``): the rerun's value replaces the stored one;
* may grow (``seeds``, ``schedules``): sets of trials; a rerun may list more (or fewer) and only
  the trials not yet done run. The run keeps the union, so the report describes every trial.
  A count of seeds ``n`` stands for seeds 0..n-1. An empty list cannot grow: no schedules means
  the recipe builds the suite, and switching between that and a list is a change.

>>> stored = {"steps": 40, "seeds": 3, "schedules": ["a"], "target_accuracy": None}
>>> grow, report = ("seeds", "schedules"), ("target_accuracy",)
>>> new = {"steps": 40, "seeds": [3, 0], "schedules": ["b"], "target_accuracy": 0.9}
>>> resumed_config(stored, new, may_grow=grow, report_only=report)
{'steps': 40, 'seeds': [0, 1, 2, 3], 'schedules': ['a', 'b'], 'target_accuracy': 0.9}
>>> resumed_config(stored, {**stored, "seeds": 5}, may_grow=grow)["seeds"]
5
>>> resumed_config(stored, {**stored, "steps": 50}, may_grow=grow)  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
lrscope.errors.InputError: out: the study ... other settings (steps: 40 -> 50); rerun ...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from lrscope.errors import InputError

# What only the report reads: stored, and the latest run's value wins. ``resolved`` holds the
# values the study used where the config left a default (StudyConfig.resolved_values).
REPORT_ONLY: Final = ("target_accuracy", "resolved")
# Sets of trials: a rerun may add seeds or listed schedules and runs only the new trials; the
# run's stored config becomes the union. (``name`` is the run's key, so it always matches.)
MAY_GROW: Final = ("seeds", "schedules")


def resumed_config(stored: dict[str, Any], config: dict[str, Any],
                   defaults: dict[str, Any] | None = None, *, report_only: Sequence[str] = (),
                   may_grow: Sequence[str] = ()) -> dict[str, Any]:
    """``config`` with each growable setting the union of the stored and the new one; an
    InputError naming the settings when a compared one differs (see the module docstring)."""
    check_same(stored, config, defaults, report_only=report_only, may_grow=may_grow)
    stored = filled(stored, defaults or {})
    merged = dict(config)
    for key in may_grow:
        if key in stored and key in config:
            merged[key] = union(stored[key], config[key])
    return merged


def check_same(stored: dict[str, Any], config: dict[str, Any],
               defaults: dict[str, Any] | None = None, *, report_only: Sequence[str] = (),
               may_grow: Sequence[str] = ()) -> None:
    """InputError unless ``config`` may resume the study ``stored`` describes."""
    # A setting added to lrscope after the study was stored is absent from its config: it ran
    # with that setting's default, so the default fills it in before comparing.
    stored, config = filled(stored, defaults or {}), filled(config, defaults or {})
    skipped = set(report_only) | set(may_grow)
    old = {k: v for k, v in stored.items() if k not in skipped}
    new = {k: v for k, v in config.items() if k not in skipped}
    for key in may_grow:  # growing is fine; starting or stopping to list is not
        if _empty(stored.get(key)) != _empty(config.get(key)):
            old[key], new[key] = stored.get(key), config.get(key)
    if old != new:
        raise InputError(
            "out: the study in this folder was run with other settings "
            f"({_diff(old, new)}); rerun with the same settings (more seeds or schedules may "
            "be added) to resume, or choose a new --out"
        )


def union(old: Any, new: Any) -> Any:
    """Two counts: the larger. Else the members of ``old`` then those of ``new`` not in it
    (a count ``n`` is the members 0..n-1).

    >>> union(3, 2), union([0, 5], 2), union(["a"], ["b", "a"])
    (3, [0, 5, 1], ['a', 'b'])
    """
    if isinstance(old, int) and isinstance(new, int):
        return max(old, new)
    members = _members(old)
    return members + [x for x in _members(new) if x not in members]


def _members(value: Any) -> list[Any]:
    return list(range(value)) if isinstance(value, int) else list(value or [])


def _empty(value: Any) -> bool:
    return value is None or (not isinstance(value, int) and len(value) == 0)


def filled(config: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``config`` with every key of ``defaults`` it lacks set to the default (nested tables too).

    >>> filled({"a": 1, "t": {"x": 1}}, {"a": 0, "b": 2, "t": {"x": 0, "y": 3}})
    {'a': 1, 't': {'x': 1, 'y': 3}, 'b': 2}
    """
    out = dict(config)
    for key, default in defaults.items():
        if key not in out:
            out[key] = default
        elif isinstance(default, dict) and isinstance(out[key], dict):
            out[key] = filled(out[key], default)
    return out


def _diff(old: Any, new: Any) -> str:
    """The first three changed settings; a table's changed entries by their dotted name.

    >>> _diff({"steps": 1, "identity": {"loss_fn": "a", "model": "m"}},
    ...       {"steps": 1, "identity": {"loss_fn": "b", "model": "m"}})
    "identity.loss_fn: 'a' -> 'b'"
    """
    return ", ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in _changed(old, new)[:3])


def _changed(old: dict[str, Any], new: dict[str, Any], prefix: str = "",
             ) -> list[tuple[str, Any, Any]]:
    out: list[tuple[str, Any, Any]] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _changed(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append((f"{prefix}{key}", a, b))
    return out


def first_seed(config: dict[str, Any], fallback: int) -> int:
    """The run's first seed (its range test's), from a config's ``seeds``.

    >>> first_seed({"seeds": [4, 1]}, 0), first_seed({"seeds": 3}, 9), first_seed({}, 9)
    (4, 0, 9)
    """
    members = _members(config.get("seeds"))
    return int(members[0]) if members else fallback
