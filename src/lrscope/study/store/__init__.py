"""The results store: what a study, ``import-tb`` and the report keep (SQLite, one file per
folder)."""

from lrscope.study.store.sqlite import Store

__all__ = ["Store"]
