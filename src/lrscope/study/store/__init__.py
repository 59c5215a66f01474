"""The results store: what a study, ``import-tb`` and the report keep.

:class:`ResultsStore` is the interface (its contract: :mod:`lrscope.study.store.base`);
:class:`Store` keeps it in one SQLite file per folder (``Store.in_dir(DIR)``), and
:class:`MemoryStore` in this process's memory (notebooks, tests). Readers import from here.
"""

from lrscope.study.store.base import ResultsStore
from lrscope.study.store.lease import DONE_STATUSES
from lrscope.study.store.memory import MemoryStore
from lrscope.study.store.records import (
    METRIC_NAMES,
    MetricBuffer,
    RangeTestRecord,
    RunRecord,
    TrialRecord,
    TrialStart,
)
from lrscope.study.store.sqlite import STORE_FILENAME, Store

__all__ = ["DONE_STATUSES", "METRIC_NAMES", "STORE_FILENAME", "MemoryStore", "MetricBuffer",
           "RangeTestRecord", "ResultsStore", "RunRecord", "Store", "TrialRecord", "TrialStart"]
