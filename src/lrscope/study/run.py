"""A schedule study: range test -> suite of schedules -> every (schedule, seed) trial -> store.

The study is resumable by construction: every result goes to the store as soon as it exists,
and a rerun asks the store before doing anything. The range test is kept with the run and
reused; finished trials are skipped; a trial cut off mid-run starts again from step 0 (its
partial metrics are dropped first, and a sink replaces what it held for the trial), so nothing
is duplicated. A rerun may add seeds or schedules (lrscope.study.resume): only the new trials
run.

Each trial is claimed in the store just before it runs (a lease, lrscope.study.store.lease),
and a heartbeat thread keeps this process's claims fresh: two processes on one folder share
its trials, never both running one, and a killed process's trials are taken over once stale.

Under a distributed engine every rank runs every trial (data parallel); only the main rank
writes the store and hears the sink, and it tells the others which trials to skip.

The trials run on the plan's runner (lrscope.trials.runners); with ``parallel="auto"`` the
pending trials' mode is measured once they are claimed, and its one line goes to
``announce``. DIR/parallel.json (keyed by the study's name: the latest run of each study in the
folder) says what truly ran: the mode, workers, torch threads per worker, the threads each
trial's process had (read there), and auto's measurements.
The study runs on ``plan.threads`` torch threads (lrscope.trials.runners.threads) and puts the
caller's thread count back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import time
import zlib
from collections.abc import Callable, Sequence, Set
from pathlib import Path
from typing import Any

import numpy as np

from lrscope.engines import Engine, LocalEngine
from lrscope.errors import InputError
from lrscope.rangetest.smoothing import zero_lag
from lrscope.rng import preserved_rng
from lrscope.study.plan import StudyPlan, TrialEvent
from lrscope.study.recipes import Anchors, Suite, build_suite, explicit, with_lr_scales
from lrscope.study.resume import first_seed, resumed_config
from lrscope.study.sink import TrialSink
from lrscope.study.store import DONE_STATUSES, ResultsStore, Store
from lrscope.study.store.records import EVAL_METRICS, STEP_METRICS, VAL_METRICS
from lrscope.trials.runners import Hooks, Job, Started
from lrscope.trials.runners.threads import in_process_threads, torch_threads
from lrscope.trials.trial import Evaluation, TrialResult


def run_study(plan: StudyPlan, out: str | Path, engine: Engine | None = None,
              progress: Callable[[TrialEvent], None] | None = None,
              announce: Callable[[str], None] | None = None,
              sink: TrialSink | None = None, wanted: Set[str] | None = None,
              extra: Sequence[str] = ()) -> Suite:
    """Run (or resume) the study into ``out``; return the suite of schedules it compared.

    ``announce(line)`` hears how the trials run when ``parallel="auto"`` chose it; ``sink``
    hears each trial recorded (lrscope.study.sink: TensorBoard, from lrscope.session). The
    caller's global RNGs are left as they were. ``wanted``: the trial keys (:func:`trial_key`)
    to run, None for all; an empty set runs the range test and builds the suite only (a
    ``strategy="predict"`` study trains a subset of the full study's trials, phase by phase).
    ``extra``: schedule specs trained beside the suite (a predict study's schedule optimised on
    its law), not part of the suite returned.
    """
    engine = engine or LocalEngine()
    with preserved_rng(), torch_threads(in_process_threads(plan.threads, engine.device.type)):
        return _run_study(plan, Path(out), engine, progress, announce, sink, wanted, extra)


def _run_study(plan: StudyPlan, out: Path, engine: Engine,
               progress: Callable[[TrialEvent], None] | None,
               announce: Callable[[str], None] | None = None,
               sink: TrialSink | None = None, wanted: Set[str] | None = None,
               extra: Sequence[str] = ()) -> Suite:
    began = time.perf_counter()  # the study's wall time: range test and trials
    # Only the main rank touches files; the others hear from it through engine.mean.
    store = Store.in_dir(out) if engine.is_main else None
    try:
        run_id, seed = _ensure_run(store, plan) if engine.is_main else (None, 0)
        # the other ranks hear the range test's seed from the main rank: mean(seed, 0, ...) * n
        seed = round(engine.mean(float(seed)) * engine.world_size)
        suite = _suite(plan, store, run_id, engine, seed)
        _check_ranks_agree(suite, engine)
        if store is not None and run_id is not None and engine.is_main:
            store.update_run(run_id, recipe=f"{suite.recipe}: {suite.rules}")
        trained = suite if not extra else dataclasses.replace(
            suite, schedules=suite.schedules + explicit(list(extra), plan.steps).schedules)
        _run_trials(plan, trained, store, run_id, out, engine, progress, announce, began, sink,
                    wanted)
    finally:
        if store is not None:
            store.close()
    return suite


def _check_ranks_agree(suite: Suite, engine: Engine) -> None:
    """Every rank must train the same schedules: a fingerprint of the suite, averaged over ranks,
    equals each rank's own only when all agree (the range test's losses are rank means, so they
    should; this catches ranks fed different data)."""
    if engine.world_size == 1:
        return
    mine = float(zlib.crc32("\n".join(suite.labels()).encode()) % 1_000_003)
    if engine.mean(mine) != mine:
        raise RuntimeError(f"rank {engine.rank}: the ranks built different schedule suites; "
                           "every rank must see the same data and seed")


def check_resumable(plan: StudyPlan, out: str | Path) -> dict[str, Any] | None:
    """InputError when ``out`` holds this study's name with other settings (nothing written);
    else the run's config once this call is added to it (None: a new study)."""
    if not (Path(out) / "study.sqlite").exists():
        return None
    # create=True: an empty file is a store another process on ``out`` is creating now
    with Store.in_dir(out) as store:
        run = store.find_run(plan.name)
        return None if run is None else _grown(plan, dict(run.config))


def _grown(plan: StudyPlan, stored: dict[str, Any]) -> dict[str, Any]:
    """The stored config grown by ``plan`` (lrscope.study.resume), refused when the grown run's
    schedules collide: with ``lr_scales`` an added schedule equal to a stored one at another
    scale would find that trial done and report it as its own (the rule listing both refuses)."""
    merged = resumed_config(stored, plan.config, plan.config_defaults,
                            report_only=plan.report_only, may_grow=plan.may_grow)
    listed = merged.get("schedules")
    if plan.lr_scales is not None and plan.schedules and listed:
        try:
            with_lr_scales(explicit([str(spec) for spec in listed], plan.steps), plan.lr_scales,
                           plan.steps)
        except InputError as err:
            raise InputError(f"{err} (with the schedules this study already "
                             "holds); leave it out, or choose a new --out") from None
    return merged


def _ensure_run(store: ResultsStore | None, plan: StudyPlan) -> tuple[int, int]:
    """The run's id, its config checked and grown to the union (atomically), and its first seed
    (the range test's, whatever seeds this rerun lists)."""
    assert store is not None
    run = store.ensure_run(plan.name, kind="study", config=plan.config)
    merged = store.merge_run_config(run.id, lambda stored: _grown(plan, stored))
    return run.id, first_seed(merged, plan.seeds[0])


def _suite(plan: StudyPlan, store: ResultsStore | None, run_id: int | None, engine: Engine,
           seed: int) -> Suite:
    # The range test runs whenever it is configured, for the report, even when the schedules
    # are listed explicitly or come from the seed recipe and do not need it.
    anchors = (_anchors(plan, store, run_id, engine, seed) if plan.range_test is not None
               else None)
    suite = (explicit(list(plan.schedules), plan.steps) if plan.schedules
             else build_suite(plan.recipe, anchors, plan.steps))
    return with_lr_scales(suite, plan.lr_scales, plan.steps)


def _anchors(plan: StudyPlan, store: ResultsStore | None, run_id: int | None, engine: Engine,
             seed: int) -> Anchors:
    """The range test's anchors: from the store when this run already has one, else measured
    (at the run's first ``seed``)."""
    assert plan.range_test is not None
    saved = store.range_test(run_id) if store is not None and run_id is not None else None
    if saved is not None and engine.world_size == 1:
        return anchors_from_curve(saved.lrs, zero_lag(saved.losses), saved.suggestion,
                                  saved.stopped)
    from lrscope.rangetest.loop import range_test  # the loop is only needed when measuring
    from lrscope.trials.trial import seeded_model

    settings = plan.range_test
    task = plan.task
    model = seeded_model(task, seed, engine.device)
    optimizer = plan.make_optimizer(model)
    val = task.validation_batches(settings.val_examples) if settings.validates else None
    result = range_test(model, optimizer, task.loss_fn, task.range_batches(seed),
                        step_fn=task.step_fn,
                        engine=engine, val_batches=val, val_every=settings.val_every or None,
                        precision=plan.options.precision,
                        clip_grad_norm=plan.options.clip_grad_norm,
                        **settings.range_test_kwargs())
    if store is not None and run_id is not None and engine.is_main:
        found = {rule: lr for rule, lr in result.suggestions.items() if lr is not None}
        store.save_range_test(run_id, lrs=result.lrs, losses=result.losses,
                              smoothed=result.smoothed, suggestions=found,
                              suggestion=result.suggestion, stopped=result.stopped,
                              config=settings.to_dict())
    return anchors_from_curve(result.lrs, zero_lag(result.losses), result.suggestion,
                              result.stopped)


def anchors_from_curve(lrs: Any, smoothed: Any, suggestion: float | None,
                       stopped: str = "completed") -> Anchors:
    """Anchors from a range-test curve: the LR at its lowest finite smoothed loss (callers pass
    the zero-lag smoothing of the raw losses, as the suggestion rules read it: the causal EMA's
    lag puts its minimum up to ~2x too high), the LR
    where it diverged (only when it did), and whether the lowest loss sat at the ramp's end
    (its last 2% of steps, at least the last one) of a run that did not diverge.

    >>> a = anchors_from_curve([0.01, 0.1, 1.0], [2.0, 1.0, 3.0], 0.05, stopped="diverged")
    >>> a.lr_at_min_loss, a.diverged_lr, a.suggestion, a.min_at_end
    (0.1, 1.0, 0.05, False)
    >>> anchors_from_curve([0.01, 0.1, 1.0], [3.0, 2.0, 1.0], 0.05).min_at_end
    True
    """
    lrs, smoothed = np.asarray(lrs, dtype=float), np.asarray(smoothed, dtype=float)
    finite = np.isfinite(smoothed)
    if not finite.any():
        raise InputError("range test: no finite loss at any LR; lower start_lr or check the task")
    best = int(np.nanargmin(np.where(finite, smoothed, np.nan)))
    lr_at_min = float(lrs[best])
    headline = suggestion if suggestion is not None and np.isfinite(suggestion) else lr_at_min / 10
    last = int(np.flatnonzero(finite)[-1])
    at_end = stopped != "diverged" and best >= last - max(0, len(lrs) // 50)
    return Anchors(suggestion=float(headline), lr_at_min_loss=lr_at_min,
                   diverged_lr=float(lrs[-1]) if stopped == "diverged" else None,
                   min_at_end=at_end)


def _run_trials(plan: StudyPlan, suite: Suite, store: ResultsStore | None, run_id: int | None,
                out: Path,
                engine: Engine, progress: Callable[[TrialEvent], None] | None,
                announce: Callable[[str], None] | None = None,
                began: float | None = None, sink: TrialSink | None = None,
                wanted: Set[str] | None = None) -> None:
    setup = plan.trial_setup()
    runner = plan.runner.on(engine)  # refused here when it cannot run on this engine
    pairs = [(trial_key(label, seed), label, schedule, seed) for (label, schedule), seed
             in itertools.product(suite.schedules, plan.seeds)]
    if wanted is not None:
        pairs = [pair for pair in pairs if pair[0] in wanted]
    if not pairs:  # nothing to train (a predict study's first phase): no runner, no parallel.json
        return
    jobs = [Job(*pair, index) for index, pair in enumerate(pairs)]
    total = len(jobs)
    trial_ids: dict[str, int] = {}
    unrecorded: set[int] = set()  # claimed by this call, no result stored yet

    def claimed(job: Job) -> bool:
        """Whether this process runs ``job``: the main rank claims it and tells the others."""
        vote = 0  # 0: run it, 1: done, 2: running in another process
        if engine.is_main:
            assert store is not None and run_id is not None
            start = store.start_trial(run_id, job.key, label=job.label, spec=job.schedule.spec(),
                                      family=job.schedule.family, seed=job.seed,
                                      config={"steps": plan.steps, "eval_every": plan.eval_every,
                                              **suite.trial_config(job.label)})
            trial_ids[job.key] = start.trial_id
            vote = 2 if start.busy else 1 if start.skip else 0
            if vote == 0:
                unrecorded.add(start.trial_id)
        # Only the main rank votes, so mean(vote, 0, ...) * world_size is its vote.
        vote = round(engine.mean(float(vote)) * engine.world_size)
        if vote and progress:
            progress(TrialEvent(job.key, job.index, total, "busy" if vote == 2 else "skipped"))
        return vote == 0

    def heard(job: Job, ev: Evaluation) -> None:
        if progress:
            progress(TrialEvent(job.key, job.index, total, "running", evaluation=ev))

    began = time.perf_counter() if began is None else began
    ran: dict[str, Any] = {}  # for parallel.json: what truly ran
    seen_threads: set[int] = set()

    def started(how: Started) -> None:  # the runner's shape (auto: what it chose, and why)
        ran.update(how.to_dict())
        if how.why and announce:
            announce(how.why)

    def run(pending: list[Job]) -> None:
        if progress and pending:
            progress(TrialEvent(pending[0].key, pending[0].index, total, "running"))
        for job, result in runner.run(pending, setup, engine, Hooks(heard, started)):
            seen_threads.add(result.threads)
            if engine.is_main:
                assert store is not None
                _record(store, trial_ids[job.key], job.key, result, sink)
                unrecorded.discard(trial_ids[job.key])
            if progress:
                progress(TrialEvent(job.key, job.index, total, result.status, result))

    try:
        with store.heartbeat() if store is not None else contextlib.nullcontext():
            if runner.sequential:  # one at a time: claim each just before it runs
                for job in jobs:
                    if claimed(job):
                        run([job])
            else:  # the runner takes them all at once (processes, Ray tasks, batches of a seed)
                run([job for job in jobs if claimed(job)])
    except BaseException as err:  # Ctrl-C included: what this call claimed is not left running
        if store is not None:
            _release(store, unrecorded, err)
        raise
    if ran and engine.is_main:
        save_parallel_choice(out, plan.name, {**ran, "torch_threads_in_trials": sorted(
            seen_threads), **_environment(out, plan.name, engine, began)})


def _environment(out: Path, name: str, engine: Engine, began: float) -> dict[str, Any]:
    """What the verdict reports with parallel.json's mode: the device, the torch and lrscope
    versions, this call's wall time and the study's (summed over the calls that trained it)."""
    from importlib import metadata

    import torch

    from lrscope.study.store.ran import how_it_ran

    try:  # the installed distribution's version (importing lrscope's root would be a cycle)
        version: str | None = metadata.version("lrscope")
    except metadata.PackageNotFoundError:
        version = None

    device = str(engine.device)
    if engine.device.type == "cuda":
        device += f" ({torch.cuda.get_device_name(engine.device)})"
    wall = time.perf_counter() - began
    before = how_it_ran(out, name).get("study_wall_s")
    total = wall + (before if isinstance(before, (int, float)) else 0.0)
    return {"device": device, "torch_version": torch.__version__, "lrscope_version": version,
            "wall_s": round(wall, 3), "study_wall_s": round(total, 3)}


def trial_key(label: str, seed: int) -> str:
    """A trial's key in its run: ``<schedule label>/seed<seed>``."""
    return f"{label}/seed{seed}"


def _release(store: ResultsStore, trial_ids: set[int], err: BaseException) -> None:
    """Mark the trials a failed or interrupted call claimed but did not finish as failed (with
    why), so that a rerun takes them at once instead of waiting out their leases."""
    why = f"{type(err).__name__}: {err}"[:500]
    for trial_id in sorted(trial_ids):
        try:
            if store.owns(trial_id):
                store.finish_trial(trial_id, status="failed", error=f"not finished: {why}")
        except Exception:  # the store itself failing must not hide the error that got us here
            return


def missing_trials(out: Path, plan: StudyPlan, suite: Suite,
                   stored_only: bool = False) -> tuple[int, int]:
    """(without a result, all): the run's trials in ``out`` (this call's (schedule, seed) pairs
    and every trial the store holds for the run; ``stored_only``: the stored ones alone, as a
    predict study asks for a subset of the pairs), and how many of them are neither finished
    nor diverged."""
    with Store.in_dir(out) as store:
        run = store.find_run(plan.name)
        status = {t.key: t.status for t in store.trials(run.id)} if run is not None else {}
    keys = set(status) | (set() if stored_only else {
        trial_key(label, seed) for label in suite.labels() for seed in plan.seeds})
    return sum(1 for key in keys if status.get(key) not in DONE_STATUSES), len(keys)


def save_parallel_choice(out: Path, name: str, choice: dict[str, Any]) -> Path:
    """Write ``choice`` (how the study ``name``'s trials ran, and why) into DIR/parallel.json."""
    path = out / "parallel.json"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = {}
    saved[name] = choice
    temp = path.with_name(f".parallel.{os.getpid()}.json")  # replaced whole: never half-written
    temp.write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
    temp.replace(path)
    return path


def _record(store: ResultsStore, trial_id: int, key: str, result: TrialResult,
            sink: TrialSink | None) -> None:
    """Metrics, the sink (lrscope.study.sink), then the status: a kill before the last write
    means rerun."""
    if not store.owns(trial_id):  # stalled past the lease: another process took the trial over
        return
    rows: list[tuple[int, str, float]] = []
    for step, values in enumerate(zip(result.lr, result.train_loss, strict=True)):
        rows += [(step, name, float(v)) for name, v in zip(STEP_METRICS, values, strict=True)]
    for ev in result.evaluations:
        metrics = zip(EVAL_METRICS + VAL_METRICS,
                      (ev.loss, ev.accuracy, ev.val_loss, ev.val_accuracy), strict=True)
        # accuracy is None for tasks without classes: nothing is written for it
        rows += [(ev.step, name, float(v)) for name, v in metrics if v is not None]
        # a user's evaluate(model) metrics beyond loss and accuracy, as val_<name>
        rows += [(ev.step, f"val_{name}", value) for name, value in ev.metrics.items()
                 if name not in ("loss", "accuracy")]
    store.add_metrics(trial_id, rows)
    if sink is not None:
        sink.trial_recorded(key, result)
    store.finish_trial(trial_id, status=result.status, diverged_at_step=result.diverged_at_step,
                       wall_time=result.wall_time)
