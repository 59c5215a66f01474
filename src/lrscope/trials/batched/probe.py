"""One plain training step of the template model, to learn what stacking it needs.

Which parameters get a gradient (``torch.optim`` skips the others, so the batched update must
too), which buffers the training forward writes (each trial then keeps its own copy), and how
many bytes of activations one forward saves for backward, and how many bytes per example the
largest layer holds at once, its input and output (both for the memory estimate). The model
is left as found: weights, buffers, gradients and the global RNGs (the probe's dropout draws
must not shift the trials' masks).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lrscope.data.tasks.base import LossFn
from lrscope.rng import preserved_rng


@dataclass(frozen=True)
class Probe:
    """What one training step of the template touched."""

    used: frozenset[str]  # parameters that received a gradient
    written: frozenset[str]  # buffers the forward changed in place
    activation_bytes: int  # saved for backward by one forward (not weights, not the input)
    trained_bytes: int  # the used parameters, once
    written_bytes: int  # the written buffers that each trial keeps a copy of, once
    # the most any one layer holds at once (its inputs and its output), per example: what a
    # no-grad forward peaks at, and what backward holds as that layer's gradients
    layer_bytes_per_example: int = 0


def probe(model: nn.Module, loss_fn: LossFn, batch: tuple[torch.Tensor, torch.Tensor],
          device: torch.device) -> Probe:
    """One forward and backward of ``model`` on ``batch``; see the module docstring.

    >>> net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    >>> found = probe(net, nn.functional.mse_loss, (torch.ones(5, 4), torch.zeros(5, 3)),
    ...               torch.device("cpu"))
    >>> sorted(found.written), float(net[1].running_mean.abs().sum()), net[0].weight.grad
    (['1.num_batches_tracked', '1.running_mean', '1.running_var'], 0.0, None)
    >>> found.activation_bytes > 0
    True
    """
    x, y = (t.to(device) for t in batch)
    buffers = dict(model.named_buffers())
    before = {name: b.detach().clone() for name, b in buffers.items()}
    versions = {name: b._version for name, b in buffers.items()}
    # Storages that are not activations: the weights (saved by every matmul) and the input.
    skip = {p.untyped_storage().data_ptr() for p in model.parameters()}
    skip |= {x.untyped_storage().data_ptr(), y.untyped_storage().data_ptr()}
    saved: dict[int, int] = {}
    layers: list[int] = []

    def held(module: nn.Module, inputs: tuple[object, ...], output: object) -> None:
        layers.append(sum(t.nbytes for t in (*inputs, output) if isinstance(t, torch.Tensor)))

    hooks = [m.register_forward_hook(held) for m in model.modules() if not list(m.children())]

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    try:
        with preserved_rng(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss_fn(model(x), y).backward()
    finally:
        for hook in hooks:
            hook.remove()
    used = frozenset(n for n, p in model.named_parameters() if p.grad is not None)
    model.zero_grad(set_to_none=True)
    # An in-place op bumps a buffer's version, but BatchNorm's kernel writes its running
    # statistics without: those are known, and a changed value catches any other such write.
    written = frozenset(n for n, b in buffers.items() if b._version != versions[n]
                        or not torch.equal(b, before[n])) | _norm_statistics(model)
    with torch.no_grad():
        for name in written:
            buffers[name].copy_(before[name])
    params = dict(model.named_parameters())
    return Probe(used, written, sum(saved.values()),
                 sum(params[n].numel() * params[n].element_size() for n in used),
                 sum(buffers[n].numel() * buffers[n].element_size()
                     for n in written - step_counters(model)),
                 -(-max(layers, default=0) // max(1, len(x))))


def step_counters(model: nn.Module) -> frozenset[str]:
    """The names of the BatchNorm-style ``num_batches_tracked`` buffers of ``model``: one
    counter serves every stacked trial, since they all step together.

    >>> sorted(step_counters(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))))
    ['1.num_batches_tracked']
    """
    return frozenset(f"{name}.num_batches_tracked".lstrip(".")
                     for name, module in model.named_modules()
                     if isinstance(module, nn.modules.batchnorm._NormBase))


def _norm_statistics(model: nn.Module) -> frozenset[str]:
    """The running statistics that BatchNorm-style modules in training mode update."""
    return frozenset(f"{name}.{stat}".lstrip(".") for name, module in model.named_modules()
                     if isinstance(module, nn.modules.batchnorm._NormBase) and module.training
                     and module.track_running_stats for stat in ("running_mean", "running_var"))
