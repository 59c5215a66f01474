"""Engines run optimizer steps: ``local`` (one process) or ``colossalai`` (Booster, torchrun).

ColossalAI is imported only when its engine is asked for, so ``import lrscope`` never needs it.
"""

from __future__ import annotations

from typing import Any

from lrscope.engines.base import Engine
from lrscope.engines.local import LocalEngine
from lrscope.errors import InputError, did_you_mean

ENGINES = ("local", "colossalai")


def get_engine(name: str = "local", **options: Any) -> Engine:
    """The engine called ``name``; ``options`` go to its constructor.

    ``get_engine("colossalai", plugin="hybrid", timeout_s=120)`` imports ColossalAI only then.

    >>> get_engine("local").name
    'local'
    >>> get_engine("colosalai")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lrscope.errors.InputError: engine: unknown engine 'colosalai' (did you mean 'colossalai'?); ...
    """
    if isinstance(name, Engine):
        return name
    if name == "local":
        return LocalEngine(**options)
    if name == "colossalai":
        from lrscope.engines.colossalai import ColossalAIEngine  # lazy: heavy, optional

        return ColossalAIEngine(**options)
    raise InputError(f"engine: unknown engine {name!r}{did_you_mean(name, ENGINES)}; choose one of "
                     + ", ".join(ENGINES))


__all__ = ["ENGINES", "Engine", "LocalEngine", "get_engine"]
