"""What K batched trials hold in memory, and whether the device has it, before anything runs.

K trials in one vmapped model keep K copies of what one trial keeps: the trained parameters,
their gradients, the optimizer state (SGD's momentum buffer, Adam's two moments), the buffers
that the forward writes (BatchNorm's running statistics), and then what one moment of the run
holds on top, the larger of:

* a training step: the activations one training forward saves for backward, backward's
  workspace (the gradients of the largest layer's input and output, alive together) and the
  update's temporaries;
* an evaluation: K stacked no-grad forwards of :data:`EVAL_BATCH` examples, which peak at the
  largest layer's input and output (a 1024-example chunk of LeNet on 28x28 images, K=8, is
  hundreds of MiB while one 128-example training step saves a few tens).

The estimate adds those up in bytes;
:func:`check_memory` refuses a K whose estimate exceeds what the device has free, in one line that
says how much and what to do instead. ``--parallel auto`` reads the same estimate
(:func:`lrscope.trials.batched.run.batched_memory`) to decide how many trials fit in one batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from lrscope.errors import InputError

#: Examples per evaluation forward (:meth:`lrscope.data.tasks.base.Task.test_batches`).
EVAL_BATCH = 1024
#: Gradient-sized temporaries that one flat update allocates (the decayed gradient, the step).
UPDATE_TEMPORARIES = 2
#: Optimizer state per parameter, in parameter-sized tensors (SGD counted with momentum: a
#: schedule may switch it on even when the optimizer starts at momentum 0).
STATE_PER_PARAMETER = {"SGD": 1, "Adam": 2, "AdamW": 2}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes that ``k`` stacked trials need, by kind (each already K times one trial's).

    >>> est = MemoryEstimate(k=4, weights=400, grads=400, optimizer_state=800, buffers=0,
    ...                      activations=4096, temporaries=800, workspace=200, evaluation=8192)
    >>> est.total, est.per_trial
    (9792, 2448)
    >>> est.describe()
    '9.6 KiB for 4 trials (weights 400 B, grads 400 B, optimizer state 800 B, buffers 0 B, \
then the larger of a training step (activations 4.0 KiB, backward workspace 200 B, update \
temporaries 800 B) and an evaluation (8.0 KiB))'
    """

    k: int
    weights: int
    grads: int
    optimizer_state: int
    buffers: int
    activations: int
    temporaries: int
    workspace: int = 0  # backward's gradients of the largest layer's input and output
    evaluation: int = 0  # K no-grad forwards of EVAL_BATCH examples, at their largest layer

    @property
    def training_step(self) -> int:
        """What a training step holds beyond the weights, grads, state and buffers."""
        return self.activations + self.workspace + self.temporaries

    @property
    def total(self) -> int:
        # A training step's activations are freed before an evaluation runs, and back after.
        return (self.weights + self.grads + self.optimizer_state + self.buffers
                + max(self.training_step, self.evaluation))

    @property
    def per_trial(self) -> int:
        """One trial's share: how the total grows with each trial added to the batch."""
        return self.total // self.k

    def describe(self) -> str:
        parts = [("weights", self.weights), ("grads", self.grads),
                 ("optimizer state", self.optimizer_state), ("buffers", self.buffers)]
        step = [("activations", self.activations), ("backward workspace", self.workspace),
                ("update temporaries", self.temporaries)]
        detail = ", ".join(f"{name} {human_bytes(size)}" for name, size in parts)
        during = ", ".join(f"{name} {human_bytes(size)}" for name, size in step)
        return (f"{human_bytes(self.total)} for {self.k} trials ({detail}, then the larger of "
                f"a training step ({during}) and an evaluation "
                f"({human_bytes(self.evaluation)}))")


def estimate_memory(k: int, trained_bytes: int, optimizer: torch.optim.Optimizer,
                    written_buffer_bytes: int, activation_bytes: int,
                    layer_bytes_per_example: int = 0, batch_size: int = 0) -> MemoryEstimate:
    """The estimate for ``k`` trials, from one trial's trained-parameter bytes, written-buffer
    bytes and saved activations (one training forward on one batch of ``batch_size``), and the
    bytes per example that its largest layer holds (input and output).

    >>> opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(10))])
    >>> est = estimate_memory(3, 40, opt, 8, 100, layer_bytes_per_example=2, batch_size=16)
    >>> est.optimizer_state, est.workspace, est.evaluation
    (240, 96, 6144)
    """
    state = STATE_PER_PARAMETER.get(type(optimizer).__name__, 2)
    return MemoryEstimate(k=k, weights=k * trained_bytes, grads=k * trained_bytes,
                          optimizer_state=k * state * trained_bytes,
                          buffers=k * written_buffer_bytes, activations=k * activation_bytes,
                          temporaries=k * UPDATE_TEMPORARIES * trained_bytes,
                          workspace=k * batch_size * layer_bytes_per_example,
                          evaluation=k * EVAL_BATCH * layer_bytes_per_example)


def available_memory(device: torch.device | str) -> int | None:
    """Bytes free for new tensors on ``device``: ``torch.cuda.mem_get_info`` on CUDA, the
    kernel's ``MemAvailable`` (else free pages) on the CPU; None where it cannot be told.

    >>> available_memory("cpu") > 0
    True
    """
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(estimate: MemoryEstimate, device: torch.device | str,
                 available: int | None = None) -> None:
    """Raise InputError when ``estimate`` exceeds the memory free on ``device`` (``available``
    bytes; measured when None). Nothing is refused where the free memory cannot be told.

    >>> big = MemoryEstimate(k=10**6, weights=2**50, grads=0, optimizer_state=0, buffers=0,
    ...                      activations=0, temporaries=0)
    >>> check_memory(big, "cpu", available=2**34)
    Traceback (most recent call last):
    ...
    lrscope.errors.InputError: parallel: batched needs about 1024.0 TiB for 1000000 trials \
(weights 1024.0 TiB, grads 0 B, optimizer state 0 B, buffers 0 B, then the larger of a training \
step (activations 0 B, backward workspace 0 B, update temporaries 0 B) and an evaluation (0 B)) \
but cpu has 16.0 GiB free; run fewer trials at once (at most 15 fit: fewer \
schedules per seed) or use --parallel none|processes
    """
    free = available_memory(device) if available is None else available
    if free is None or estimate.total <= free:
        return
    fit = free // max(estimate.per_trial, 1)
    fewer = f"run fewer trials at once (at most {fit} fit: fewer schedules per seed) or " \
        if fit else "not one trial fits batched; "
    raise InputError(f"parallel: batched needs about {estimate.describe()} but {device} has "
                     f"{human_bytes(free)} free; {fewer}use --parallel none|processes")


def human_bytes(size: int) -> str:
    """``size`` bytes in binary units, one decimal.

    >>> human_bytes(512), human_bytes(3 * 2**20)
    ('512 B', '3.0 MiB')
    """
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"
