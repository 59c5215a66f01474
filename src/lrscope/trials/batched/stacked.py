"""K copies of one model, trained as one: stacked parameters, a vmapped forward, flat updates.

The module itself is only a template: its structure is reused through
``torch.func.functional_call`` with, in place of its own parameters, K stacked copies (one row
per trial) that ``torch.func.vmap`` maps over while the data is shared (``in_dims=None``).

Each param group of the optimizer lives in one contiguous ``(K, P)`` leaf tensor; the
parameters are views of it made afresh every step (``split`` then ``view``), so autograd hands
back the whole group's gradient as one ``(K, P)`` tensor and the update
(:mod:`lrscope.trials.batched.functional_optim`) is a few ops on it. Parameters the optimizer
does not train stay unstacked and shared by all K trials.

Buffers: one that the training forward writes (BatchNorm's running mean and variance, found by
its probe) gets K stacked copies, mapped over like the parameters, so that each trial
updates its own in training and reads its own in evaluation; vmap writes the in-place update
into row k of the stack. The others are constant and shared, and so is BatchNorm's
``num_batches_tracked``: every row steps together, so one counter is every trial's count (and
BatchNorm with ``momentum=None`` reads it as a Python number, which a stacked one could not be).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, vmap

from lrscope.data.tasks.base import LossFn
from lrscope.errors import InputError
from lrscope.schedules.torch_adapter import group_ratios
from lrscope.trials.batched.functional_optim import UNSUPPORTED_ADVICE, FlatRule, flat_rules
from lrscope.trials.batched.probe import step_counters


@dataclass
class StackedGroup:
    """One param group: names and shapes of its parameters, their K flat copies, its rule."""

    names: list[str]
    shapes: list[torch.Size]
    flat: torch.Tensor  # (K, P): row k holds trial k's parameters of this group
    rule: FlatRule
    ratio: float  # this group's LR relative to the reference group's (schedules.group_ratios)

    def views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        sizes = [math.prod(shape) for shape in self.shapes]
        parts = flat.split(sizes, dim=1)
        return {name: part.view(len(flat), *shape)
                for name, shape, part in zip(self.names, self.shapes, parts, strict=True)}


class StackedModel:
    """``k`` trials of ``model`` under ``optimizer``'s rule, all starting from its weights.

    ``used`` names the parameters that receive a gradient; the others are left alone, as
    ``torch.optim`` skips a parameter whose ``.grad`` is ``None``. ``written`` names the
    buffers that the training forward writes: each trial keeps its own copy of those.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, k: int,
                 loss_fn: LossFn, used: set[str], device: torch.device,
                 written: frozenset[str] = frozenset()) -> None:
        self.model, self.loss_fn, self.k = model, loss_fn, k
        names = {id(p): n for n, p in model.named_parameters()}
        rules = flat_rules(optimizer)
        ratios = group_ratios(optimizer)  # the one rule (a frozen group at lr 0 stays at 0)
        self.groups: list[StackedGroup] = []
        trained: set[str] = set()
        for group, rule, ratio in zip(optimizer.param_groups, rules, ratios, strict=True):
            params = [p for p in group["params"] if names.get(id(p)) in used]
            if any(id(p) not in names for p in group["params"]):
                raise InputError("optimizer: it holds a tensor that is not a parameter of the "
                                 f"model; {UNSUPPORTED_ADVICE}")
            if not params:
                continue
            if len({p.dtype for p in params}) > 1:
                raise InputError("optimizer: a param group mixes dtypes; batched runs keep a "
                                 f"group in one tensor; {UNSUPPORTED_ADVICE}")
            flat = torch.cat([p.detach().reshape(-1) for p in params]).to(device)
            self.groups.append(StackedGroup(
                [names[id(p)] for p in params], [p.shape for p in params],
                flat.unsqueeze(0).repeat(k, 1), rule, ratio))
            trained.update(names[id(p)] for p in params)
        # Untrained parameters: one shared copy, mapped over by nobody.
        self.fixed = {n: p.detach().to(device) for n, p in model.named_parameters()
                      if n not in trained}
        counters = step_counters(model)
        self.buffers = {n: b.detach().to(device).unsqueeze(0).repeat(k, *[1] * b.dim())
                        for n, b in model.named_buffers() if n in written and n not in counters}
        # Shared buffers are copies too: the stack's counter steps, the template's stays.
        self.fixed.update({n: b.detach().to(device).clone() for n, b in model.named_buffers()
                           if n not in self.buffers})
        # momentum[g][k]: what group g's momentum (or beta1) is for trial k. A schedule that
        # cycles momentum overwrites it; the last value set stays, as with apply_schedule.
        self.momentum = [[g.rule.default_momentum] * k for g in self.groups]
        self._forward = vmap(self._one_forward, in_dims=(0, 0, None))
        self._loss = vmap(self._one_loss, in_dims=(0, 0, None, None))

    # -- one trial's view, which vmap maps over the stacked rows --------------------------------
    def _one_forward(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                     x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.model, (params, buffers, self.fixed), (x,))

    def _one_loss(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                  x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(self._one_forward(params, buffers, x), y)

    def _params(self, flats: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        params: dict[str, torch.Tensor] = {}
        for group, flat in zip(self.groups, flats, strict=True):
            params.update(group.views(flat))
        return params

    # -- what the trial loop uses ---------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs of every trial for the shared input ``x``: shape ``(K, *model(x).shape)``."""
        return self._forward(self._params([g.flat for g in self.groups]), self.buffers, x)

    def losses(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``loss_fn(outputs[k], y)`` for every k: shape ``(K,)``."""
        return vmap(self.loss_fn, in_dims=(0, None))(outputs, y)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, lr: Sequence[float],
                   momentum: Sequence[float | None]) -> torch.Tensor:
        """One optimizer step of every trial on batch ``(x, y)``; returns the ``(K,)`` losses.

        ``lr[k]`` is trial k's scheduled LR (each group scales it by its ratio);
        ``momentum[k]`` is the momentum (or beta1) its schedule sets, None where it sets none.
        """
        for current in self.momentum:
            for k, m in enumerate(momentum):
                if m is not None:
                    current[k] = m
        flats = [g.flat.detach().requires_grad_() for g in self.groups]
        loss = self._loss(self._params(flats), self.buffers, x, y)
        # Each trial's loss depends only on its own row, so the gradient of the sum is every
        # trial's own gradient, row by row (a NaN in one row stays in that row).
        grads = torch.autograd.grad(loss.sum(), flats) if flats else ()
        with torch.no_grad():
            for g, grad, momenta in zip(self.groups, grads, self.momentum, strict=True):
                g.rule.update(g.flat, grad, [v * g.ratio for v in lr], momenta)
        return loss.detach()

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the trials in ``rows`` (stopped ones cost nothing from here on)."""
        self.k = len(rows)
        self.momentum = [[current[int(r)] for r in rows] for current in self.momentum]
        for g in self.groups:
            g.flat = g.flat[rows]
            g.rule.keep(rows)
        self.buffers = {n: b[rows] for n, b in self.buffers.items()}

    def state(self, row: int) -> dict[str, torch.Tensor]:
        """Row ``row``'s trial as ``model.state_dict()`` names it: its parameters and buffers
        (copies, on the stack's device)."""
        state = {n: t.clone() for n, t in self.fixed.items()}
        for g in self.groups:
            state.update({n: t[row].clone() for n, t in g.views(g.flat).items()})
        state.update({n: b[row].clone() for n, b in self.buffers.items()})
        return state
