"""The two loss-curve laws as formulas over an LR sequence: what :mod:`.law` fits.

A law sees the LRs a run applied, ``lrs[i]`` at optimizer step ``i``, divided by the fit's LR
unit (the largest LR of the fit runs, so every LR is at most 1 and the parameters are of order
one whatever the optimizer), and gives the metric after ``s`` steps for each ``s`` asked.

* ``multi_power`` (Luo et al. 2025, arXiv 2503.12811)::

      L(s) = L0 + A * (S1(s) + S_W)^(-alpha) - LD(s)
      LD(s) = B * sum_{k} (a_{k-1} - a_k) * G(a_k^(-gamma) * S_k(s)),  G(x) = 1 - (C x + 1)^(-beta)

  ``S_W`` is the warmup's LR area (the steps before the LR first reaches its peak), ``S1`` the
  area after it, ``S_k(s) = a_k + ... + a_{s-1}`` the area since the k-th step, and ``k`` runs
  over the steps after the warmup where the LR changed (a decrease lowers the loss; an increase,
  a cyclic schedule's, raises it). Evaluated as a (steps asked x LR changes) matrix of prefix-sum
  differences: O(E*K), never the naive O(T^2) per step.
* ``annealing`` (Tissue et al. 2024, arXiv 2408.11029)::

      L(s) = L0 + A * S1(s)^(-alpha) - C * S2(s),   S2(s) = m_1 + ... + m_s,
      m_i = lam * m_{i-1} + (a_{i-1} - a_i)

  ``S1`` the whole LR area (warmup included), ``S2`` the annealing area with momentum ``lam``
  (the paper's 0.999, scaled to the run's length: see :func:`annealing_momentum`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

TINY = 1e-12
# LR changes the loss-drop sum keeps apart; beyond it neighbours are merged (a cosine over 5000
# steps changes at every step; 256 groups keep the fit fast and the sum within ~0.1% of exact)
MAX_CHANGES = 256


@dataclass(frozen=True)
class Design:
    """What a law needs of one LR sequence at the steps asked (computed once per fit)."""

    area: np.ndarray         # S1(s) + S_W: the LR area of the first s steps (warmup included)
    area_after: np.ndarray   # the area after the warmup only (multi_power's S1)
    warmup_area: float       # S_W
    drops: np.ndarray        # a_{k-1} - a_k for the LR changes after the warmup (K,)
    drop_lr: np.ndarray      # a_k at those changes (K,)
    since: np.ndarray        # S_k(s): (E, K), 0 where k >= s (the change had not happened)
    annealed: np.ndarray     # annealing's S2(s) at each step asked (E,)


def warmup_length(lrs: np.ndarray) -> int:
    """Steps before the LR first reaches its peak, when it climbs there from the start."""
    peak = int(np.argmax(lrs >= lrs.max() * (1 - 1e-9)))
    return peak if peak > 0 and np.all(np.diff(lrs[: peak + 1]) >= 0) else 0


def annealing_momentum(total_steps: int, lam: float = 0.999) -> float:
    """The annealing law's momentum for a run of ``total_steps``: the paper's ``lam`` (0.999)
    was set for runs of tens of thousands of steps; its memory (1/(1-lam) = 1000 steps) is kept
    as the same fraction of the run, never longer than 1000 steps (``lam`` itself) nor shorter
    than 10.
    """
    memory = min(1.0 / (1.0 - lam), max(10.0, total_steps / 20.0))
    return 1.0 - 1.0 / memory


def design(lrs: np.ndarray, steps: np.ndarray, lam: float) -> Design:
    """The sums both laws read, for the (unit-scaled) ``lrs`` at ``steps`` (steps done)."""
    lrs = np.asarray(lrs, dtype=float)
    steps = np.asarray(steps, dtype=int)
    prefix = np.concatenate([[0.0], np.cumsum(lrs)])       # prefix[s] = a_0 + ... + a_{s-1}
    warm = warmup_length(lrs)
    warmup_area = float(prefix[warm])
    change = np.diff(lrs)                                   # a_k - a_{k-1} for k = 1..T-1
    k = np.nonzero(np.abs(change) > TINY * max(1.0, float(np.abs(lrs).max())))[0] + 1
    k = k[k > warm]
    drops = -change[k - 1]
    if k.size > MAX_CHANGES:  # neighbouring changes merged: their summed drop at their middle
        groups = np.array_split(np.arange(k.size), MAX_CHANGES)
        drops = np.array([drops[g].sum() for g in groups])
        k = np.array([k[g[len(g) // 2]] for g in groups])
    since = prefix[steps][:, None] - prefix[k][None, :]
    since = np.where(k[None, :] < steps[:, None], since, 0.0)
    dec = np.concatenate([[0.0], -change])
    dec[: warm + 1] = 0.0                                   # the warmup's climb is not annealing
    momentum = lfilter([1.0], [1.0, -lam], dec)
    s2 = np.concatenate([[0.0], np.cumsum(momentum)])
    return Design(area=prefix[steps], area_after=prefix[steps] - warmup_area,
                  warmup_area=warmup_area, drops=drops, drop_lr=lrs[k], since=since,
                  annealed=s2[steps])


def multi_power(p: np.ndarray, d: Design) -> np.ndarray:
    """L0, A, alpha, B, C, beta, gamma -> the metric at the design's steps."""
    l0, a, alpha, b, c, beta, gamma = p
    power = a * np.maximum(d.area, TINY) ** (-alpha)
    if not d.drops.size:
        return np.asarray(l0 + power)
    x = np.maximum(d.drop_lr, TINY) ** (-gamma) * d.since
    g = 1.0 - (c * x + 1.0) ** (-beta)                      # 0 where the change is ahead
    return np.asarray(l0 + power - b * (g @ d.drops))


def multi_power_jacobian(p: np.ndarray, d: Design) -> np.ndarray:
    """d multi_power / d (L0, A, alpha, B, C, beta, gamma): (E, 7)."""
    _, a, alpha, b, c, beta, gamma = p
    area = np.maximum(d.area, TINY)
    power = area ** (-alpha)
    jac = np.zeros((area.size, 7))
    jac[:, 0] = 1.0
    jac[:, 1] = power
    jac[:, 2] = -a * power * np.log(area)
    if d.drops.size:
        lr = np.maximum(d.drop_lr, TINY)
        x = lr ** (-gamma) * d.since
        base = c * x + 1.0
        rest = base ** (-beta)
        slope = beta * rest / base                          # dG/d(cx)
        jac[:, 3] = -((1.0 - rest) @ d.drops)
        jac[:, 4] = -b * ((slope * x) @ d.drops)
        jac[:, 5] = -b * ((rest * np.log(base)) @ d.drops)
        jac[:, 6] = -b * ((slope * c * x * -np.log(lr)) @ d.drops)
    return jac


def annealing_jacobian(p: np.ndarray, d: Design) -> np.ndarray:
    """d annealing / d (L0, A, alpha, C): (E, 4)."""
    _, a, alpha, _ = p
    area = np.maximum(d.area, TINY)
    power = area ** (-alpha)
    return np.column_stack([np.ones_like(area), power, -a * power * np.log(area), -d.annealed])


def annealing(p: np.ndarray, d: Design) -> np.ndarray:
    """L0, A, alpha, C -> the metric at the design's steps."""
    l0, a, alpha, c = p
    return np.asarray(l0 + a * np.maximum(d.area, TINY) ** (-alpha) - c * d.annealed)


@dataclass(frozen=True)
class Form:
    """A law as the fit sees it: its formula, parameter names, bounds and starting points."""

    name: str
    names: tuple[str, ...]
    formula: Callable[[np.ndarray, Design], np.ndarray]
    jacobian: Callable[[np.ndarray, Design], np.ndarray]
    lower: tuple[float, ...]
    upper: tuple[float, ...]

    def starts(self, low: float, span: float, annealed: float, rng: np.random.Generator,
               extra: int) -> list[np.ndarray]:
        """Deterministic starts from the data's level (``low``: its best value, ``span``: its
        range, ``annealed``: the largest S2), a small grid over the exponents, and ``extra``
        random ones from ``rng``."""
        grid = [(alpha, shape) for alpha in (0.3, 0.7) for shape in (0.3, 1.0)]
        made = []
        for alpha, shape in grid:
            if self.name == "multi_power":
                made.append(np.array([low - 0.1 * span, span, alpha, 0.3 * span, 1.0, shape,
                                      shape]))
            else:
                made.append(np.array([low - 0.1 * span, span, alpha,
                                      0.3 * span * shape / max(annealed, TINY)]))
        for _ in range(extra):
            base = made[int(rng.integers(len(made)))]
            made.append(base * np.exp(rng.normal(0.0, 0.7, size=base.size))
                        + np.r_[rng.normal(0.0, 0.2 * span), np.zeros(base.size - 1)])
        return made


FORMS = {
    "multi_power": Form("multi_power", ("L0", "A", "alpha", "B", "C", "beta", "gamma"),
                        multi_power, multi_power_jacobian,
                        (-np.inf, 0.0, 0.01, 0.0, 1e-3, 0.01, 0.0),
                        (np.inf, np.inf, 3.0, np.inf, 1e3, 5.0, 2.0)),
    "annealing": Form("annealing", ("L0", "A", "alpha", "C"), annealing, annealing_jacobian,
                      (-np.inf, 0.0, 0.01, 0.0), (np.inf, np.inf, 3.0, np.inf)),
}
