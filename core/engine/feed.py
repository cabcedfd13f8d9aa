"""The live feed of a training: written by the worker in batches, kept as feed.jsonl in the run folder, read by anyone."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from core.train.trainer import MetricsStore

FEED_FILE = "feed.jsonl"
STOP_FILE = "stop"
FLUSH_EVERY_S = 0.1  # at most ~10 updates a second leave the worker, however short its batches


class Publisher(MetricsStore):
    """A MetricsStore that also sends what it gets to a sink, batched: one line per flush.

    `sink(line: str) -> bool` delivers one JSON line and says whether a stop was asked for; the Publisher
    turns that into its `stop` event, which the training callback checks after every batch.
    """

    def __init__(self, sink, every_s: float = FLUSH_EVERY_S):
        super().__init__()
        self.sink, self.every_s = sink, every_s
        self.stop = threading.Event()
        self._pending: dict = {"b": [], "e": [], "s": {}}
        self._last = 0.0

    def update(self, **state) -> None:
        super().update(**state)
        self._pending["s"].update(state)
        self._flush(force="status" in state)  # a new status (evaluating, finished…) goes out at once

    def add_batch(self, step: int, loss: float, acc: float, **state) -> None:
        super().add_batch(step, loss, acc, **state)
        self._pending["b"].append([step, loss, acc])
        self._pending["s"].update(state)
        self._flush()

    def add_epoch(self, row: dict) -> None:
        super().add_epoch(row)
        self._pending["e"].append(dict(row))
        self._flush(force=True)

    def _flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        line = {"t": time.time(), **{k: v for k, v in self._pending.items() if v}}
        self._pending, self._last = {"b": [], "e": [], "s": {}}, now
        if self.sink(json.dumps(line, default=float)):
            self.stop.set()

    def close(self) -> None:
        """Send whatever is still pending."""
        if any(self._pending.values()):
            self._flush(force=True)


class FileSink:
    """Appends feed lines to the run folder; a `stop` file there asks the training to stop."""

    def __init__(self, run_dir: Path):
        self.path, self.stop_path = Path(run_dir) / FEED_FILE, Path(run_dir) / STOP_FILE

    def __call__(self, line: str) -> bool:
        try:
            append_lines(self.path, [line])
        except OSError:
            pass  # a full disk costs the live curves, not the training (which reports the disk when it saves)
        return self.stop_path.exists()


def append_lines(path: Path, lines: list[str]) -> None:
    """Append whole lines in one write, so a reader never sees half of one (O_APPEND)."""
    if lines:
        with open(path, "a") as f:
            f.write("".join(line + "\n" for line in lines))


def request_stop(run_dir: Path) -> None:
    """Ask a running worker to stop after its current batch."""
    Path(run_dir, STOP_FILE).touch()


def stop_requested(run_dir: Path) -> bool:
    return Path(run_dir, STOP_FILE).exists()


class FeedReader:
    """Reads a run's feed.jsonl incrementally; snapshot() has the shape of MetricsStore.snapshot()."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / FEED_FILE
        self._lock = threading.Lock()
        self._offset, self._rest = 0, b""
        self._state: dict = {}
        self._steps: list[int] = []
        self._loss: list[float] = []
        self._acc: list[float] = []
        self._epochs: list[dict] = []

    def _poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                if os.fstat(f.fileno()).st_size < self._offset:  # rewritten from scratch: start over
                    self.__init__(self.path.parent)
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return
        self._offset += len(data)
        *lines, self._rest = (self._rest + data).split(b"\n")
        for raw in lines:
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # a damaged line loses its points, not the feed
            for step, loss, acc in line.get("b", ()):
                self._steps.append(step)
                self._loss.append(loss)
                self._acc.append(acc)
            self._epochs.extend(line.get("e", ()))
            self._state.update(line.get("s", {}), updated=line.get("t"))

    def snapshot(self, since: int = 0) -> dict:
        """The newest state, per-batch series from index `since`, and the epoch rows."""
        with self._lock:
            self._poll()
            return {**self._state, "n_batches": len(self._steps), "steps": self._steps[since:],
                    "loss": self._loss[since:], "accuracy": self._acc[since:],
                    "epochs": [dict(r) for r in self._epochs]}
