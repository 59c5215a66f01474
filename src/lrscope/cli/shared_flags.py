"""Flags that ``find`` and ``compare`` share: the task, the optimizer and the engine.

Each flag overrides one dotted key of the TOML config; :data:`SHARED_FIELDS` maps argparse dest
to (dotted key, flag) so a bad value names the flag it came from.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

SHARED_FIELDS: dict[str, tuple[str, str]] = {
    "task": ("task", "--task"),
    "model": ("model", "--model"),
    "data_dir": ("data_dir", "--data-dir"),
    "batch_size": ("batch_size", "--batch-size"),
    "limit_train": ("limit_train", "--limit-train"),
    "limit_test": ("limit_test", "--limit-test"),
    "engine": ("engine", "--engine"),
    "plugin": ("plugin", "--plugin"),
    "device": ("device", "--device"),
    "precision": ("precision", "--precision"),
    "clip_grad_norm": ("clip_grad_norm", "--clip-grad-norm"),
    "threads": ("threads", "--threads"),
    "out": ("out", "--out"),
    "optimizer": ("optimizer.name", "--optimizer"),
    "momentum": ("optimizer.momentum", "--momentum"),
    "weight_decay": ("optimizer.weight_decay", "--weight-decay"),
}


def add_shared_flags(parser: argparse.ArgumentParser, out_help: str) -> None:
    """The task, data, optimizer, engine and output flags, with their help."""
    add = parser.add_argument
    add("--config", metavar="FILE.toml", help="experiment file; flags override its values")
    add("--task", metavar="NAME", help="digits (default), fashion-mnist, mnist or "
        "package.module:function")
    add("--model", metavar="NAME", help="digits: mlp (default) | lenet; fashion-mnist/mnist: "
        "lenet5 (default) | mlp")
    add("--data-dir", metavar="DIR", help="folder of IDX files (fashion-mnist, mnist)")
    add("--batch-size", type=int, metavar="N", help="training batch size (default: the task's)")
    add("--limit-train", type=int, metavar="N", help="use only the first N training examples")
    add("--limit-test", type=int, metavar="N", help="use only the first N test examples")
    add("--optimizer", metavar="sgd|adam|adamw", help="optimizer (default sgd)")
    add("--momentum", type=float, metavar="M", help="SGD momentum or Adam's beta1 (default 0.9)")
    add("--weight-decay", type=float, metavar="W", help="weight decay (default: torch's)")
    add("--engine", metavar="local|colossalai", help="how steps run (default local)")
    add("--plugin", metavar="NAME", help="ColossalAI plugin: torch_ddp (default), hybrid, "
        "gemini (CUDA; --optimizer adam or adamw), low_level_zero (CUDA)")
    add("--device", metavar="auto|cpu|cuda[:i]", help="where the local engine trains (default "
        "auto: CUDA when present, else the CPU)")
    add("--precision", metavar="bf16|fp16", help="mixed precision: autocast (fp16 also scales "
        "the loss with a GradScaler); default: full precision")
    add("--clip-grad-norm", type=float, metavar="N", help="clip the gradients' global norm to N "
        "before each step (default: no clipping)")
    add("--threads", type=int, metavar="N", help="torch threads per trial, at most the cores "
        "this process may use (default: 1 per trial on the CPU for compare, auto measuring "
        "more; find: torch's own)")
    add("--out", metavar="DIR", help=out_help)


def live_progress(console: Any) -> bool:
    """Whether a live progress bar belongs on ``console``: a real terminal, not a dumb one, and
    not CI (``CI`` set, as GitHub Actions, GitLab CI and most others do). Pipes, files and CI
    logs get the results only, never a stream of redrawn bars."""
    return bool(console.is_terminal and not console.is_dumb_terminal and not os.environ.get("CI"))
