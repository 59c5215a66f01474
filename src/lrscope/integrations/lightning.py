"""PyTorch Lightning: the LR range test as a callback, lrscope schedules as step-wise schedulers.

Like Lightning's ``LearningRateFinder``, :class:`LRScopeFinder` runs at fit start and sets the
suggested LR on the module's ``lr`` / ``learning_rate`` before training begins::

    finder = LRScopeFinder(min_lr=1e-6, max_lr=1.0, num_training_steps=100)
    pl.Trainer(max_epochs=5, callbacks=[finder]).fit(model)
    finder.suggestion, finder.result.plot("lr.png")

:func:`lrscope_scheduler` puts an lrscope schedule in ``configure_optimizers``, stepped once per
optimizer step (``lrscope_scheduler(opt, f"cosine(lr={self.lr})", trainer=self.trainer)``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities import CombinedLoader, rank_zero_warn
from lightning.pytorch.utilities.parsing import lightning_hasattr, lightning_setattr
from lightning.pytorch.utilities.signature_utils import is_param_in_hook_signature

from lrscope.errors import InputError, InputTypeError
from lrscope.rangetest.loop import range_test
from lrscope.rangetest.result import RangeTestResult
from lrscope.rangetest.suggest import HEADLINE, check_prefer
from lrscope.rng import preserved_rng
from lrscope.schedules import Schedule, ScheduleLR, parse
from lrscope.schedules.torch_adapter import group_ratios, reference_lr

MODES = {"exponential": "exp", "exp": "exp", "linear": "linear"}
# Trainer precision -> range_test precision (the autocast the training steps will run under).
PRECISIONS = {"16-mixed": "fp16", "bf16-mixed": "bf16"}
FIGURE_TAG = "lrscope/range_test"


class LRScopeFinder(pl.Callback):
    """Run lrscope's range test on the module's own ``training_step`` at fit start.

    The test uses the trainer's train dataloader (batches moved by the strategy, with the
    module's batch-transfer hooks), the optimizer the trainer built from
    ``configure_optimizers()`` (ramping every param group, keeping their LR ratios), the
    trainer's ``accumulate_grad_batches`` and mixed precision. ``self.log`` calls inside
    ``training_step`` are dropped during the test; gradient clipping and the trainer's other
    callbacks do not run in it.

    Afterwards the model's weights, buffers, grads and train/eval flags, the optimizer, the
    GradScaler and every RNG are as before (the global ones, and the ``torch.Generator`` of
    each train DataLoader, its sampler and batch sampler, which a ``train_dataloader()``
    returning a stored loader hands to training again; to find them before the data is set
    up, ``train_dataloader()`` is called once more), and the dataloader is set up afresh, so
    training starts as it would have without the finder. With ``update_attr`` (default) the
    suggestion goes to the module's ``attr_name`` (default: ``lr`` or ``learning_rate``, also in
    ``hparams``) and the optimizers and schedulers are rebuilt from ``configure_optimizers()``,
    exactly as if that value had been set by hand; if the rebuilt optimizer, without a
    scheduler, does not carry it, its groups are set to it (keeping their ratios).

    The figure (``lrscope/range_test``) goes to loggers with ``add_figure`` (TensorBoard),
    ``lrscope/suggestion`` and ``lrscope/suggestion_<rule>`` to every logger's ``log_metrics``.
    ``result`` (a :class:`~lrscope.rangetest.result.RangeTestResult`) and ``suggestion`` stay.

    Args mirror Lightning's finder: ``num_training_steps`` optimizer steps from ``min_lr`` to
    ``max_lr``, ``mode`` "exponential" or "linear"; ``early_stop_threshold``: stop when the
    smoothed loss exceeds this multiple of its best (None: only on a non-finite loss);
    ``prefer``: the rule whose answer is the suggestion; by default the headline of
    :func:`lrscope.range_test` (:data:`lrscope.rangetest.suggest.HEADLINE`), else one of
    :data:`lrscope.rangetest.suggest.HEADLINE_RULES`.
    Only single-device trainers and automatic optimization are supported.
    """

    def __init__(self, min_lr: float = 1e-8, max_lr: float = 1.0, num_training_steps: int = 100,
                 mode: str = "exponential", early_stop_threshold: float | None = 4.0,
                 update_attr: bool = True, attr_name: str = "", prefer: str = HEADLINE) -> None:
        if not isinstance(mode, str) or mode.lower() not in MODES:
            raise InputError(f"LRScopeFinder: mode={mode!r} must be 'exponential' or 'linear'")
        check_prefer("LRScopeFinder", prefer)
        self.min_lr, self.max_lr, self.num_training_steps = min_lr, max_lr, num_training_steps
        self.mode = MODES[mode.lower()]
        self.early_stop_threshold = early_stop_threshold
        self.update_attr, self.attr_name, self.prefer = update_attr, attr_name, prefer
        self.result: RangeTestResult | None = None
        self.suggestion: float | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.lr_find(trainer, pl_module)

    def lr_find(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> float | None:
        """Run the test, apply and log the suggestion; return it (None: no rule answered)."""
        if getattr(trainer, "fast_dev_run", False):
            rank_zero_warn("LRScopeFinder: skipped, fast_dev_run is enabled")
            return None
        attr = self._attr(pl_module) if self.update_attr else ""
        _check_supported(trainer, pl_module)
        optimizer = _trainer_optimizer(trainer, pl_module)
        with preserved_rng():  # the dataloader set-up draws from the RNGs too
            fit_loop: Any = trainer.fit_loop
            fresh = trainer.train_dataloader is None
            # A stored DataLoader comes back from train_dataloader() for training: the draws
            # from its own generators (setting it up creates an iterator; the test iterates)
            # must not shift training's data order. They are read before the set-up.
            held = [(g, g.get_state()) for g in loader_generators(_train_loaders(trainer))]
            if fresh:
                fit_loop.setup_data()
            try:
                result = self._run(trainer, pl_module, optimizer)
                if attr and result.suggestion is not None:
                    _apply(trainer, pl_module, attr, result.suggestion)
            finally:
                for generator, state in held:
                    generator.set_state(state)
                if fresh:  # as Lightning's tuner does: the fit sets up its data again
                    fit_loop._combined_loader = None
        self.result, self.suggestion = result, result.suggestion
        _log(trainer, result)
        return self.suggestion

    def _attr(self, pl_module: pl.LightningModule) -> str:
        if self.attr_name:
            if not lightning_hasattr(pl_module, self.attr_name):
                raise InputError(f"LRScopeFinder: attr_name={self.attr_name!r}, but the module "
                                 "has no such attribute (nor hparams entry)")
            return self.attr_name
        for name in ("lr", "learning_rate"):
            if lightning_hasattr(pl_module, name):
                return name
        raise InputError("LRScopeFinder: the module has no 'lr' or 'learning_rate' attribute to "
                         "set; give attr_name=... or update_attr=False")

    def _run(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
             optimizer: torch.optim.Optimizer) -> RangeTestResult:
        loader = trainer.train_dataloader
        if loader is None:
            raise InputError("LRScopeFinder: the trainer has no train dataloader")
        calls = iter(range(sys.maxsize))  # batch_idx, as Lightning passes it when asked for
        takes_idx = is_param_in_hook_signature(pl_module.training_step, "batch_idx", min_args=2)

        def step_fn(model: Any, batch: Any) -> torch.Tensor:
            index = next(calls)
            output = model.training_step(batch, index) if takes_idx else model.training_step(batch)
            return _loss_of(output)

        threshold = self.early_stop_threshold
        plugin = trainer.precision_plugin
        with _logging_muted(pl_module):
            return range_test(
                pl_module, optimizer, None, _Batches(loader, trainer.strategy),
                start_lr=self.min_lr, end_lr=self.max_lr, num_steps=self.num_training_steps,
                mode=self.mode, step_fn=step_fn, prefer=self.prefer,
                diverge_th=sys.float_info.max if threshold is None else threshold,
                accumulation_steps=trainer.accumulate_grad_batches,
                precision=PRECISIONS.get(str(trainer.precision)),
                grad_scaler=getattr(plugin, "scaler", None))


class _Batches:
    """The train dataloader(s) as Lightning combines them, each batch moved by the strategy."""

    def __init__(self, loader: Any, strategy: Any) -> None:
        self.combined, self.strategy = CombinedLoader(loader, "max_size_cycle"), strategy

    def __iter__(self) -> Iterator[Any]:
        for batch, _, dataloader_idx in self.combined:
            yield self.strategy.batch_to_device(batch, dataloader_idx=dataloader_idx)


def _train_loaders(trainer: pl.Trainer) -> Any:
    """The train dataloader(s) the fit will use: the trainer's once set up; before that, what
    its source gives (``train_dataloader()`` called once more, as a reload would)."""
    if trainer.train_dataloader is not None:
        return trainer.train_dataloader
    source: Any = trainer.fit_loop._data_source
    return source.dataloader() if source.is_defined() else None


def loader_generators(loaders: Any) -> list[torch.Generator]:
    """The distinct ``torch.Generator`` objects that iterating ``loaders`` (a DataLoader, or
    Lightning's list / dict / CombinedLoader of them) draws from: each loader's ``generator``
    (its workers' base seed), its sampler's and its batch sampler's (and that one's sampler's).

    >>> from torch.utils.data import DataLoader
    >>> g = torch.Generator().manual_seed(0)
    >>> loader = DataLoader(list(range(8)), batch_size=2, shuffle=True, generator=g)
    >>> loader_generators([loader, {"b": loader}]) == [g]
    True
    """
    flat = loaders.flattened if isinstance(loaders, CombinedLoader) else \
        CombinedLoader(loaders).flattened if loaders is not None else []
    found: dict[int, torch.Generator] = {}
    for loader in flat:
        batch_sampler = getattr(loader, "batch_sampler", None)
        for holder in (loader, getattr(loader, "sampler", None), batch_sampler,
                       getattr(batch_sampler, "sampler", None)):
            generator = getattr(holder, "generator", None)
            if isinstance(generator, torch.Generator):
                found.setdefault(id(generator), generator)
    return list(found.values())


def _loss_of(output: Any) -> torch.Tensor:
    """The loss a ``training_step`` returned: a tensor, or a dict's ``"loss"``."""
    if isinstance(output, dict):
        if "loss" not in output:
            raise InputError("LRScopeFinder: training_step returned a dict without 'loss'")
        output = output["loss"]
    if not isinstance(output, torch.Tensor):
        raise InputTypeError("LRScopeFinder: training_step must return a loss tensor or a dict "
                             f"with 'loss' on every batch, got {type(output).__name__}")
    return output


@contextlib.contextmanager
def _logging_muted(pl_module: pl.LightningModule) -> Iterator[None]:
    """``self.log`` and ``self.log_dict`` as no-ops (Lightning forbids them at fit start)."""
    held: dict[str, Any] = {name: pl_module.__dict__[name] for name in ("log", "log_dict")
            if name in pl_module.__dict__}
    for name in ("log", "log_dict"):
        object.__setattr__(pl_module, name, lambda *args, **kwargs: None)
    try:
        yield
    finally:
        for name in ("log", "log_dict"):
            del pl_module.__dict__[name]
        pl_module.__dict__.update(held)


def _check_supported(trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
    if not isinstance(trainer.strategy, SingleDeviceStrategy):
        raise InputError(f"LRScopeFinder: runs on one device; the trainer uses "
                         f"{type(trainer.strategy).__name__} (use devices=1 for the search)")
    if not pl_module.automatic_optimization:
        raise InputError("LRScopeFinder: needs automatic optimization (training_step returning "
                         "the loss), not manual optimization")


def _trainer_optimizer(trainer: pl.Trainer, pl_module: pl.LightningModule
                       ) -> torch.optim.Optimizer:
    """The one optimizer the trainer will use (built from ``configure_optimizers`` if not yet)."""
    optimizers = list(trainer.strategy.optimizers) or optimizers_from_config(
        pl_module.configure_optimizers())
    if len(optimizers) != 1:
        raise InputError(f"LRScopeFinder: configure_optimizers gave {len(optimizers)} "
                         "optimizers; the range test needs exactly one")
    return optimizers[0]


def optimizers_from_config(config: Any) -> list[torch.optim.Optimizer]:
    """The optimizers in any ``configure_optimizers`` return value: an optimizer, a list or tuple
    of them, a dict with ``"optimizer"`` (and ``"lr_scheduler"``), a list of such dicts, or
    ``([optimizers], [schedulers])``.

    >>> p = [torch.nn.Parameter(torch.zeros(1))]
    >>> opt = torch.optim.SGD(p, lr=0.1)
    >>> sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    >>> [optimizers_from_config(c) == [opt] for c in (opt, [opt], {"optimizer": opt},
    ...  ([opt], [sched]), [{"optimizer": opt, "lr_scheduler": sched}])]
    [True, True, True, True, True]
    """
    if isinstance(config, torch.optim.Optimizer):
        return [config]
    if isinstance(config, dict) and "optimizer" in config:
        return optimizers_from_config(config["optimizer"])
    if isinstance(config, tuple) and len(config) == 2 and isinstance(config[0], (list, tuple)):
        return optimizers_from_config(list(config[0]))
    if isinstance(config, (list, tuple)):
        return [opt for item in config for opt in optimizers_from_config(item)]
    raise InputTypeError(f"LRScopeFinder: configure_optimizers returned "
                         f"{type(config).__name__}, which holds no optimizer")


def _apply(trainer: pl.Trainer, pl_module: pl.LightningModule, attr: str, lr: float) -> None:
    """Set the attribute, rebuild optimizers and schedulers from it (as fit did)."""
    lightning_setattr(pl_module, attr, lr)
    strategy = trainer.strategy
    if strategy.optimizers:  # at fit start: the trainer's are already built
        strategy.setup_optimizers(trainer)
        strategy.setup_precision_plugin()
    if trainer.lr_scheduler_configs:
        return  # a scheduler owns the LR now, built from the new attribute
    for optimizer in strategy.optimizers:
        _set_lr(optimizer, lr)


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Give the reference group (the first not at 0) ``lr``; the others keep their ratio
    (:func:`lrscope.schedules.group_ratios`, the rule of the range test and the trials)."""
    if reference_lr(optimizer) == lr:
        return
    for group, ratio in zip(optimizer.param_groups, group_ratios(optimizer), strict=True):
        group["lr"] = lr * ratio


def _log(trainer: pl.Trainer, result: RangeTestResult) -> None:
    metrics = {} if result.suggestion is None else {"lrscope/suggestion": result.suggestion}
    metrics.update({f"lrscope/suggestion_{rule}": lr for rule, lr in result.suggestions.items()
                    if lr is not None})
    figure = None
    for logger in trainer.loggers:
        if metrics:
            logger.log_metrics(metrics, step=trainer.global_step)
        add_figure = getattr(getattr(logger, "experiment", None), "add_figure", None)
        if callable(add_figure) and result.steps:
            if figure is None:
                _, figure = result.plot()
            add_figure(FIGURE_TAG, figure, global_step=trainer.global_step, close=False)
        logger.save()


def lrscope_scheduler(optimizer: torch.optim.Optimizer, schedule: Schedule | str, *,
                      total_steps: int | None = None, trainer: pl.Trainer | None = None,
                      name: str | None = None) -> dict[str, Any]:
    """An ``lr_scheduler`` config for ``configure_optimizers``: a
    :class:`~lrscope.schedules.ScheduleLR` stepped after every optimizer step
    (``interval="step"``, ``frequency=1``), so optimizer step ``k`` runs at ``schedule(k)``.

    ``schedule`` is a Schedule or a spec (``"cosine(lr=0.1)"``). A finite schedule left
    without ``total_steps`` gets ``total_steps``, else ``trainer.estimated_stepping_batches``
    (pass ``trainer=self.trainer``; it counts gradient accumulation, epochs and max_steps).
    ``name`` is the name LearningRateMonitor shows.

    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> config = lrscope_scheduler(opt, "cosine(lr=1.0)", total_steps=4)
    >>> config["interval"], config["frequency"], config["scheduler"].schedule.spec()
    ('step', 1, 'cosine(lr=1.0, total_steps=4)')
    """
    if isinstance(schedule, str):
        schedule = parse(schedule)
    if not isinstance(schedule, Schedule):
        raise InputTypeError(f"lrscope_scheduler: schedule must be a Schedule or a spec string, "
                             f"not {type(schedule).__name__}")
    if schedule.needs_total_steps():
        if total_steps is None:
            if trainer is None:
                raise InputError(f"lrscope_scheduler: {schedule.family} needs total_steps; give "
                                 "total_steps=N or trainer=self.trainer")
            estimated = trainer.estimated_stepping_batches
            if estimated == float("inf"):
                raise InputError("lrscope_scheduler: the trainer's run has no known length "
                                 "(infinite epochs or dataloader); give total_steps=N")
            total_steps = int(estimated)
        schedule = schedule.with_total_steps(total_steps)
    config: dict[str, Any] = {"scheduler": ScheduleLR(optimizer, schedule), "interval": "step",
                              "frequency": 1}
    if name is not None:
        config["name"] = name
    return config


__all__ = ["LRScopeFinder", "loader_generators", "lrscope_scheduler", "optimizers_from_config"]
