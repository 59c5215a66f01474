"""One rule for "the same trial, run elsewhere": a worker process, a Ray actor or a thread runs
the same arithmetic as this process, but not bit for bit on every machine (CI's once differed
in the 9th digit: tests/trials/runners/test_processes_study.py), so equal means equal to
float precision (rtol 1e-6); vmapped (batched) runs round differently and have their own,
looser rule where they are tested."""

from __future__ import annotations

import numpy as np
import pytest

RTOL = 1e-6


def assert_same_result(res, ref, key: str) -> None:  # type: ignore[no-untyped-def]
    """``res`` (a TrialResult run elsewhere) is ``ref``'s: train losses and every evaluation."""
    np.testing.assert_allclose(res.train_loss, ref.train_loss, rtol=RTOL, err_msg=key)
    assert [e.step for e in res.evaluations] == [e.step for e in ref.evaluations], key
    for seen, want in zip(res.evaluations, ref.evaluations, strict=True):
        for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
            value, expected = getattr(seen, name), getattr(want, name)
            assert (value is None and expected is None) or \
                value == pytest.approx(expected, rel=RTOL), (key, name)
        assert seen.metrics == pytest.approx(want.metrics, rel=RTOL), key
