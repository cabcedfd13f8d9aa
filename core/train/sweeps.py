"""Sweeps: many runs over a grid of settings, queued on the training engine, ranked by validation accuracy.

A sweep is a small JSON file, <runs>/.sweeps/<id>.json (hidden, so runs.list_runs never takes it for a run),
listing its grid and run ids; each of its runs' run.json says `sweep: <id>`.
"""
from __future__ import annotations

import itertools
import math
import secrets
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from core import InvalidValue
from core.store import runs
from core.train.trainer import TrainConfig

SWEEPS_DIR = ".sweeps"
# what a sweep may vary: TrainConfig field -> how its values read on the command line
AXES = {"arch": str, "learning_rate": float, "batch_size": int, "epochs": int, "augment": bool}
MAX_RUNS = 200  # a grid larger than this is almost surely a typo


def sweeps_dir(runs_dir: Path | None = None) -> Path:
    return Path(runs_dir or runs.default_runs_dir()) / SWEEPS_DIR


def combinations(grid: dict[str, list], n_random: int | None = None, seed: int = 0) -> list[dict]:
    """Every combination of the grid's values (in grid order), or `n_random` distinct ones drawn at random."""
    unknown = set(grid) - set(AXES)
    if unknown:
        raise InvalidValue(f"a sweep cannot vary {', '.join(sorted(unknown))}; it varies {', '.join(AXES)}")
    grid = {k: list(dict.fromkeys(v)) for k, v in grid.items() if v}  # drop repeats, keep order
    total = math.prod(len(v) for v in grid.values())
    if n_random is not None:
        if n_random < 1:
            raise InvalidValue("a random sweep needs at least 1 run")
        # indices into the product, decoded lazily: a huge grid is never expanded to sample from it
        picks = np.random.default_rng(seed).choice(total, size=min(n_random, total), replace=False)
        sizes = [len(v) for v in grid.values()]
        return [{k: v[i] for (k, v), i in zip(grid.items(), np.unravel_index(int(p), sizes))} for p in picks]
    if total > MAX_RUNS:
        raise InvalidValue(f"that grid has {total} combinations (at most {MAX_RUNS}): use fewer values or random")
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def launch(engine, base: TrainConfig, grid: dict[str, list], n_random: int | None = None, seed: int = 0,
           name: str = "") -> dict:
    """Queue one run per combination on `engine` (they run as its slots allow); returns the sweep record."""
    combos = combinations(grid, n_random, seed)
    if not combos:
        raise InvalidValue("the sweep has no runs: give at least one value for each setting")
    configs = [replace(base, **combo).resolved() for combo in combos]  # every one checked before any is queued
    sweep_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{base.dataset}-{secrets.token_hex(2)}"
    record = {"id": sweep_id, "name": name or sweep_id, "created": runs.now(),
              "base": replace(base, sweep=None).to_dict(), "grid": grid, "random": n_random, "seed": seed,
              "combinations": combos, "runs": []}
    folder = sweeps_dir(engine.runs_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _save(folder, record)
    except OSError as e:
        raise runs.RunError(f"cannot write the sweep to {folder}: {e.strerror or e}") from None
    for cfg in configs:
        record["runs"].append(engine.submit(replace(cfg, sweep=sweep_id)))
        _save(folder, record)  # the sweep lists each run as soon as it is queued
    return record


def _save(folder: Path, record: dict) -> None:
    runs.write_json_atomic(folder / f"{record['id']}.json", record)


def load(sweep_id: str, runs_dir: Path | None = None) -> dict:
    """A sweep's record; RunError when there is no such sweep."""
    sweep_id = str(sweep_id or "")
    path = sweeps_dir(runs_dir) / f"{sweep_id}.json"
    record = runs.read_json(path) if Path(sweep_id).name == sweep_id and sweep_id else None
    if not isinstance(record, dict) or not isinstance(record.get("runs"), list):
        raise runs.RunError(f"no sweep {sweep_id[:80]!r} in {sweeps_dir(runs_dir)}")
    return record


def list_sweeps(runs_dir: Path | None = None) -> list[dict]:
    """Every readable sweep record, newest first."""
    folder = sweeps_dir(runs_dir)
    found = [runs.read_json(p) for p in folder.glob("*.json")] if folder.is_dir() else []
    found = [r for r in found if isinstance(r, dict) and isinstance(r.get("runs"), list)]
    return sorted(found, key=lambda r: str(r.get("created", "")), reverse=True)


def kept_epoch(run: runs.Run) -> dict:
    """The history row of the epoch whose weights the run kept: its best epoch with early stopping, else the last."""
    epochs = [e for e in run.history().get("epochs", []) if isinstance(e, dict)]
    best = run.meta.get("best_epoch")
    chosen = [e for e in epochs if e.get("epoch") == best] if best else []
    return (chosen or epochs[-1:] or [{}])[0]


def _number(value):
    return round(float(value), 4) if isinstance(value, (int, float)) and math.isfinite(value) else None


def summary(sweep: dict, runs_dir: Path | None = None) -> list[dict]:
    """One row per run (its varied settings, status, validation and test accuracy), best validation first."""
    runs_dir = Path(runs_dir or runs.default_runs_dir())
    rows = []
    for run_id, combo in zip(sweep["runs"], sweep.get("combinations") or [{}] * len(sweep["runs"])):
        run = runs.load_run(runs_dir / run_id)
        if not run.meta:
            rows.append({"run": run_id, **combo, "status": "deleted", "val_accuracy": None, "val_loss": None,
                         "test_accuracy": None, "epoch": None})
            continue
        epoch = kept_epoch(run)
        rows.append({"run": run_id, **combo, "status": run.status,
                     "val_accuracy": _number(epoch.get("val_accuracy")), "val_loss": _number(epoch.get("val_loss")),
                     "test_accuracy": _number(run.meta.get("test_accuracy")), "epoch": epoch.get("epoch")})
    # a run without a validation accuracy (queued, failed, no validation split) sorts last
    rows.sort(key=lambda r: (r["val_accuracy"] is None, -(r["val_accuracy"] or 0), r["run"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank if row["val_accuracy"] is not None else None
    return rows


def best(rows: list[dict]) -> dict | None:
    """The best usable run of a summary (ranked first, finished or stopped with a model), or None."""
    return next((r for r in rows if r["rank"] is not None and r["status"] in runs.FINISHED), None)


def _states(sweep: dict, engine) -> dict[str, str]:
    """The sweep's runs still queued or running on `engine`, in queue order: run id -> status."""
    mine = set(sweep["runs"])
    return {a["run_id"]: a["status"] for a in engine.active() if a["run_id"] in mine}


def active(sweep: dict, engine) -> list[str]:
    """The sweep's runs that are still queued or running on `engine`."""
    return list(_states(sweep, engine))


def stop(sweep: dict, engine) -> dict[str, str]:
    """Cancel the sweep's queued runs and stop its running ones (keeping their models); run id -> what was done."""
    states = _states(sweep, engine)
    # the queued ones first: otherwise each stopped run's freed slot would start the next in line
    order = sorted(states, key=lambda run_id: states[run_id] != "queued")
    return {run_id: engine.stop(run_id) for run_id in order}


def wait(sweep: dict, engine, timeout: float | None = None, poll_s: float = 0.5) -> None:
    """Block until none of the sweep's runs is queued or running."""
    end = None if timeout is None else time.monotonic() + timeout
    while active(sweep, engine):
        if end is not None and time.monotonic() > end:
            raise TimeoutError(f"sweep {sweep['id']} still has {len(active(sweep, engine))} runs going")
        time.sleep(poll_s)
