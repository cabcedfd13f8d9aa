"""Tuning tools on the engine: the learning-rate range test (target: cnn on Fashion-MNIST ≤ 30 s from submit
to result) and a 4-run sweep with one worker slot against two (wall time and the speed-up of the second slot).

    python bench/bench_tuning.py [--quick]

Everything goes through core.engine.scheduler.Engine and worker processes, as the app and the CLI do, so the figures
include each worker's start (a fresh interpreter importing TensorFlow and loading the dataset).
"""
from __future__ import annotations

import shutil
import tempfile
import time

import common

LR_TARGET_S = 30.0
SWEEP_GRID = {"learning_rate": [1e-3, 3e-3], "batch_size": [32, 64]}


def lr_find_once(engine, arch: str) -> tuple[float, dict]:
    """(seconds from submit to the result on disk, run.json) of one range test on Fashion-MNIST."""
    from core.train.trainer import TrainConfig

    t0 = time.perf_counter()
    run_id = engine.submit(TrainConfig(dataset="fashion_mnist", arch=arch, mode="lr_find"))
    run = engine.wait(run_id, timeout=900)
    seconds = time.perf_counter() - t0
    if run.status != "finished":
        raise SystemExit(f"range test {run_id} {run.status}: {run.meta.get('error')}")
    return seconds, run.meta


def sweep_once(runs_dir: str, slots: int, samples: int) -> float:
    """Wall seconds of a 4-run dense sweep (2 rates × 2 batch sizes, 1 epoch) on `slots` worker slots."""
    from core.train import sweeps
    from core.engine.scheduler import Engine
    from core.train.trainer import TrainConfig

    engine = Engine(runs_dir, slots=slots)
    try:
        t0 = time.perf_counter()
        sweep = sweeps.launch(engine, TrainConfig(dataset="fashion_mnist", arch="dense", epochs=1,
                                                  max_train_samples=samples), SWEEP_GRID)
        sweeps.wait(sweep, engine, timeout=1800)
        seconds = time.perf_counter() - t0
    finally:
        engine.close()
    rows = sweeps.summary(sweep, runs_dir)
    if not all(r["status"] == "finished" for r in rows):
        raise SystemExit(f"sweep {sweep['id']} did not finish: {[r['status'] for r in rows]}")
    return seconds


def run(quick: bool) -> list[dict]:
    from core.engine.scheduler import Engine

    rows, runs_dir = [], tempfile.mkdtemp(prefix="bench-tuning-")
    repeats = 1 if quick else 3
    try:
        engine = Engine(runs_dir, slots=1)
        try:
            for arch in ("cnn", "dense"):
                walls, fits, lrs = [], [], []
                for i in range(repeats):
                    wall, meta = lr_find_once(engine, arch)
                    walls.append(wall)
                    fits.append(meta["fit_seconds"])
                    lrs.append(meta["suggested_lr"])
                    common.log(f"lr-find {arch} {i + 1}/{repeats}: {wall:.1f} s end to end, "
                               f"{meta['fit_seconds']:.1f} s of range test ({meta['lr_find_batches']} batches), "
                               f"suggests {meta['suggested_lr']:.2g}")
                judged = arch == "cnn"
                rows.append(common.row("tuning", f"lr-find {arch} on Fashion-MNIST: submit to result",
                                       round(common.median(walls), 1), "s", spread=common.spread(walls, "{:.1f}"),
                                       target=f"≤ {LR_TARGET_S:g} s" if judged else "",
                                       ok=common.median(walls) <= LR_TARGET_S if judged else None,
                                       notes=f"{repeats} run(s): worker start, data, the batches"))
                rows.append(common.row("tuning", f"lr-find {arch}: the range test itself",
                                       round(common.median(fits), 1), "s", spread=common.spread(fits, "{:.1f}"),
                                       notes="suggested " + ", ".join(f"{x:.2g}" for x in lrs)))
        finally:
            engine.close()
        samples = 2000 if quick else 10000
        one = sweep_once(runs_dir, 1, samples)
        common.log(f"sweep of 4 on 1 slot: {one:.1f} s")
        two = sweep_once(runs_dir, 2, samples)
        common.log(f"sweep of 4 on 2 slots: {two:.1f} s")
        note = f"dense, 2 rates × 2 batch sizes, 1 epoch of {samples:,} Fashion-MNIST images"
        rows.append(common.row("tuning", "4-run sweep, 1 slot: wall time", round(one, 1), "s", notes=note))
        rows.append(common.row("tuning", "4-run sweep, 2 slots: wall time", round(two, 1), "s", notes=note))
        rows.append(common.row("tuning", "4-run sweep: speed-up of a second slot", round(one / two, 2), "×",
                               notes="each worker's TensorFlow import and data loading overlap with another's "
                                     "training; on 2 cores the training itself cannot double"))
    finally:
        shutil.rmtree(runs_dir, ignore_errors=True)
    return rows


if __name__ == "__main__":
    raise SystemExit(common.main(run))
