"""The engine with real worker processes: submit, attach, queue, cancel, stop, a killed worker, recovery."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from core.store import runs
from core.engine.scheduler import Engine, recover
from core.train.trainer import TrainConfig
from site_hooks import site_pythonpath

QUICK = dict(dataset="mnist", arch="dense", epochs=1, batch_size=32, max_train_samples=640)
LONG = dict(dataset="mnist", arch="dense", epochs=200, batch_size=8)  # minutes of work: only Stop ends it


def wait_for(cond, timeout: float = 120, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def training(engine: Engine, run_id: str) -> dict:
    """Wait until the run's worker is past its first batch; its run.json then."""
    feed = engine.attach(run_id)
    wait_for(lambda: feed.snapshot(since=-1)["n_batches"] > 0, what=f"{run_id} to train")
    return runs.read_json(engine.runs_dir / run_id / "run.json")


@pytest.fixture
def engine(runs_dir):
    e = Engine(runs_dir, slots=1)
    yield e
    e.close()


@pytest.mark.quick
def test_a_run_trains_in_its_own_process_and_feeds_its_folder(engine):
    run_id = engine.submit(TrainConfig(**QUICK))
    assert (engine.runs_dir / run_id / "run.json").is_file()  # the run exists from the moment it is queued
    # a free slot is waiting for it: it never reads as queued behind somebody, even before the scheduler's tick
    (item,) = engine.active()
    assert item["status"] in ("starting", "running") and item["position"] == 0
    run = engine.wait(run_id, timeout=180)
    assert run.status == "finished" and run.usable, run.meta.get("error")
    assert run.meta["host"] == os.uname().nodename and run.meta["engine"] == "local"
    assert run.meta["server_pid"] == os.getpid() and "pid" not in run.meta  # the worker's pid goes with it
    snap = engine.attach(run_id).snapshot()
    assert snap["pid"] != os.getpid() and snap["status"] == "finished"
    assert snap["n_batches"] == 18 and [e["epoch"] for e in snap["epochs"]] == [1]
    assert snap["test_accuracy"] == run.meta["test_accuracy"]
    assert (run.path / "worker.log").is_file() and not engine.active()


def test_queue_cancel_and_stop(engine):
    first = engine.submit(TrainConfig(**LONG))
    second = engine.submit(TrainConfig(**QUICK))
    meta = training(engine, first)
    assert meta["status"] == "running" and meta["pid"] != os.getpid()
    assert engine.active() == [{"run_id": first, "status": "running", "position": 0},
                               {"run_id": second, "status": "queued", "position": 1}]
    assert runs.load_run(engine.runs_dir / second).status == "queued"
    assert engine.stop(second) == "cancelled"
    cancelled = runs.load_run(engine.runs_dir / second)
    assert cancelled.status == "cancelled" and not (cancelled.path / "feed.jsonl").exists()
    assert engine.stop(first) == "stopping"
    run = engine.wait(first, timeout=120)
    assert run.status == "stopped" and run.usable and run.meta["epochs_done"] < 200
    assert runs.load_run(engine.runs_dir / second).status == "cancelled"  # it never started


def test_a_killed_worker_fails_its_run_at_once_and_the_next_one_runs(engine):
    doomed = engine.submit(TrainConfig(**LONG))
    pid = training(engine, doomed)["pid"]
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    wait_for(lambda: runs.load_run(engine.runs_dir / doomed).meta.get("status") == "failed", timeout=5,
             what="the killed run to read failed")
    print(f"killed worker → failed in {time.monotonic() - t0:.2f} s")
    run = runs.load_run(engine.runs_dir / doomed)
    assert run.meta["error"] == "worker exited (signal 9, SIGKILL)" and not run.usable
    after = engine.wait(engine.submit(TrainConfig(**QUICK)), timeout=180)
    assert after.status == "finished"


def test_a_worker_that_ignores_stop_is_ended_after_the_grace(runs_dir):
    engine = Engine(runs_dir, slots=1, stop_grace_s=1.0)
    try:
        run_id = engine.submit(TrainConfig(**LONG))
        pid = training(engine, run_id)["pid"]
        os.kill(pid, signal.SIGSTOP)  # frozen mid-batch: it can never see the stop file
        engine.stop(run_id)
        run = engine.wait(run_id, timeout=30)
    finally:
        engine.close()
    assert run.status == "failed" and run.meta["error"].startswith("stopped: the worker did not end within 1 s")


def test_two_workers_at_once_build_the_same_model_names(runs_dir):
    """Keras names layers per process: two CNNs side by side used to clash in one server process."""
    engine = Engine(runs_dir, slots=2)
    try:
        cnn = dict(QUICK, arch="cnn", max_train_samples=256)
        ids = [engine.submit(TrainConfig(**cnn, seed=s)) for s in (0, 1)]
        wait_for(lambda: len([a for a in engine.active() if a["status"] == "running"]) == 2, what="two running")
        done = [engine.wait(i, timeout=240) for i in ids]
    finally:
        engine.close()
    assert [r.status for r in done] == ["finished", "finished"], [r.meta.get("error") for r in done]


def test_bad_settings_are_refused_before_a_folder_is_made(engine):
    with pytest.raises(ValueError, match="max train samples"):
        engine.submit(TrainConfig(**{**QUICK, "max_train_samples": 0}))
    assert list(engine.runs_dir.iterdir()) == []


def test_a_run_that_fails_in_its_worker_says_why(engine):
    run = engine.wait(engine.submit(TrainConfig(dataset="folder", data_path="/nonexistent/x", arch="dense")),
                      timeout=120)
    assert run.status == "failed" and "/nonexistent/x" in run.meta["error"]


def test_runs_left_active_by_a_dead_owner_are_marked_interrupted(runs_dir):
    gone, alive = subprocess.Popen(["true"]), subprocess.Popen(["sleep", "60"])
    gone.wait()
    here = os.uname().nodename
    cases = {"worker_gone": {"status": "running", "pid": gone.pid, "host": here},
             "server_gone": {"status": "queued", "server_pid": gone.pid, "server_host": here},
             "ray_driver_gone": {"status": "running", "engine": "ray", "pid": os.getpid(), "host": here,
                                 "server_pid": gone.pid, "server_host": here},
             "alive": {"status": "running", "pid": alive.pid, "host": here},
             "done": {"status": "finished"}}
    for name, meta in cases.items():
        (runs_dir / name).mkdir()
        runs.write_json_atomic(runs_dir / name / "run.json", meta)
    assert sorted(recover(runs.list_runs(runs_dir))) == ["ray_driver_gone", "server_gone", "worker_gone"]
    got = {name: runs.read_json(runs_dir / name / "run.json")["status"] for name in cases}
    assert got == {"worker_gone": "interrupted", "server_gone": "interrupted", "ray_driver_gone": "interrupted",
                   "alive": "running", "done": "finished"}
    assert "interrupted" in runs.read_json(runs_dir / "worker_gone" / "run.json")["error"]
    assert recover(runs.list_runs(runs_dir)) == []  # done once
    alive.kill()
    alive.wait()


SERVER = """
import os, signal, sys, time
from core.engine.scheduler import Engine
from core.train.trainer import TrainConfig
engine = Engine(sys.argv[1], slots=1)
run_id = engine.submit(TrainConfig(dataset="mnist", arch="dense", epochs=200, batch_size=8))
while not (engine.attach(run_id).snapshot(since=-1)["n_batches"] > 0):
    time.sleep(0.1)
print(run_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # the server dies; its worker, now an orphan, trains on
"""


def test_a_restarted_server_shows_stops_and_counts_the_training_its_predecessor_left(runs_dir):
    import sys

    root = str(runs.ROOT)
    server = subprocess.run([sys.executable, "-c", SERVER, str(runs_dir)], capture_output=True, text=True,
                            timeout=180, env={**os.environ, "PYTHONPATH": root}, cwd=root)
    assert server.returncode == -signal.SIGKILL, server.stderr
    orphan = server.stdout.split()[0]
    pid = runs.read_json(runs_dir / orphan / "run.json")["pid"]
    engine = Engine(runs_dir, slots=1)
    try:
        assert engine.recovered == [] and runs.load_run(runs_dir / orphan).status == "running"
        assert engine.active() == [{"run_id": orphan, "status": "running", "position": 0}]
        queued = engine.submit(TrainConfig(**QUICK))
        time.sleep(1)
        assert runs.load_run(runs_dir / queued).status == "queued"  # the orphan holds the only slot
        assert engine.stop(orphan) == "stopping"
        run = engine.wait(orphan, timeout=120)
        assert run.status == "stopped" and run.usable and not runs.pid_alive(pid)
        assert engine.wait(queued, timeout=180).status == "finished"
    finally:
        engine.close()
        if runs.pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


DIES_WHILE_STARTING = """
import os, signal, sys, time
from core.engine.scheduler import Engine
from core.train.trainer import TrainConfig
engine = Engine(sys.argv[1], slots=1)
run_id = engine.submit(TrainConfig(dataset="mnist", arch="dense", epochs=1, max_train_samples=640))
feed = engine.attach(run_id)
while "pid" not in feed.snapshot(since=-1):  # the worker has started; run.json still says queued
    time.sleep(0.05)
print(run_id, feed.snapshot(since=-1)["pid"], flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_worker_whose_run_was_interrupted_before_it_began_does_not_train_it(runs_dir, tmp_path):
    import sys

    root = str(runs.ROOT)
    # the worker's TensorFlow loads only once the engine has been restarted below: the server dies, and the next
    # one takes over, while the worker is still starting, however slow the machine
    gate = tmp_path / "restarted"
    slow = site_pythonpath(tmp_path / "hooks", root, slow_tf=300, until=gate)
    server = subprocess.run([sys.executable, "-c", DIES_WHILE_STARTING, str(runs_dir)], capture_output=True,
                            text=True, timeout=180, env={**os.environ, "PYTHONPATH": slow}, cwd=root)
    assert server.returncode == -signal.SIGKILL, server.stderr
    run_id, pid = server.stdout.split()
    engine = Engine(runs_dir, slots=1)  # the restart: the queued run's server is gone, so it was interrupted
    try:
        assert engine.recovered == [run_id] and engine.active() == []
        gate.touch()
        wait_for(lambda: not runs.pid_alive(int(pid)), timeout=120, what="the worker to give up")
        run = runs.load_run(runs_dir / run_id)
        assert run.status == "interrupted" and not run.model_path.exists(), run.meta
        assert "no longer queued" in (runs_dir / run_id / "worker.log").read_text()
    finally:
        engine.close()
        if runs.pid_alive(int(pid)):
            os.kill(int(pid), signal.SIGKILL)


def test_attach_refuses_paths_outside_the_runs_folder(engine):
    for bad in ("../etc", "/etc", "..", "", ".hidden", "nope"):
        with pytest.raises(runs.RunError):
            engine.attach(bad)


def test_an_orphan_whose_pid_now_names_another_process_is_neither_waited_for_nor_killed():
    import sys

    from core.engine.executors import Orphan

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:  # a run.json's worker pid that the kernel has given to this process since (or before a reboot)
        reused = Orphan(other.pid, "another-boot:1")
        assert reused.poll() == 0
        reused.kill()
        time.sleep(0.2)
        assert other.poll() is None
        same = Orphan(other.pid, runs.process_start(other.pid))
        assert same.poll() is None
        same.kill()
        assert other.wait(timeout=10) == -signal.SIGKILL
    finally:
        other.kill()
        other.wait()


def test_a_worker_computes_on_the_cores_its_slot_shares_unless_told_fewer(monkeypatch):
    from core.engine.executors import LocalExecutor

    monkeypatch.delenv("CLASSIFIER_LAB_TRAINING_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert [LocalExecutor(slots).threads for slots in (1, 2, 3, 16)] == [8, 4, 2, 1]
    monkeypatch.setenv("CLASSIFIER_LAB_TRAINING_THREADS", "3")
    assert LocalExecutor(1).threads == 3
