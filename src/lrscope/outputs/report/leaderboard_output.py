"""The leaderboard as a rich terminal table and as CSV (``DIR/leaderboard.csv``).

CSV columns (one row per run and schedule; empty where undefined, e.g. a CI with n=1)::

    run, rank, label, family, n_trials, n_finished, n_diverged, n_other,
    final_test_loss_mean, final_test_loss_low, final_test_loss_high, (same for best_test_loss,
    final_test_accuracy, best_test_accuracy), target_accuracy, steps_to_target_mean,
    steps_to_target_low, steps_to_target_high, reached_target, wall_time_s,
    vs_best_method, vs_best_n, vs_best_difference, vs_best_low, vs_best_high, vs_best_p,
    vs_best_p_raw, rank_loss, ranked_on, rank_direction, vs_best_on, lr_scale, status,
    predicted, predicted_low, predicted_high

``vs_best_p`` is Bonferroni-adjusted (against a best picked from the same data, over every
pair of schedules) and ``vs_best_low``/``vs_best_high`` are the matching simultaneous interval,
``vs_best_p_raw`` the same test unadjusted; ``rank_loss`` is the statistic the rank
follows, the median final ranking metric over all seeds in the metric's own direction (an
accuracy reads 0.95), with a seed that did not finish as the worst (``inf``, ``-inf`` for a
maximised metric), of the validation split when the study held one out (``ranked_on``:
``val_loss``, ``val_accuracy``, ...), else of the test set (``test_loss``); ``rank_direction``
says whether it is minimised (``min``) or maximised (``max``). ``vs_best_on`` is what "vs best"
compared (``test_loss``, or without a test set the ranking metric); ``lr_scale`` the peak-LR
scale a row was chosen at in a study run at several (empty otherwise). ``status`` is
``measured`` (trained) or ``predicted``: a ``strategy="predict"`` study's candidate that was
not trained, whose only numbers are ``predicted`` and its 95% interval ``predicted_low`` ..
``predicted_high`` (the metric's own direction; empty for measured rows), every measured
column empty (:mod:`lrscope.study.stats.predicted`).
The first columns keep their names and order; new ones are only ever added at the end.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from lrscope.study.stats.confirmation import OPTIMISM_NOTE
from lrscope.study.stats.leaderboard import LeaderboardRow, ranking_note
from lrscope.study.stats.predicted import NOT_TRAINED, predicted_text
from lrscope.study.stats.ranking import TEST_LOSS
from lrscope.study.stats.uncertainty import ONE_VALUE_NOTE, Estimate

ESTIMATES = ("final_test_loss", "best_test_loss", "final_test_accuracy", "best_test_accuracy")
COLUMNS = (
    ["run", "rank", "label", "family", "n_trials", "n_finished", "n_diverged", "n_other"]
    + [f"{name}_{part}" for name in ESTIMATES for part in ("mean", "low", "high")]
    + ["target_accuracy", "steps_to_target_mean", "steps_to_target_low", "steps_to_target_high",
       "reached_target", "wall_time_s", "vs_best_method", "vs_best_n", "vs_best_difference",
       "vs_best_low", "vs_best_high", "vs_best_p", "vs_best_p_raw", "rank_loss", "ranked_on",
       "rank_direction", "vs_best_on", "lr_scale", "status", "predicted", "predicted_low",
       "predicted_high"]
)
NOTHING_FINISHED_NOTE = ("Nothing finished: every trial diverged, failed or is unfinished, so "
                         "there is no best schedule.")


def versus_header(rows: Sequence[LeaderboardRow]) -> str:
    """``'vs best, test loss (adjusted p)'``: the column says what it compares."""
    compared = rows[0].versus_on if rows else TEST_LOSS
    return f"vs best, {compared.label} (adjusted p)"


def versus_note(rows: Sequence[LeaderboardRow]) -> str:
    compared = rows[0].versus_on if rows else TEST_LOSS
    return (f"vs best ({compared.label}, this minus best): p against a best picked from the same "
            "data, Bonferroni-adjusted over every pair of schedules (the interval is the "
            "matching simultaneous one); a seed that did not finish counts "
            f"as the run's worst {compared.label}.")


def nothing_finished(rows: Sequence[LeaderboardRow]) -> bool:
    return bool(rows) and not any(r.n_finished for r in rows)


def csv_records(rows: Sequence[LeaderboardRow], run: str = "") -> list[dict[str, Any]]:
    """The CSV rows as dicts keyed by :data:`COLUMNS` (None where undefined)."""
    records = []
    for row in rows:
        record: dict[str, Any] = {
            "run": run, "rank": row.rank, "label": row.label, "family": row.family,
            "n_trials": row.n_trials, "n_finished": row.n_finished,
            "n_diverged": row.n_diverged, "n_other": row.n_other,
            "target_accuracy": row.target_accuracy, "reached_target": row.reached_target,
            "wall_time_s": row.wall_time, "vs_best_method": row.vs_best.method,
            "vs_best_n": row.vs_best.n, "vs_best_difference": row.vs_best.difference,
            "vs_best_low": row.vs_best.low, "vs_best_high": row.vs_best.high,
            "vs_best_p": row.vs_best.p_value, "vs_best_p_raw": row.vs_best.p_raw,
            "rank_loss": row.rank_value, "ranked_on": row.ranked_on,
            "rank_direction": row.metric.direction, "vs_best_on": row.versus_on.stored,
            "lr_scale": row.lr_scale, "status": row.status,
            **_predicted_columns(row),
        }
        for name in (*ESTIMATES, "steps_to_target"):
            estimate: Estimate = getattr(row, name)
            record.update({f"{name}_mean": estimate.mean, f"{name}_low": estimate.low,
                           f"{name}_high": estimate.high})
        records.append(record)
    return records


def _predicted_columns(row: LeaderboardRow) -> dict[str, Any]:
    """A predicted row's prediction (and no rank statistic: nothing was measured)."""
    p = row.prediction
    if row.measured or p is None:
        return {"predicted": None, "predicted_low": None, "predicted_high": None}
    return {"predicted": p.value, "predicted_low": p.low, "predicted_high": p.high,
            "rank_loss": None}


def write_csv(path: str | Path, tables: Sequence[tuple[str, Sequence[LeaderboardRow]]]) -> Path:
    """Write ``(run name, rows)`` tables into one CSV file; returns its path."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for run, rows in tables:
            for record in csv_records(rows, run):
                writer.writerow({k: "" if v is None else v for k, v in record.items()})
    return path


def target_header(rows: Sequence[LeaderboardRow]) -> str:
    target = next((r.target_accuracy for r in rows if r.target_accuracy is not None), None)
    return "steps to target" if target is None else f"steps to {target:.0%} acc"


def display_rows(rows: Sequence[LeaderboardRow],
                 digits: int = 4) -> tuple[list[str], list[list[str]]]:
    """Header and text cells shared by the terminal table and the report: what the rows were
    ranked on first (its name, the diverged seeds it counts, the peak-LR scale a row was
    chosen at), then the test columns (issue 19 item 7). With a predicted row (a predict study's
    untrained candidate) a status column follows the ranked one, and the predicted row's
    ranked cell holds its prediction and interval, marked as such; its other cells are empty."""
    metric = rows[0].metric if rows else TEST_LOSS
    header = ["#", "schedule", metric.column_header, "diverged", SCALE_HEADER,
              "final test loss", versus_header(rows), "final test acc", target_header(rows),
              "best test loss", "best test acc", "wall (s)"]
    cells = []
    for r in rows:
        reached = (f"{r.steps_to_target.text(4)} ({r.reached_target}/{r.n_finished})"
                   if r.target_accuracy is not None and r.n_finished else "—")
        if not r.measured:
            cells.append([str(r.rank), r.label, predicted_text(r).removesuffix(
                f", {NOT_TRAINED}") + " (predicted)", *["—"] * (len(header) - 3)])
            continue
        cells.append([
            str(r.rank), r.label, r.metric.text(r.rank_loss, digits),
            f"{r.n_diverged}/{r.n_trials}", "—" if r.lr_scale is None else f"x{r.lr_scale:g}",
            r.final_test_loss.text(digits), r.vs_best.text(), r.final_test_accuracy.text(digits),
            reached, r.best_test_loss.text(digits), r.best_test_accuracy.text(digits),
            "—" if r.wall_time is None else f"{r.wall_time:.1f}",
        ])
    if any(not r.measured for r in rows):
        header.insert(3, STATUS_HEADER)
        for r, line in zip(rows, cells, strict=True):
            line.insert(3, "measured" if r.measured else NOT_TRAINED)
    return header, cells


SCALE_HEADER = "peak LR scale"
STATUS_HEADER = "status"
# A narrow terminal leaves out test columns, these first, until the table fits; the rank,
# schedule, ranked metric and scale columns always stay.
NARROW_DROPS = ("wall (s)", "best test acc", "best test loss", "steps to", "final test acc",
                "final test loss", "vs best", "diverged")
# Columns that exist only for tasks with classes: left out when no row has them.
CLASSIFICATION_COLUMNS = ("final test acc", "best test acc")


def shown_rows(rows: Sequence[LeaderboardRow],
               digits: int = 4) -> tuple[list[str], list[list[str]]]:
    """:func:`display_rows` without the accuracy columns when no schedule has an accuracy (a
    regression task ranks by loss and shows none), for the terminal table and the report."""
    header, cells = display_rows(rows, digits)
    classes = any(r.final_test_accuracy.mean is not None for r in rows)
    drop = set() if classes else {header.index(name) for name in CLASSIFICATION_COLUMNS}
    if not classes:
        drop.add(header.index(target_header(rows)))
    keep = [i for i in range(len(header)) if i not in drop]
    return [header[i] for i in keep], [[line[i] for i in keep] for line in cells]


def single_value_note(rows: Sequence[LeaderboardRow]) -> str | None:
    """The one footnote a table with a one-seed value (printed without an interval) needs."""
    singles = any(getattr(r, name).single for r in rows for name in (*ESTIMATES,
                                                                      "steps_to_target"))
    return ONE_VALUE_NOTE if singles else None


def rich_table(rows: Sequence[LeaderboardRow], title: str = "Leaderboard",
               width: int | None = None) -> Table:
    """A rich Table; the caption states the CI, ranking and adjustment rules.

    Columns with nothing in them are left out; below ``width`` 160 (a terminal's width) "vs
    best" keeps only the difference and p, and test columns are left out (:data:`NARROW_DROPS`,
    in order) until the table fits ``width``: never the ranked one.
    """
    narrow = width is not None and width < 160
    header, cells = shown_rows(rows, digits=3 if narrow else 4)
    versus = header.index(versus_header(rows))
    if narrow:
        for i, row in enumerate(rows):
            if row.measured:
                cells[i][versus] = row.vs_best.text(short=True)
    keep = [i for i in range(len(header)) if any(line[i] != "—" for line in cells)]
    widths: dict[int, int | None] = dict.fromkeys(keep)
    if narrow and width is not None:
        widths = _fitting(header, cells, keep, width)
    empty = f"{NOTHING_FINISHED_NOTE} " if nothing_finished(rows) else ""
    single = single_value_note(rows)
    # Text, not markup: the rules' brackets print as they are
    table = Table(title=title, caption=Text(f"{empty}mean ± 95% CI over seeds"
                                            f"{'; ' + single if single else '.'} "
                                            f"{ranking_note(rows)} {versus_note(rows)} "
                                            f"{OPTIMISM_NOTE}"))
    if narrow:
        table.box = box.SIMPLE_HEAD  # no vertical rules: room for the numbers
    for i, fixed in widths.items():
        table.add_column(header[i], justify="left" if i == 1 else "right", overflow="fold",
                         min_width=_longest_word(cells, i) if i == 1 else None, width=fixed)
    for row, line in zip(rows, cells, strict=True):
        # Text, not markup: a label like "multistep(milestones=[100, 200])" must print as is.
        # A prediction never looks like a measurement: dim italics.
        table.add_row(*(Text(line[i]) for i in widths),
                      style=None if row.measured else "dim italic")
    return table


def _fitting(header: Sequence[str], cells: Sequence[Sequence[str]], keep: list[int],
             width: int) -> dict[int, int | None]:
    """The columns of ``keep`` that fit ``width``, with their widths: test columns are left out
    (:data:`NARROW_DROPS`, in order) until the rest fit. A column is as wide as its longest
    cell or header word (headers wrap at spaces), plus 3 for padding and the rule between
    columns; the schedule column takes what is left, down to its longest word (it wraps at the
    spaces of ``a=1, b=2``)."""
    def need(i: int) -> int:
        text = [w for line in cells for w in line[i].split()] if i == 1 else \
            [line[i] for line in cells]
        return max(len(t) for t in [*text, *header[i].split()])

    kept = list(keep)
    for name in NARROW_DROPS:
        if sum(need(i) + 3 for i in kept) + 1 <= width:
            break
        kept = [i for i in kept if not header[i].startswith(name)]
    widths: dict[int, int | None] = {i: need(i) for i in kept}
    for i, wanted in ((1, max((len(line[1]) for line in cells), default=1)),  # whole labels
                      (2, len(header[2]) // 2 + 1)):  # the ranked column's name on 2-3 lines
        if i in widths:
            spare = width - 1 - sum(w + 3 for w in widths.values() if w is not None)
            widths[i] = max(need(i), min(wanted, need(i) + spare))
    return widths


def _longest_word(cells: Sequence[Sequence[str]], column: int) -> int:
    """The schedule column's narrowest width that breaks no spec mid-token (it wraps at the
    spaces of ``a=1, b=2``): its longest word (issue 19 item 15)."""
    return max((len(word) for line in cells for word in line[column].split()), default=1)
