"""Drop-in replacements for other range-test libraries' APIs, run on lrscope's range test.

* :mod:`lrscope.compat.torch_lr_finder` -- torch-lr-finder 0.2.2: ``from
  lrscope.compat.torch_lr_finder import LRFinder, TrainDataLoaderIter, ValDataLoaderIter``.
"""
