"""The local executor: a worker process per run, at the niceness CLASSIFIER_LAB_WORKER_NICE asks for."""
from __future__ import annotations

import os
import time

import pytest

from core.config import ConfigError
from core.engine.scheduler import Engine
from core.store import runs
from core.train.trainer import TrainConfig

LONG = dict(dataset="mnist", arch="dense", epochs=200, batch_size=8)  # minutes of work: only Stop ends it


def niceness(pid: int) -> int:
    stat = open(f"/proc/{pid}/stat").read()
    return int(stat[stat.rfind(")") + 2:].split()[16])  # field 19 of proc(5), after the name in brackets


@pytest.mark.quick
def test_workers_run_at_the_niceness_asked_for_and_a_bad_value_stops_the_server(runs_dir, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_LAB_WORKER_NICE", "low")
    with pytest.raises(ConfigError, match="CLASSIFIER_LAB_WORKER_NICE='low'"):
        Engine(runs_dir, slots=1)

    monkeypatch.setenv("CLASSIFIER_LAB_WORKER_NICE", "7")
    engine = Engine(runs_dir, slots=1)
    try:
        run_id = engine.submit(TrainConfig(**LONG))
        end = time.monotonic() + 120
        while not (pid := engine.attach(run_id).snapshot(since=-1).get("pid")) and time.monotonic() < end:
            time.sleep(0.1)  # the worker says its pid in its first feed line, before it loads TensorFlow
        assert pid and pid != os.getpid()
        assert niceness(os.getpid()) == os.nice(0)  # (/proc read right)
        assert niceness(pid) == max(7, os.nice(0))  # never below the server's own
        engine.stop(run_id)
        assert engine.wait(run_id, timeout=120).status in ("stopped", "cancelled")
    finally:
        engine.close()
    assert runs.load_run(runs_dir / run_id).status != "running"
