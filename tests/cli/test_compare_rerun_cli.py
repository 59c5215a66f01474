"""Reruns of `lrscope compare` on one folder (issue 16 items 12 and 14): a grown ``--lr-scales``
study never gives one schedule's trial to another, and config.toml describes the whole run."""

from __future__ import annotations

import tomllib

from lrscope.cli import main
from lrscope.config.study import load_study_config
from lrscope.study.store.sqlite import Store


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_issue16_item12_a_grown_schedule_equal_to_an_old_scaled_one_is_refused(tmp_path, capsys):
    """constant(lr=0.05) at x3 is constant(lr=0.15): adding the latter later would find its x1
    trial done (by the old base) and report the old base's best scale; refused in one line,
    as listing both at once is, before anything runs."""
    out = str(tmp_path / "s")
    base = ["compare", "--task", "digits", "--lr-scales", "0.3,1,3", "--seeds", "1", "--steps",
            "20", "--range-steps", "20", "--parallel", "none", "--out", out]
    assert run_cli(capsys, *base, "--schedules", "constant(lr=0.05)")[0] == 0
    with Store.in_dir(out, create=False) as store:
        before = [(t.key, t.claims) for t in store.trials()]
    code, _, err = run_cli(capsys, *base, "--schedules", "constant(lr=0.15)")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "are the same schedule, constant(lr=0.15)" in err and "already holds" in err
    with Store.in_dir(out, create=False) as store:
        assert [(t.key, t.claims) for t in store.trials()] == before
        assert store.runs()[0].config["schedules"] == ["constant(lr=0.05)"]
    # listing both at once is the same refusal
    code, _, err = run_cli(capsys, *base[:-1], str(tmp_path / "both"), "--schedules",
                           "constant(lr=0.05)", "constant(lr=0.15)")
    assert code == 2 and "are the same schedule, constant(lr=0.15)" in err


def test_issue16_item14_config_toml_describes_every_schedule_and_seed_of_the_run(tmp_path,
                                                                                 capsys):
    out = tmp_path / "s"
    base = ["compare", "--task", "digits", "--steps", "20", "--range-steps", "20",
            "--parallel", "none", "--out", str(out)]
    assert run_cli(capsys, *base, "--schedules", "constant(lr=0.1)", "cosine(lr=0.1)",
                   "--seeds", "2")[0] == 0
    assert run_cli(capsys, *base, "--schedules", "constant(lr=0.2)", "--seeds", "1")[0] == 0
    saved = tomllib.loads((out / "config.toml").read_text(encoding="utf-8"))
    assert saved["schedules"] == ["constant(lr=0.1)", "cosine(lr=0.1)", "constant(lr=0.2)"]
    assert saved["seeds"] == 2
    with Store.in_dir(out, create=False) as store:
        keys = {t.key for t in store.trials()}
    reloaded = load_study_config(out / "config.toml")  # passed back, it covers every trial
    assert keys <= {f"{s}/seed{n}" for s in reloaded.schedules for n in reloaded.seed_list()}
