"""Dropout for K trials of one seed: one mask per call, drawn exactly as the trial alone draws it.

The K trials of a batched group share their seed, and in :func:`lrscope.trials.trial.run_trial`
the only draws from the global generator after ``torch.manual_seed(seed); task.make_model()``
are the training forwards' dropout masks (batches come from their own generator, evaluations run
in eval mode). So at every step each of the K trials, run alone, draws the *same* masks: the
same generator state, the same shapes, the same order. A batched trial equals its run alone when
the stack draws each mask once, with that same op on that same (unbatched) shape, and applies it
to every row.

vmap's ``randomness="same"`` draws once too, but not with the same op: on CUDA its dropout rule
draws a ``bernoulli_`` mask where ``F.dropout`` alone uses the fused kernel, which reads the
generator differently. So the draw leaves vmap instead: :class:`SharedMaskDropout` calls a
``torch.autograd.Function`` whose ``vmap`` rule runs one level down (outside the vmap), where
``F.dropout(ones(shape))`` is the trial's own call and returns its scaled mask ``m / (1 - p)``;
``x * mask`` then equals the trial's ``x * m / (1 - p)`` bit for bit (``m`` is 0 or 1). Any other
random op in a forward still meets vmap's ``randomness="error"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# The dropout modules whose output is ``input * mask``, and their functional form.
_MASKED: dict[type[nn.Module], Callable[..., torch.Tensor]] = {
    nn.Dropout: F.dropout,
    nn.Dropout1d: F.dropout1d,
    nn.Dropout2d: F.dropout2d,
    nn.Dropout3d: F.dropout3d,
}


def can_share_masks(module: nn.Module) -> bool:
    """True for the dropout modules :func:`share_dropout_masks` replaces (not AlphaDropout,
    whose output is not a mask times the input).

    >>> can_share_masks(nn.Dropout2d(0.1)), can_share_masks(nn.AlphaDropout(0.1))
    (True, False)
    """
    return type(module) in _MASKED


class _MaskOnce(torch.autograd.Function):
    """``drop(x, p, True)``; under vmap, one mask for every row, drawn outside the vmap."""

    @staticmethod
    def forward(x: torch.Tensor, p: float, drop: Callable[..., torch.Tensor]) -> torch.Tensor:
        return drop(x, p, True)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        """Nothing to keep: the batched runner only ever calls this inside a vmap (see ``vmap``)."""

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> Any:  # pragma: no cover - unused by vmap
        raise RuntimeError("shared-mask dropout is only differentiated through its vmap rule")

    @staticmethod
    def vmap(info: Any, in_dims: tuple[int | None, ...], x: torch.Tensor, p: float,
             drop: Callable[..., torch.Tensor]) -> tuple[torch.Tensor, int | None]:
        row = in_dims[0]
        if row is None:  # the shared input itself (dropout before any parameter): as alone
            return drop(x, p, True), None
        shape = x.shape[:row] + x.shape[row + 1:]
        # Plain autograd records the ops below (they run on the real (K, ...) tensor), so the
        # gradient is grad * mask, row by row, as the trial's own mul gives it.
        mask = drop(torch.ones(shape, dtype=x.dtype, device=x.device), p, True)
        return x * mask.unsqueeze(row), row


class SharedMaskDropout(nn.Module):
    """A dropout module that, inside a vmap over K trials, draws one mask for all of them.

    Outside a vmap it is the dropout it replaces. Its ``training`` flag is the replaced
    module's (a dropout the user froze in eval mode stays off).

    >>> layer = SharedMaskDropout(nn.Dropout(0.5))
    >>> x = torch.ones(3, 4)
    >>> _ = torch.manual_seed(0); alone = nn.functional.dropout(x, 0.5)
    >>> _ = torch.manual_seed(0)
    >>> stacked = torch.func.vmap(layer, randomness="error")(torch.stack([x, 2 * x]))
    >>> torch.equal(stacked[0], alone), torch.equal(stacked[1], 2 * alone)
    (True, True)
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.p = float(module.p)  # type: ignore[arg-type]
        self.drop = _MASKED[type(module)]
        self.training = module.training

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        return _MaskOnce.apply(x, self.p, self.drop)

    def extra_repr(self) -> str:
        return f"p={self.p}, {self.drop.__name__}"


def share_dropout_masks(model: nn.Module) -> int:
    """Replace every dropout module of ``model`` in place by a :class:`SharedMaskDropout`
    (the batched runner's own copy of the model, never the user's); returns how many.

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1))
    >>> share_dropout_masks(net), type(net[1]).__name__
    (1, 'SharedMaskDropout')
    """
    swaps = [(parent, name, child) for parent in model.modules()
             for name, child in parent.named_children() if can_share_masks(child)]
    for parent, name, child in swaps:
        setattr(parent, name, SharedMaskDropout(child))
    return len(swaps)
