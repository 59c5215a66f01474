"""torch-lr-finder's ``LRFinder.plot``: the recorded loss against the LR, trimmed at both
ends, with the steepest point of the plotted curve marked and returned.

>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import matplotlib.pyplot as plt
>>> history = {"lr": [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0],
...            "loss": [2.0, 1.95, 1.9, 1.0, 0.9, 3.0]}
>>> fig, ax = plt.subplots()
>>> ax, lr = plot_history(history, skip_start=1, skip_end=1, ax=ax)
>>> lr, ax.get_xscale()
(0.1, 'log')
>>> plt.close(fig)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lrscope.errors import InputError


def plot_history(history: dict[str, list[float]], skip_start: int = 10, skip_end: int = 5,
                 log_lr: bool = True, show_lr: float | None = None, ax: Any | None = None,
                 suggest_lr: bool = True) -> Any:
    """Draw ``history`` without its first ``skip_start`` and last ``skip_end`` points.

    Returns the axes, or ``(axes, lr)`` with ``suggest_lr``: the LR where the plotted loss
    falls fastest (the smallest ``np.gradient`` of the plotted points; a NaN gradient is
    never chosen). Without ``ax`` a new figure is made and shown (``plt.show()``).
    """
    if skip_start < 0:
        raise InputError("skip_start cannot be negative")
    if skip_end < 0:
        raise InputError("skip_end cannot be negative")
    if show_lr is not None and not isinstance(show_lr, float):
        raise InputError("show_lr must be float")
    lrs, losses = list(history["lr"]), list(history["loss"])
    if suggest_lr and len(lrs) < skip_start + skip_end + 2:
        raise RuntimeError(f"Need at least {skip_start + skip_end + 2} iterations to suggest a "
                           f"learning rate. Got {len(lrs)}")
    end = None if skip_end == 0 else -skip_end
    lrs, losses = lrs[skip_start:end], losses[skip_start:end]

    import matplotlib.pyplot as plt

    figure = None
    if ax is None:
        figure, ax = plt.subplots()
    ax.plot(lrs, losses)
    suggested = None
    if suggest_lr:
        gradient = np.gradient(np.asarray(losses, dtype=float))
        index = int(np.argmin(np.where(np.isfinite(gradient), gradient, np.inf)))
        suggested = lrs[index]
        ax.scatter(suggested, losses[index], s=75, marker="o", color="red", zorder=3,
                   label="steepest gradient")
        ax.legend()
    if log_lr:
        ax.set_xscale("log")
    ax.set_xlabel("Learning rate")
    ax.set_ylabel("Loss")
    if show_lr is not None:
        ax.axvline(x=show_lr, color="red")
    if figure is not None:
        plt.show()
    return (ax, suggested) if suggest_lr else ax
