"""Trials: one trial (trial.py), how many of them run (runners.py), and K trials in one vmapped
model (batched/). A trial knows its task, schedule and seed, never the study around it."""
