"""Classifier Lab core: datasets, models, training, inference and analysis (no UI)."""
import os

# TensorFlow's C++ start-up chatter (CPU feature notices) is noise for our users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
