"""Existing TensorBoard runs into the results store, so a report can draw them beside new runs.

Layout read (the seed study's ``tb_logs``): ``LOGDIR/<run name>/events.out.tfevents.*``, one
folder per configuration and one event file per attempt. Each LOGDIR becomes one run of kind
``import`` (named after the folder); each event file one trial whose label is its folder's path
under LOGDIR and whose seed is the attempt's index in that folder (files in name order, which is
time order). Re-importing skips (without reading) attempts already in the store, so nothing is
duplicated and only new event files are read.

Tags map to lrscope's metric names: ``LR/train`` -> ``lr``, ``Loss/train`` -> ``train_loss``,
``Loss/test`` -> ``test_loss``, ``Accuracy/test`` -> ``test_accuracy`` (as a fraction: a curve
that goes above 1 is read as percent). Other scalar tags keep their names. An attempt whose
train or test loss turns non-finite is ``diverged`` at the first such step; the rest are
``finished``.

Each attempt is named by what it is (issue 19 item 12). Where the folder's name names a
schedule (``StepLR`` -> step, ``OneCycleLR_max_1`` -> onecycle, ...) the family is that and the
label the folder's path; where it does not (the seed's ``ParallelMode.GLOBAL_rank_0``), the LR
curve's shape decides (:mod:`lrscope.outputs.lr_shape`) and the label says both, e.g.
``CyclicLR (ParallelMode.GLOBAL_rank_0)``.

An attempt whose LR only rises, over at least two decades, in a folder named for a ramp (or
for no schedule) is a range test (the seed's ``exponentially_inc_Lr``): it is saved as the run's
range test, smoothed as the range test smooths and with the suggestion rules applied (its
logged test losses kept in the range test's config), and is not a trial, so no leaderboard
ranks it as a schedule. A ramp-named folder wins over an unnamed one; a run keeps the first
range test it was given, and any other ramp is imported as a trial of family ``ramp``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

from lrscope.errors import InputError
from lrscope.outputs.lr_shape import SCHEDULER_NAMES, is_ramp, shape_of
from lrscope.outputs.tensorboard import SEED_TAGS
from lrscope.rangetest.smoothing import smooth
from lrscope.study.store import DONE_STATUSES, Store
from lrscope.study.store.records import EVAL_METRICS, STEP_METRICS

TAG_TO_METRIC = dict(zip(SEED_TAGS, STEP_METRICS + EVAL_METRICS, strict=True))
# Checked in order against the lower-cased folder name.
FAMILY_PATTERNS = (
    (r"multistep", "multistep"), (r"cosine.*restart", "cosine_restarts"), (r"cosine", "cosine"),
    (r"onecycle", "onecycle"), (r"cyclic", "cyclic"), (r"exponentiallr|^exponential_?(gamma|$)",
                                                         "exponential"),
    (r"^step", "step"), (r"inc_lr|range|ramp|lr_?find", "ramp"),
)
EVENT_GLOB = "events.out.tfevents.*"

Series = tuple[np.ndarray, np.ndarray, np.ndarray]  # steps, values, wall times


@dataclass(frozen=True)
class ImportedAttempt:
    label: str
    path: Path
    status: str              # finished | diverged
    diverged_at_step: int | None
    skipped: bool            # already in the store from an earlier import
    range_test: bool = False  # kept as the run's range test, not as a trial


@dataclass(frozen=True)
class ImportSummary:
    run_id: int
    run_name: str
    logdir: Path
    attempts: list[ImportedAttempt] = field(default_factory=list)
    range_test_label: str | None = None

    @property
    def labels(self) -> list[str]:
        """The schedules imported (the range test is not one)."""
        return sorted({a.label for a in self.attempts if not a.range_test})

    def line(self) -> str:
        """One line for the terminal."""
        diverged = sum(a.status == "diverged" for a in self.attempts)
        new = sum(not a.skipped for a in self.attempts)
        range_test = (f"; range test: {self.range_test_label}"
                      if self.range_test_label is not None else "")
        return (f"{self.logdir}: run '{self.run_name}': {len(self.labels)} configurations, "
                f"{len(self.attempts)} attempts ({new} new, {diverged} diverged){range_test}")


def family_of(label: str) -> str:
    """The schedule family a TensorBoard run name suggests, or ``""``.

    >>> [family_of(n) for n in ("StepLR", "ExponentialLR_gamma_0.99", "OneCycleLR_max_1",
    ...                         "CyclicLR_base_0.1_max_1", "exponentially_inc_Lr", "foo")]
    ['step', 'exponential', 'onecycle', 'cyclic', 'ramp', '']
    """
    name = Path(label).name.lower()
    return next((family for pattern, family in FAMILY_PATTERNS if re.search(pattern, name)), "")


def find_event_files(logdir: Path) -> dict[str, list[Path]]:
    """Event files under ``logdir`` grouped by label (folder path under ``logdir``)."""
    groups: dict[str, list[Path]] = {}
    for path in sorted(logdir.rglob(EVENT_GLOB)):
        if not path.is_file():
            continue
        folder = path.parent.relative_to(logdir).as_posix()
        label = logdir.resolve().name if folder == "." else folder
        groups.setdefault(label, []).append(path)
    return groups


def read_event_file(path: Path) -> dict[str, Series]:
    """Every scalar tag of one event file as (steps, values, wall times), in step order."""
    accumulator = event_accumulator.EventAccumulator(
        str(path), size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    series: dict[str, Series] = {}
    for tag in tags.get("scalars", []):
        events = accumulator.Scalars(tag)
        series[tag] = _series([(e.step, e.value, e.wall_time) for e in events])
    for tag in tags.get("tensors", []):  # TF2-style writers store scalars as tensors
        if tag not in series:
            events = accumulator.Tensors(tag)
            values = [(e.step, tensor_util.make_ndarray(e.tensor_proto), e.wall_time)
                      for e in events]
            if all(np.size(v) == 1 for _, v, _ in values):
                series[tag] = _series([(s, float(np.ravel(v)[0]), w) for s, v, w in values])
    return series


def import_logdirs(store: Store, logdirs: Sequence[str | Path]) -> list[ImportSummary]:
    """Import each LOGDIR as one run; raises InputError for a missing or empty LOGDIR."""
    paths = [Path(p) for p in logdirs]
    for path in paths:  # check all before importing any
        if not path.is_dir():
            raise InputError(f"LOGDIR {path}: no such directory")
        if not any(path.rglob(EVENT_GLOB)):
            raise InputError(f"LOGDIR {path}: no TensorBoard event files ({EVENT_GLOB}) in it")
    return [import_logdir(store, path) for path in paths]


def import_logdir(store: Store, logdir: Path) -> ImportSummary:
    run = _run_for(store, logdir)
    done = {t.key: t for t in store.trials(run) if t.status in DONE_STATUSES}
    kept = store.range_test(run)
    kept_key = kept.config.get("source_key") if kept is not None else None
    attempts: list[ImportedAttempt] = []
    ramps: list[tuple[str, str, int, Path, dict[str, Series]]] = []  # key, folder, seed, ...
    for folder, files in find_event_files(logdir).items():
        for seed, path in enumerate(files):
            key = f"{folder}/{path.name}"
            if key in done or key == kept_key:  # imported before: not even read again
                old = done.get(key)
                attempts.append(ImportedAttempt(
                    old.label if old else folder, path, old.status if old else "finished",
                    old.diverged_at_step if old else None, skipped=True,
                    range_test=old is None))
                continue
            series = _metrics(read_event_file(path))
            if kept is None and _is_range_test(folder, series):
                ramps.append((key, folder, seed, path, series))
                continue
            attempts.append(_store_attempt(store, run, key, folder, seed, path, series))
    # A ramp-named folder is the range test before an unnamed one; the others are trials.
    ramps.sort(key=lambda ramp: family_of(ramp[1]) != "ramp")
    for key, folder, seed, path, series in ramps[1:]:
        attempts.append(_store_attempt(store, run, key, folder, seed, path, series))
    if ramps:
        key, folder, _, path, series = ramps[0]
        _save_range_test(store, run, key, folder, series)
        attempts.append(ImportedAttempt(folder, path, "finished", None, skipped=False,
                                        range_test=True))
    kept = store.range_test(run)
    return ImportSummary(run, store.run(run).name, logdir, attempts,
                         kept.config.get("label") if kept is not None else None)


def name_of(folder: str, lrs: np.ndarray | None) -> tuple[str, str]:
    """(label, family) of an attempt: the folder's when its name names a schedule, else the LR
    curve's shape says what it is (issue 19 item 12).

    >>> t = np.arange(300)
    >>> name_of("ParallelMode.GLOBAL_rank_0", 0.1 + 0.9 * np.abs(((t + 50) % 100) - 50) / 50)
    ('CyclicLR (ParallelMode.GLOBAL_rank_0)', 'cyclic')
    >>> name_of("StepLR", 0.9 * 0.99**t), name_of("run_7", np.linspace(0.1, 0.5, 300))
    (('StepLR', 'step'), ('run_7', ''))
    """
    named = family_of(folder)
    if named:
        return folder, named
    shape = shape_of(lrs) if lrs is not None else ""
    return (f"{SCHEDULER_NAMES[shape]} ({folder})" if shape else folder), shape


def _run_for(store: Store, logdir: Path) -> int:
    """The import run of this LOGDIR (by its absolute path), made on first import."""
    source = str(logdir.resolve())
    base = logdir.resolve().name or "import"
    for run in store.runs(kind="import"):
        if run.config.get("source") == source:
            return run.id
    name, n = base, 1
    while store.find_run(name) is not None:
        n += 1
        name = f"{base}-{n}"
    return store.ensure_run(name, kind="import",
                            config={"source": source, "importer": "tensorboard"}).id


def _store_attempt(store: Store, run: int, key: str, folder: str, seed: int, path: Path,
                   series: dict[str, Series]) -> ImportedAttempt:
    diverged_at = _divergence_step(series)
    status = "finished" if diverged_at is None else "diverged"
    label, family = name_of(folder, series["lr"][1] if "lr" in series else None)
    start = store.start_trial(run, key, label=label, family=family,
                              seed=seed, config={"source": str(path.resolve()),
                                                 "tags": sorted(series)})
    if not start.skip:
        rows = [(int(step), name, float(value)) for name, (steps_, values, _) in series.items()
                for step, value in zip(steps_, values, strict=True)]
        store.add_metrics(start.trial_id, rows)
        walls = np.concatenate([s[2] for s in series.values()]) if series else np.zeros(0)
        wall_time = float(walls.max() - walls.min()) if len(walls) else None
        store.finish_trial(start.trial_id, status, diverged_at_step=diverged_at,
                           wall_time=wall_time)
    return ImportedAttempt(label, path, status, diverged_at, start.skip)


def _metrics(tags: dict[str, Series]) -> dict[str, Series]:
    metrics = {TAG_TO_METRIC.get(tag, tag): series for tag, series in tags.items()}
    if "test_accuracy" in metrics:
        steps, values, walls = metrics["test_accuracy"]
        if np.nanmax(np.where(np.isfinite(values), values, np.nan), initial=0.0) > 1.0:
            metrics["test_accuracy"] = (steps, values / 100.0, walls)
    return metrics


def _divergence_step(series: dict[str, Series]) -> int | None:
    """First step where the train or test loss is not finite. Deliberately not the trials'
    100x rule (:func:`lrscope.trials.trial.diverged_index`): another tool's logs start wherever
    they start, and a run that logged finite losses is recorded as it logged them."""
    bad = [int(steps[~np.isfinite(values)][0]) for name in ("train_loss", "test_loss")
           if name in series for steps, values, _ in [series[name]]
           if not np.isfinite(values).all()]
    return min(bad) if bad else None


def _is_range_test(folder: str, series: dict[str, Series]) -> bool:
    # A folder named for another family (an ExponentialLR run whose LR blew up upwards) is
    # not a range test, however its LR moved.
    return (family_of(folder) in ("ramp", "") and "lr" in series and "train_loss" in series
            and is_ramp(series["lr"][1]))


def _save_range_test(store: Store, run: int, key: str, folder: str,
                     series: dict[str, Series]) -> None:
    from lrscope.rangetest.suggest import suggest  # the rules are only needed when a ramp was found

    lr_steps, lrs, _ = series["lr"]
    loss_by_step = dict(zip(series["train_loss"][0].tolist(), series["train_loss"][1].tolist(),
                            strict=True))
    losses = np.array([loss_by_step.get(s, math.nan) for s in lr_steps.tolist()])
    smoothed = smooth(losses)
    headline, _, every = suggest(lrs, losses)  # the rules smooth the raw losses themselves
    finite = np.isfinite(losses)
    store.save_range_test(
        run, lrs=lrs, losses=losses, smoothed=smoothed,
        suggestions={k: v for k, v in every.items() if v is not None}, suggestion=headline,
        stopped="completed" if finite.all() else "diverged",
        config={"source": "tensorboard import", "source_key": key, "label": folder,
                "start_lr": float(lrs[0]), "end_lr": float(lrs[-1]), "steps": len(lrs),
                "test_loss": [[int(step), float(value)] for step, value in zip(
                    *series.get("test_loss", (np.zeros(0), np.zeros(0)))[:2], strict=True)]})


def _series(points: list[tuple[int, float, float]]) -> Series:
    # Keep the last value logged at a step (a restarted writer may log a step twice).
    by_step = {step: (value, wall) for step, value, wall in points}
    steps = np.array(sorted(by_step), dtype=np.int64)
    values = np.array([by_step[s][0] for s in steps.tolist()], dtype=float)
    walls = np.array([by_step[s][1] for s in steps.tolist()], dtype=float)
    return steps, values, walls
