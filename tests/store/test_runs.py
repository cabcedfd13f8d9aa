"""Run folders on disk: atomic JSON, statuses of finished/killed/damaged runs, resolve, delete, safe loading."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from core.model import compat
from core.store import runs
from core.store.runs import RunError

ROOT = Path(__file__).resolve().parents[2]


def make_run(runs_dir, name, meta=None, model_from=None, raw=None):
    """A run folder written by hand, exactly as train() (or a killed train()) leaves one."""
    path = runs_dir / name
    path.mkdir(parents=True)
    if raw is not None:
        (path / "run.json").write_bytes(raw)
    elif meta is not None:
        (path / "run.json").write_text(json.dumps(meta))
    if model_from is not None:
        shutil.copy(model_from, path / "model.keras")
    return path


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()  # reaped: the pid now names no process
    return p.pid


HERE = os.uname().nodename


@pytest.fixture
def live_pid():
    """A live process other than this one, as a training in another process is (this process's own
    pid only counts as training while train() runs in it: see test_hostile)."""
    p = subprocess.Popen(["sleep", "300"])
    yield p.pid
    p.kill()
    p.wait()


# --- JSON files ---------------------------------------------------------------------------------------------

def test_write_json_atomic_round_trips_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "run.json"
    runs.write_json_atomic(target, {"a": 1, "path": tmp_path, "nan": float("nan")})
    runs.write_json_atomic(target, {"a": 2, "path": tmp_path})  # replaces, never appends
    assert runs.read_json(target) == {"a": 2, "path": str(tmp_path)}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_write_json_atomic_failure_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "run.json"
    runs.write_json_atomic(target, {"status": "running"})
    circular = {}
    circular["self"] = circular
    with pytest.raises(ValueError):
        runs.write_json_atomic(target, circular)
    assert runs.read_json(target) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_write_json_atomic_from_many_threads(tmp_path):
    """Two threads (the trainer and the UI) writing one file must not share a temp file."""
    import threading

    target, errors = tmp_path / "run.json", []

    def write(k):
        try:
            for i in range(50):
                runs.write_json_atomic(target, {"writer": k, "i": i, "pad": "x" * 5000})
        except Exception as e:  # noqa: BLE001 -- collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert runs.read_json(target)["i"] == 49 and [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_read_json_defaults(tmp_path):
    assert runs.read_json(tmp_path / "missing.json", {"x": 1}) == {"x": 1}
    (tmp_path / "bad.json").write_text('{"status": "fini')
    assert runs.read_json(tmp_path / "bad.json") is None
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    assert runs.read_json(tmp_path / "bin.json", {}) == {}


# --- statuses -----------------------------------------------------------------------------------------------

@pytest.mark.quick
def test_statuses_of_hand_made_runs(runs_dir, trained, live_pid):
    model = trained[0].model_path
    finished = {"status": "finished", "created": "2024-01-01 00:00:05", "test_accuracy": 0.9,
                "config": {"dataset": "mnist", "arch": "dense"}}
    cases = {
        "alive": ({"status": "running", "pid": live_pid, "host": HERE, "created": "2024-01-01 00:00:09"}, None),
        "alivestart": ({"status": "running", "pid": live_pid, "pid_start": runs.process_start(live_pid),
                        "host": HERE}, None),
        # the pid lives, but names another process than the one that wrote it (reused since, or before a reboot)
        "reused": ({"status": "running", "pid": live_pid, "pid_start": "another-boot:1", "host": HERE}, None),
        "reusedserver": ({"status": "queued", "server_pid": live_pid, "server_pid_start": "another-boot:1",
                          "server_host": HERE}, None),
        "dead": ({"status": "running", "pid": dead_pid(), "host": HERE, "created": "2024-01-01 00:00:08"}, None),
        "elsewhere": ({"status": "running", "pid": os.getpid(), "host": HERE + "-other"}, None),
        "pid0": ({"status": "running", "pid": 0, "host": HERE}, None),
        "pidjunk": ({"status": "running", "pid": "abc", "host": HERE}, None),
        "nomodel": (finished, None),
        "finished": (finished, model),
        "stopped": ({**finished, "status": "stopped"}, model),
        "failed": ({"status": "failed", "error": "ValueError: x"}, None),
    }
    for name, (meta, model_from) in cases.items():
        make_run(runs_dir, name, meta, model_from)
    got = {r.id: r.status for r in runs.list_runs(runs_dir)}
    assert got == {"alive": "running", "alivestart": "running", "reused": "interrupted",
                   "reusedserver": "interrupted", "dead": "interrupted", "elsewhere": "interrupted", "pid0": "interrupted",
                   "pidjunk": "interrupted", "nomodel": "incomplete", "finished": "finished",
                   "stopped": "stopped", "failed": "failed"}
    usable = {r.id for r in runs.list_runs(runs_dir) if r.usable}
    assert usable == {"finished", "stopped"}
    assert runs.load_run(runs_dir / "finished").label == "mnist · dense · 90.0% (finished)"
    assert runs.load_run(runs_dir / "dead").label == " · ? · interrupted (dead)"


def test_a_zombie_worker_is_not_alive():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    try:  # ended, not reaped: as an orphaned worker stays under a PID 1 that never reaps (some containers)
        wait_zombie = time.monotonic() + 30
        while Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < wait_zombie
            time.sleep(0.05)
        run = runs.Run("x", ROOT, {"status": "running", "pid": p.pid, "host": HERE})
        assert not runs.pid_alive(p.pid) and run.status == "interrupted"
    finally:
        p.wait()
    assert runs.pid_alive(os.getpid())


def test_a_pid_owned_by_another_user_is_alive(monkeypatch):
    def kill(pid, sig):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", kill)
    run = runs.Run("x", ROOT, {"status": "running", "pid": 12345, "host": HERE})
    assert run.status == "running"


def test_damaged_run_json_lists_as_incomplete_without_crashing(runs_dir, trained):
    real = (trained[0].path / "run.json").read_bytes()
    make_run(runs_dir, "truncated", raw=real[: len(real) // 2], model_from=trained[0].model_path)
    make_run(runs_dir, "garbage", raw=b"\x00\xff garbage \x89PNG")
    (runs_dir / "garbage" / "history.json").write_text("[1, 2]")
    make_run(runs_dir, "empty", raw=b"")
    (runs_dir / "empty" / "history.json").write_text('{"epochs": [{"epoch": 1, "lo')
    make_run(runs_dir, "a_list", raw=b"[1, 2, 3]")
    make_run(runs_dir, "a_string", raw=b'"finished"')
    make_run(runs_dir, "bad_types", {"status": "finished", "config": "mnist", "created": 17,
                                     "test_accuracy": "high"}, model_from=trained[0].model_path)
    make_run(runs_dir, "no_json")
    (runs_dir / ".hidden").mkdir()
    (runs_dir / "stray.txt").write_text("not a run")
    listed = runs.list_runs(runs_dir)
    assert sorted(r.id for r in listed) == ["a_list", "a_string", "bad_types", "empty", "garbage", "no_json",
                                            "truncated"]
    for r in listed:
        assert r.label and isinstance(r.config, dict) and r.history() == {}
        if r.id != "bad_types":
            assert r.status == "incomplete" and not r.usable
    assert runs.load_run(runs_dir / "bad_types").status == "finished"  # its model is there; odd fields shown as is


def test_list_runs_newest_first_and_missing_folder(tmp_path, runs_dir):
    assert runs.list_runs(tmp_path / "nowhere") == []
    for i, created in enumerate(["2024-05-01 10:00:00", "2025-01-01 09:00:00", "2024-12-31 23:59:59"]):
        make_run(runs_dir, f"r{i}", {"status": "failed", "created": created})
    assert [r.id for r in runs.list_runs(runs_dir)] == ["r1", "r2", "r0"]
    assert [r.id for r in runs.list_runs()] == ["r1", "r2", "r0"]  # CLASSIFIER_LAB_RUNS is the default


# --- processes killed while training or saving ----------------------------------------------------------------

KILL_SCRIPT = r"""
import sys, time
import keras, numpy as np
from core.data.datasets import load_dataset
from core.data.registry import Dataset
from core.train.trainer import TrainConfig, train

mode, runs_dir = sys.argv[1], sys.argv[2]

def hang():
    print("READY", flush=True)
    time.sleep(120)

class HangMidEpoch(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if mode == "epoch" and self._epoch == 1 and batch == 3:
            hang()
    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

if mode == "save":  # the model file is half written when the process dies
    real_save = keras.Model.save
    def save(self, filepath, *a, **k):
        real_save(self, filepath, *a, **k)
        data = open(filepath, "rb").read()
        open(filepath, "wb").write(data[: len(data) // 2])
        hang()
    keras.Model.save = save

full = load_dataset("mnist", offline=True)
ds = Dataset("mnist", full.class_names, full.x_train[:400], full.y_train[:400], full.x_test[:100],
             full.y_test[:100], full.source, full.augment)
train(TrainConfig(arch="dense", epochs=3, batch_size=32, runs_dir=runs_dir), callbacks=[HangMidEpoch()],
      dataset=ds)
print("NOT KILLED", flush=True)
"""


@pytest.fixture(scope="session")
def killed_runs(tmp_path_factory, subprocess_env):
    """Two real training processes, SIGKILLed mid-epoch and mid-save (run side by side to save time)."""
    base = tmp_path_factory.mktemp("killed")
    procs = {}
    for mode in ("epoch", "save"):
        (base / mode).mkdir()
        procs[mode] = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, mode, str(base / mode)], cwd=ROOT,
                                       env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for mode, p in procs.items():
            line = p.stdout.readline()  # blocks until the process reaches the moment we kill it at
            assert line.strip() == "READY", f"{mode}: {line!r} {p.stderr.read()[-2000:] if p.poll() is not None else ''}"
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
            assert p.returncode == -signal.SIGKILL
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
    return {mode: runs.list_runs(base / mode) for mode in procs}


def test_killed_mid_epoch_is_interrupted_but_keeps_its_history(killed_runs):
    (run,) = killed_runs["epoch"]
    assert run.meta["status"] == "running" and run.status == "interrupted" and not run.usable
    assert run.meta["epochs_done"] == 1 and [h["epoch"] for h in run.history()["epochs"]] == [1]
    assert not run.model_path.exists()
    assert not [p for p in run.path.iterdir() if p.name.endswith(".tmp")]  # JSON writes are atomic


def test_killed_mid_save_is_never_finished(killed_runs):
    (run,) = killed_runs["save"]
    assert run.status == "interrupted" and not run.usable
    assert not run.model_path.exists()  # the half-written file never got the real name
    partial = [p for p in run.path.iterdir() if p.suffix == ".keras"]
    assert len(partial) == 1 and partial[0].stat().st_size > 0
    with pytest.raises(RunError, match="not a usable Keras model"):
        compat.load_model(partial[0])


def test_killed_before_the_final_run_json_is_interrupted(runs_dir, trained):
    """Killed after model.keras got its name but before run.json said finished: still not finished."""
    meta = {**trained[0].meta, "status": "running", "pid": dead_pid(), "host": HERE}
    meta.pop("finished")
    run = runs.load_run(make_run(runs_dir, "late", meta, model_from=trained[0].model_path))
    assert run.model_path.is_file() and run.status == "interrupted" and not run.usable


# --- resolve ------------------------------------------------------------------------------------------------

def test_resolve_by_id_folder_and_model_path(runs_dir, trained):
    src = trained[0]
    shutil.copytree(src.path, runs_dir / src.id)
    by_id = runs.resolve(src.id)  # runs_dir from CLASSIFIER_LAB_RUNS
    assert by_id.path == runs_dir / src.id and by_id.usable and by_id.meta == src.meta
    assert runs.resolve(str(runs_dir / src.id), runs_dir).id == src.id
    by_file = runs.resolve(str(runs_dir / src.id / "model.keras"), runs_dir)
    assert by_file.id == src.id and by_file.meta["test_accuracy"] == src.meta["test_accuracy"]


def test_resolve_a_loose_keras_file(tmp_path, trained):
    loose = tmp_path / "exported" / "my_digits.keras"
    loose.parent.mkdir()
    shutil.copy(trained[0].model_path, loose)
    run = runs.resolve(str(loose), tmp_path / "runs")
    assert run.id == "my_digits" and run.model_path == loose and run.usable
    assert compat.load_model(run.model_path).output_shape == (None, 10)


@pytest.mark.parametrize("spec", ["no-such-run", "../runs", "..", "", "x/model.keras", "/nonexistent/model.keras"])
def test_resolve_unknown_is_a_run_error(runs_dir, spec):
    (runs_dir.parent / "not-a-run").mkdir()
    with pytest.raises(RunError, match="no model"):
        runs.resolve(spec, runs_dir)


def test_bundled_models(tmp_path, monkeypatch, trained):
    bundled = tmp_path / "models"
    make_run(bundled, "mnist", {**trained[0].meta}, model_from=trained[0].model_path)
    make_run(bundled, "broken", {**trained[0].meta})  # no model.keras: not offered
    make_run(bundled, "nothing")
    monkeypatch.setattr(runs, "BUNDLED_DIR", bundled)
    (b,) = runs.bundled_models()
    assert b.id == "mnist" and b.bundled and "(bundled)" in b.label
    assert runs.resolve("mnist", tmp_path / "runs").bundled
    with pytest.raises(RunError, match="refusing"):
        runs.delete_run(b, bundled)
    assert (bundled / "mnist" / "model.keras").is_file()


# --- delete -------------------------------------------------------------------------------------------------

def test_delete_run_deletes_a_run(runs_dir):
    path = make_run(runs_dir, "r1", {"status": "failed"})
    runs.delete_run(runs.load_run(path))
    assert not path.exists() and runs_dir.is_dir()


def test_delete_run_refuses_anything_outside_the_runs_folder(runs_dir, tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "file").write_text("keep me")
    nested = make_run(runs_dir / "group", "r", {"status": "failed"})
    link = runs_dir / "link"
    link.symlink_to(outside, target_is_directory=True)
    for run in [runs.Run("precious", runs_dir / ".." / "precious"), runs.Run("runs", runs_dir),
                runs.Run("r", nested), runs.Run("link", link), runs.Run("x", outside),
                runs.Run("r", runs_dir / "r", bundled=True)]:
        with pytest.raises(RunError, match="refusing to delete"):
            runs.delete_run(run, runs_dir)
    assert (outside / "file").read_text() == "keep me" and nested.is_dir() and link.is_symlink()


# --- load_model ---------------------------------------------------------------------------------------------

def test_load_model_clear_errors_for_bad_files(tmp_path, trained):
    with pytest.raises(RunError, match="model file not found"):
        compat.load_model(tmp_path / "missing.keras")
    junk = tmp_path / "junk.keras"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    real = trained[0].model_path.read_bytes()
    half = tmp_path / "half.keras"
    half.write_bytes(real[: len(real) // 2])
    empty = tmp_path / "empty.keras"
    empty.write_bytes(b"")
    for bad in (junk, text, half, empty):
        with pytest.raises(RunError, match=rf"^{bad.name}: not a usable Keras model \(") as info:
            compat.load_model(bad)
        assert "\n" not in str(info.value) and info.value.__cause__ is None
    with pytest.raises(RunError, match="is a folder|not found"):
        compat.load_model(tmp_path)


def test_load_model_refuses_code_in_safe_mode(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(RunError, match="not a usable Keras model"):
        compat.load_model(tmp_path / "lambda.keras")


def test_load_model_real_model(trained):
    run, _, ds = trained
    model = compat.load_model(run.model_path)
    assert model.input_shape == (None, 28, 28) and model.output_shape == (None, 10)
    probs = np.load(run.path / "test_probs.npy")[:32]
    logits = keras.ops.convert_to_numpy(model(ds.x_test[:32].astype("float32"), training=False))
    np.testing.assert_array_equal(logits.argmax(1), probs.argmax(1))


def test_new_run_dirs_are_unique_and_errors_are_run_errors(tmp_path):
    a = runs.new_run_dir(tmp_path / "r", "mnist", "dense")
    b = runs.new_run_dir(tmp_path / "r", "mnist", "dense")
    assert a != b and a.is_dir() and b.is_dir() and "-mnist-dense-" in a.name
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RunError, match="cannot create a run"):
        runs.new_run_dir(blocker / "runs", "mnist", "dense")
    assert time.strftime("%Y%m%d") in a.name


def test_delete_refuses_a_run_that_is_still_training(runs_dir, live_pid):
    path = runs.new_run_dir(runs_dir, "mnist", "dense")
    runs.write_json_atomic(path / "run.json", {"status": "running", "pid": live_pid, "host": os.uname().nodename})
    with pytest.raises(runs.RunError, match="still training"):
        runs.delete_run(runs.load_run(path), runs_dir)
    assert path.is_dir()
