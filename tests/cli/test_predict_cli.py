"""Issue 18: `lrscope compare --strategy full|predict --budget F` and the TOML keys."""

from __future__ import annotations

import pytest

from lrscope.cli import main
from lrscope.config.plans import study_plan
from lrscope.config.study import load_study_config
from lrscope.session import gist


def run_cli(capsys, *args: str) -> tuple[int, str]:
    try:
        code = main(list(args))
    except SystemExit as stop:  # argparse refuses what is not a number
        code = int(stop.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("args", "needle"), [
    (["--strategy", "cheap"], "strategy = \"cheap\": must be 'full' or 'predict'"),
    (["--strategy", "predict", "--budget", "0"], "budget = 0.0: must be a fraction"),
    (["--strategy", "predict", "--budget", "1.5"], "0 < budget <= 1"),
    (["--budget", "0.2"], "budget = 0.2: only applies to strategy='predict'"),
    (["--strategy", "predict", "--budget", "half"], "--budget: invalid float value: 'half'"),
])
def test_issue18_bad_strategy_or_budget_is_one_line_exit_2_before_any_work(
        tmp_path, capsys, args, needle):
    out = tmp_path / "o"
    code, err = run_cli(capsys, "compare", "--task", "digits", "--steps", "20", *args,
                        "--out", str(out))
    assert code == 2 and needle in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists()  # refused before anything was written


def test_issue18_strategy_and_budget_in_the_toml_are_not_the_study_identity(tmp_path, capsys):
    path = tmp_path / "study.toml"
    path.write_text('task = "digits"\nsteps = 20\nstrategy = "predict"\nbudget = 0.25\n')
    config = load_study_config(path)
    assert (config.strategy, config.budget) == ("predict", 0.25)
    assert (load_study_config().strategy, load_study_config().budget) == ("full", None)
    # a rerun may change them: they are not stored as settings a rerun must match
    stored = study_plan(load_study_config(path, {"limit_train": 64})).config
    assert "strategy" not in stored and "budget" not in stored
    path.write_text('task = "digits"\nsteps = 20\nstrategy = "predict"\nbudget = "a lot"\n')
    code, err = run_cli(capsys, "compare", "--config", str(path), "--out", str(tmp_path / "t"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "budget" in err, err


def test_issue18_a_predict_study_says_each_parallel_choice_once(tmp_path, capsys):
    """A predict study trains in many small batches, each choosing how to run (``--parallel
    auto``, the default); the terminal says a choice once, not once per batch."""
    code = main(["compare", "--task", "digits", "--steps", "120", "--limit-train", "320",
                 "--limit-test", "200", "--strategy", "predict", "--out", str(tmp_path / "p")])
    said = capsys.readouterr()
    assert code == 0, said.err
    choices = [line for line in said.err.splitlines() if line.startswith("parallel auto: ")]
    assert choices and len(choices) == len(set(choices)), said.err
    # what it may train is said before it trains: on a real model, how long it will take
    first = next(line for line in said.err.splitlines() if line.startswith("predict: "))
    assert first.startswith("predict: a budget of 17% of the full study's 24 runs: "), first
    assert " runs' worth of steps (the range test's " in first, first
    # nor the same choice again with other timings (each batch measures afresh)
    assert len({gist(line) for line in choices}) == len(choices), said.err
    assert any(line.startswith("predict: trained ") for line in said.out.splitlines()), said.out
    # rerun: every trial it asks for, over all its batches, is already done (the count was
    # each batch's own: "trials: 3/1 already done")
    assert main(["compare", "--task", "digits", "--steps", "120", "--limit-train", "320",
                 "--limit-test", "200", "--strategy", "predict", "--out",
                 str(tmp_path / "p")]) == 0
    again = capsys.readouterr()
    asked = [line for line in again.err.splitlines() if line.startswith("trials: ")]
    count = asked[0].split()[1].split("/") if asked else []
    assert len(asked) == 1 and count[0] == count[1] and int(count[0]) > 1, again.err
    assert asked[0].endswith("already done (nothing left to run)")


def test_issue18_a_law_predicting_an_impossible_value_fails_its_self_check(tmp_path, capsys):
    """Ranked by accuracy, the law fitted here predicts 1.05 for the run it is checked on,
    measured 0.969: within the gap between candidates, so the check passed on its error alone.
    A law that predicts a value the metric cannot take (an accuracy above 1, a negative loss)
    is not trusted; the line says why."""
    code = main(["compare", "--task", "digits", "--steps", "120", "--limit-train", "320",
                 "--limit-test", "200", "--strategy", "predict", "--rank-by", "accuracy",
                 "--out", str(tmp_path / "p")])
    said = capsys.readouterr()
    assert code == 0, said.err
    check = next(line for line in said.out.splitlines()
                 if line.startswith("predict: the law's self-check"))
    predicted = float(check.split("it predicted ", 1)[1].split(" ", 1)[0])
    assert predicted > 1 and check.startswith("predict: the law's self-check failed"), check
    assert "and a val accuracy cannot be above 1)" in check, check
