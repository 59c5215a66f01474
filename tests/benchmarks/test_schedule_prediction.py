"""The schedule-prediction benchmark (benchmarks/schedule_prediction.py, issue 18 item 3) in its
CI size, so it cannot rot: it runs as a subprocess and must write a well-formed table (every
problem, every strategy, numbers in their ranges); a second run reads every study back from its
cache and trains nothing. Whether the targets pass is what the full run measures, not this."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lrscope.study.store.sqlite import Store

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "schedule_prediction.py"
PROBES = ROOT / "benchmarks" / "schedule_prediction_probes.py"
BOUND = ROOT / "benchmarks" / "schedule_prediction_bound.py"
SCALED = ROOT / "benchmarks" / "schedule_prediction_scaled_probes.py"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"),
                                                         os.environ.get("PYTHONPATH", "")])}


def _run(tmp_path: Path, script: Path = SCRIPT, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(script), "--tiny", "--out", str(tmp_path / "out"),
                           "--work", str(tmp_path / "work"), *args], capture_output=True,
                          text=True, env=_env(), timeout=900, check=False)


@pytest.mark.slow
def test_issue18_item3_tiny_benchmark_writes_a_well_formed_table(tmp_path: Path) -> None:
    done = _run(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    table = (tmp_path / "out" / "table.md").read_text()
    assert "--tiny" in table and "## Must-show targets (issue 18)" in table
    assert "| problem | strategy | cand. | tau |" in table
    rows = json.loads((tmp_path / "out" / "results.json").read_text())
    problems = {r["problem"] for r in rows}
    assert problems == {"digits-mlp", "diabetes-mlp"}
    for problem in problems:
        mine = {r["strategy"]: r for r in rows
                if r["problem"] == problem and r["first_seed"] is None}
        assert {"full", "full+scales", "one seed", "one seed+scales", "oracle grid"} <= set(mine)
        assert mine["full"]["candidates"] == 8 and mine["full+scales"]["candidates"] == 24
        for row in mine.values():
            # the global oracle is the best truth of everything trained: no pick beats it
            assert row["regret_oracle"] is not None and row["regret_oracle"] >= 0, row
            assert row["runs"] > 0, row
            if row["tau"] is not None:
                assert -1 <= row["tau"] <= 1, row
        for strategy in ("full", "full+scales"):
            row = mine[strategy]
            # a candidate of the suite: never better than the suite's truly best
            assert row["regret_best"] >= 0 and row["fraction"] == 1.0, row
            seeds = 2  # the tiny run's study seeds
            assert row["candidates"] * seeds < row["runs"] < row["candidates"] * seeds + 2, row
        for suffix in ("", "+scales"):  # the full study's first seed alone: a third of it
            row, full = mine["one seed" + suffix], mine["full" + suffix]
            assert row["candidates"] == full["candidates"] and 0.4 < row["fraction"] < 0.6, row
        for strategy in ("predict", "predict+scales"):
            row = mine[strategy]
            assert 0 < row["fraction"] <= 1.5 and math.isfinite(row["runs"]), row
            assert row["pick"] is not None, row  # the first row is always a trained one
        # every study again with the other seed first: its own study, scored beside the first
        for strategy in ("full", "one seed", "predict", "full+scales", "predict+scales"):
            again = next(r for r in rows if r["problem"] == problem
                         and r["strategy"] == strategy and r["first_seed"] == 1)
            assert again["pick"] is not None and 0 < again["fraction"] <= 1.5, again
        for arm, seeds in (("predict-s1", {1}), ("full-s1", {0, 1})):
            with Store.in_dir(tmp_path / "work" / "tiny" / problem / arm, create=False) as store:
                run = store.find_run("study")
                assert run is not None and run.config["seeds"][0] == 1
                assert {t.seed for t in store.trials(run.id)} == seeds
    assert "## Each study seed first" in table
    assert "| problem | strategy | first seed 0 | first seed 1 | mean |" in table
    assert "| target | margin (passes at >= 0) | 90% interval over redrawn seed orders |" in table
    # the cache: a second run reads every study back, trains nothing and says the same
    stamps = {p: p.stat().st_mtime for p in (tmp_path / "work").rglob("*.sqlite")}
    again = _run(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime for p in (tmp_path / "work").rglob("*.sqlite")} == stamps
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == rows
    # the compressed-horizon probes, scored on the same cached arms
    probes = _run(tmp_path, PROBES, "--share", "0.25")
    assert probes.returncode == 0, probes.stderr[-3000:]
    table = (tmp_path / "out" / "probes.md").read_text()
    for problem in problems:
        for suite in ("default", "scales"):
            row = next(line for line in table.splitlines() if line.startswith(
                f"| {problem} | {suite} | probes (25% of the budget), then confirm |"))
            cost = float(row.rstrip(" |").rsplit("| ", 1)[1].rstrip("%"))
            # a fraction of the full study (36 steps cannot be compressed into the budget's
            # share: probes keep 8 steps at least, lrscope.study.predict.probes.MIN_STEPS)
            assert 0 < cost < 50, row
    assert list((tmp_path / "work" / "tiny" / "digits-mlp").glob("probe-k*/study.sqlite"))
    # probes with lr_scales over every seed order, from the same arms: its rows of every
    # candidate once and of the full study are the benchmark's own, averaged over the orders
    scaled = _run(tmp_path, SCALED, "--share", "0.5")
    assert scaled.returncode == 0, scaled.stderr[-3000:]
    table = (tmp_path / "out" / "scaled_probes.md").read_text()
    for problem in problems:
        once = "every candidate once (predict with lr_scales before 055530a)"
        for how, strategy in ((once, "one seed+scales"), ("full (3 seeds)", "full+scales")):
            cells = next(line for line in table.splitlines()
                         if line.startswith(f"| 0.5 | {how} | {problem} |")).split(" | ")
            regrets = [r["regret_oracle"] for r in rows
                       if r["problem"] == problem and r["strategy"] == strategy]
            assert cells[5].startswith(f"{100 * sum(regrets) / len(regrets):.1f}% ("), cells
        for how in ("top-m by probe", "best probe per scale + offsets"):
            cells = next(line for line in table.splitlines()
                         if line.startswith(f"| 0.5 | {how} | {problem} |")).split(" | ")
            assert 0 < float(cells[7].rstrip("% |")) < 50, cells  # a share of the full study
    assert list((tmp_path / "work" / "tiny" / "digits-mlp").glob("scaled-probes-k*-full-scales"
                                                                   "-s1/study.sqlite"))
    # what a perfect choice of predict's full-length runs would pick, from the same arms: its
    # "as run" column is the benchmark's own predict regret, averaged over the seed orders
    bound = subprocess.run([sys.executable, str(BOUND), "--tiny", "--work",
                            str(tmp_path / "work")], capture_output=True, text=True,
                           env=_env(), timeout=300, check=False)
    assert bound.returncode == 0, bound.stderr[-3000:]
    lines = bound.stdout.splitlines()
    assert lines[0] == ("| problem | predict (as run) | perfect, 1 run | perfect, 2 runs | "
                        "perfect, 3 runs | perfect, 4 runs |")
    for problem in problems:
        cells = next(line for line in lines if line.startswith(f"| {problem} |")).split(" | ")
        regrets = [r["regret_oracle"] for r in rows
                   if r["problem"] == problem and r["strategy"] == "predict"]
        mean = sum(regrets) / len(regrets)
        assert cells[1] == f"{100 * mean:.1f}%", cells
        assert all(float(cell.rstrip("% |")) >= 0 for cell in cells[1:]), cells
    assert lines[-1].startswith("| **median** |")


def test_means_over_seed_orders_keep_not_known_apart_from_no_pick(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A regret vs the suite's best that one order cannot tell (its truth partial) leaves the
    mean unknown ("-"), where a study with no pick counts as inf; the table's mean column is
    the averaged score's."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from schedule_prediction_scores import Score
    from schedule_prediction_table import first_seed_lines, over_first_seeds

    def score(first: int | None, best: float | None, oracle: float | None) -> Score:
        return Score("p", "predict", 8, "a", 0.5, best, oracle, 3.0, 0.1, first_seed=first)

    scores = [score(None, 0.1, 0.2), score(1, None, 0.4), score(2, 0.3, None)]
    (mean,) = over_first_seeds(scores)
    assert mean.regret_best is None and mean.regret_oracle == math.inf
    (kept,) = over_first_seeds([score(None, 0.1, 0.2), score(1, 0.3, 0.4)])
    assert kept.regret_best == pytest.approx(0.2) and kept.regret_oracle == pytest.approx(0.3)
    assert kept.first_seed is None and kept.tau == 0.5
    row = first_seed_lines([score(None, 0.1, 0.2), score(1, 0.3, 0.4)], [kept], [0, 1])[-1]
    assert row.startswith("| p | predict | 20.0% (tau 0.50) | 40.0% (tau 0.50) | 30.0%"), row


def test_a_perfect_choice_of_runs_is_the_best_probed_and_the_best_in_truth(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """schedule_prediction_bound.perfect_pick: the best-probed candidate always runs (as in
    predict), then the others by truth; the pick is the best measured at the first seed, so
    a perfect choice can still pick the worse of two by noise."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from schedule_prediction_bound import perfect_pick

    probes = {"a": 0.1, "b": 0.3, "c": 0.2, "d": None}
    truth = {"a": 0.5, "b": 0.2, "c": 0.4, "d": 0.1}
    seed = {"a": 0.45, "b": 0.5, "c": 0.3, "d": 0.6}
    assert perfect_pick(probes, truth, seed, runs=1) == "a"  # the best-probed alone
    assert perfect_pick(probes, truth, seed, runs=2) == "a"  # d (best truth) measured worse
    assert perfect_pick(probes, truth, seed, runs=4) == "c"
    assert perfect_pick(probes, truth, {**seed, "d": 0.2}, runs=2) == "d"


def test_redrawn_seed_orders_keep_strategies_paired_and_agree_with_the_table(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """schedule_prediction_resample.firmness: a problem's orders are drawn once for every
    strategy, so a predict that always picks as the full study does passes the regret target
    (1 point of slack) in every draw, however far the orders differ; unpaired draws would fail
    it in some. The margin on the orders that ran is the table's; a seed gives the same draws."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from schedule_prediction_resample import firmness
    from schedule_prediction_scores import Score
    from schedule_prediction_table import margins, medians, over_first_seeds

    def rows(problem: str, regrets: list[float], taus: list[float]) -> list[Score]:
        return [Score(problem, strategy, 8, "a", tau if strategy == "predict" else 0.5, None,
                      regret, 4.0, fraction, first_seed=None if i == 0 else i)
                for i, (regret, tau) in enumerate(zip(regrets, taus, strict=True))
                for strategy, fraction in (("full", 1.0), ("predict", 0.15))]

    scores = [*rows("p", [0.0, 0.5, 1.0], [0.9, 0.3, 0.6]),
              *rows("q", [0.2, 0.1, 2.0], [0.4, 0.8, 0.7]),
              *rows("r", [0.3, 0.3, 0.0], [0.1, 0.95, 0.5])]
    found = {f.target: f for f in firmness(scores, draws=300, seed=1)}
    assert found["regret"].passing == 1.0 and found["regret"].low == pytest.approx(0.01)
    assert found["cost"].passing == 1.0
    table = margins(medians(over_first_seeds(scores)))
    assert found["tau"].margin == pytest.approx(table["tau"])
    assert found["tau"].low <= found["tau"].margin <= found["tau"].high
    assert 0 < found["tau"].passing < 1  # the orders disagree: some draws pass, some fail
    assert firmness(scores, draws=300, seed=1) == list(found.values())
