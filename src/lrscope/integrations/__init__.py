"""Bridges to training frameworks, one module each, imported only when asked for.

* :mod:`lrscope.integrations.lightning`: :class:`~lrscope.integrations.lightning.LRScopeFinder`
  (the range test as a PyTorch Lightning callback) and
  :func:`~lrscope.integrations.lightning.lrscope_scheduler` (an lrscope schedule in
  ``configure_optimizers``, stepped every optimizer step). Needs ``lightning``.
* :mod:`lrscope.integrations.transformers`: :func:`~lrscope.integrations.transformers.find_lr`
  (the range test on a Hugging Face ``Trainer``) and
  :func:`~lrscope.integrations.transformers.lrscope_scheduler` (an lrscope schedule for
  ``Trainer(optimizers=(optimizer, scheduler))``). Needs ``transformers`` and ``accelerate``.

Importing this package imports no framework.
"""
