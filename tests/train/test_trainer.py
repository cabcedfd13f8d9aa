"""train(), TrainConfig, MetricsStore and the LiveMetrics/RunWriter callbacks, on tiny real MNIST runs."""
import json
import math
import threading

import keras
import numpy as np
import pytest

from core.model import compat
from core.store import runs
from core.data.datasets import DatasetUnavailable
from core.analysis.inference import predict
from core.train.trainer import OPTIMIZERS, MetricsStore, TrainConfig, compile_model, train


def weights(run) -> np.ndarray:
    return np.concatenate([w.ravel() for w in compat.load_model(run.model_path).get_weights()])


class CountBatches(keras.callbacks.Callback):
    """Counts the training and validation batches Keras actually runs; optionally acts at one batch."""

    def __init__(self, at=None, action=None, store=None):
        super().__init__()
        self.train_batches = self.test_batches = 0
        self.at, self.action, self.store = at, action, store
        self.etas = []  # the store's ETA as the dashboard would read it after each batch

    def on_train_batch_begin(self, batch, logs=None):
        self.train_batches += 1

    def on_test_batch_begin(self, batch, logs=None):
        self.test_batches += 1

    def on_train_batch_end(self, batch, logs=None):
        if self.store is not None:
            self.etas.append(self.store.snapshot(since=10**9)["eta_s"])
        if self.action and self.train_batches - 1 == self.at:
            self.action()


# --- TrainConfig -------------------------------------------------------------------------------------------

def test_resolved_fills_architecture_defaults():
    cfg = TrainConfig(arch="cnn_strong", runs_dir="x")
    r = cfg.resolved()
    assert (r.epochs, r.batch_size, r.learning_rate, r.optimizer, r.schedule) == (5, 128, 2e-3, "adamw", "cosine")
    assert cfg.epochs is None and cfg.optimizer is None  # the original is not modified
    d = TrainConfig(arch="dense", runs_dir="x").resolved()
    assert (d.epochs, d.batch_size, d.learning_rate, d.optimizer, d.schedule) == (5, 32, 1e-3, "adam", "constant")
    # explicit values win over defaults
    e = TrainConfig(arch="cnn_strong", epochs=2, batch_size=16, learning_rate=0.1, optimizer="sgd",
                    schedule="constant", runs_dir="x").resolved()
    assert (e.epochs, e.batch_size, e.learning_rate, e.optimizer, e.schedule) == (2, 16, 0.1, "sgd", "constant")
    assert json.loads(json.dumps(e.to_dict()))["image_size"] == [180, 180]


def test_runs_dir_defaults_to_the_environment(runs_dir):
    assert TrainConfig().runs_dir == str(runs_dir)


@pytest.mark.parametrize("bad,match", [
    (dict(arch="resnet"), "unknown architecture"),
    (dict(optimizer="adagrad"), "unknown optimizer"),
    (dict(schedule="linear"), "unknown schedule"),
    (dict(epochs=0), "epochs"),
    (dict(batch_size=0), "batch size"),
    (dict(learning_rate=0.0), "learning rate"),
    (dict(learning_rate=-1e-3), "learning rate"),
    (dict(validation_split=0.9), "validation split"),
    (dict(validation_split=-0.1), "validation split"),
    (dict(max_train_samples=0), "max train samples"),
    (dict(max_train_samples=-5), "max train samples"),
    (dict(mode="tune"), "unknown mode"),
    (dict(early_stopping_patience=0), "early stopping"),
    (dict(early_stopping_patience=2, validation_split=0.0), "early stopping"),
])
def test_resolved_rejects_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(runs_dir="x", **bad).resolved()


def test_bad_config_creates_no_run(runs_dir, mnist_small):
    with pytest.raises(ValueError):
        train(TrainConfig(epochs=0, runs_dir=str(runs_dir)), dataset=mnist_small)
    assert list(runs_dir.iterdir()) == []


# --- MetricsStore ------------------------------------------------------------------------------------------

def test_metrics_store_snapshots_are_copies():
    store = MetricsStore()
    assert store.snapshot()["status"] == "starting"
    for i in range(5):
        store.add_batch(i + 1, 1.0 / (i + 1), 0.1 * i, batch=i + 1)
    store.add_epoch({"epoch": 1, "loss": 0.5})
    s = store.snapshot(since=3)
    assert s["n_batches"] == 5 and s["steps"] == [4, 5] and s["batch"] == 5
    s["epochs"][0]["loss"] = 99
    s["steps"].append(6)
    again = store.snapshot()
    assert again["epochs"][0]["loss"] == 0.5 and again["steps"] == [1, 2, 3, 4, 5]


def test_metrics_store_under_concurrent_writers():
    store = MetricsStore()

    def write(k):
        for i in range(2000):
            store.add_batch(i, float(k), float(k))

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        s = store.snapshot()
        assert len(s["steps"]) == len(s["loss"]) == len(s["accuracy"]) == s["n_batches"]
    for t in threads:
        t.join()
    assert store.snapshot()["n_batches"] == 8000


# --- a real run ---------------------------------------------------------------------------------------------

@pytest.mark.quick
def test_finished_run_folder_is_complete(trained):
    run, _, ds = trained
    assert run.status == "finished" and run.usable
    names = {p.name for p in run.path.iterdir()}
    assert names == {"run.json", "history.json", "model.keras", "test_probs.npy",
                     "test_embeddings.npz"}  # no temp files left
    meta = json.loads((run.path / "run.json").read_text())
    assert meta == run.meta
    assert meta["status"] == "finished" and meta["id"] == run.id == run.path.name
    assert "pid" not in meta and meta["finished"] and meta["created"]
    assert meta["epochs_done"] == 1 and meta["params"] == 784 * 128 + 128 + 1290 and meta["fit_seconds"] > 0
    assert meta["config"]["arch"] == "dense" and meta["config"]["max_train_samples"] == 1000
    assert meta["data"] == {"source": ds.source, "class_names": list("0123456789"), "input_shape": [28, 28],
                            "n_train": 900, "n_val": 100, "n_test": 500}
    assert meta["test_accuracy"] > 0.6
    history = run.history()["epochs"]
    assert len(history) == 1 and history[0]["epoch"] == 1
    assert set(history[0]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(math.isfinite(v) for v in history[0].values())
    # test_probs are the saved model's probabilities on the test split, and give the recorded accuracy
    probs = np.load(run.path / "test_probs.npy")
    assert probs.shape == (500, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert (probs.argmax(1) == ds.y_test).mean() == pytest.approx(meta["test_accuracy"])
    reloaded = predict(compat.load_model(run.model_path), ds.x_test)
    np.testing.assert_allclose(reloaded, probs, atol=1e-5)
    assert run.label.startswith(f"mnist · dense · {meta['test_accuracy']:.1%}")


def test_live_metrics_fill_the_store(trained):
    run, store, _ = trained
    s = store.snapshot()
    steps = math.ceil(900 / 32)
    assert s["status"] == "finished" and s["run_id"] == run.id and s["run_path"] == str(run.path)
    assert (s["epochs_total"], s["steps_per_epoch"], s["epoch"], s["batch"]) == (1, steps, 1, steps)
    assert s["n_batches"] == steps and s["steps"] == list(range(1, steps + 1))
    assert all(math.isfinite(v) for v in s["loss"] + s["accuracy"])
    assert s["loss"][-1] < s["loss"][0]  # it learned something
    assert s["samples_per_s"] > 0 and s["eta_s"] == 0 and s["elapsed_s"] > 0
    assert s["test_accuracy"] == run.meta["test_accuracy"] and s["params"] == run.meta["params"]
    (row,) = s["epochs"]
    assert row["epoch"] == 1 and row["partial"] is False and row["seconds"] > 0
    hist = run.history()["epochs"][0]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert row[key] == pytest.approx(hist[key]) and math.isfinite(row[key])
    assert s["steps"][-2:] == store.snapshot(since=steps - 2)["steps"]


def test_eta_counts_down_and_stop_ends_training_within_one_batch(runs_dir, mnist_small):
    """Stop set at batch k (the app's Stop button) ends the fit after at most one more batch."""
    stop, store, k = threading.Event(), MetricsStore(), 4
    counter = CountBatches(at=k, action=stop.set, store=store)
    cfg = TrainConfig(arch="dense", epochs=3, batch_size=32, max_train_samples=1000, runs_dir=str(runs_dir))
    run = train(cfg, callbacks=[counter], stop=stop, store=store, dataset=mnist_small)
    assert k + 1 <= counter.train_batches <= k + 2  # 29 batches per epoch, 87 in all, without the stop
    assert counter.test_batches <= 1  # the validation pass after a Stop is cut short
    etas = counter.etas
    assert len(etas) == counter.train_batches and all(e > 0 for e in etas) and etas[-1] < etas[0]
    assert run.status == "stopped" and run.usable and run.model_path.is_file()
    assert run.meta["epochs_done"] == 1 and len(run.history()["epochs"]) == 1
    s = store.snapshot()
    assert s["status"] == "stopped" and s["n_batches"] == counter.train_batches
    assert len(s["epochs"]) == 1 and s["epochs"][0]["partial"] is True
    assert compat.load_model(run.model_path).output_shape == (None, 10)
    assert [r.status for r in runs.list_runs(runs_dir)] == ["stopped"]


def test_stop_before_the_first_batch_runs_one_batch(runs_dir, mnist_small):
    stop = threading.Event()
    stop.set()
    counter = CountBatches()
    run = train(TrainConfig(arch="dense", epochs=2, max_train_samples=300, runs_dir=str(runs_dir)),
                callbacks=[counter], stop=stop, dataset=mnist_small)
    assert counter.train_batches == 1 and run.status == "stopped" and run.usable


def test_unloadable_dataset_fails_the_run_and_raises(runs_dir, tmp_path):
    store = MetricsStore()
    cfg = TrainConfig(dataset="folder", data_path=str(tmp_path / "no-such-folder"), arch="cnn", epochs=1,
                      runs_dir=str(runs_dir))
    with pytest.raises(DatasetUnavailable, match="no-such-folder"):
        train(cfg, store=store)
    (run,) = runs.list_runs(runs_dir)
    assert run.status == "failed" and not run.usable
    assert "DatasetUnavailable" in run.meta["error"] and "no-such-folder" in run.meta["error"]
    assert "pid" not in run.meta and not run.model_path.exists()
    s = store.snapshot()
    assert s["status"] == "failed" and s["error"] == run.meta["error"] and s["run_id"] == run.id


def test_error_during_fit_fails_the_run_and_raises(runs_dir, mnist_small):
    def boom():
        raise RuntimeError("boom at batch 3")

    with pytest.raises(RuntimeError, match="boom at batch 3"):
        train(TrainConfig(arch="dense", epochs=2, max_train_samples=500, runs_dir=str(runs_dir)),
              callbacks=[CountBatches(at=3, action=boom)], dataset=mnist_small)
    (run,) = runs.list_runs(runs_dir)
    assert run.status == "failed" and run.meta["error"] == "RuntimeError: boom at batch 3"
    assert not run.model_path.exists() and not (run.path / "test_probs.npy").exists()


def test_too_few_samples_for_a_split_fails_cleanly(runs_dir, mnist_small):
    with pytest.raises(ValueError, match="no training samples"):
        train(TrainConfig(arch="dense", epochs=1, max_train_samples=1, validation_split=0.6,
                          runs_dir=str(runs_dir)), dataset=mnist_small)
    assert runs.list_runs(runs_dir)[0].status == "failed"


def test_same_seed_same_model_other_seed_other_model(runs_dir, mnist_small, slice_dataset):
    """Reproducible to the bit on one machine: data split, shuffling, init, dropout and augmentation."""
    small = slice_dataset(mnist_small, 400, 100)

    def run(seed):
        return train(TrainConfig(arch="cnn_augmented", epochs=1, batch_size=32, max_train_samples=256,
                                 seed=seed, runs_dir=str(runs_dir)), dataset=small)

    a, b, c = run(7), run(7), run(8)
    np.testing.assert_array_equal(weights(a), weights(b))
    assert a.history() == b.history()
    np.testing.assert_array_equal(np.load(a.path / "test_probs.npy"), np.load(b.path / "test_probs.npy"))
    assert not np.array_equal(weights(a), weights(c))
    assert a.history() != c.history()


def test_no_validation_sgd_cosine_run(runs_dir, mnist_small):
    store = MetricsStore()
    run = train(TrainConfig(arch="dense", epochs=2, batch_size=50, max_train_samples=300, validation_split=0.0,
                            optimizer="sgd", schedule="cosine", runs_dir=str(runs_dir)),
                store=store, dataset=mnist_small)
    assert run.status == "finished" and run.meta["data"]["n_val"] == 0 and run.meta["data"]["n_train"] == 300
    hist = run.history()["epochs"]
    assert [h["epoch"] for h in hist] == [1, 2] and not any(k.startswith("val_") for h in hist for k in h)
    rows = store.snapshot()["epochs"]
    assert len(rows) == 2 and math.isnan(rows[0]["val_loss"]) and math.isfinite(rows[1]["loss"])


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_and_the_cosine_schedule_learn(optimizer, mnist_small):
    keras.utils.set_random_seed(0)
    from core.model.architectures import build_model

    x, y = mnist_small.x_train[:256].astype("float32"), mnist_small.y_train[:256]
    model = build_model("dense", (28, 28), 10)
    cfg = TrainConfig(arch="dense", optimizer=optimizer, schedule="cosine", epochs=2, runs_dir="x").resolved()
    compile_model(model, cfg, steps_per_epoch=4)
    before = model.evaluate(x, y, verbose=0)[0]
    model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    assert model.evaluate(x, y, verbose=0)[0] < before
    lr = model.optimizer.learning_rate
    assert float(keras.ops.convert_to_numpy(lr)) < 1e-3 * 0.5  # cosine: well down after 8 of 8 steps


def test_dataset_slice_helper_keeps_classes(mnist, slice_dataset):
    small = slice_dataset(mnist, 50, 20)
    assert small.input_shape == (28, 28) and small.num_classes == 10 and len(small.y_test) == 20


# --- early stopping keeps the best epoch ---------------------------------------------------------------------

def _val_loss_of_saved_model(run, ds, cfg) -> float:
    """Cross-entropy of the saved model.keras on the run's own validation split."""
    from core.train.trainer import _split

    _, _, x_val, y_val = _split(ds, cfg.resolved())
    probs = predict(compat.load_model(run.model_path), x_val)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y_val)), y_val], 1e-12, None))))


@pytest.mark.parametrize("patience", [20, 1])
def test_early_stopping_keeps_the_best_epoch(runs_dir, mnist_small, patience):
    # 150 training digits at a high rate: val loss bottoms out after a few epochs, then rises (overfitting).
    # patience 20 > epochs: the epochs run out before patience does, and the best epoch must still be restored
    cfg = TrainConfig(dataset="mnist", arch="dense", epochs=8, learning_rate=1e-2, max_train_samples=300,
                      validation_split=0.5, early_stopping_patience=patience, runs_dir=str(runs_dir))
    run = train(cfg, dataset=mnist_small)
    val = [e["val_loss"] for e in run.history()["epochs"]]
    best = int(np.argmin(val)) + 1
    assert best < len(val), f"val loss never rose, the case tests nothing: {val}"
    assert run.meta["best_epoch"] == best and run.meta["stopped_early"] == (patience < 8)
    assert run.meta["epochs_done"] == (best + patience if patience < 8 else 8)
    saved = _val_loss_of_saved_model(run, mnist_small, cfg)
    assert saved == pytest.approx(val[best - 1], abs=2e-3) and abs(saved - val[-1]) > 0.02
