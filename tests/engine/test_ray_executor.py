"""The same engine on a real local Ray: a run as a Ray task, its feed through the actor, its files sent back."""
from __future__ import annotations

import os

import pytest

from core.model import compat
from core.store import runs
from core.engine.scheduler import Engine
from core.train.trainer import TrainConfig

ray = pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")


@pytest.fixture(scope="module")
def ray_engine(tmp_path_factory):
    engine = Engine(tmp_path_factory.mktemp("ray_runs"), kind="ray")
    yield engine
    engine.close()
    ray.shutdown()


@pytest.mark.quick
def test_a_training_runs_as_a_ray_task_and_comes_back_whole(ray_engine):
    run_id = ray_engine.submit(TrainConfig(dataset="mnist", arch="dense", epochs=2, max_train_samples=640))
    run = ray_engine.wait(run_id, timeout=300)
    assert run.status == "finished" and run.usable, run.meta.get("error")
    assert run.meta["engine"] == "ray" and run.meta["server_pid"] == os.getpid()
    assert run.meta["config"]["runs_dir"] == str(ray_engine.runs_dir)  # the server's, not the task's scratch
    assert {"model.keras", "history.json", "test_probs.npy", "feed.jsonl"} <= {p.name for p in run.path.iterdir()}
    snap = ray_engine.attach(run_id).snapshot()
    assert snap["n_batches"] == 2 * 18 and snap["status"] == "finished" and snap["pid"] != os.getpid()
    assert [e["epoch"] for e in run.history()["epochs"]] == [1, 2]
    compat.load_model(run.model_path)  # the file that came back loads


def test_stop_reaches_a_ray_task_through_the_actor(ray_engine):
    run_id = ray_engine.submit(TrainConfig(dataset="mnist", arch="dense", epochs=200, batch_size=8))
    feed = ray_engine.attach(run_id)
    import time

    end = time.monotonic() + 240
    while feed.snapshot(since=-1)["n_batches"] == 0:
        assert time.monotonic() < end, "the Ray task never started training"
        time.sleep(0.2)
    assert runs.load_run(ray_engine.runs_dir / run_id).status == "running"
    ray_engine.stop(run_id)
    run = ray_engine.wait(run_id, timeout=120)
    assert run.status == "stopped" and run.usable and run.meta["epochs_done"] < 200
