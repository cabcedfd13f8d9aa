"""Callbacks overhead: core.train.trainer.train as a worker runs it (LiveMetrics + RunWriter, its live feed
written to feed.jsonl by a Publisher every 0.1 s) against a plain model.fit of the same model, data and
settings, both in this process. Throughput = training samples x epochs / fit seconds; target A/B >= 0.95.

This is what the app's own code costs inside a training, not what a user waits for: the worker process,
and the Train page redrawing meanwhile, are measured by bench_watched.py (issue #12).

    python bench/bench_training.py [--quick]
"""
from __future__ import annotations

import gc
import shutil
import tempfile
import time
from pathlib import Path

import common

ARCHS = ("dense", "cnn")
TARGET = 0.95


def _config(arch: str, n: int, epochs: int, runs_dir: str):
    from core.train.trainer import TrainConfig

    return TrainConfig(dataset="fashion_mnist", arch=arch, epochs=epochs, max_train_samples=n,
                       validation_split=0.1, seed=0, runs_dir=runs_dir).resolved()


def _cpu_clock():
    """A callback without batch hooks (so it changes nothing in how Keras runs the batches) that
    records the process CPU seconds spent inside model.fit."""
    import keras

    class CpuClock(keras.callbacks.Callback):
        seconds = 0.0

        def on_train_begin(self, logs=None):
            self._t0 = time.process_time()

        def on_train_end(self, logs=None):
            self.seconds = time.process_time() - self._t0

    return CpuClock()


def with_app(ds, cfg) -> tuple[float, float]:
    """A: train() with the worker's store (a Publisher appending to feed.jsonl): (samples/s, CPU µs per
    sample) of its fit. The page that reads the feed runs in another process: bench_watched.py."""
    from core.store import runs
    from core.engine.feed import FileSink, Publisher
    from core.train.trainer import train

    path = runs.new_run_dir(Path(cfg.runs_dir), cfg.dataset, cfg.arch)
    store, clock = Publisher(FileSink(path)), _cpu_clock()
    try:
        run = train(cfg, store=store, stop=store.stop, dataset=ds, run_dir=path, callbacks=[clock])
    finally:
        store.close()
    shutil.rmtree(run.path, ignore_errors=True)
    gc.collect()
    samples = run.meta["data"]["n_train"] * cfg.epochs
    return samples / run.meta["fit_seconds"], clock.seconds / samples * 1e6


def plain(ds, cfg) -> tuple[float, float]:
    """B: the same model, compile, split, batch size and epochs in a bare model.fit(verbose=0)."""
    import math

    import keras

    from core.model.architectures import build_model
    from core.train.trainer import _split, compile_model

    keras.config.set_dtype_policy("float32")
    x_tr, y_tr, x_val, y_val = _split(ds, cfg)
    keras.utils.set_random_seed(cfg.seed)
    model = build_model(cfg.arch, ds.input_shape, ds.num_classes, augment=False, augment_profile=ds.augment,
                        seed=cfg.seed)
    compile_model(model, cfg, math.ceil(len(y_tr) / cfg.batch_size))
    clock = _cpu_clock()
    seconds, _ = common.timed(model.fit, x_tr, y_tr, batch_size=cfg.batch_size, epochs=cfg.epochs, verbose=0,
                              shuffle=True, validation_data=(x_val, y_val), callbacks=[clock])
    del model
    gc.collect()
    samples = len(y_tr) * cfg.epochs
    return samples / seconds, clock.seconds / samples * 1e6


def batch_overhead_us(n: int = 3000, repeats: int = 5) -> float:
    """Main-thread µs per batch that LiveMetrics + RunWriter (feeding a Publisher that appends to
    feed.jsonl, as in a worker) add in Keras's callback machinery (the real CallbackList, real tensor
    logs), against no callbacks of ours: median of alternating rounds."""
    import keras
    import tensorflow as tf
    from keras.src.callbacks.callback_list import CallbackList

    from core.train.callbacks import LiveMetrics, RunWriter
    from core.engine.feed import FileSink, Publisher

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    logs = {"loss": tf.constant(0.5), "accuracy": tf.constant(0.7)}
    tmp = tempfile.mkdtemp(prefix="bench-overhead-")

    def per_batch(callbacks) -> float:
        cl = CallbackList(callbacks, add_history=True, add_progbar=False, model=model, epochs=1, steps=n, verbose=0)
        cl.on_train_begin()
        cl.on_epoch_begin(0)
        t0 = time.perf_counter()
        for i in range(n):
            cl.on_train_batch_begin(i)
            cl.on_train_batch_end(i, logs)
        if cl._async_train:
            cl._flush_futures()
        seconds = time.perf_counter() - t0
        cl.on_epoch_end(0, {})
        cl.on_train_end()
        return seconds / n * 1e6

    pairs = common.alternate(lambda: per_batch([LiveMetrics(Publisher(FileSink(Path(tmp)))), RunWriter(Path(tmp), {})]),
                             lambda: per_batch([]), repeats, common.log)
    shutil.rmtree(tmp, ignore_errors=True)
    return common.median([a - b for a, b in pairs])


def run(quick: bool) -> list[dict]:
    from core.data.datasets import load_dataset

    # 5 rounds: the VM may run either side on one vCPU for a while (bench/analysis.md)
    n, epochs, repeats = (6_000, 1, 5) if quick else (20_000, 2, 5)
    ds = load_dataset("fashion_mnist", offline=True)
    rows, estimates = [], {}
    runs_dir = tempfile.mkdtemp(prefix="bench-training-")
    try:
        for arch in ARCHS:
            cfg = _config(arch, n, epochs, runs_dir)
            common.log(f"training overhead: {arch}, {n:,} samples (10 % validation), {epochs} epoch(s), "
                       f"batch {cfg.batch_size}, {repeats} rounds; A = train() with the worker's feed, B = model.fit")
            warm = _config(arch, 2_000, 1, runs_dir)
            with_app(ds, warm), plain(ds, warm)  # imports, first graph builds: not measured
            pairs = common.alternate(lambda: with_app(ds, cfg), lambda: plain(ds, cfg), repeats, common.log)
            ratios = [a[0] / b[0] for a, b in pairs]
            cpu = [b[1] / a[1] for a, b in pairs]  # model.fit CPU / train() CPU per sample
            ratio = common.median(ratios)
            rows.append(common.row("training", f"{arch}: train() / model.fit throughput", ratio, "ratio",
                                   spread=common.spread(ratios), target=f"≥ {TARGET}", ok=ratio >= TARGET,
                                   notes=f"callbacks + feed writes, in-process (what users wait for: watched); wall clock; Fashion-MNIST {n:,} samples, {epochs} epoch(s), "
                                         f"batch {cfg.batch_size}, {repeats} A/B rounds"))
            rows.append(common.row("training", f"{arch}: same in CPU time per sample", common.median(cpu),
                                   "ratio", spread=common.spread(cpu),
                                   notes="model.fit / train() process CPU seconds per sample: barely moved "
                                         "by other processes' load"))
            for label, k in (("train()", 0), ("model.fit", 1)):
                values = [p[k][0] for p in pairs]
                rows.append(common.row("training", f"{arch}: {label} throughput", common.median(values),
                                       "samples/s", spread=common.spread(values, "{:,.0f}")))
            step_us = cfg.batch_size / common.median([b[0] for _, b in pairs]) * 1e6
            estimates[arch] = step_us
        common.log("per-batch cost of the app's callbacks: A = LiveMetrics + RunWriter, B = none")
        extra = batch_overhead_us()
        rows.append(common.row("training", "callbacks' cost per batch", extra, "µs",
                               notes="LiveMetrics (→ Publisher → feed.jsonl) + RunWriter in Keras's CallbackList, main thread, vs none"))
        for arch, step_us in estimates.items():
            rows.append(common.row("training", f"{arch}: ratio implied by that cost", step_us / (step_us + extra),
                                   "ratio", notes=f"plain step {step_us / 1e3:.1f} ms (median above)"))
    finally:
        shutil.rmtree(runs_dir, ignore_errors=True)
    return rows


if __name__ == "__main__":
    raise SystemExit(common.main(run))
