"""A config's defaults and the values a run used for them (issue 19 item 10).

A config leaves many settings to a default (``batch_size = None``: the task's). The saved
config keeps them so (rerunning it resumes the same study); what the run used for each is
stored beside it, and the report and config.toml show those values instead of nulls. Plain
dicts only: the report reads them without loading pydantic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def laid_over(config: Mapping[str, Any], used: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with ``used``'s values in place of its nulls, table by table.

    >>> laid_over({"a": None, "b": 1, "t": {"c": None}}, {"a": 2, "b": 5, "t": {"c": 3}})
    {'a': 2, 'b': 1, 't': {'c': 3}}
    """
    shown = dict(config)
    for key, value in used.items():
        if isinstance(value, Mapping) and isinstance(shown.get(key), Mapping):
            shown[key] = laid_over(shown[key], value)
        elif shown.get(key) is None:
            shown[key] = value
    return shown


def defaults_used(config: Mapping[str, Any], used: Mapping[str, Any]) -> dict[str, Any]:
    """Only the entries of ``used`` that fill a null of ``config`` (and are not null).

    >>> defaults_used({"a": None, "b": 1, "t": {"c": None, "d": 2}},
    ...               {"a": 2, "b": 5, "t": {"c": 3, "d": 2}, "e": None})
    {'a': 2, 't': {'c': 3}}
    """
    filled: dict[str, Any] = {}
    for key, value in used.items():
        if isinstance(value, Mapping) and isinstance(config.get(key), Mapping):
            inner = defaults_used(config[key], value)
            if inner:
                filled[key] = inner
        elif config.get(key) is None and value is not None:
            filled[key] = value
    return filled
