"""Training: a config dataclass, a live-metrics callback and one train() for app, CLI and benchmarks."""
from __future__ import annotations

import contextlib
import errno
import gc
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from core import InvalidValue
from core.analysis import embedding

from core.model import recipes

from core.store import runs
from core.data.streaming import take, validation
from core.model.architectures import ARCHITECTURES

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine")
MODES = ("train", "lr_find")  # lr_find: a learning-rate range test (core/train/lr_find.py) instead of training


@dataclass
class TrainConfig:
    """Everything that defines a run; None means the architecture's default."""
    dataset: str = "mnist"
    arch: str = "dense"
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    optimizer: str | None = None
    schedule: str | None = None          # "constant" or "cosine"
    augment: bool | None = None          # force augmentation on/off for the CNNs
    validation_split: float = 0.1
    seed: int = 0
    max_train_samples: int | None = None  # a quick run on a seeded subset of the training split
    data_path: str | None = None          # the folder dataset's directory
    distribute: bool = False              # MirroredStrategy over all GPUs (or all logical CPUs)
    image_size: tuple[int, int] = (180, 180)
    mode: str = "train"                   # "lr_find" runs the range test and saves no model
    early_stopping_patience: int | None = None  # stop after this many epochs without a better val loss
    sweep: str | None = None              # the sweep this run belongs to (core/train/sweeps.py)
    runs_dir: str = field(default_factory=lambda: str(runs.default_runs_dir()))
    fixes: bool = False                   # train and evaluate on the dataset's fix overlay (core/data/fixes.py)
    fixes_upto: int | None = None         # ...its first N log lines (pinned when queued); None = all of it
    fold: int | None = None               # label search: hold out this fold of `folds`, save its probabilities
    folds: int | None = None
    fine_tune_blocks: int = 0             # pretrained backbones: train their last N blocks too (use a low rate)

    def resolved(self) -> "TrainConfig":
        """A copy with the architecture's defaults filled in and values checked."""
        if self.arch not in ARCHITECTURES:
            raise InvalidValue(f"unknown architecture {self.arch!r}; choose one of {', '.join(ARCHITECTURES)}")
        base = {"epochs": 5, "batch_size": 32, "learning_rate": 1e-3, "optimizer": "adam", "schedule": "constant"}
        base.update(ARCHITECTURES[self.arch].defaults)
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for key, default in base.items():
            if values.get(key) is None:
                values[key] = default
        cfg = TrainConfig(**values)
        if cfg.optimizer not in OPTIMIZERS:
            raise InvalidValue(f"unknown optimizer {cfg.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if cfg.mode not in MODES:
            raise InvalidValue(f"unknown mode {cfg.mode!r}; choose one of {', '.join(MODES)}")
        if cfg.mode == "lr_find":
            cfg.schedule = "constant"  # the range test sets the rate itself, batch by batch
        patience = cfg.early_stopping_patience
        if patience is not None and (patience < 1 or not cfg.validation_split):
            raise InvalidValue("early stopping needs a patience ≥ 1 and a validation split > 0 (it watches val loss)")
        if cfg.schedule not in SCHEDULES:
            raise InvalidValue(f"unknown schedule {cfg.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if cfg.epochs < 1 or cfg.batch_size < 1 or not 0 <= cfg.validation_split < 0.9 or cfg.learning_rate <= 0:
            raise InvalidValue("epochs and batch size must be ≥ 1, learning rate > 0, validation split in [0, 0.9)")
        # 0 would silently mean "all of it" and -k "all but the last k"
        if cfg.max_train_samples is not None and cfg.max_train_samples < 1:
            raise InvalidValue("max train samples must be ≥ 1 (or None for the whole training split)")
        if cfg.fold is not None and not (cfg.folds and cfg.folds >= 2 and 0 <= cfg.fold < cfg.folds):
            raise InvalidValue("a held-out fold needs folds ≥ 2 and 0 ≤ fold < folds")
        if cfg.fine_tune_blocks:
            from core.model.pretrained import cut_layer
            cut_layer(cfg.fine_tune_blocks)  # out of range: InvalidValue naming the range
        return cfg

    def to_dict(self) -> dict:
        d = asdict(self)
        d["image_size"] = list(self.image_size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The inverse of to_dict; keys this version does not know are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        if "image_size" in values:
            values["image_size"] = tuple(values["image_size"])
        return cls(**values)

    def labels(self) -> dict:
        """What run.json says about the run's kind and sweep (so pickers and the sweep view can filter)."""
        return {"kind": self.mode, **({"sweep": self.sweep} if self.sweep else {})}


class MetricsStore:
    """Live training metrics written by the training thread and read by any other thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self._steps: list[int] = []
        self._loss: list[float] = []
        self._acc: list[float] = []
        self._epochs: list[dict] = []
        self._state: dict = {"status": "starting"}

    def update(self, **state) -> None:
        with self._lock:
            self._state.update(state)

    def add_batch(self, step: int, loss: float, acc: float, **state) -> None:
        with self._lock:
            self._steps.append(step)
            self._loss.append(loss)
            self._acc.append(acc)
            self._state.update(state)

    def add_epoch(self, row: dict) -> None:
        with self._lock:
            self._epochs.append(row)

    def snapshot(self, since: int = 0) -> dict:
        """A consistent copy: state, per-batch series from index `since`, per-epoch rows."""
        with self._lock:
            return {**self._state, "n_batches": len(self._steps),
                    "steps": self._steps[since:], "loss": self._loss[since:], "accuracy": self._acc[since:],
                    "epochs": [dict(r) for r in self._epochs]}


def _split(ds, cfg: TrainConfig):
    """Seeded train/validation split, optionally on a subset of the training data."""
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(ds.y_train))
    if cfg.max_train_samples:
        order = order[: cfg.max_train_samples]
    n_val = int(round(len(order) * cfg.validation_split))
    val, tr = order[:n_val], order[n_val:]
    return take(ds.x_train, tr), ds.y_train[tr], take(ds.x_train, val), ds.y_train[val]


def _optimizer(cfg: TrainConfig, steps_per_epoch: int):
    import keras

    lr = cfg.learning_rate
    if cfg.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, cfg.epochs * steps_per_epoch))
    return {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
            "sgd": lambda learning_rate: keras.optimizers.SGD(learning_rate, momentum=0.9),
            "rmsprop": keras.optimizers.RMSprop}[cfg.optimizer](learning_rate=lr)


def _friendly(e: BaseException) -> str:
    """One line a user can act on."""
    name = e.__class__.__name__
    if isinstance(e, MemoryError) or name == "ResourceExhaustedError":
        return "out of memory: try a smaller batch size, a smaller image size or fewer training samples"
    text = " ".join(str(e).split())
    for code, words in ((errno.ENOSPC, "No space left"), (errno.EFBIG, "File too large"),
                        (errno.EDQUOT, "Disk quota exceeded"), (errno.EROFS, "Read-only file system")):
        if isinstance(e, OSError) and e.errno == code or words.lower() in text.lower():
            # h5py and zipfile report a full disk in their own words, sometimes without an errno
            hint = "set CLASSIFIER_LAB_RUNS to a writable folder" if code == errno.EROFS else \
                "free some disk space, or set CLASSIFIER_LAB_RUNS"
            return f"cannot save the run: {os.strerror(code)} ({hint})"
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{name}: {text}"[:300] if text else name


def mirrored_strategy():
    """Data-parallel training over every visible GPU, else over every logical CPU device."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=devices)


def compile_model(model, cfg: TrainConfig, steps_per_epoch: int) -> None:
    """Compile with the config's optimizer; models output logits."""
    import keras

    model.compile(optimizer=_optimizer(cfg, steps_per_epoch),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])


def best_epoch_keeper(patience: int | None) -> list:
    """[EarlyStopping on val loss that restores the best epoch's weights], or [] without a patience.

    Keras 3.15 restores the best weights in on_train_end whenever it has them: after an early stop, when the
    epochs run out first, and after a user's Stop (tests/train/test_trainer.py checks the middle case).
    """
    if not patience:
        return []
    import keras

    return [keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)]


def _finish(path: Path, meta: dict, store: MetricsStore, status: str, **extra) -> runs.Run:
    """Mark the run ended in run.json (after its files are saved) and in the live feed."""
    runs.write_status(path, status, meta)
    store.update(status=str(status), **extra)
    return runs.load_run(path)


def train(config: TrainConfig, callbacks=(), stop: threading.Event | None = None,
          store: MetricsStore | None = None, dataset=None, run_dir: Path | None = None) -> runs.Run:
    """Train one run to disk and return it; failures are recorded in the run, then raised.

    `run_dir` is a folder the engine made when the run was queued (its run.json is kept and updated);
    without it a new run folder is made.
    """
    import keras

    from core.data import fixes, identity

    from core.train import label_search
    from core.analysis.metrics import summary
    from core.train.callbacks import LiveMetrics, RunWriter
    from core.data.datasets import load_dataset
    from core.analysis.inference import predict, softmax
    from core.model.architectures import build_model
    from core.model.pretrained import feature_head

    cfg = config.resolved()
    stop = stop or threading.Event()
    store = store or MetricsStore()
    keras.config.set_dtype_policy("float32")  # policies are per thread: set in the training thread
    try:
        path = Path(run_dir) if run_dir else runs.new_run_dir(Path(cfg.runs_dir), cfg.dataset, cfg.arch)
    except runs.RunError as e:  # a runs folder that is a file, read-only or full: nothing was made
        store.update(status="failed", error=str(e))
        raise
    queued = runs.read_json(path / "run.json", {}) if run_dir else {}
    if (queued or {}).get("status", "queued") != "queued":  # cancelled, or interrupted by a restart meanwhile
        error = f"run {path.name} is {queued['status']}, no longer queued: not started"
        store.update(status=queued["status"], error=error)
        raise runs.RunError(error)
    meta = {"id": path.name, "created": runs.now(), **(queued or {}), "config": cfg.to_dict(), **cfg.labels(),
            "pid": os.getpid(), "pid_start": runs.process_start(), "host": os.uname().nodename, "epochs_done": 0}
    runs.set_training(path, True)
    try:
        runs.write_status(path, runs.RunStatus.RUNNING, meta)
    except OSError as e:
        runs.set_training(path, False)
        error = f"cannot write to the runs folder {cfg.runs_dir}: {e.strerror or e}"
        store.update(status="failed", error=error)
        raise runs.RunError(error) from None
    store.update(status="loading data", run_id=path.name, run_path=str(path))
    model = head = None
    tmp = path / ".model.tmp.keras"
    try:
        ds = dataset or load_dataset(cfg.dataset, path=cfg.data_path, image_size=tuple(cfg.image_size))
        prep = fixes.for_config(ds, cfg)  # the overlay, if asked for; the data version goes into run.json
        ds, held, test_keep = label_search.hold_out(prep, cfg)
        x_tr, y_tr, x_val, y_val = _split(ds, cfg)
        if len(y_tr) == 0:
            raise InvalidValue("no training samples left after the validation split")
        meta["data"] = {"source": ds.source, "class_names": list(ds.class_names),
                        "input_shape": list(ds.input_shape), "n_train": len(y_tr), "n_val": len(y_val),
                        "n_test": int(test_keep.sum())}
        meta["data_version"] = prep.version
        meta["split"] = identity.split_version(ds)  # which test images: Compare warns when two runs' differ
        keras.utils.set_random_seed(cfg.seed)
        augment = cfg.augment if cfg.augment is not None else cfg.arch == "cnn_augmented"
        plan = ARCHITECTURES[cfg.arch].plan(x_tr, y_tr, cfg) if ARCHITECTURES[cfg.arch].plan else {}
        steps = plan.get("steps_per_epoch") or math.ceil(len(y_tr) / cfg.batch_size)
        if plan:
            meta["recipe"] = plan
        strategy = mirrored_strategy() if cfg.distribute else None
        with strategy.scope() if strategy else contextlib.nullcontext():
            model = build_model(cfg.arch, ds.input_shape, ds.num_classes, **{
                "augment": augment, "augment_profile": ds.augment, "seed": cfg.seed,
                "fine_tune_blocks": cfg.fine_tune_blocks, **plan.get("model", {})})
            compile_model(model, cfg, steps)
            # a pretrained backbone: its frozen part's outputs come from the feature cache, only the tail fits
            head = feature_head(model, cfg.fine_tune_blocks)
            if head:
                compile_model(head.tail, cfg, steps)
        fit_model, fx_tr, fx_val = model, x_tr, x_val
        if head:
            store.update(status="extracting features")
            fit_model, (fx_tr, fx_val, meta["features"]) = head.tail, head.fit_inputs(x_tr, x_val)
        if strategy:
            meta["devices"] = list(strategy.extended.worker_devices)
        meta["params"] = int(model.count_params())
        store.update(status="compiling", params=meta["params"])
        live = LiveMetrics(store, stop, cfg.batch_size)
        if cfg.mode == "lr_find":
            from core.train.lr_find import range_test

            meta.update(range_test(fit_model, fx_tr, y_tr, cfg, path, [live, *callbacks]))
            return _finish(path, meta, store, runs.RunStatus.STOPPED if stop.is_set() else runs.RunStatus.FINISHED,
                           suggested_lr=meta.get("suggested_lr"))
        writer = RunWriter(path, meta)
        keep = best_epoch_keeper(cfg.early_stopping_patience)
        t0 = time.perf_counter()
        fit_model.fit(**recipes.fit_inputs(fx_tr, y_tr, cfg.batch_size, steps, cfg.seed), epochs=cfg.epochs,
                      verbose=0, validation_data=validation(fx_val, y_val, cfg.batch_size),
                      callbacks=[live, writer, *keep, *callbacks])
        meta["fit_seconds"] = round(time.perf_counter() - t0, 2)
        if keep and keep[0].best_weights is not None:  # the weights are the best epoch's (see best_epoch_keeper)
            meta.update(best_epoch=keep[0].best_epoch + 1, stopped_early=keep[0].stopped_epoch > 0)
        status = runs.RunStatus.STOPPED if stop.is_set() else runs.RunStatus.FINISHED
        store.update(status="evaluating")
        probs = softmax(head.logits(ds.x_test)) if head else predict(model, ds.x_test)
        test = summary(probs[test_keep], ds.y_test[test_keep], ds.class_names)
        meta.update(test_accuracy=test["accuracy"], test_loss=test["loss"])
        store.update(status="saving")
        model.save(tmp)
        os.replace(tmp, path / "model.keras")
        np.save(path / "test_probs.npy", probs.astype(np.float32))
        identity.save_test_keys(path, ds)
        # so the embedding map opens without a pass (a pretrained model's come from the feature cache)
        embedding.save_test(model, ds.x_test, path, full=head.embeddings(ds.x_test) if head else None)
        if held:
            label_search.save_heldout(path, model, held, probs=softmax(head.logits(held.x)) if head else None)
        return _finish(path, meta, store, status, test_accuracy=meta["test_accuracy"], test_loss=meta["test_loss"])
    except BaseException as e:
        meta["error"] = _friendly(e)
        for partial in (tmp, path / "test_probs.npy", path / identity.TEST_KEYS, path / embedding.STORED):
            try:  # a disk that filled up mid-save: free the half-written file first, so run.json fits
                partial.unlink(missing_ok=True)
            except OSError:
                pass
        try:
            runs.write_status(path, runs.RunStatus.FAILED, meta)
        except OSError:
            pass  # a full or read-only disk: the error itself still reaches the caller (and see Run.status)
        store.update(status="failed", error=meta["error"])
        raise
    finally:
        runs.set_training(path, False)
        del model, head
        gc.collect()
