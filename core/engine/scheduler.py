"""The training engine: submit a config → run id; attach by run id → live feed; stop; list. One worker per run."""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

from core import InvalidValue, config
from core.store import runs
from core.engine.feed import FeedReader, request_stop
from core.train.trainer import TrainConfig
from core.engine.executors import Executor, Job, LocalExecutor, Orphan

ENGINES = ("local", "ray")
STOP_GRACE_S = 30.0  # after Stop, a worker still busy this long (stuck in a save, a huge batch) is ended
POLL_S = 0.2
log = logging.getLogger(__name__)


def max_concurrent() -> int:
    """How many trainings may run at once: $CLASSIFIER_LAB_MAX_TRAININGS or one per two cores."""
    return config.MAX_TRAININGS.get() or max(1, (os.cpu_count() or 2) // 2)


def engine_kind(kind: str | None = None) -> str:
    """The executor to use: `kind`, else $CLASSIFIER_LAB_ENGINE, else local."""
    kind = (kind or config.ENGINE.get()).strip().lower()
    if kind not in ENGINES:
        raise InvalidValue(f"unknown engine {kind!r}; choose one of {', '.join(ENGINES)}")
    return kind


class Engine:
    """A queue of runs in front of a few worker slots; every run's state lives in its folder."""

    def __init__(self, runs_dir: Path | str | None = None, slots: int | None = None, kind: str | None = None,
                 stop_grace_s: float = STOP_GRACE_S):
        self.runs_dir = Path(runs_dir or runs.default_runs_dir())
        self.stop_grace_s = stop_grace_s
        self.kind = engine_kind(kind)
        if self.kind == "ray":
            from core.engine.ray_executor import RayExecutor

            self.executor: Executor = RayExecutor()
            self.slots = slots or self.executor.slots()
        else:
            self.slots = slots or max_concurrent()
            self.executor = LocalExecutor(self.slots)
        self._lock = threading.Lock()
        self._queue: list[Job] = []
        self._running: dict[str, Job] = {}
        self._wake = threading.Event()
        self._closed = False
        left = runs.list_runs(self.runs_dir)
        self.recovered = recover(left)
        if self.kind == "local":  # a restarted server shows, stops and counts the trainings it left running
            self._running.update((job.run_id, job) for job in adopt(left))
        self._thread = threading.Thread(target=self._loop, name="training-engine", daemon=True)
        self._thread.start()

    # --- what callers use ------------------------------------------------------------------------------------

    def submit(self, config: TrainConfig) -> str:
        """Queue a training; returns its run id at once (ValueError for settings that can't work)."""
        cfg = replace(config.resolved(), runs_dir=str(self.runs_dir))
        path = runs.new_run_dir(self.runs_dir, cfg.dataset, cfg.arch)
        runs.write_status(path, runs.RunStatus.QUEUED, {"id": path.name, "config": cfg.to_dict()}, **cfg.labels(),
                          engine=self.kind, server_pid=os.getpid(), server_pid_start=runs.process_start(),
                          server_host=os.uname().nodename, epochs_done=0)
        with self._lock:
            self._queue.append(Job(path.name, path, cfg))
        self._wake.set()
        return path.name

    def attach(self, run_id: str) -> FeedReader:
        """The live feed of a run (any run with a folder: queued, running or long finished)."""
        return FeedReader(runs.run_path(run_id, self.runs_dir))

    def stop(self, run_id: str) -> str:
        """Cancel a queued run, or ask a running one to stop after its batch; returns what was done."""
        with self._lock:
            queued = next((j for j in self._queue if j.run_id == run_id), None)
            if queued:
                self._queue.remove(queued)
            job = self._running.get(run_id)
        if queued:
            runs.write_status(queued.run_dir, runs.RunStatus.CANCELLED, error="cancelled while queued: it never started")
            return "cancelled"
        path = runs.run_path(run_id, self.runs_dir)
        request_stop(path)  # also reaches a worker that an earlier server started
        if job is not None:
            self.executor.stop(job)
            job.stop_at = job.stop_at or time.monotonic()
        return "stopping"

    def active(self) -> list[dict]:
        """Running, starting, then queued runs, in order: run id, status, queue position (1 = next to wait for a
        slot). A queued run that a free slot takes at the next tick is "starting": it waits for nobody."""
        with self._lock:
            free = max(self.slots - len(self._running), 0)
            return ([{"run_id": j.run_id, "status": "running", "position": 0} for j in self._running.values()]
                    + [{"run_id": j.run_id, "status": "starting" if i < free else "queued",
                        "position": max(i + 1 - free, 0)} for i, j in enumerate(self._queue)])

    def is_active(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._running or any(j.run_id == run_id for j in self._queue)

    def wait(self, run_id: str, timeout: float | None = None) -> runs.Run:
        """Block until the run has ended; returns it as saved."""
        end = None if timeout is None else time.monotonic() + timeout
        while self.is_active(run_id):
            if end is not None and time.monotonic() > end:
                raise TimeoutError(f"run {run_id} still {runs.load_run(self.runs_dir / run_id).status}")
            time.sleep(POLL_S)
        return runs.load_run(self.runs_dir / run_id)

    def close(self) -> None:
        """Stop taking work; cancel the queue, stop running workers and wait for them (up to the grace)."""
        for item in self.active():
            self.stop(item["run_id"])
        end = time.monotonic() + self.stop_grace_s + 5
        while self._running and time.monotonic() < end:
            time.sleep(POLL_S)
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=5)
        self.executor.close()

    # --- the scheduler ---------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._closed:
            try:
                self._tick()
            except Exception as e:  # noqa: BLE001  the scheduler must outlive any one run's trouble
                log.exception("training engine: %s: %s", e.__class__.__name__, e)
            self._wake.wait(POLL_S)
            self._wake.clear()

    def _tick(self) -> None:
        for job in list(self._running.values()):
            ended = self.executor.poll(job)
            if ended is None:
                if job.stop_at and not job.killed and time.monotonic() - job.stop_at > self.stop_grace_s:
                    job.killed = True
                    self.executor.kill(job)
                continue
            self._settle(job, ended)  # before it leaves the running set: whoever sees it gone reads how it ended
            with self._lock:
                del self._running[job.run_id]
        while True:
            with self._lock:
                if not self._queue or len(self._running) >= self.slots:
                    return
                job = self._queue.pop(0)
                self._running[job.run_id] = job
            try:
                self.executor.start(job)
            except Exception as e:  # noqa: BLE001  e.g. no process could be started: the run says why
                runs.write_status(job.run_dir, runs.RunStatus.FAILED, error=f"the worker could not start: {e}")
                with self._lock:
                    del self._running[job.run_id]

    def _settle(self, job: Job, ended: str) -> None:
        """A worker has gone: a run it did not finish reads failed, never running."""
        meta = runs.read_json(job.run_dir / "run.json", {}) or {}
        if meta.get("status") in runs.ACTIVE:
            why = (f"stopped: the worker did not end within {self.stop_grace_s:g} s of Stop and was terminated"
                   if job.killed else ended or "worker exited without saving its result")
            runs.write_status(job.run_dir, runs.RunStatus.FAILED, error=why)


def adopt(left: list[runs.Run]) -> list[Job]:
    """Runs still trained by a local worker on this host whose server has gone (a restart, a crash)."""
    jobs = []
    for run in left:
        if run.status == "running" and run.meta.get("engine", "local") == "local" and not runs.server_alive(run.meta):
            try:
                config = TrainConfig.from_dict(run.config)
            except (TypeError, ValueError):
                continue
            jobs.append(Job(run.id, run.path, config, handle=Orphan(int(run.meta["pid"]), run.meta.get("pid_start"))))
    return jobs


def recover(left: list[runs.Run]) -> list[str]:
    """Mark runs whose worker or server is gone as interrupted (on start): none is left 'running'."""
    found = []
    for run in left:
        if run.meta.get("status") in runs.ACTIVE and run.status == "interrupted":
            try:
                runs.write_status(run.path, runs.RunStatus.INTERRUPTED,
                            error="interrupted: its worker or the server stopped before it finished")
                found.append(run.id)
            except OSError:
                pass  # a read-only runs folder: the run still reads interrupted, from its dead owner
    return found
