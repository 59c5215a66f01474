"""The ranking metric as a type: what a study ranks its schedules on, and every sentence that
says so.

A study ranks on one metric (``rank_by``: its name and direction) read on one split: the
validation split when the trials measured one (the test set then only reports), else the test
set. The leaderboard, the LR-sensitivity table and figure, the report's captions and the CLI
all take a :class:`RankingMetric` and show its values in the metric's own direction (an
accuracy of 0.95 reads 0.95, never -0.95); internally a ranking value is "lower is better"
(:attr:`RankingMetric.sign` times the metric). Every sentence that says what was ranked comes
from :func:`ranked_on_text`.

>>> m = RankingMetric.parse("accuracy").on("val")
>>> m, m.label, m.stored, m.shown(-0.95)
(RankingMetric(name='accuracy', direction='max', split='val'), 'val accuracy', 'val_accuracy', 0.95)
>>> ranked_on_text(m, "short")
'median final validation accuracy over all seeds (higher is better)'
>>> RankingMetric.parse("perplexity"), RankingMetric.parse("bleu:min").direction
(RankingMetric(name='perplexity', direction='min', split='test'), 'min')
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from lrscope.errors import InputError, InputTypeError

# Metric names (by their ending) that are minimised when rank_by gives no direction.
MINIMISED = ("loss", "rmse", "mse", "mae", "error", "perplexity", "nll")
SPLIT_NAMES = {"val": "validation", "test": "test"}
Context = Literal["rule", "short", "top", "scale"]


@dataclass(frozen=True)
class RankingMetric:
    """What a study ranks on: a metric ``name``, its ``direction`` and the ``split`` read."""

    name: str = "loss"
    direction: Literal["min", "max"] = "min"
    split: Literal["val", "test"] = "test"

    @classmethod
    def parse(cls, value: Any, where: str = "rank_by") -> RankingMetric:
        """From ``"name"``, ``"name:min|max"`` or a ``(name, "min"|"max")`` pair; a bare name
        is minimised when it names a loss or an error, else maximised."""
        if isinstance(value, RankingMetric):
            return value
        if isinstance(value, str):
            name, _, direction = value.partition(":")
            direction = direction or ("min" if name.lower().endswith(MINIMISED) else "max")
        elif isinstance(value, (tuple, list)) and len(value) == 2:
            name, direction = value
        else:
            raise InputTypeError(f"{where}={value!r} must be a metric name, 'name:min|max' or "
                                 "a (name, 'min'|'max') pair")
        if direction not in ("min", "max") or not isinstance(name, str) \
                or not name.isidentifier():
            raise InputError(f"{where}={value!r}: give a metric name and min or max, e.g. "
                             "accuracy:max or loss:min")
        return cls(name, "max" if direction == "max" else "min")

    @classmethod
    def of_run(cls, config: Mapping[str, Any], validated: bool) -> RankingMetric:
        """A stored run's metric (its ``rank_by`` setting, else the loss) on the validation
        split when its trials measured one (``validated``), else on the test set."""
        return cls.parse(config.get("rank_by") or "loss").on("val" if validated else "test")

    def on(self, split: Literal["val", "test"]) -> RankingMetric:
        return replace(self, split=split)

    @property
    def sign(self) -> float:
        """+1 for a minimised metric, -1 for a maximised one: sign * value is lower-better."""
        return -1.0 if self.direction == "max" else 1.0

    @property
    def stored(self) -> str:
        """Its name in the store and in leaderboard.csv's ``ranked_on``: ``val_accuracy``."""
        return f"{self.split}_{self.name}"

    @property
    def label(self) -> str:
        """Its name for a person: ``val accuracy``, ``test loss``."""
        return f"{self.split} {self.name}"

    @property
    def better(self) -> str:
        return "higher" if self.direction == "max" else "lower"

    def shown(self, ranked: float) -> float:
        """A ranking value (lower is better) in the metric's own direction."""
        return self.sign * ranked

    def text(self, ranked: float, digits: int = 4) -> str:
        """A ranking value for a cell, in the metric's own direction; the worst outcome (half
        the seeds or more did not finish) reads ``unfinished``."""
        if not math.isfinite(ranked):
            return "unfinished"
        return f"{self.shown(ranked):.{digits}g}"

    @property
    def column_header(self) -> str:
        return f"median {self.label}, all seeds"

    def check(self, available: Collection[str], where: str = "rank_by") -> None:
        """InputError naming the metrics that exist when this one is not among them."""
        if self.name not in available:
            raise InputError(f"{where}={self.name!r}: no evaluation produces this metric; the "
                             f"metrics measured are {', '.join(sorted(available)) or 'none'}")


TEST_LOSS = RankingMetric("loss", "min", "test")  # the default, and what "vs best" compares


def ranked_on_text(metric: RankingMetric, context: Context = "rule") -> str:
    """Every sentence (or phrase) that says what a study ranked, by ``context``:

    * ``rule``: the leaderboard's ranking rule;
    * ``short``: the phrase alone (for the CLI and the best-scale line);
    * ``top``: the caption of the best schedules side by side;
    * ``scale``: how each schedule's best peak-LR scale was chosen.

    >>> ranked_on_text(RankingMetric(), "top")
    'ranked by the median final test loss over all seeds (lower is better)'
    """
    better = f"{metric.better} is better"
    if context in ("short", "top"):
        phrase = (f"median final {SPLIT_NAMES[metric.split]} {metric.name} over all seeds "
                  f"({better})")
        return phrase if context == "short" else f"ranked by the {phrase}"
    held_out = "; the validation split is held out of training, the test set only reports" \
        if metric.split == "val" else ""
    phrase = (f"median final {SPLIT_NAMES[metric.split]} {metric.name} over all seeds "
              f"({better}{held_out})")
    if context == "scale":
        return (f"each schedule is ranked at its best scale, chosen like the leaderboard's rows "
                f"on the {phrase}, a seed that did not finish counting as the worst")
    return (f"Ranked by the {phrase}, a diverged, failed or unfinished seed counting as worse "
            "than any finished one (ties: more finished seeds, then the better mean).")
