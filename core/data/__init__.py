"""Datasets: the registry of specs, built-in and own datasets, streaming, images, synthetic data, the fix overlay. Imports core.store only."""
