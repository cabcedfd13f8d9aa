"""Classifier Lab core: datasets, models, training, inference and analysis (no UI).

Layers, each importing only those before it: store → data → model, analysis → train, export → engine → cli.
`LabError` is the one root of the errors core raises for a person to read.
"""
import os

# TensorFlow's C++ start-up chatter (CPU feature notices) is noise for our users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class LabError(Exception):
    """An error meant for the person using the lab: its message is one line that names the fix (no traceback)."""


class InvalidValue(LabError, ValueError):
    """A value core cannot use (a setting, an argument, a name); the message says which values are accepted."""
