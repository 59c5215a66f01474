"""Mixed precision for lrscope's own loops: autocast for the forward pass and, for fp16, a
GradScaler around backward and step, as in torch's AMP recipe (the range test; trials next).

>>> amp = MixedPrecision.make(None, torch.device("cpu"))
>>> amp.enabled, amp.scaler is None
(False, True)
>>> MixedPrecision.make("bf16", torch.device("cpu")).dtype
torch.bfloat16
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch

from lrscope.errors import InputError, InputTypeError

PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16}
# Full precision's "autocast": one reusable, reentrant no-op, not a new object every step.
_NO_AUTOCAST = contextlib.nullcontext()


@dataclass
class MixedPrecision:
    """How the forward runs (``autocast`` in ``dtype``) and how gradients are scaled."""

    device_type: str
    dtype: torch.dtype | None = None
    scaler: Any | None = None  # a torch.amp.GradScaler, or None

    @classmethod
    def make(cls, precision: str | None, device: torch.device,
             grad_scaler: Any | None = None, where: str = "range_test") -> MixedPrecision:
        """``precision`` None (full precision), "bf16" or "fp16"; fp16 gets a GradScaler unless
        ``grad_scaler`` is given (a user's own scaler is used as it is, with any precision)."""
        if precision is not None and precision not in PRECISIONS:
            raise InputError(f"{where}: precision={precision!r} is not one of None, "
                             f"{', '.join(repr(p) for p in PRECISIONS)}")
        if grad_scaler is not None and not all(hasattr(grad_scaler, name) for name in (
                "scale", "step", "update", "state_dict", "load_state_dict")):
            raise InputTypeError(f"{where}: grad_scaler must be a torch.amp.GradScaler, not "
                                 f"{type(grad_scaler).__name__}")
        scaler = grad_scaler
        if scaler is None and precision == "fp16":
            scaler = torch.amp.GradScaler(device.type)
        dtype = PRECISIONS[precision] if precision is not None else None
        return cls(device.type, dtype, scaler)

    @property
    def enabled(self) -> bool:
        return self.dtype is not None or self.scaler is not None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return _NO_AUTOCAST
        return torch.autocast(self.device_type, dtype=self.dtype)

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        return loss if self.scaler is None else self.scaler.scale(loss)

    def clip(self, optimizer: Any, max_norm: float | None) -> None:
        """Clip the gradients' global norm to ``max_norm`` (None: no clipping), after unscaling
        them when a GradScaler scaled the loss, as torch's AMP recipe does."""
        if max_norm is None:
            return
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, max_norm)

    def step(self, optimizer: Any) -> None:
        if self.scaler is None:
            optimizer.step()
        else:  # skips the step when the scaled gradients overflowed, then adjusts the scale
            self.scaler.step(optimizer)
            self.scaler.update()
