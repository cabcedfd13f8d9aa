"""How a run reaches a worker: the Executor interface, the engine's Job, and the local executor (a process per run)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core import config
from core.engine.worker import LOG_FILE
from core.store import runs
from core.train.trainer import TrainConfig


@dataclass
class Job:
    """The engine's side of one run: where it lives, how to reach its worker, whether Stop was asked."""
    run_id: str
    run_dir: Path
    config: TrainConfig
    handle: object = None
    stop_at: float | None = None
    killed: bool = False


class Executor(Protocol):
    """How a run reaches a worker: the local executor (a process per run) or Ray's (a task per run).
    The engine calls start once, then poll until it returns a string; stop and kill only while it runs."""
    name: str

    def start(self, job: Job) -> None:
        """Start the run's worker; set job.handle to whatever reaches it."""

    def poll(self, job: Job) -> str | None:
        """None while the worker runs; then '' for a clean exit, or what ended it (for run.json)."""

    def stop(self, job: Job) -> None:
        """Ask the worker to stop after its batch (the engine has already written the stop file)."""

    def kill(self, job: Job) -> None:
        """End the worker now (it ignored Stop for too long)."""

    def close(self) -> None:
        """Release what the executor holds (the engine is closing)."""


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            name = f", {signal.Signals(-code).name}"
        except ValueError:
            name = ""
        return f"worker exited (signal {-code}{name})"
    return f"worker exited with code {code}"


class Orphan:
    """A local worker started by an earlier server that still trains: watched by its pid and start (no longer our
    child), so a pid the kernel has given to another process since is never waited for or killed."""

    def __init__(self, pid: int, start: str | None = None):
        self.pid, self.start = pid, start

    def poll(self) -> int | None:
        return None if runs.same_process(self.pid, self.start) else 0  # its exit code went to init

    def kill(self) -> None:
        if not runs.same_process(self.pid, self.start):
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass  # it ended meanwhile


class LocalExecutor(Executor):
    """Each run in a fresh interpreter (`python -m core.engine.worker`, never a fork: TensorFlow is not fork-safe)."""
    name = "local"

    def __init__(self, slots: int):
        self.threads = config.TRAINING_THREADS.get() or max(1, (os.cpu_count() or 2) // slots)

    def start(self, job: Job) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(runs.ROOT), os.environ.get("PYTHONPATH"))))}
        with open(job.run_dir / LOG_FILE, "ab") as log:
            job.handle = subprocess.Popen(
                [sys.executable, "-m", "core.engine.worker", str(job.run_dir.resolve()), str(self.threads)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=runs.ROOT)

    def poll(self, job: Job) -> str | None:
        """None while the worker runs; then '' for a clean exit or what ended it."""
        code = job.handle.poll()
        if code is None:
            return None
        return "" if code == 0 else _exit_text(code)

    def stop(self, job: Job) -> None:
        pass  # the stop file in the run folder, which the engine writes, is all a local worker needs

    def kill(self, job: Job) -> None:
        job.handle.kill()

    def close(self) -> None:
        pass
