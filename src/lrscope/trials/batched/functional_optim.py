"""torch's SGD and Adam/AdamW updates, applied to K stacked copies of a param group at once.

The batched runner keeps each param group of the K trials as one flat ``(K, P)`` tensor (row k is
trial k's parameters, concatenated). An update here is a handful of elementwise ops on that
tensor, whatever the number of parameters, which is what makes K small trials cheap.

The formulas are torch's own single-tensor paths (``torch.optim.sgd._single_tensor_sgd`` and
``torch.optim.adam._single_tensor_adam``), op for op, so that row k follows exactly the
trajectory ``torch.optim`` would give trial k alone. What may differ per row is only what a
schedule sets: the LR and the momentum (Adam's beta1). Those arrive as Python floats per row,
are combined in double precision as torch does with its Python-float hyper-parameters, and only
then become a ``(K, 1)`` column in the parameters' dtype.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch

from lrscope.errors import InputError

UNSUPPORTED_ADVICE = "use --parallel none|processes (or run_trial) for this model or optimizer"


def column(values: Sequence[float] | Sequence[bool], like: torch.Tensor) -> torch.Tensor:
    """A ``(K, 1)`` tensor of ``values`` in ``like``'s dtype and device, to scale rows of it.

    >>> column([1.0, 2.0], torch.zeros(2, 3)).shape
    torch.Size([2, 1])
    """
    # Built on the host, then copied without waiting for the device (no sync per step on a
    # GPU); Python floats to ``like.dtype`` round here exactly as they would on the device.
    return torch.tensor(values, dtype=like.dtype).to(like.device, non_blocking=True).unsqueeze(1)


class FlatRule(ABC):
    """The update rule and state of one param group for K stacked trials."""

    #: the group's momentum (SGD) or beta1 (Adam) before any schedule sets it
    default_momentum: float

    @abstractmethod
    def update(self, param: torch.Tensor, grad: torch.Tensor, lr: Sequence[float],
               momentum: Sequence[float]) -> None:
        """One optimizer step on ``param`` (K, P) in place; ``lr[k]``, ``momentum[k]`` per row."""

    @abstractmethod
    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the state of ``rows`` (in that order): the other trials have stopped."""


class FlatSGD(FlatRule):
    """``torch.optim.SGD`` (momentum, dampening, nesterov, weight_decay, maximize).

    >>> p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    >>> opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    >>> flat, rule = p.detach().clone().unsqueeze(0), FlatSGD(opt.param_groups[0])
    >>> for _ in range(3):
    ...     p.grad = p.detach() ** 2; opt.step()
    ...     rule.update(flat, flat ** 2, [0.1], [0.9])
    >>> torch.equal(flat[0], p.detach())
    True
    """

    def __init__(self, group: dict[str, Any]) -> None:
        self.default_momentum = float(group["momentum"])
        self.dampening = float(group["dampening"])
        self.weight_decay = float(group["weight_decay"])
        self.nesterov = bool(group["nesterov"])
        self.maximize = bool(group.get("maximize", False))
        self.buf: torch.Tensor | None = None
        # torch creates a row's momentum buffer on its first step with momentum != 0.
        self.has_buf: list[bool] = []

    def update(self, param: torch.Tensor, grad: torch.Tensor, lr: Sequence[float],
               momentum: Sequence[float]) -> None:
        g = -grad if self.maximize else grad
        if self.weight_decay != 0:
            g = g.add(param, alpha=self.weight_decay)
        if not self.has_buf:
            self.has_buf = [False] * len(param)
        on = [m != 0 for m in momentum]
        if any(on):
            g = self._momentum(g, momentum, on)
        param.addcmul_(column([-v for v in lr], param), g)

    def _momentum(self, g: torch.Tensor, momentum: Sequence[float], on: list[bool]) -> torch.Tensor:
        m = column(momentum, g)
        if self.buf is None:
            self.buf = torch.zeros_like(g)
        if all(on) and all(self.has_buf):  # the usual step: torch's buf.mul_(m).add_(g, 1 - d)
            self.buf.mul_(m).add_(g, alpha=1 - self.dampening)
            d = torch.addcmul(g, self.buf, m) if self.nesterov else self.buf
        elif all(on) and not any(self.has_buf):  # the first step: buf = g.clone()
            self.buf.copy_(g)
            d = torch.addcmul(g, self.buf, m) if self.nesterov else self.buf
        else:  # rows in different states (some schedules set momentum 0): row by row, with masks
            on_col = column(on, g).bool()
            has_col = column(self.has_buf, g).bool()
            updated = torch.add(self.buf * m, g, alpha=1 - self.dampening)
            self.buf = torch.where(on_col, torch.where(has_col, updated, g), self.buf)
            moved = torch.addcmul(g, self.buf, m) if self.nesterov else self.buf
            d = torch.where(on_col, moved, g)
        self.has_buf = [h or o for h, o in zip(self.has_buf, on, strict=True)]
        return d

    def keep(self, rows: torch.Tensor) -> None:
        if self.buf is not None:
            self.buf = self.buf[rows]
        if self.has_buf:
            self.has_buf = [self.has_buf[int(r)] for r in rows]


class FlatAdam(FlatRule):
    """``torch.optim.Adam`` / ``AdamW`` (betas, eps, weight_decay, decoupled, maximize).

    >>> p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    >>> opt = torch.optim.AdamW([p], lr=0.1, weight_decay=0.1)
    >>> flat, rule = p.detach().clone().unsqueeze(0), FlatAdam(opt.param_groups[0])
    >>> for _ in range(3):
    ...     p.grad = p.detach() ** 2; opt.step()
    ...     rule.update(flat, flat ** 2, [0.1], [0.9])
    >>> torch.allclose(flat[0], p.detach(), rtol=1e-6, atol=0)
    True
    """

    def __init__(self, group: dict[str, Any], decoupled: bool = False) -> None:
        if group.get("amsgrad", False):
            raise InputError(f"optimizer: batched runs do not support Adam's amsgrad=True; "
                             f"{UNSUPPORTED_ADVICE}")
        beta1, beta2 = (float(b) for b in group["betas"])
        self.default_momentum, self.beta2 = beta1, beta2
        self.eps = float(group["eps"])
        self.weight_decay = float(group["weight_decay"])
        self.decoupled = bool(group.get("decoupled_weight_decay", decoupled))
        self.maximize = bool(group.get("maximize", False))
        self.step = 0  # every row steps together, so one counter serves all
        self.exp_avg: torch.Tensor | None = None
        self.exp_avg_sq: torch.Tensor | None = None

    def update(self, param: torch.Tensor, grad: torch.Tensor, lr: Sequence[float],
               momentum: Sequence[float]) -> None:
        if self.exp_avg is None or self.exp_avg_sq is None:
            self.exp_avg, self.exp_avg_sq = torch.zeros_like(param), torch.zeros_like(param)
        self.step += 1
        g = -grad if self.maximize else grad
        if self.weight_decay != 0:
            if self.decoupled:
                param.mul_(column([1 - v * self.weight_decay for v in lr], param))
            else:
                g = g.add(param, alpha=self.weight_decay)
        if len(set(momentum)) == 1:
            self.exp_avg.lerp_(g, 1 - momentum[0])
        else:
            self.exp_avg.lerp_(g, column([1 - b for b in momentum], g))
        self.exp_avg_sq.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
        step = float(self.step)  # torch reads its step tensor back as a Python float
        step_size = [v / (1 - b**step) for v, b in zip(lr, momentum, strict=True)]
        denom = (self.exp_avg_sq.sqrt() / (1 - self.beta2**step) ** 0.5).add_(self.eps)
        # torch: param.addcdiv_(exp_avg, denom, value=-step_size) = param + (-s * exp_avg) / denom
        param.addcdiv_(self.exp_avg * column([-s for s in step_size], param), denom)

    def keep(self, rows: torch.Tensor) -> None:
        if self.exp_avg is not None and self.exp_avg_sq is not None:
            self.exp_avg, self.exp_avg_sq = self.exp_avg[rows], self.exp_avg_sq[rows]


def flat_rules(optimizer: torch.optim.Optimizer) -> list[FlatRule]:
    """One :class:`FlatRule` per param group of ``optimizer``, with its hyper-parameters.

    Only ``torch.optim.SGD``, ``Adam`` and ``AdamW`` themselves are known (a subclass may change
    ``step()``, so it is refused like any other optimizer).

    >>> flat_rules(torch.optim.RMSprop([torch.nn.Parameter(torch.zeros(1))]))
    Traceback (most recent call last):
    ...
    lrscope.errors.InputError: optimizer: batched runs support torch.optim.SGD, Adam and AdamW, \
not RMSprop; use --parallel none|processes (or run_trial) for this model or optimizer
    """
    kind = type(optimizer)
    if kind is torch.optim.SGD:
        return [FlatSGD(group) for group in optimizer.param_groups]
    if kind in (torch.optim.Adam, torch.optim.AdamW):
        decoupled = kind is torch.optim.AdamW
        return [FlatAdam(group, decoupled) for group in optimizer.param_groups]
    raise InputError(f"optimizer: batched runs support torch.optim.SGD, Adam and AdamW, not "
                     f"{kind.__name__}; {UNSUPPORTED_ADVICE}")
