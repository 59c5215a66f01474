"""The output folder of ``lrscope find``, written from a finished range test's result.

``result.json`` (the summary plus the task and the resolved config), ``history.csv`` and
``history.json`` (one row per step; a loss that blew up is kept as ``nan``/``inf``, strings in
the JSON so that it stays strict JSON; with ``--seeds N`` the combined curve, and every seed's
rows, led by a ``seed`` column, in ``history_seeds.csv``), the two figures, ``tb/`` with the
seed's TensorBoard tags, and ``config.toml``/``config.json`` (rerun with
``--config DIR/config.toml``).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from lrscope import __version__
from lrscope.config.base import save_config
from lrscope.config.find import FindConfig
from lrscope.data.tasks import Task
from lrscope.outputs.tensorboard import TensorBoardWriter
from lrscope.rangetest.result import RangeTestResult

FILES = ("result.json", "history.csv", "history.json", "loss_vs_lr.png", "lr_vs_step.png", "tb",
         "config.toml", "config.json")
SEEDS_HISTORY = "history_seeds.csv"  # with several seeds: every seed's rows in one table


def _json_float(value: Any) -> Any:
    """Non-finite floats as the strings "nan", "inf", "-inf" (float() reads them back)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def result_summary(result: RangeTestResult, config: FindConfig, task: Task) -> dict[str, Any]:
    """What result.json holds: the result's own summary, then how the run was set up."""
    return {
        **result.to_dict(),
        "task": task.name,
        "model": task.model_name or config.model,
        "seed": config.seed,
        "device": str(config.resolved_device()) if config.engine == "local" else None,
        "optimizer": config.optimizer.name,
        "train_examples": len(task.train_x),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "lrscope_version": __version__,
        "files": list(FILES) + ([SEEDS_HISTORY] if result.runs else []),
        "config": config.model_dump(mode="json"),
    }


def write_csv(rows: list[dict[str, Any]], path: Path, columns: list[str]) -> None:
    """``rows`` as CSV with these columns (None as an empty field)."""
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)


def write_history(rows: list[dict[str, Any]], out: Path) -> None:
    """history.csv and history.json from ``result.history_rows()``."""
    columns = list(rows[0]) if rows else ["step", "lr", "loss", "smoothed_loss"]
    write_csv(rows, out / "history.csv", columns)
    strict = [{k: _json_float(v) for k, v in row.items()} for row in rows]
    (out / "history.json").write_text(json.dumps(strict, indent=1) + "\n", encoding="utf-8")


def write_tensorboard(result: RangeTestResult, logdir: Path) -> None:
    """LR/train and Loss/train per step, Loss/test at the validation points, in ``logdir``."""
    with TensorBoardWriter(logdir) as tb:
        for row in result.history_rows():
            tb.log_step(row["step"], row["lr"], row["loss"])
            tb.log_scalar("Loss/train_smoothed", row["smoothed_loss"], row["step"])
            if row.get("val_loss") is not None:
                tb.log_eval(row["step"], row["val_loss"])


def write_outputs(out: Path, result: RangeTestResult, config: FindConfig, task: Task) -> None:
    """Every file of the output folder ``out`` (created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out)
    write_history(result.history_rows(), out)
    if result.runs:
        rows = result.seed_rows()
        write_csv(rows, out / SEEDS_HISTORY, list(rows[0]) if rows else ["seed"])
    result.plot(out / "loss_vs_lr.png")
    result.plot_lr(out / "lr_vs_step.png")
    write_tensorboard(result, out / "tb")
    summary = result_summary(result, config, task)
    (out / "result.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
