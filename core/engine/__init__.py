"""The training engine: the scheduler (submit, attach, stop, list), worker processes, the Ray executor, the live feed. Imports core.train and below."""
