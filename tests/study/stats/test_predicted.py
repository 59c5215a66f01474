"""Issue 18 (what users see of strategy="predict"): measured and predicted leaderboard rows."""

from __future__ import annotations

import csv
import math

from rich.console import Console

from lrscope.outputs.report.leaderboard_output import rich_table, shown_rows, write_csv
from lrscope.study.stats.leaderboard import TrialOutcome, summarize
from lrscope.study.stats.predicted import measured_rows, with_predictions
from lrscope.study.stats.verdict import tie_group, verdict
from lrscope.study.store.predictions import Cost, Prediction, PredictionRecord, SelfCheck


def measured(*losses: tuple[str, float]) -> list:
    return summarize([TrialOutcome(label, "constant", seed, "finished", loss + 0.01 * seed,
                                   loss, None, None, (), 1.0)
                      for label, loss in losses for seed in range(3)])


def record(candidates: dict[str, Prediction], passed: bool = True,
           stopped: str = "separated") -> PredictionRecord:
    return PredictionRecord(
        "multi_power", ("a/seed0",), candidates, Cost(500, 2500, 100, 100, 1 / 6),
        SelfCheck("b/seed0", 0.5, 0.52, 0.02, 0.05, passed), stopped)


PREDICTIONS = {"a": Prediction(0.31, 0.28, 0.34, trained=True),
               "b": Prediction(0.5, 0.45, 0.55, trained=True),
               "cosine(lr=0.1)": Prediction(0.2, 0.15, 0.25),  # predicted better than the best
               "linear(lr=0.1)": Prediction(0.4, 0.35, 0.45)}


def test_issue18_predicted_rows_merge_by_value_below_the_measured_best() -> None:
    rows = with_predictions(measured(("a", 0.3), ("b", 0.5)), record(PREDICTIONS))
    assert [(r.rank, r.label, r.status) for r in rows] == [
        (1, "a", "measured"), (2, "cosine(lr=0.1)", "predicted"),
        (3, "linear(lr=0.1)", "predicted"), (4, "b", "measured")]
    predicted = rows[1]
    assert predicted.prediction == PREDICTIONS["cosine(lr=0.1)"] and predicted.family == "cosine"
    assert predicted.n_trials == 0 and predicted.final_test_loss.mean is None
    assert math.isinf(predicted.rank_loss)  # nothing measured: never read as a measurement
    assert [r.label for r in measured_rows(rows)] == ["a", "b"]
    # what is ranked on measurements ignores the predictions
    assert tie_group(rows) == tie_group(measured_rows(rows))
    said = " ".join(verdict(rows, {}))
    assert "Best: a" in said and "2 more candidates predicted by the loss-curve law, not " \
        "trained" in said


def test_issue18_no_record_or_a_failed_self_check_changes_nothing() -> None:
    rows = measured(("a", 0.3), ("b", 0.5))
    assert with_predictions(rows, None) == rows
    assert with_predictions(rows, record(PREDICTIONS, passed=False)) == rows
    assert with_predictions(rows, record(PREDICTIONS, stopped="fallback")) == rows


def test_issue18_the_csv_and_the_table_mark_predicted_rows(tmp_path) -> None:
    rows = with_predictions(measured(("a", 0.3), ("b", 0.5)), record(PREDICTIONS))
    path = write_csv(tmp_path / "leaderboard.csv", [("study", rows)])
    with path.open(encoding="utf-8") as handle:
        lines = {line["label"]: line for line in csv.DictReader(handle)}
    assert lines["a"]["status"] == "measured" and lines["a"]["predicted"] == ""
    linear = lines["linear(lr=0.1)"]
    assert (linear["status"], linear["rank"], linear["predicted"], linear["predicted_low"],
            linear["predicted_high"]) == ("predicted", "3", "0.4", "0.35", "0.45")
    assert linear["rank_loss"] == "" and linear["final_test_loss_mean"] == ""
    header, cells = shown_rows(rows)
    status = header.index("status")
    assert [line[status] for line in cells] == [
        "measured", "predicted, not trained", "predicted, not trained", "measured"]
    assert cells[2][2] == "0.4 [0.35, 0.45] (predicted)"
    console = Console(width=200, record=True)
    console.print(rich_table(rows))
    text = console.export_text()
    assert "predicted, not trained" in text and "0.2 [0.15, 0.25] (predicted)" in text
    # a full study's table has no status column
    assert "status" not in shown_rows(measured(("a", 0.3)))[0]


def test_issue18_untrained_candidates_within_reach_keep_the_top_from_being_a_winner() -> None:
    """A predict study's own tie group names the untrained candidates whose predicted interval
    reaches the best (res.tie, res.best None): the verdict says "No winner" and names them,
    as the API does, instead of "Best: a". A trained label in that group is tested as any."""
    rows = with_predictions(measured(("a", 0.3), ("b", 0.5)), record(PREDICTIONS))
    said = " ".join(verdict(rows, {}, study_tie=("cosine(lr=0.1)",)))
    assert said.startswith("No winner: a ranks first") and "Best:" not in said
    assert ("Not trained, and predicted within reach of it by the loss-curve law (their "
            "intervals reach its value): cosine(lr=0.1); only training them can rule them "
            "out.") in said
    assert "Every other trained schedule differs from it at 3 seeds" in said
    assert "1 more candidate predicted by the loss-curve law, not trained" in said  # linear
    assert " ".join(verdict(rows, {}, study_tie=("b",))).startswith("Best: a")
