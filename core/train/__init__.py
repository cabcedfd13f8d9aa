"""Training: the trainer and its config, callbacks, learning-rate range test, sweeps, label search. Imports core.analysis, core.model, core.data and core.store."""
