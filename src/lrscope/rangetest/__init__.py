"""The LR range test: the loop, its result, smoothing, the suggestion rules and state restore.

``lrscope.range_test`` is :func:`lrscope.rangetest.loop.range_test`.
"""

from lrscope.rangetest.loop import DEFAULT_NUM_STEPS, range_test
from lrscope.rangetest.result import RangeTestResult

__all__ = ["DEFAULT_NUM_STEPS", "RangeTestResult", "range_test"]
