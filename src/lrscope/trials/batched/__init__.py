"""K trials of one task and seed in one vmapped model: stacked parameters, functional optimizers."""
