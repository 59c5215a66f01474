"""TensorBoard events written with the seed's tags and read back by TensorBoard's own reader."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lrscope.outputs.tensorboard import (
    ACCURACY_TEST,
    LOSS_TEST,
    LOSS_TRAIN,
    LR_TRAIN,
    SEED_TAGS,
    TensorBoardWriter,
    read_scalars,
)


def test_tags_are_the_seed_studys() -> None:
    assert SEED_TAGS == ("LR/train", "Loss/train", "Loss/test", "Accuracy/test")


def test_steps_and_evaluations_read_back(tmp_path: Path) -> None:
    lrs = np.logspace(-5, 0, 25)
    losses = 2.3 * np.exp(-np.arange(25) / 10)
    with TensorBoardWriter(tmp_path / "tb") as tb:
        for step, (lr, loss) in enumerate(zip(lrs, losses, strict=True)):
            tb.log_step(step, lr, loss)
            if step % 10 == 9:
                tb.log_eval(step, loss * 1.1, accuracy=step / 25)
        tb.log_eval(24, 0.5)  # accuracy unknown: only the loss is written
    scalars = read_scalars(tmp_path / "tb")
    assert set(scalars) == {LR_TRAIN, LOSS_TRAIN, LOSS_TEST, ACCURACY_TEST}
    assert [s for s, _ in scalars[LR_TRAIN]] == list(range(25))
    np.testing.assert_allclose([v for _, v in scalars[LR_TRAIN]], lrs, rtol=1e-6)
    np.testing.assert_allclose([v for _, v in scalars[LOSS_TRAIN]], losses, rtol=1e-6)
    assert [s for s, _ in scalars[LOSS_TEST]] == [9, 19, 24]
    np.testing.assert_allclose([v for _, v in scalars[LOSS_TEST]],
                               [losses[9] * 1.1, losses[19] * 1.1, 0.5], rtol=1e-6)
    assert [s for s, _ in scalars[ACCURACY_TEST]] == [9, 19]
    np.testing.assert_allclose([v for _, v in scalars[ACCURACY_TEST]], [0.36, 0.76], rtol=1e-6)


def test_non_finite_losses_are_kept(tmp_path: Path) -> None:
    with TensorBoardWriter(tmp_path) as tb:
        tb.log_step(0, 1.0, 2.0)
        tb.log_step(1, 10.0, math.nan)
        tb.log_step(2, 100.0, math.inf)
    values = [v for _, v in read_scalars(tmp_path)[LOSS_TRAIN]]
    assert values[0] == 2.0 and math.isnan(values[1]) and values[2] == math.inf


def test_flush_makes_events_readable_before_close(tmp_path: Path) -> None:
    tb = TensorBoardWriter(tmp_path, flush_secs=3600)
    try:
        tb.log_scalar("Custom/x", 7.0, 3)
        tb.flush()
        assert read_scalars(tmp_path)["Custom/x"] == [(3, 7.0)]
    finally:
        tb.close()
