"""Label search: k fold runs through real worker processes find labels planted wrong through the overlay."""
from __future__ import annotations

import numpy as np
import pytest

from core.data import fixes

from core.train import label_search
from core.data.datasets import load_dataset
from core.engine.scheduler import Engine
from core.train.trainer import TrainConfig

PLANTED = 40
# flips in the top 100: at least MIN_TOP for every seed, MEAN_TOP on average (60 seeds: 24-36, mean 31; the
# whole search with seeds 7-11: 29-33)
MIN_TOP, MEAN_TOP = 22, 28


def test_fold_ids_cover_every_item_once_in_near_equal_folds():
    ids = label_search.fold_ids(101, 4, seed=3)
    assert sorted(np.bincount(ids)) == [25, 25, 25, 26]
    assert not np.array_equal(ids, label_search.fold_ids(101, 4, seed=4))


def test_fold_configs_hold_out_each_fold_once():
    configs = label_search.fold_configs(TrainConfig(dataset="mnist", fixes=True), 3)
    assert [(c.fold, c.folds, c.validation_split, c.fixes) for c in configs] == [(i, 3, 0.0, True) for i in range(3)]
    with pytest.raises(ValueError):
        TrainConfig(fold=3, folds=3).resolved()


@pytest.fixture(scope="module")
def planted_search(tmp_path_factory):
    """One real search with 40 training labels flipped at random (seed 7) through relabel fixes: 3 dense fold
    runs in worker processes, then cleanlab. (found, {index: true label}, search record, runs folder, dataset)."""
    runs_dir = tmp_path_factory.mktemp("label_search_runs")
    ds = load_dataset("mnist")
    rng = np.random.default_rng(7)
    planted = rng.choice(len(ds.y_train), PLANTED, replace=False)
    overlay = fixes.Overlay("mnist", runs_dir)
    truth = {}
    for i in planted:
        wrong = int((ds.y_train[i] + rng.integers(1, 10)) % 10)
        overlay.record("relabel", "train", int(i), wrong, view="test")
        truth[int(i)] = int(ds.y_train[i])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLASSIFIER_LAB_RUNS", str(runs_dir))
        engine = Engine(runs_dir, slots=2)
        try:
            found = label_search.search(TrainConfig(dataset="mnist", arch="dense", epochs=3, folds=3, fixes=True),
                                        engine, timeout=900)
        finally:
            engine.close()
    return found, truth, label_search.latest("mnist", runs_dir), runs_dir, ds


def test_flips_planted_at_random_with_other_seeds_rank_high(planted_search):
    """The same fold models' out-of-sample probabilities with 40 flips planted afresh per seed on the true labels
    (a flip on one image leaves the fold model that predicts it untouched: it never saw that image). Over 60
    seeds (0-29, 100-129) 24-36 of 40 were in the top 100, mean 31; these are 5 others."""
    _, _, record, runs_dir, ds = planted_search
    parts = [np.load(runs_dir / run_id / label_search.HELDOUT) for run_id in record["runs"]]
    keys = np.concatenate([p["keys"] for p in parts]).astype(int)
    probs = np.concatenate([p["probs"] for p in parts])
    true = ds.y_train[keys]
    hits, right = [], 0
    for seed in range(1000, 1005):
        rng = np.random.default_rng(seed)
        planted = rng.choice(len(true), PLANTED, replace=False)
        labels = true.copy()
        labels[planted] = (labels[planted] + rng.integers(1, 10, PLANTED)) % 10
        top = np.intersect1d(label_search.rank(labels, probs)[:100], planted)
        hits.append(len(top))
        right += int((probs[top].argmax(1) == true[top]).sum())
    assert min(hits) >= MIN_TOP and np.mean(hits) >= MEAN_TOP, f"planted flips in the top 100 per seed: {hits}"
    assert right >= 0.9 * sum(hits), f"{right} of {sum(hits)} suggestions are the label before the flip"


def test_planted_label_flips_rank_high(planted_search):
    """The search through fixes and worker processes ranks the flips (seed 7) high and suggests the true label."""
    found, truth, record, runs_dir, _ = planted_search
    top = [f for f in found[:100] if f.get("index") in truth]
    assert len(top) >= MIN_TOP, f"{len(top)} of {PLANTED} planted flips in the top 100"
    # the suggestion is mostly the label the image had before it was flipped
    assert sum(f["suggested"] == truth[f["index"]] for f in top) >= 0.9 * len(top)
    # every fold run recorded the same pinned data version
    versions = {str(engine_run["data_version"]) for engine_run in
                (fixes.runs.read_json(runs_dir / r / "run.json") for r in record["runs"])}
    assert len(versions) == 1 and f"'lines': {PLANTED}" in versions.pop()
