"""The learning-rate range test: the rate schedule, the suggestion rule, and a real test through the engine."""
from __future__ import annotations

import json

import numpy as np
import pytest

import core.cli.main as cli
from core.store import runs

from core.train import lr_find
from core.train.trainer import TrainConfig, train

# The known-good rate for `dense` on Fashion-MNIST: Adam's 1e-3, the rate of the TensorFlow basic-classification
# tutorial this architecture comes from (about 88 % test accuracy in 10 epochs there).
# test_the_known_good_rate_trains_dense_well checks it here too.
KNOWN_GOOD = 1e-3


def test_the_rate_rises_geometrically_from_min_to_max():
    r = [lr_find.rate(i, 101, 1e-6, 1.0) for i in range(101)]
    assert r[0] == pytest.approx(1e-6) and r[-1] == pytest.approx(1.0) and r[50] == pytest.approx(1e-3)
    assert np.allclose(np.diff(np.log(r)), np.log(r[1] / r[0]))


def test_smoothing_is_centred():
    step = np.r_[np.ones(50), np.zeros(50)]
    s = lr_find.smooth(step, 11)
    assert s[49] > 0.5 > s[50] and s[0] == 1 and s[-1] == 0  # the edge stays where it was: no lag


def test_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = np.geomspace(1e-6, 1, 200)
    x = np.log10(lrs)
    # falls fastest at 1e-3 (a tanh centred there), bottoms out near 1e-1, then blows up
    losses = 2.3 - 1.5 * np.tanh(1.5 * (x + 3)) + np.where(x > -1, 30 * (x + 1) ** 2, 0)
    losses += np.random.default_rng(0).normal(0, 0.02, len(x))
    found = lr_find.suggest(lrs, losses)
    assert found["method"] == "steepest descent"
    assert 1e-3 / 1.5 < found["suggested_lr"] < 1e-3 * 1.5
    assert 1e-2 < found["min_loss_lr"] < 3e-1


def test_a_curve_that_only_rises_suggests_a_tenth_of_its_start():
    lrs = np.geomspace(1e-4, 1, 50)
    found = lr_find.suggest(lrs, np.linspace(1, 5, 50))
    assert found["method"] == "minimum / 10" and found["suggested_lr"] == pytest.approx(lrs[0] / 10)


def test_nan_losses_end_the_curve():
    lrs = np.geomspace(1e-5, 1, 40)
    losses = np.r_[np.linspace(2, 1, 30), [np.nan] * 10]
    assert lr_find.suggest(lrs, losses)["min_loss_lr"] <= lrs[29]
    with pytest.raises(ValueError, match="fewer than 3"):
        lr_find.suggest(lrs[:2], [1.0, 2.0])


def test_lr_find_for_dense_on_fashion_mnist_through_the_engine(runs_dir, capsys):
    # the CLI's main() in this process (the test reads its output; another process would only add a TensorFlow
    # start-up): the range test itself still runs in a real worker process
    code = cli.main(["lr-find", "--dataset", "fashion_mnist", "--arch", "dense", "--runs-dir", str(runs_dir), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err[-2000:]
    result = json.loads(out.out.strip().splitlines()[-1])
    assert KNOWN_GOOD / 3 <= result["suggested_lr"] <= KNOWN_GOOD * 3, result
    run = runs.load_run(runs_dir / result["run_id"])
    # a finished range test, queued and run by a worker like any run, and never offered as a model
    assert run.status == "finished" and run.kind == "lr_find" and not run.usable
    assert run.meta["engine"] == "local" and run.meta["suggested_lr"] == pytest.approx(result["suggested_lr"], 1e-2)
    assert not (run.path / "model.keras").exists()
    record = lr_find.load(run.path)
    assert len(record["lrs"]) == len(record["losses"]) == len(record["smoothed"]) == result["batches"]
    assert 100 <= result["batches"] <= lr_find.STEPS and record["lrs"][0] == pytest.approx(lr_find.MIN_LR)
    assert np.all(np.diff(record["lrs"]) > 0)


@pytest.mark.quick
def test_the_known_good_rate_trains_dense_well(runs_dir):
    """The reference the suggestion is held to: one epoch of Adam at 1e-3 on 6,000 images learns Fashion-MNIST."""
    from core.data.datasets import load_dataset

    ds = load_dataset("fashion_mnist")
    good = train(TrainConfig(dataset="fashion_mnist", arch="dense", epochs=1, learning_rate=KNOWN_GOOD,
                             max_train_samples=6000, runs_dir=str(runs_dir)), dataset=ds)
    slow = train(TrainConfig(dataset="fashion_mnist", arch="dense", epochs=1, learning_rate=KNOWN_GOOD / 100,
                             max_train_samples=6000, runs_dir=str(runs_dir)), dataset=ds)
    good_acc, slow_acc = (r.history()["epochs"][-1]["val_accuracy"] for r in (good, slow))
    assert good_acc > 0.75 and good_acc > slow_acc + 0.1, (good_acc, slow_acc)
