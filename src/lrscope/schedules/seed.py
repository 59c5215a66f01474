"""The seed study's schedules (``../shared/seed``), as specs: ``lrscope schedules`` plots them
when no spec is given. All were stepped once per batch over 2345 optimizer steps."""

from __future__ import annotations

SEED_TOTAL_STEPS = 2345  # 5 epochs x 469 batches of 128 MNIST images

SEED_SPECS = (
    "step(lr=1, step_size=100, gamma=0.5)",
    "exponential(lr=1, gamma=0.99)",
    "exponential(lr=1, gamma=0.996)",
    "exponential(lr=1, gamma=0.999)",
    "onecycle(max_lr=1.0)",
    "onecycle(max_lr=1.1)",
    "cyclic(base_lr=0.01, max_lr=1, step_size_up=50, step_size_down=100)",
    "cyclic(base_lr=0.1, max_lr=1, step_size_up=50, step_size_down=100)",
    "ramp(start_lr=1e-05, end_lr=10, mode=exp)",
)
