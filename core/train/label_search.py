"""Label errors in the data: k-fold out-of-sample probabilities (k runs of the engine), then cleanlab.

Built-in datasets are searched in their training split, by index. Own datasets are searched whole (every image of
train and test is held out once), and each suspect names its file, split and content hash."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from core import InvalidValue
from core.data import fixes
from core.data.registry import is_own, item_hashes, item_keys
from core.data.streaming import concat, take
from core.model.recipes import default_arch
from core.store import runs

HELDOUT = "heldout.npz"  # what a fold run saves: probabilities, given labels and identities of its held-out items
DEFAULTS = {"folds": 4, "epochs": 3}  # the architecture: the dataset's default (auto for own datasets)
EPOCHS = {"auto": 3}  # per architecture, where a search wants other than DEFAULTS (bench/bench_own_labels.py)
KEYS = "file"  # a search record whose rows name files (own datasets' records before this named positions)


def defaults(dataset: str, arch: str | None = None) -> dict:
    """Folds, architecture (the dataset's default recipe unless given) and epochs a search starts from."""
    arch = arch or default_arch(dataset)
    return {**DEFAULTS, "arch": arch, "epochs": EPOCHS.get(arch, DEFAULTS["epochs"])}


def fold_ids(n: int, k: int, seed: int = 0) -> np.ndarray:
    """Each item's fold, 0..k-1: a seeded shuffle dealt round-robin, so folds differ in size by one at most."""
    ids = np.empty(n, np.int64)
    ids[np.random.default_rng(seed).permutation(n)] = np.arange(n) % k
    return ids


@dataclasses.dataclass(frozen=True)
class Pool:
    """The images a search holds out in turn, with who each is: key (file or index), hash, split."""
    x: object
    y: np.ndarray
    keys: np.ndarray
    hashes: np.ndarray
    splits: np.ndarray

    def subset(self, mask: np.ndarray) -> "Pool":
        return Pool(take(self.x, mask), self.y[mask], self.keys[mask], self.hashes[mask], self.splits[mask])


def pool(prep: fixes.Prepared) -> Pool:
    """What a search covers: the training split (fixes applied) of a built-in; all of an own dataset's images,
    training then test, as the fixes label them (excluded test images left out; added images count as 'added')."""
    ds = prep.dataset
    n_train = len(ds.y_train)
    if not ds.has_files:
        return Pool(ds.x_train, ds.y_train, prep.train_keys, np.full(n_train, ""), np.full(n_train, "train"))
    test = prep.test_keep
    splits = np.repeat(["train", "added", "test"], [n_train - prep.added, prep.added, int(test.sum())])
    return Pool(concat(ds.x_train, take(ds.x_test, test)), np.concatenate([ds.y_train, ds.y_test[test]]),
                np.concatenate([item_keys(ds, "train"), item_keys(ds, "test")[test]]),
                np.concatenate([item_hashes(ds, "train"), item_hashes(ds, "test")[test]]), splits)


def hold_out(prep: fixes.Prepared, cfg):
    """(the dataset to train on, the held-out Pool or None, which test items count). A fold run trains on the
    pool without its fold; on an own dataset the fold is also its test set, so its test accuracy is out of sample."""
    ds = prep.dataset
    if cfg.fold is None:
        return ds, None, prep.test_keep
    items = pool(prep)
    held = fold_ids(len(items.y), cfg.folds, cfg.seed) == cfg.fold
    rest, out = items.subset(~held), items.subset(held)
    if not ds.has_files:
        return dataclasses.replace(ds, x_train=rest.x, y_train=rest.y), out, prep.test_keep
    fold = dataclasses.replace(ds, x_train=rest.x, y_train=rest.y, x_test=out.x, y_test=out.y,
                               train_files=rest.keys, train_hashes=rest.hashes, test_files=out.keys,
                               test_hashes=out.hashes)
    return fold, out, np.ones(len(out.y), bool)


def save_heldout(run_dir: Path, model, held: Pool, probs: np.ndarray | None = None) -> None:
    """The fold model's probabilities on the items it never saw (`probs` when already computed), written
    atomically next to its model."""
    from core.analysis.inference import predict

    probs = predict(model, held.x) if probs is None else probs
    tmp = run_dir / f".{HELDOUT}.tmp.npz"
    np.savez(tmp, probs=np.asarray(probs, np.float32), labels=np.asarray(held.y, np.int64),
             keys=np.asarray(held.keys, str), hashes=np.asarray(held.hashes, str), splits=np.asarray(held.splits, str))
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
              "fixes": base.fixes, "fixes_upto": base.fixes_upto, "created": runs.now(),
              "keys": KEYS}
    path = record_path(base.dataset, engine.runs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    runs.write_json_atomic(path, record)
    return record


def latest(dataset: str, runs_dir: Path | str | None = None) -> dict | None:
    """The dataset's latest search; None if there is none, or if it is an own dataset's search from before its
    images had names (its rows would name positions that mean other images now)."""
    record = runs.read_json(record_path(dataset, runs_dir), None)
    return None if record is None or is_own(dataset) and record.get("keys") != KEYS else record


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


def collect(run_ids, runs_dir: Path | str | None = None) -> dict[str, np.ndarray]:
    """Every held-out item's key, hash, split, given label and out-of-sample probabilities (arrays by those
    names); RunError if a fold is missing."""
    parts = []
    for run_id in run_ids:
        path = runs.run_path(run_id, runs_dir) / HELDOUT
        try:
            with np.load(path, allow_pickle=False) as z:
                n = len(z["keys"])
                parts.append({"keys": z["keys"], "labels": z["labels"], "probs": z["probs"],
                              "hashes": z["hashes"] if "hashes" in z.files else np.full(n, ""),
                              "splits": z["splits"] if "splits" in z.files else np.full(n, "train")})
        except (OSError, ValueError, KeyError) as e:
            raise runs.RunError(f"fold run {run_id} has no held-out probabilities ({path.name}: "
                                f"{e.__class__.__name__}); did it finish?") from None
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def rank(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices of suspects, most doubted first; whether confident learning flagged each). Suspects are the items
    cleanlab's find_label_issues flags and those the out-of-sample models put in another class, ordered by the
    probability the models give the given label (cleanlab's self-confidence order). Its flags alone are cautious:
    on 2,000 own digits with 40 flips planted at random they held 33 (50 flagged in all); this list puts 38-40 of
    the 40 in its top 100 (bench/bench_own_labels.py)."""
    from cleanlab.filter import find_label_issues

    # n_jobs=1: cleanlab would fork workers, and a process that has loaded TensorFlow must not fork
    flagged = find_label_issues(labels, probs, n_jobs=1)
    suspects = np.flatnonzero(flagged | (probs.argmax(1) != labels))
    order = suspects[np.argsort(probs[suspects, labels[suspects]], kind="stable")]
    return order, flagged[order]


def issues(found: dict[str, np.ndarray], class_names) -> list[dict]:
    """One dict per suspected item, best-ranked first: who it is, the given and the suggested label."""
    out, probs = [], found["probs"]
    for r, (i, flagged) in enumerate(zip(*rank(found["labels"], probs))):
        given, suggested = int(found["labels"][i]), int(probs[i].argmax())
        out.append({"rank": r + 1, **identify(found, i), "flagged": bool(flagged),
                    "given": given, "given_name": str(class_names[given]),
                    "suggested": suggested, "suggested_name": str(class_names[suggested]),
                    "confidence_in_given": round(float(probs[i, given]), 4),
                    "confidence_in_suggested": round(float(probs[i, suggested]), 4)})
    return out


def identify(found: dict[str, np.ndarray], i: int) -> dict:
    """{'index': n} for a built-in training image, {'file': path} for an image a fix added to one; an own dataset's
    image: {'file': its path in the dataset folder, 'split', 'hash'} (added ones: split 'added')."""
    key, digest = str(found["keys"][i]), str(found["hashes"][i])
    if not digest:
        return {"index": int(key)} if key.isdigit() else {"file": key}
    return {"file": key, "split": str(found["splits"][i]), "hash": digest}


def search(base, engine, timeout: float | None = None) -> list[dict]:
    """Run a whole search to the end (CLI, tests, bench): submit the folds, wait for them, rank."""
    from core.data.datasets import load_dataset

    record = start(engine, base)
    for run_id in record["runs"]:
        run = engine.wait(run_id, timeout)
        if run.status not in runs.FINISHED:
            raise runs.RunError(f"fold run {run_id} {run.status}: {run.meta.get('error', 'no model')}")
    ds = load_dataset(base.dataset, path=base.data_path, image_size=tuple(base.image_size))
    return issues(collect(record["runs"], engine.runs_dir), ds.class_names)
