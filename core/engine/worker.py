"""What runs inside a training worker: a spawned local process, or a Ray task on any node."""
from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from core.store import runs
from core.engine.feed import FileSink, Publisher

LOG_FILE = "worker.log"
log = logging.getLogger("core.engine.worker")


def _limit_threads(threads: int | None) -> None:
    """Give TensorFlow this worker's share of the cores (set before its first op)."""
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))


def _publisher(sink) -> Publisher:
    """The worker's live store, which says at once which process trains (before TensorFlow loads)."""
    store = Publisher(sink)
    store.update(status="starting", pid=os.getpid(), host=os.uname().nodename)
    return store


def _train(config: dict, run_dir: Path, store: Publisher) -> None:
    from core.train.trainer import TrainConfig, train

    try:
        train(TrainConfig.from_dict(config), store=store, stop=store.stop, run_dir=run_dir)
    finally:
        store.close()


def _stop_on_signals(store: Publisher) -> None:
    """Ctrl-C in the server's terminal, or a polite kill: stop after the batch and keep the model."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: store.stop.set())


def run_local(run_dir: Path, threads: int | None = None) -> None:
    """A local worker: train the run queued in `run_dir` (its run.json holds the config), feed in feed.jsonl."""
    meta = runs.read_json(run_dir / "run.json", {}) or {}
    store = _publisher(FileSink(run_dir))
    _stop_on_signals(store)
    _limit_threads(threads)
    _train(meta.get("config") or {}, run_dir, store)


class ActorSink:
    """Sends feed lines to the engine's Ray actor; learns of a Stop from the actor's replies."""

    def __init__(self, hub, run_id: str):
        self.hub, self.run_id, self._last, self._stop = hub, run_id, None, False

    def __call__(self, line: str) -> bool:
        import ray

        if self._last is not None and not self._stop:
            ready, _ = ray.wait([self._last], timeout=0)  # never wait on the actor mid-training
            self._stop = bool(ready) and bool(ray.get(ready[0]))
        self._last = self.hub.push.remote(self.run_id, line)
        return self._stop

    def flush(self) -> None:
        """Wait until every line has reached the actor (they arrive in order)."""
        import ray

        if self._last is not None:
            ray.get(self._last)


def run_remote(config: dict, run_id: str, hub, threads: int | None = None) -> dict[str, bytes]:
    """A Ray task: train in a scratch folder on whatever node runs it, return the run's files by name."""
    sink = ActorSink(hub, run_id)
    store = _publisher(sink)
    _limit_threads(threads)
    scratch = Path(tempfile.mkdtemp(prefix="classifier-lab-"))
    run_dir = scratch / run_id
    run_dir.mkdir()
    try:
        try:
            _train({**config, "runs_dir": str(scratch)}, run_dir, store)
        except Exception:  # noqa: BLE001  recorded in run.json by train(); the files below say so
            pass
        sink.flush()
        # every file the run wrote (model, history, test probabilities, whatever a mode adds), not the temp ones
        return {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and not p.name.startswith(".")}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":  # python -m core.engine.worker RUN_DIR [THREADS], as the local engine starts it
    # stdout and stderr are the run's worker.log (the engine opens it): log lines go there with their time
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("worker %d for %s", os.getpid(), sys.argv[1])
    try:
        run_local(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None)
    except Exception:  # noqa: BLE001  train() has recorded it in run.json; the exit code tells the engine
        log.exception("the training failed")  # into worker.log, with its traceback
        sys.exit(1)
