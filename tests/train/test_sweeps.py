"""Sweeps: combinations, the sweep file, a real 4-run sweep through the engine (CLI), stopping a sweep."""
from __future__ import annotations

import functools
import json
import time

import pytest

import core.cli.main as cli
from core.store import runs

from core.train import sweeps
from core.engine.scheduler import Engine
from core.train.trainer import TrainConfig

TINY = dict(dataset="mnist", arch="dense", epochs=1, max_train_samples=400)


def test_grid_is_every_combination_in_order():
    combos = sweeps.combinations({"learning_rate": [1e-3, 1e-2], "batch_size": [32, 64, 32]})
    assert combos == [{"learning_rate": 1e-3, "batch_size": 32}, {"learning_rate": 1e-3, "batch_size": 64},
                      {"learning_rate": 1e-2, "batch_size": 32}, {"learning_rate": 1e-2, "batch_size": 64}]


def test_random_picks_distinct_combinations_reproducibly():
    grid = {"arch": ["dense", "cnn"], "learning_rate": [1e-4, 1e-3, 1e-2], "epochs": [1, 2, 3]}
    picks = sweeps.combinations(grid, n_random=5, seed=3)
    assert len(picks) == 5 and len({json.dumps(p, sort_keys=True) for p in picks}) == 5
    assert picks == sweeps.combinations(grid, n_random=5, seed=3)
    assert all(p in sweeps.combinations(grid) for p in picks)
    assert len(sweeps.combinations(grid, n_random=100)) == 18  # never more than the grid holds


@pytest.mark.parametrize("grid,n,match", [
    ({"optimizer": ["adam"]}, None, "cannot vary optimizer"),
    ({"learning_rate": list(range(1, 300))}, None, "at most"),
    ({"epochs": [1]}, 0, "at least 1"),
])
def test_bad_sweeps_are_refused(grid, n, match):
    with pytest.raises(ValueError, match=match):
        sweeps.combinations(grid, n_random=n)


def test_bad_values_queue_nothing(runs_dir):
    engine = Engine(runs_dir, slots=1)
    try:
        with pytest.raises(ValueError, match="learning rate"):
            sweeps.launch(engine, TrainConfig(**TINY), {"learning_rate": [1e-3, -1.0]})
    finally:
        engine.close()
    assert not runs.list_runs(runs_dir) and not sweeps.list_sweeps(runs_dir)


def test_unknown_sweep_is_a_clear_error(runs_dir):
    for bad in ("nope", "../x", ""):
        with pytest.raises(runs.RunError, match="no sweep"):
            sweeps.load(bad, runs_dir)


def test_a_four_run_sweep_from_the_command_line_ranks_its_runs(runs_dir, capsys, monkeypatch):
    # the CLI's main() in this process (its output is the point, not its process: that saves a TensorFlow
    # start-up); the four runs still train in real worker processes. A hang still fails, as the subprocess's did.
    monkeypatch.setattr(sweeps, "wait", functools.partial(sweeps.wait, timeout=900))
    code = cli.main(["sweep", "--dataset", "mnist", "--arch", "dense", "--lr", "1e-4,3e-3", "--batch-size", "16,64",
                     "--epochs", "1", "--max-train-samples", "400", "--slots", "2", "--runs-dir", str(runs_dir),
                     "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err[-2000:]
    result = json.loads(out.out.strip().splitlines()[-1])
    rows = result["runs"]
    assert len(rows) == 4 and all(r["status"] == "finished" for r in rows), rows
    accs = [r["val_accuracy"] for r in rows]
    assert accs == sorted(accs, reverse=True) and [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert result["best"] == rows[0]["run"]
    assert {(r["learning_rate"], r["batch_size"]) for r in rows} == {(1e-4, 16), (1e-4, 64), (3e-3, 16), (3e-3, 64)}
    # 1e-4 for one epoch of 25 batches barely moves a dense net; 3e-3 does: the ranking sees that
    assert rows[0]["learning_rate"] == 3e-3
    sweep = sweeps.load(result["sweep"], runs_dir)
    assert sorted(sweep["runs"]) == sorted(r["run"] for r in rows) and sweep["grid"]["learning_rate"] == [1e-4, 3e-3]
    listed = runs.list_runs(runs_dir)  # the hidden .sweeps folder is not taken for a run
    assert sorted(r.id for r in listed) == sorted(sweep["runs"])
    assert all(r.meta["sweep"] == sweep["id"] and r.usable for r in listed)
    assert sweeps.list_sweeps(runs_dir)[0]["id"] == sweep["id"]


@pytest.mark.quick
def test_stopping_a_sweep_cancels_its_queue_and_stops_its_running_run(runs_dir):
    engine = Engine(runs_dir, slots=1)
    try:
        sweep = sweeps.launch(engine, TrainConfig(dataset="mnist", arch="dense", epochs=200, batch_size=8),
                              {"learning_rate": [1e-3, 2e-3, 3e-3]})
        assert len(sweeps.active(sweep, engine)) == 3
        feed = engine.attach(sweep["runs"][0])
        end = time.monotonic() + 300
        while not feed.snapshot(since=-1)["n_batches"] and time.monotonic() < end:  # its worker is training
            time.sleep(0.2)
        done = sweeps.stop(sweep, engine)
        assert sorted(done.values()) == ["cancelled", "cancelled", "stopping"]
        sweeps.wait(sweep, engine, timeout=300)
    finally:
        engine.close()
    statuses = sorted(runs.load_run(runs_dir / r).status for r in sweep["runs"])
    assert statuses == ["cancelled", "cancelled", "stopped"]  # the started one ends after a batch, with its model
    rows = sweeps.summary(sweep, runs_dir)
    assert [r["status"] for r in rows].count("cancelled") == 2 and not sweeps.active(sweep, engine)
