"""Label errors in the training data: k-fold out-of-sample probabilities (k runs of the engine), then cleanlab."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from core import InvalidValue
from core.data import fixes

from core.store import runs
from core.data.streaming import take

HELDOUT = "heldout.npz"  # what a fold run saves: probabilities, given labels and keys of its held-out items
DEFAULTS = {"folds": 4, "arch": "dense", "epochs": 3}


def fold_ids(n: int, k: int, seed: int = 0) -> np.ndarray:
    """Each item's fold, 0..k-1: a seeded shuffle dealt round-robin, so folds differ in size by one at most."""
    ids = np.empty(n, np.int64)
    ids[np.random.default_rng(seed).permutation(n)] = np.arange(n) % k
    return ids


def hold_out(prep: fixes.Prepared, cfg):
    """(the dataset to train on, None) — or, for a fold run, the dataset without its fold and (x, labels, keys)."""
    ds = prep.dataset
    if cfg.fold is None:
        return ds, None
    held = fold_ids(len(ds.y_train), cfg.folds, cfg.seed) == cfg.fold
    rest = dataclasses.replace(ds, x_train=take(ds.x_train, ~held), y_train=ds.y_train[~held])
    return rest, (take(ds.x_train, held), ds.y_train[held], prep.train_keys[held])


def save_heldout(run_dir: Path, model, x: np.ndarray, labels: np.ndarray, keys: np.ndarray,
                 probs: np.ndarray | None = None) -> None:
    """The fold model's probabilities on the items it never saw (`probs` when already computed), written
    atomically next to its model."""
    from core.analysis.inference import predict

    probs = predict(model, x) if probs is None else probs
    tmp = run_dir / f".{HELDOUT}.tmp.npz"
    np.savez(tmp, probs=np.asarray(probs, np.float32), labels=np.asarray(labels, np.int64),
             keys=np.asarray(keys, str))
    os.replace(tmp, run_dir / HELDOUT)


def fold_configs(base, folds: int) -> list:
    """k TrainConfigs that each hold out one fold (no validation split: every other item trains)."""
    if folds < 2:
        raise InvalidValue("a label search needs at least 2 folds")
    return [dataclasses.replace(base, fold=i, folds=folds, validation_split=0.0) for i in range(folds)]


def pinned(base):
    """The config with the overlay pinned to its current length, so all folds see the same data version."""
    if not base.fixes:
        return base
    return dataclasses.replace(base, fixes_upto=len(fixes.Overlay(base.dataset, base.runs_dir).lines()))


# --- the latest search per dataset, so a page finds it again after a reload or a restart ------------------------

def record_path(dataset: str, runs_dir: Path | str | None = None) -> Path:
    return fixes.fixes_dir(runs_dir) / f"{dataset}.search.json"


def start(engine, base) -> dict:
    """Submit the k fold runs of `base` (a TrainConfig with fold=None, folds=k) and remember them."""
    base = pinned(dataclasses.replace(base, runs_dir=str(engine.runs_dir)))
    configs = fold_configs(base, base.folds or DEFAULTS["folds"])
    ids = [engine.submit(c) for c in configs]
    record = {"dataset": base.dataset, "runs": ids, "folds": len(ids), "arch": base.arch, "epochs": base.epochs,
              "fixes": base.fixes, "fixes_upto": base.fixes_upto, "created": runs.now()}
    path = record_path(base.dataset, engine.runs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    runs.write_json_atomic(path, record)
    return record


def latest(dataset: str, runs_dir: Path | str | None = None) -> dict | None:
    return runs.read_json(record_path(dataset, runs_dir), None)


def progress(record: dict, runs_dir: Path | str | None = None) -> list[dict]:
    """Each fold run's id, status and epochs done (a run deleted by hand reads 'missing')."""
    out = []
    for run_id in record.get("runs", []):
        try:
            run = runs.load_run(runs.run_path(run_id, runs_dir))
            out.append({"run": run_id, "status": run.status, "epochs_done": run.meta.get("epochs_done", 0),
                        "epochs": run.config.get("epochs")})
        except runs.RunError:
            out.append({"run": run_id, "status": "missing", "epochs_done": 0, "epochs": None})
    return out


def collect(run_ids, runs_dir: Path | str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keys, given labels, out-of-sample probabilities) of every held-out item; RunError if a fold is missing."""
    parts = []
    for run_id in run_ids:
        path = runs.run_path(run_id, runs_dir) / HELDOUT
        try:
            with np.load(path, allow_pickle=False) as z:
                parts.append((z["keys"], z["labels"], z["probs"]))
        except (OSError, ValueError, KeyError) as e:
            raise runs.RunError(f"fold run {run_id} has no held-out probabilities ({path.name}: "
                                f"{e.__class__.__name__}); did it finish?") from None
    keys, labels, probs = (np.concatenate(p) for p in zip(*parts))
    return keys, labels, probs


def rank(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Indices of likely label errors, most likely first (cleanlab's confident learning, self-confidence order)."""
    from cleanlab.filter import find_label_issues

    # n_jobs=1: cleanlab would fork workers, and a process that has loaded TensorFlow must not fork
    return find_label_issues(labels, probs, return_indices_ranked_by="self_confidence", n_jobs=1)


def issues(keys: np.ndarray, labels: np.ndarray, probs: np.ndarray, class_names) -> list[dict]:
    """One dict per suspected item, best-ranked first: its key, the given and the suggested label."""
    out = []
    for r, i in enumerate(rank(labels, probs)):
        key, given, suggested = str(keys[i]), int(labels[i]), int(probs[i].argmax())
        out.append({"rank": r + 1, **key_field(key), "given": given, "given_name": str(class_names[given]),
                    "suggested": suggested, "suggested_name": str(class_names[suggested]),
                    "confidence_in_given": round(float(probs[i, given]), 4),
                    "confidence_in_suggested": round(float(probs[i, suggested]), 4)})
    return out


def key_field(key: str) -> dict:
    """{'index': n} for a built-in training image, {'file': path} for a file (own dataset or an added image)."""
    return {"index": int(key)} if key.isdigit() else {"file": key}


def search(base, engine, timeout: float | None = None) -> list[dict]:
    """Run a whole search to the end (CLI, tests, bench): submit the folds, wait for them, rank."""
    from core.data.datasets import load_dataset

    record = start(engine, base)
    for run_id in record["runs"]:
        run = engine.wait(run_id, timeout)
        if run.status not in runs.FINISHED:
            raise runs.RunError(f"fold run {run_id} {run.status}: {run.meta.get('error', 'no model')}")
    ds = load_dataset(base.dataset, path=base.data_path, image_size=tuple(base.image_size))
    return issues(*collect(record["runs"], engine.runs_dir), ds.class_names)
