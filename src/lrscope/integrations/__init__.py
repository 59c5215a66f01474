"""Bridges to training frameworks, one module each, imported only when asked for.

* :mod:`lrscope.integrations.lightning`: :class:`~lrscope.integrations.lightning.LRScopeFinder`
  (the range test as a PyTorch Lightning callback) and
  :func:`~lrscope.integrations.lightning.lrscope_scheduler` (an lrscope schedule in
  ``configure_optimizers``, stepped every optimizer step). Needs ``lightning``.

Importing this package imports no framework.
"""
