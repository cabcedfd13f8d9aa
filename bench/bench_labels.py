"""Label search: time of the k-fold pass (k dense runs through the engine's worker processes, then cleanlab)
on the offline MNIST subset with 40 labels planted wrong through the fix overlay; how many it ranks top 100.

    python bench/bench_labels.py [--quick]
"""
from __future__ import annotations

import tempfile
import time

import numpy as np

import common

PLANTED, TOP, TARGET = 40, 100, 30


def run(quick: bool) -> list[dict]:
    from core.data import fixes
    from core.train import label_search
    from core.data.datasets import load_dataset
    from core.engine.scheduler import Engine, max_concurrent
    from core.train.trainer import TrainConfig

    folds, epochs = (3, 3) if quick else (5, 3)
    ds = load_dataset("mnist")
    rng = np.random.default_rng(7)
    planted = rng.choice(len(ds.y_train), PLANTED, replace=False)
    with tempfile.TemporaryDirectory() as runs_dir:
        overlay = fixes.Overlay("mnist", runs_dir)
        for i in planted:
            overlay.record("relabel", "train", int(i), int((ds.y_train[i] + rng.integers(1, 10)) % 10), view="bench")
        engine = Engine(runs_dir, slots=max_concurrent())
        try:
            t0 = time.perf_counter()
            record = label_search.start(engine, TrainConfig(dataset="mnist", arch="dense", epochs=epochs,
                                                            folds=folds, fixes=True))
            for run_id in record["runs"]:
                engine.wait(run_id)
            t_folds = time.perf_counter() - t0
            held = label_search.collect(record["runs"], runs_dir)
            t_import, _ = common.timed(__import__, "cleanlab.filter")  # pandas and scikit-learn come with it
            t_rank, found = common.timed(label_search.issues, held, ds.class_names)
            fits = [fixes.runs.load_run(engine.runs_dir / r).meta.get("fit_seconds", 0) for r in record["runs"]]
        finally:
            engine.close()
    hits = len({f.get("index") for f in found[:TOP]} & {int(i) for i in planted})
    setup = f"{folds} folds × dense {epochs} epochs, {engine.slots} slot(s), {len(held['labels']):,} training images"
    common.log(f"k-fold pass {t_folds:.1f} s, ranking {t_rank * 1000:.0f} ms, {hits}/{PLANTED} planted in top {TOP}")
    return [common.row("labels", "k-fold pass (submit → all folds saved)", round(t_folds, 1), "s", notes=setup),
            common.row("labels", "fit time per fold (median)", round(common.median(fits), 1), "s",
                       spread=common.spread(fits)),
            common.row("labels", "cleanlab ranking", round(t_rank * 1000), "ms",
                       notes=f"{len(found)} suspects; importing cleanlab took {t_import:.1f} s before"),
            common.row("labels", f"planted flips in the top {TOP}", hits, f"of {PLANTED}", target=f">= {TARGET}",
                       ok=hits >= TARGET)]


if __name__ == "__main__":
    raise SystemExit(common.main(run))
