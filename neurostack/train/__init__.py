"""Training with surrogate gradients and BPTT: config, checkpoints, the loop, plots, and run directories."""
