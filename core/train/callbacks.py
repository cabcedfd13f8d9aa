"""Keras callbacks for training: live metrics for the dashboard and on-disk history."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import keras

from core.store import runs


def _num(value) -> float:
    """A float from a Keras log value; NaN when absent."""
    return float(value) if value is not None else float("nan")


class LiveMetrics(keras.callbacks.Callback):
    """Feeds a MetricsStore; a set `stop` event ends training after the current batch."""

    def __init__(self, store, stop: threading.Event | None = None, batch_size: int = 32):
        super().__init__()
        self.store, self.stop, self.batch_size = store, stop or threading.Event(), batch_size
        self._epoch = 0
        self._t_epoch = self._t_train = 0.0

    def on_train_begin(self, logs=None):
        self._t_train = time.perf_counter()
        self.store.update(status="training", epochs_total=self.params["epochs"], steps_per_epoch=self.params["steps"])

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._t_epoch = epoch, time.perf_counter()
        self.store.update(epoch=epoch + 1, batch=0)

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        steps, now = self.params["steps"] or 1, time.perf_counter()
        done = batch + 1
        rate = done / max(now - self._t_epoch, 1e-9)  # batches/s in this epoch
        left = (self.params["epochs"] - self._epoch) * steps - done
        self.store.add_batch(self._epoch * steps + done, _num(logs.get("loss")), _num(logs.get("accuracy")),
                             batch=done, samples_per_s=rate * self.batch_size, eta_s=left / rate,
                             elapsed_s=now - self._t_train)
        if self.stop.is_set():
            self.model.stop_training = True

    def on_test_batch_end(self, batch, logs=None):
        if self.stop.is_set():
            self.model.stop_evaluating = True  # skip the validation pass after a Stop

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {k: _num(logs.get(k)) for k in ("loss", "accuracy", "val_loss", "val_accuracy")}
        row.update(epoch=epoch + 1, seconds=time.perf_counter() - self._t_epoch, partial=self.stop.is_set())
        self.store.add_epoch(row)


class RunWriter(keras.callbacks.Callback):
    """Persists history after each epoch, so a killed run keeps its curves."""

    def __init__(self, path: Path, meta: dict):
        super().__init__()
        self.path, self.meta, self.history = path, meta, []

    def on_epoch_end(self, epoch, logs=None):
        self.history.append({"epoch": epoch + 1, **{k: _num(v) for k, v in (logs or {}).items()}})
        runs.write_json_atomic(self.path / "history.json", {"epochs": self.history})
        self.meta["epochs_done"] = epoch + 1
        runs.write_json_atomic(self.path / "run.json", self.meta)
