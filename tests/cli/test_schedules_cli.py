"""``lrscope schedules``: the figure, the CSV values and the table, run in-process."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.image
import pytest

from lrscope import cli
from lrscope import schedules as S
from lrscope.cli import schedules as command

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def png_height(path: Path) -> int:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[1] > 500 and image.std() > 0  # not a blank canvas
    return int(image.shape[0])


def test_specs_steps_csv_and_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = [
        "exponential(lr=1, gamma=0.999)", "onecycle(max_lr=1.1)", "wsd(lr=0.5, cooldown='1-sqrt')"
    ]
    out, values = tmp_path / "figs" / "s.png", tmp_path / "values.csv"
    argv = ["--steps", "300", "--out", str(out), "--csv", str(values)]
    code = cli.main(["schedules", *specs, *argv])
    assert code == 0
    columns, rows = read_csv(values)
    assert columns == ["spec", "step", "lr", "momentum"]
    assert len(rows) == 3 * 300
    expected = [S.parse(spec, total_steps=300) for spec in specs]
    assert [rows[i * 300]["spec"] for i in range(3)] == [s.spec() for s in expected]
    for i, schedule in enumerate(expected):
        block = rows[i * 300 : (i + 1) * 300]
        assert [int(r["step"]) for r in block] == list(range(300))
        assert [float(r["lr"]) for r in block] == schedule.lrs(300)  # exact: repr round-trips
        momenta = [r["momentum"] for r in block]
        if schedule.cycles_momentum:
            assert [float(m) for m in momenta] == [schedule.momentum(t) for t in range(300)]
        else:
            assert set(momenta) == {""}
    assert png_height(out) > 0
    table = capsys.readouterr().out
    assert "first" in table and "final" in table and "wrote" in table
    assert "1.1" in table and "4.4e-06" in table  # onecycle's max and final LR


def test_momentum_panel_only_when_a_schedule_cycles_it(tmp_path: Path) -> None:
    plain, cycled = tmp_path / "plain.png", tmp_path / "cycled.png"
    assert cli.main(
        ["schedules", "cosine(lr=1, min_lr=0.1)", "--steps", "50", "--out", str(plain)]
    ) == 0
    assert cli.main(["schedules", "cosine(lr=1, min_lr=0.1)",
                     "cyclic(base_lr=0.1, max_lr=1, step_size_up=5)",
                     "--steps", "50", "--out", str(cycled)]) == 0
    assert png_height(cycled) > png_height(plain)


def test_log_scale_only_when_the_lrs_span_decades(tmp_path: Path) -> None:
    def scale(*specs: str) -> str:
        schedules, steps = command.resolve(list(specs), 2345)
        curves = [command.evaluate(s, steps) for s in schedules]
        return command.plot(curves, tmp_path / "f.png").axes[0].get_yscale()

    assert scale("exponential(lr=1, gamma=0.99)") == "log"
    assert scale("cosine(lr=1, min_lr=0.1)", "constant(lr=0.5)") == "linear"


def test_no_spec_plots_the_seed_schedules_over_2345_steps(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["schedules", "--csv", "seed.csv"]) == 0
    assert (tmp_path / "runs" / "schedules.png").read_bytes()[:8] == PNG_SIGNATURE  # default --out
    _, rows = read_csv(tmp_path / "seed.csv")
    specs = list(dict.fromkeys(r["spec"] for r in rows))
    assert specs == [S.parse(s, total_steps=2345).spec() for s in S.SEED_SPECS]
    assert len(rows) == len(S.SEED_SPECS) * 2345
    first = {r["spec"]: float(r["lr"]) for r in rows if r["step"] == "0"}
    assert first["step(lr=1, step_size=100, gamma=0.5)"] == 1.0
    assert first["onecycle(max_lr=1.1, total_steps=2345)"] == pytest.approx(0.044)


def test_steps_default_to_the_longest_total_steps_given(tmp_path: Path) -> None:
    values = tmp_path / "v.csv"
    specs = ["onecycle(max_lr=1, total_steps=120)", "exponential(lr=1, gamma=0.9)"]
    argv = ["--out", str(tmp_path / "f.png"), "--csv", str(values)]
    assert cli.main(["schedules", *specs, *argv]) == 0
    _, rows = read_csv(values)
    assert len(rows) == 2 * 120
