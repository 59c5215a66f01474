"""The LR range test: the loop, its result, smoothing, the suggestion rules and state restore.

``lrscope.range_test`` is :func:`lrscope.rangetest.loop.range_test`.
"""

from lrscope.rangetest.loop import range_test
from lrscope.rangetest.result import RangeTestResult
from lrscope.rangetest.settings import DEFAULT_NUM_STEPS

__all__ = ["DEFAULT_NUM_STEPS", "RangeTestResult", "range_test"]
