"""lrscope: which learning rate, and which schedule?

* :func:`lrscope.range_test` runs the LR range test on any model, optimizer and batches, and
  leaves them exactly as they were.
* :func:`lrscope.compare` trains a suite of schedules side by side on any model and data,
  several paired seeds, and ranks them honestly.
* :mod:`lrscope.schedules` holds closed-form schedules (``lrscope.schedules.parse(spec)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lrscope.errors import InputError, InputTypeError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from lrscope import schedules
    from lrscope.rangetest.loop import RangeTestResult, range_test
    from lrscope.session import CompareResult, compare
    from lrscope.study.stats.leaderboard import LeaderboardRow


def __getattr__(name: str) -> Any:
    # torch, the schedules and the range test load on first use: `lrscope --version` and
    # `lrscope --help` answer without importing torch.
    if name == "schedules":
        import lrscope.schedules

        return lrscope.schedules
    if name in ("compare", "CompareResult"):
        from lrscope import session

        return getattr(session, name)
    if name == "LeaderboardRow":  # the rows of CompareResult.leaderboard
        from lrscope.study.stats.leaderboard import LeaderboardRow

        return LeaderboardRow
    if name in ("range_test", "RangeTestResult"):
        from lrscope import rangetest

        return getattr(rangetest, name)
    raise AttributeError(f"module 'lrscope' has no attribute {name!r}")


__all__ = ["CompareResult", "InputError", "InputTypeError", "LeaderboardRow", "RangeTestResult",
           "compare", "range_test", "schedules"]
