"""What schedule a logged learning-rate curve is, read from its shape alone.

Another tool's run names do not always say what ran (the seed study's CyclicLR attempts sit in
a folder TensorBoard named ``ParallelMode.GLOBAL_rank_0``), so an import names such runs by
their LR curve: a rise over two decades or more is a range test (``ramp``), a triangle wave
``cyclic``, one rise then one fall ``onecycle``, a constant ratio between steps
``exponential``, a few flat stretches ``step``, a straight or cosine-shaped fall ``linear`` or
``cosine``, a flat line ``constant``; anything else ``""``.
"""

from __future__ import annotations

import numpy as np

# How far (relative to the curve's span) a point may sit off a fitted shape: float32 logs.
FIT_TOLERANCE = 1e-3
# Torch's class names, for labelling a run whose folder name does not say what it is.
SCHEDULER_NAMES = {
    "ramp": "range test", "constant": "constant LR", "step": "StepLR",
    "exponential": "ExponentialLR", "linear": "LinearLR", "cosine": "CosineAnnealingLR",
    "onecycle": "OneCycleLR", "cyclic": "CyclicLR",
}


def is_ramp(lrs: np.ndarray) -> bool:
    """A range test's LR: positive, rising at every step, over at least two decades.

    >>> is_ramp(np.geomspace(1e-6, 1.0, 50)), is_ramp(np.geomspace(1.0, 1e-6, 50))
    (True, False)
    """
    return (len(lrs) >= 10 and bool(np.all(lrs > 0)) and bool(np.all(np.diff(lrs) > 0))
            and bool(lrs[-1] / lrs[0] >= 100))


def shape_of(lrs: np.ndarray) -> str:
    """The schedule family an LR curve has the shape of, or ``""``.

    >>> t = np.arange(300)
    >>> triangle = 0.1 + 0.9 * np.abs(((t + 50) % 100) - 50) / 50
    >>> [shape_of(c) for c in (np.geomspace(1e-6, 1, 300), triangle, 0.5 * 0.99**t,
    ...                        0.5 * 0.5 ** (t // 100), np.full(300, 0.1),
    ...                        np.interp(t, [0, 90, 299], [0.04, 1.0, 1e-5]))]
    ['ramp', 'cyclic', 'exponential', 'step', 'constant', 'onecycle']
    """
    lrs = np.asarray(lrs, dtype=float)
    if len(lrs) < 3 or not np.all(np.isfinite(lrs)):
        return ""
    span = float(lrs.max() - lrs.min())
    if span <= FIT_TOLERANCE * abs(float(lrs.max())):
        return "constant"
    if is_ramp(lrs):
        return "ramp"
    moves = np.diff(lrs)
    moves = moves[np.abs(moves) > FIT_TOLERANCE * span * 1e-3]  # float32 jitter is no move
    turns = int(np.count_nonzero(np.diff(np.sign(moves)) != 0))
    if turns >= 2:
        return "cyclic"
    if turns == 1:
        return "onecycle" if moves[0] > 0 else ""
    if moves[0] > 0:
        return ""  # rises, but less than a range test: nothing torch names
    return _falling_shape(lrs, len(moves))


def _falling_shape(lrs: np.ndarray, n_moves: int) -> str:
    """A curve that only falls: exponential, step, linear, cosine, or ``""``."""
    # A fast decay underflows float32 to 0 (through denormals) and stays flat there: the ratio
    # between steps is read where the LR is still a normal number.
    normal = lrs > max(float(lrs[0]) * 1e-20, 1e-30)
    ratios = lrs[1:][normal[1:]] / lrs[:-1][normal[1:]]
    if len(ratios) >= 2 and float(np.ptp(ratios)) <= FIT_TOLERANCE:
        return "exponential"
    if n_moves <= len(lrs) // 5:  # flat most of the time: drops at a few steps
        return "step"
    t = np.linspace(0.0, 1.0, len(lrs))
    low, high, span = float(lrs[-1]), float(lrs[0]), float(lrs[0] - lrs[-1])
    for family, fitted in (("linear", high - span * t),
                           ("cosine", low + span * (1 + np.cos(np.pi * t)) / 2)):
        if float(np.max(np.abs(lrs - fitted))) <= 10 * FIT_TOLERANCE * span:
            return family
    return ""
