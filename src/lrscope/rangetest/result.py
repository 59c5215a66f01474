"""What a range test returns: the curve, the suggestions, how it stopped and how it ran."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lrscope.errors import InputError
from lrscope.rangetest.suggest import HEADLINE, advise

Stopped = Literal["completed", "diverged"]


def _frozen_array(values: Any) -> np.ndarray:
    array = np.array(values, dtype=float)
    array.setflags(write=False)
    return array


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True, eq=False)
class RangeTestResult:
    """The outcome of :func:`lrscope.range_test`.

    ``lrs``, ``losses`` and ``smoothed`` hold one value per optimizer step that ran (read-only
    float arrays; ``lrs`` is the reference param group's LR, the first whose LR is not 0;
    ``smoothed`` is the causal EMA the run stopped on). When the run diverged on a
    non-finite loss, the last step's loss is that NaN/inf. ``val_losses`` is None without
    validation batches, else NaN at the steps where it was not measured.

    ``suggestion`` is the headline LR (None when no rule could answer), ``rule`` the rule that
    gave it, ``suggestions`` every rule's answer (see :mod:`lrscope.rangetest.suggest`; the
    rules read :attr:`zero_lag_smoothed`), ``reason`` why the headline was chosen (one line),
    ``warnings`` why the curve may not support an answer (one line each). ``stopped`` is
    ``"diverged"`` when the divergence rule ended the run early, else ``"completed"``;
    ``diverged_at`` is then the LR of that step (also named :attr:`diverged_at_lr`; a trial's
    is a step, :attr:`lrscope.trials.trial.TrialResult.diverged_at_step`).
    :meth:`from_curve` is how a range test makes one.

    >>> r = RangeTestResult(lrs=np.array([1e-3, 1e-2, 1e-1]), losses=np.array([2.0, 1.5, 0.9]),
    ...                     smoothed=np.array([2.0, 1.7, 1.4]), suggestion=1e-2, rule="steepest",
    ...                     suggestions={"steepest": 1e-2})
    >>> r.steps, r.to_dict()["stopped"], list(r.history_rows()[1])
    (3, 'completed', ['step', 'lr', 'loss', 'smoothed_loss', 'zero_lag_loss'])
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float | None = None
    suggestions: dict[str, float | None] = field(default_factory=dict)
    rule: str | None = None
    reason: str | None = None
    warnings: tuple[str, ...] = ()
    stopped: Stopped = "completed"
    diverged_at: float | None = None
    val_losses: np.ndarray | None = None
    # How the test was configured and how it ran.
    start_lr: float | None = None
    end_lr: float | None = None
    num_steps: int | None = None  # planned optimizer steps (``steps`` says how many ran)
    mode: str = "exp"
    beta: float = 0.98
    diverge_th: float = 5.0
    accumulation_steps: int = 1
    batch_size: int | None = None  # examples per micro-batch on one rank, when knowable
    effective_batch_size: int | None = None  # batch_size x world_size x accumulation_steps
    engine: str = "local"
    world_size: int = 1
    elapsed_s: float = 0.0
    # Several seeds (``range_test(..., seeds=N)``, see :mod:`lrscope.rangetest.seeds`): this
    # result is the combined curve, ``runs`` the one result per seed (in ``seeds`` order; both
    # empty for a single run), ``spread`` the largest per-seed headline over the smallest (None,
    # with a line in ``warnings``, when a seed has none).
    runs: tuple[RangeTestResult, ...] = ()
    seeds: tuple[int, ...] = ()
    spread: float | None = None

    def __post_init__(self) -> None:
        for name in ("lrs", "losses", "smoothed"):
            object.__setattr__(self, name, _frozen_array(getattr(self, name)))
        if self.val_losses is not None:
            object.__setattr__(self, "val_losses", _frozen_array(self.val_losses))
        object.__setattr__(self, "suggestions", dict(self.suggestions))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        if not len(self.lrs) == len(self.losses) == len(self.smoothed):
            raise ValueError("RangeTestResult: lrs, losses and smoothed differ in length")
        object.__setattr__(self, "runs", tuple(self.runs))
        object.__setattr__(self, "seeds", tuple(self.seeds))

    @classmethod
    def from_curve(cls, lrs: Any, losses: Any, smoothed: Any, *, diverged: bool,
                   prefer: str | None = None, planned_steps: int | None = None,
                   batch_size: int | None = None, reason_prefix: str = "",
                   warnings: Sequence[str] = (), **how_it_ran: Any) -> RangeTestResult:
        """The result of a range test's curve, the one place one is made (the loop, the seeds'
        combined curve, the torch-lr-finder drop-in).

        The suggestions are :func:`lrscope.rangetest.suggest.advise` on the raw ``losses``
        (``prefer``: the headline rule, default the library's; ``planned_steps``: the ramp's
        length, default ``num_steps``); ``diverged``: the run stopped early, at the LR of its
        last step (``diverged_at``). ``reason_prefix`` leads the headline's reason and
        ``warnings`` follow the curve's own. ``how_it_ran``: the remaining fields (start_lr,
        end_lr, num_steps, mode, beta, diverge_th, accumulation_steps, engine, world_size,
        elapsed_s, val_losses, runs, seeds, spread); ``effective_batch_size`` is computed
        from ``batch_size``, ``world_size`` and ``accumulation_steps``.
        """
        diverged_at = float(lrs[-1]) if diverged and len(lrs) else None
        planned = planned_steps if planned_steps is not None else how_it_ran.get("num_steps")
        try:
            advice = advise(lrs, losses, diverged_at, prefer=prefer or HEADLINE,
                            planned_steps=planned)
            headline, rule, every = advice.lr, advice.rule, advice.suggestions
            reason: str | None = reason_prefix + advice.reason
            found = advice.warnings
        except InputError as error:  # LRs that float rounding left not strictly increasing
            headline, rule, every, reason, found = None, None, {}, None, (f"no suggestion: "
                                                                          f"{error}",)
        per_step = batch_size
        world, micro = how_it_ran.get("world_size", 1), how_it_ran.get("accumulation_steps", 1)
        return cls(lrs=np.array(lrs), losses=np.array(losses), smoothed=np.array(smoothed),
                   suggestion=headline, suggestions=every, rule=rule, reason=reason,
                   warnings=(*found, *warnings), stopped="diverged" if diverged else "completed",
                   diverged_at=diverged_at, batch_size=per_step,
                   effective_batch_size=None if per_step is None else per_step * world * micro,
                   **how_it_ran)

    @property
    def diverged_at_lr(self) -> float | None:
        """The LR at which the run diverged (None when it completed): ``diverged_at``, named
        apart from a trial's ``diverged_at_step``."""
        return self.diverged_at

    @property
    def steps(self) -> int:
        """Optimizer steps that ran (fewer than ``num_steps`` when the run diverged)."""
        return len(self.lrs)

    @property
    def zero_lag_smoothed(self) -> np.ndarray:
        """The two-sided smoothing of ``losses`` that the suggestion rules read (NaN from the
        first non-finite loss on; :func:`lrscope.rangetest.smoothing.zero_lag`)."""
        from lrscope.rangetest.smoothing import zero_lag

        return zero_lag(self.losses)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the curve, as strict JSON values (no NaN): DIR/result.json."""
        return {
            "suggestion": _finite_or_none(self.suggestion),
            "suggestions": {rule: _finite_or_none(lr) for rule, lr in self.suggestions.items()},
            "rule": self.rule,
            "reason": self.reason,
            "warnings": list(self.warnings),
            "stopped": self.stopped,
            "steps": self.steps,
            "engine": self.engine,
            "world_size": self.world_size,
            "diverged_at": _finite_or_none(self.diverged_at),
            "num_steps": self.num_steps,
            "start_lr": self.start_lr,
            "end_lr": self.end_lr,
            "mode": self.mode,
            "beta": self.beta,
            "diverge_th": self.diverge_th,
            "accumulation_steps": self.accumulation_steps,
            "batch_size": self.batch_size,
            "effective_batch_size": self.effective_batch_size,
            "elapsed_s": self.elapsed_s,
            **self._seeds_summary(),
        }

    def _seeds_summary(self) -> dict[str, Any]:
        """With several seeds: the spread, the seeds and each seed's suggestions."""
        if not self.runs:
            return {}
        return {
            "spread": _finite_or_none(self.spread),
            "seeds": list(self.seeds),
            "per_seed_suggestions": [
                {"seed": seed, "suggestion": _finite_or_none(run.suggestion), "rule": run.rule,
                 "suggestions": {rule: _finite_or_none(lr) for rule, lr in run.suggestions.items()},
                 "stopped": run.stopped, "steps": run.steps}
                for seed, run in zip(self.seeds, self.runs, strict=True)],
        }

    def history_rows(self) -> list[dict[str, Any]]:
        """One dict per step: step, lr, loss, smoothed_loss, val_loss (None where not
        measured) when validation batches were given, and zero_lag_loss (None from the first
        non-finite loss on): DIR/history.csv and history.json. The loss of a step that blew up
        is kept as the float it was (nan or inf)."""
        rows: list[dict[str, Any]] = []
        zero_lag = self.zero_lag_smoothed
        for step in range(self.steps):
            row: dict[str, Any] = {
                "step": step,
                "lr": float(self.lrs[step]),
                "loss": float(self.losses[step]),
                "smoothed_loss": float(self.smoothed[step]),
            }
            if self.val_losses is not None:
                row["val_loss"] = _finite_or_none(float(self.val_losses[step]))
            row["zero_lag_loss"] = _finite_or_none(float(zero_lag[step]))
            rows.append(row)
        return rows

    def seed_rows(self) -> list[dict[str, Any]]:
        """Every seed's :meth:`history_rows`, each row led by its ``seed`` (one long table:
        DIR/history_seeds.csv); empty for a single run."""
        return [{"seed": seed, **row} for seed, run in zip(self.seeds, self.runs, strict=True)
                for row in run.history_rows()]

    @classmethod
    def from_stored(cls, summary: dict[str, Any], rows: list[dict[str, Any]]) -> RangeTestResult:
        """Rebuild a result from :meth:`to_dict` and :meth:`history_rows` output (as stored)."""
        known = {"suggestion", "suggestions", "rule", "reason", "warnings", "stopped",
                 "diverged_at", "start_lr", "end_lr", "num_steps", "mode", "beta", "diverge_th",
                 "accumulation_steps", "batch_size", "effective_batch_size", "engine", "world_size",
                 "elapsed_s"}
        fields = {key: value for key, value in summary.items() if key in known}
        val = None
        if rows and "val_loss" in rows[0]:
            val = np.array([math.nan if r["val_loss"] in (None, "") else float(r["val_loss"])
                            for r in rows])
        return cls(lrs=np.array([float(r["lr"]) for r in rows]),
                   losses=np.array([float(r["loss"]) for r in rows]),
                   smoothed=np.array([float(r["smoothed_loss"]) for r in rows]),
                   val_losses=val, **fields)

    def plot(self, path: str | Path | None = None, *, ax: Any | None = None) -> Any:
        """The loss-vs-LR figure (log x, raw and smoothed, each rule marked).

        With ``ax`` (a matplotlib Axes, e.g. from ``plt.subplots()``) it is drawn there and the
        axes are returned. Without, a new figure is made and ``(axes, figure)`` returned; either
        way it is also saved to ``path`` when one is given (format from the suffix).
        """
        from lrscope.rangetest.figures import draw_loss_vs_lr, loss_vs_lr_figure

        if self.runs:
            return self._plot_seeds(path, ax)
        if ax is not None:
            draw_loss_vs_lr(ax, self.lrs, self.losses, self.smoothed, self.suggestions,
                            val_losses=self.val_losses, headline=self.rule)
            if path is not None:
                ax.figure.savefig(path, dpi=120)
            return ax
        figure = loss_vs_lr_figure(self.lrs, self.losses, self.smoothed, self.suggestions,
                                   val_losses=self.val_losses, headline=self.rule)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            figure.savefig(path, dpi=120)
        return figure.axes[0], figure

    def _plot_seeds(self, path: str | Path | None, ax: Any | None) -> Any:
        """:meth:`plot` with several seeds: each seed's curve, their band and the combined one
        (:func:`lrscope.rangetest.figures.draw_seed_curves`)."""
        from lrscope.rangetest.figures import draw_seed_curves, new_figure

        figure = new_figure() if ax is None else None
        axes: Any = ax if figure is None else figure.add_subplot()
        draw_seed_curves(axes, self.lrs, self.zero_lag_smoothed,
                         [(run.lrs, run.losses) for run in self.runs], self.seeds,
                         self.suggestions, headline=self.rule)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            axes.figure.savefig(path, dpi=120)
        return axes if figure is None else (axes, figure)

    def plot_lr(self, path: str | Path) -> Path:
        """Save the LR-vs-step figure to ``path``."""
        from lrscope.rangetest.figures import plot_lr_vs_step

        return plot_lr_vs_step(self.lrs, path)
