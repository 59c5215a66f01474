"""`lrscope compare` end to end on digits, divergence, and one line + exit 2 for bad input."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from lrscope.cli import main
from lrscope.errors import InputError
from lrscope.study.recipes import Anchors, build_suite, smith
from lrscope.study.store.sqlite import Store
from lrscope.trials.runners.auto import MARGIN


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_compare_digits_with_a_diverging_schedule(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")  # a narrow terminal: the paths still print whole
    out = tmp_path / "study[a]"  # brackets: a path, not rich markup
    code, stdout, _ = run_cli(
        capsys, "compare", "--task", "digits", "--schedules", "constant(lr=0.1)",
        "constant(lr=100)", "--seeds", "2", "--steps", "120", "--eval-every", "40",
        "--range-steps", "30", "--parallel", "none", "--out", str(out))
    assert code == 0
    lines = stdout.splitlines()
    assert f"leaderboard: {out / 'leaderboard.csv'}" in lines, stdout
    assert f"report: {out / 'report.html'}" in lines, stdout
    assert f"lrscope compare: 2 seeds x 120 steps -> {out}" in lines, stdout
    with Store.in_dir(out, create=False) as store:
        trials = {(t.label, t.seed): t for t in store.trials()}
        assert len(trials) == 4
        assert {t.status for (label, _), t in trials.items() if label == "constant(lr=100)"} \
            == {"diverged"}
        assert {t.status for (label, _), t in trials.items() if label == "constant(lr=0.1)"} \
            == {"finished"}
        run = store.runs()[0]
        assert store.range_test(run.id) is not None  # the range test runs for the report
    with (out / "leaderboard.csv").open() as f:
        rows = {row["label"]: row for row in csv.DictReader(f)}
    assert rows["constant(lr=100)"]["n_diverged"] == "2"
    assert rows["constant(lr=0.1)"]["n_diverged"] == "0"
    for name in ("report.md", "report.html", "config.toml", "study.sqlite"):
        assert (out / name).exists(), name
    assert len(list((out / "tb").iterdir())) == 4


def test_smith_recipe_builds_the_suite_from_the_range_test(tmp_path, capsys):
    out = tmp_path / "smith"
    code, _, _ = run_cli(capsys, "compare", "--task", "digits", "--seeds", "1", "--steps", "40",
                         "--range-steps", "60", "--parallel", "none", "--out", str(out))
    assert code == 0
    with Store.in_dir(out, create=False) as store:
        run = store.runs()[0]
        families = {t.family for t in store.trials()}
        first_keys = sorted(t.key for t in store.trials())
        assert {"onecycle", "cyclic", "exponential", "step", "constant"} <= families
        assert run.recipe is not None and "max_lr" in run.recipe
        rt = store.range_test(run.id)
        assert rt is not None and len(rt.lrs) > 10
    # A second run of the same command resumes: nothing left to do, nothing duplicated.
    code, _, _ = run_cli(capsys, "compare", "--task", "digits", "--seeds", "1", "--steps", "40",
                         "--range-steps", "60", "--parallel", "none", "--out", str(out))
    assert code == 0
    with Store.in_dir(out, create=False) as store:
        assert sorted(t.key for t in store.trials()) == first_keys
        assert len(first_keys) == 8


def test_rerun_with_other_settings_is_refused(tmp_path, capsys):
    base = ["compare", "--task", "digits", "--schedules", "constant(lr=0.1)", "--seeds", "1",
            "--range-steps", "20", "--parallel", "none", "--out", str(tmp_path / "s")]
    assert run_cli(capsys, *base, "--steps", "20")[0] == 0
    code, _, err = run_cli(capsys, *base, "--steps", "30")
    assert code == 2 and "other settings" in err and "steps" in err
    assert len(err.strip().splitlines()) == 1


def test_rerun_with_more_seeds_or_a_new_target_resumes(tmp_path, capsys):
    base = ["compare", "--task", "digits", "--schedules", "constant(lr=0.1)", "--steps", "20",
            "--range-steps", "20", "--parallel", "none", "--out", str(tmp_path / "s")]
    assert run_cli(capsys, *base, "--seeds", "1")[0] == 0
    with Store.in_dir(tmp_path / "s", create=False) as store:
        first = store.trials()[0]
    assert run_cli(capsys, *base, "--seeds", "2", "--target-accuracy", "0.3")[0] == 0
    with Store.in_dir(tmp_path / "s", create=False) as store:
        assert [(t.seed, t.claims) for t in store.trials()] == [(0, 1), (1, 1)]
        assert store.trials()[0] == first  # seed 0 was not run again
        config = store.runs()[0].config
    assert (config["seeds"], config["target_accuracy"]) == (2, 0.3)
    with (tmp_path / "s" / "leaderboard.csv").open() as f:
        assert next(csv.DictReader(f))["target_accuracy"] == "0.3"


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(("args", "needle"), [
    (["--schedules", "onecycl(max_lr=1)"], "did you mean 'onecycle'"),
    (["--schedules", "exponential(lr=1, gamma=0)"], "gamma"),
    (["--seeds", "0"], "seeds"),
    (["--task", "mnist", "--data-dir", "/nonexistent/mnist"], "mnist"),
    (["--task", "fashion-mnis"], "did you mean 'fashion-mnist'"),
    (["--parallel", "threads"], "parallel"),
    (["--parallel", "ray", "--ray-cpus-per-trial", "0"], "--ray-cpus-per-trial"),
    (["--parallel", "ray", "--ray-gpus-per-trial", "-1"], "--ray-gpus-per-trial"),
    (["--recipe", "smyth"], "recipe"),
])
def test_bad_flags_one_line_exit_2(tmp_path, capsys, args, needle):
    code, _, err = run_cli(capsys, "compare", "--out", str(tmp_path / "x"), *args)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(("text", "needle"), [
    ('seeds = [0, -1]\n', "seeds"),
    ('steps = "100"\n', "steps"),
    ('schedules = ["cosine(lr=-1)"]\n', "lr"),
    ('task = "digits"\nshedules = ["constant(lr=1)"]\n', "did you mean 'schedules'"),
])
def test_bad_config_files_one_line_exit_2(tmp_path, capsys, text, needle):
    cfg = write_config(tmp_path / "study.toml", text)
    code, _, err = run_cli(capsys, "compare", "--config", str(cfg), "--out", str(tmp_path / "x"))
    assert code == 2
    assert needle in err and "study.toml" in err
    assert len(err.strip().splitlines()) == 1, err


def test_unreadable_idx_files_name_the_file(tmp_path, capsys):
    data = tmp_path / "mnist"
    data.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (data / name).write_bytes(b"\x00\x00\x08\x03not really an idx file")
    code, _, err = run_cli(capsys, "compare", "--task", "mnist", "--data-dir", str(data),
                           "--out", str(tmp_path / "x"))
    assert code == 2 and "idx" in err.lower()
    assert len(err.strip().splitlines()) == 1, err


def test_bad_input_from_a_real_process_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "lrscope", "compare", "--schedules", "nope(lr=1)",
         "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "nope" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# issue 8 item 10
def test_too_few_steps_for_the_recipe_names_steps_before_any_work(tmp_path, capsys):
    out = tmp_path / "short"
    code, _, err = run_cli(capsys, "compare", "--task", "digits", "--steps", "1", "--seeds", "1",
                           "--out", str(out))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--steps: steps = 1: recipe 'smith' needs at least 2 steps" in err
    assert "warmup_steps" not in err  # the user wrote no warmup
    assert not out.exists()  # refused before the range test (and before writing anything)
    # The same rule where the suite is built, and the minimum it states is the real one.
    with pytest.raises(InputError, match=r"^steps = 1: recipe 'smith' needs at least 2 steps"):
        build_suite("smith", Anchors(suggestion=0.05, lr_at_min_loss=2.4), 1)
    assert len(smith(Anchors(suggestion=0.05, lr_at_min_loss=2.4), 2).schedules) == 8
    cfg = write_config(tmp_path / "study.toml", 'task = "digits"\nsteps = 1\n')
    code, _, err = run_cli(capsys, "compare", "--config", str(cfg), "--out", str(out))
    assert code == 2 and "study.toml:2: steps = 1: recipe 'smith'" in err and not out.exists()


def test_lr_scales_run_every_schedule_at_each_scale_and_print_the_best(tmp_path, capsys):
    out = tmp_path / "scales"
    code, stdout, _ = run_cli(capsys, "compare", "--task", "digits", "--lr-scales", "0.3,1,3",
                              "--schedules", "constant(lr=0.05)", "--seeds", "1", "--steps", "20",
                              "--out", str(out))
    assert code == 0
    line = next(line for line in stdout.splitlines() if line.startswith("constant(lr=0.05): "))
    assert line.startswith("constant(lr=0.05): best at x") and "(val loss " in line
    with Store.in_dir(out, create=False) as store:
        scales = sorted(t.config["lr_scale"] for t in store.trials())
    assert scales == [0.3, 1.0, 3.0]
    assert "LR sensitivity" in (out / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(("value", "needle"), [("0,1", "positive"), ("1,x", "not a list")])
def test_bad_lr_scales_one_line_exit_2(tmp_path, capsys, value, needle):
    try:  # 0,1 is the config's error (returned), 1,x argparse's (it exits)
        code = main(["compare", "--lr-scales", value, "--out", str(tmp_path / "x")])
    except SystemExit as exited:
        code = exited.code
    err = capsys.readouterr().err
    assert code == 2 and "--lr-scales" in err and needle in err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x").exists()


def test_ray_address_without_parallel_ray_is_one_line_exit_2(tmp_path, capsys):
    code = main(["compare", "--task", "digits", "--parallel", "none", "--ray-address",
                 "10.0.0.1:6379", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "--parallel ray" in err and "parallel is 'none'" in err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x").exists()


def test_ray_flags_reach_the_plan_and_are_not_compared_on_resume():
    from lrscope.cli.compare import FLAG_FIELDS
    from lrscope.config.plans import study_plan
    from lrscope.config.study import load_study_config
    from lrscope.trials.runners import RayOptions

    flags = {key: flag for key, flag in FLAG_FIELDS.values()}
    assert flags["ray_address"] == "--ray-address"
    config = load_study_config(overrides={"parallel": "ray", "ray_address": "10.0.0.1:6379",
                                          "ray_cpus_per_trial": 2, "ray_gpus_per_trial": 0.5,
                                          "steps": 20, "limit_train": 64}, flags=flags)
    plan = study_plan(config)
    assert plan.parallel == "ray"
    assert plan.runner.options == RayOptions(address="10.0.0.1:6379", cpus_per_trial=2,
                                             gpus_per_trial=0.5)
    # where trials run is not part of the study: a rerun may use another cluster
    assert not any(key.startswith("ray") for key in plan.config)


@pytest.mark.slow
def test_parallel_auto_measures_says_what_it_chose_and_saves_it(tmp_path, capsys):
    import json

    out = tmp_path / "auto"
    code, _, err = run_cli(
        capsys, "compare", "--task", "digits", "--schedules", "constant(lr=0.05)",
        "constant(lr=0.1)", "onecycle(max_lr=0.3)", "--seeds", "2", "--steps", "400",
        "--eval-every", "200", "--range-steps", "20", "--parallel", "auto", "--out", str(out))
    assert code == 0
    lines = [line for line in err.splitlines() if line.startswith("parallel auto: ")]
    assert len(lines) == 1, err
    saved = json.loads((out / "parallel.json").read_text())["study"]
    assert saved["line"] == lines[0] and saved["measured"]  # big enough to be worth measuring
    totals = {c["mode"]: c["total_s"] for c in saved["candidates"]}
    assert {"none", "batched"} <= set(totals) and saved["mode"] in totals
    # none unless another mode is projected clearly (MARGIN x) faster (issue 19 item 5)
    none = min(c["total_s"] for c in saved["candidates"] if c["mode"] == "none" and
               c["threads"] == 1)
    clear = [c for c in saved["candidates"] if none >= MARGIN * c["total_s"]]
    if saved["mode"] != "none" or saved["threads"] != 1:
        assert min(c["total_s"] for c in clear) == min(
            c["total_s"] for c in saved["candidates"] if c["mode"] == saved["mode"]
            and c["threads"] == saved["threads"])
    for c in saved["candidates"]:
        assert f"{c['mode']} {c['step_s'] * 1e3:.3g} ms/step" in lines[0]
    with Store.in_dir(out, create=False) as store:
        assert sorted(t.status for t in store.trials()) == ["finished"] * 6


@pytest.mark.parametrize(("value", "needle"), [
    ("acc", "rank_by='acc': no evaluation produces this metric; the metrics measured are "
            "accuracy, loss"),
    ("accuracy:best", "give a metric name and min or max"),
])
def test_issue16_item3_bad_rank_by_is_one_line_exit_2(tmp_path, capsys, value, needle):
    code, _, err = run_cli(capsys, "compare", "--task", "digits", "--steps", "20", "--seeds", "1",
                           "--rank-by", value, "--out", str(tmp_path / "o"))
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "study.sqlite").exists()


@pytest.mark.parametrize("bad", ["0", "-1"])
def test_issue19_item5_threads_flag_refuses_a_bad_value_in_one_line(tmp_path, bad):
    proc = subprocess.run(
        [sys.executable, "-m", "lrscope", "compare", "--task", "digits", "--threads", bad,
         "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "--threads" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x" / "study.sqlite").exists()


@pytest.mark.slow
def test_issue19_item5_threads_flag_runs_the_trials_on_that_many_threads(tmp_path):
    import json

    from lrscope.trials.runners.threads import usable_cores

    out = tmp_path / "t"
    proc = subprocess.run(
        [sys.executable, "-m", "lrscope", "compare", "--task", "digits", "--limit-train", "256",
         "--schedules", "constant(lr=0.05)", "constant(lr=0.1)", "--seeds", "1", "--steps",
         "20", "--range-steps", "10", "--parallel", "none", "--threads", "2", "--out",
         str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((out / "parallel.json").read_text())["study"]
    assert saved["mode"] == "none" and saved["torch_threads_in_trials"] == [min(2, usable_cores())]


def _console_script(*argv: str, env: dict[str, str] | None = None
                    ) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "lrscope", *argv], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_issue19_items7_9_verdict_first_and_the_ranked_column_kept_at_100_columns(tmp_path):
    import torch

    import lrscope

    out = tmp_path / "s"
    proc = _console_script(
        "compare", "--task", "digits", "--schedules", "constant(lr=0.1)", "cosine(lr=0.3)",
        "onecycle(max_lr=0.3)", "--seeds", "3", "--steps", "30", "--range-steps", "20",
        "--parallel", "none", "--out", str(out), env={"COLUMNS": "100"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    verdict = next(i for i, line in enumerate(lines)
                   if line.startswith(("Verdict: Best: ", "Verdict: No winner: ")))
    table = next(i for i, line in enumerate(lines) if "Leaderboard: study" in line)
    assert verdict < table  # the answer first
    # issue 18: a top the seeds cannot separate is named as a tie group, not as the best
    best_line = next(line for line in lines if line.startswith("best: "))
    tied = lines[verdict].startswith("Verdict: No winner: ")
    assert best_line.startswith("best: none, the top is a tie (") == tied, (best_line, tied)
    said = " ".join(" ".join(lines[verdict:table]).split())  # wrapped at COLUMNS
    assert "at 3 seeds" in said
    assert (f"on cpu, parallel none (1 worker x 1 torch thread), torch {torch.__version__}, "
            f"lrscope {lrscope.__version__}.") in said
    # item 7: the table fits 100 columns and keeps the ranked column, whole; a path is never
    # broken (a line naming one may run past COLUMNS, to be copied whole)
    assert max(len(line.rstrip()) for line in lines[table:] if str(out) not in line) <= 100
    assert f"report: {out / 'report.html'}" in lines
    header = " ".join(" ".join(lines[table:table + 8]).split())
    assert "median" in header and "seeds" in header
    with (out / "leaderboard.csv").open() as f:
        for row in csv.DictReader(f):
            assert row["ranked_on"] == "val_loss"
            line = next(line for line in lines[table:] if f" {row['label']} " in line)
            assert f" {float(row['rank_loss']):.3g} " in line
    md = (out / "report.md").read_text()
    assert md.index("## Verdict") < md.index("## Run study")
    assert "Ran in " in md and f"lrscope {lrscope.__version__}" in md


@pytest.mark.slow
def test_issue16_item10_the_cli_says_when_trials_have_no_result(tmp_path):
    out = tmp_path / "s"
    args = ["compare", "--task", "digits", "--schedules", "constant(lr=0.1)", "--steps", "20",
            "--range-steps", "20", "--parallel", "none", "--out", str(out)]
    first = _console_script(*args, "--seeds", "1")
    assert first.returncode == 0, first.stderr
    assert "have no result" not in first.stdout
    # another live process (this one) holds seed 1's trial: the rerun cannot run it
    with Store.in_dir(out, create=False) as store:
        run = store.find_run("study")
        assert run is not None
        held = store.start_trial(run.id, "constant(lr=0.1)/seed1", label="constant(lr=0.1)",
                                 spec="constant(lr=0.1)", family="constant", seed=1)
        assert not held.skip and not held.busy
    again = _console_script(*args, "--seeds", "2")
    assert again.returncode == 0, again.stderr
    assert ("1 of 2 trials have no result (failed, interrupted or running elsewhere): the "
            "leaderboard lacks them; rerun the same command to complete them"
            ) in " ".join(again.stdout.split())


@pytest.mark.slow
def test_issue16_item2_confirm_seeds_from_the_console_script(tmp_path):
    out = tmp_path / "confirm"
    args = ["compare", "--task", "digits", "--limit-train", "256", "--schedules",
            "constant(lr=0.05)", "constant(lr=0.0001)", "--seeds", "3", "--steps", "30",
            "--eval-every", "15", "--range-steps", "20", "--parallel", "none",
            "--confirm-seeds", "2", "--out", str(out)]
    proc = _console_script(*args)
    assert proc.returncode == 0, proc.stderr
    assert "Confirmation at 2 fresh seeds (3, 4)" in proc.stdout
    assert "constant(lr=0.05): final test loss" in proc.stdout
    assert "selected it, so it is optimistic" in " ".join(proc.stdout.split())
    with Store.in_dir(out, create=False) as store:
        runs = {run.name: run for run in store.runs()}
        assert set(runs) == {"study", "study/confirm"}
        fresh = store.trials(runs["study/confirm"].id)
        # lr 1e-4 barely trains: separated from the best, so only the best is retrained
        assert sorted((t.label, t.seed) for t in fresh) == [("constant(lr=0.05)", 3),
                                                             ("constant(lr=0.05)", 4)]
        before = [(t.id, t.started, t.wall_time) for t in store.trials()]
    assert len(before) == 6 + 2
    assert "Confirmation at fresh seeds" in (out / "report.md").read_text()
    # the same command again trains nothing new
    assert _console_script(*args).returncode == 0
    with Store.in_dir(out, create=False) as store:
        assert [(t.id, t.started, t.wall_time) for t in store.trials()] == before


@pytest.mark.parametrize("bad", ["0", "-1", "1.5", "two"])
def test_issue16_item2_bad_confirm_seeds_exit_2(tmp_path, capsys, bad):
    try:
        code = main(["compare", "--task", "digits", "--steps", "20", "--confirm-seeds", bad,
                     "--out", str(tmp_path / "b")])
    except SystemExit as stop:  # argparse refuses what is not a whole number
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    # the flag is known and the value is what is wrong (not "unrecognized arguments")
    assert "confirm" in err and bad in err and "unrecognized" not in err
    assert not (tmp_path / "b").exists()


def test_issue16_item2_confirm_seeds_in_the_toml(tmp_path, capsys):
    config = tmp_path / "study.toml"
    config.write_text("confirm_seeds = true\n")
    code, _, err = run_cli(capsys, "compare", "--config", str(config), "--steps", "20",
                           "--out", str(tmp_path / "t"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "confirm_seeds = true: must be a whole number" in err, err
