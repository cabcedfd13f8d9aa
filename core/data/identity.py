"""Which image a fix means, across versions of a dataset: own images by path and content hash (a renamed or moved
file is found by its hash), built-ins by index; which test images a run was measured on; and the one-time
conversion of fixes made when own images were still known by position."""
from __future__ import annotations

import hashlib
import os
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.datasets import SEED, TEST_FRACTION, stratified_split
from core.data.registry import Dataset, dataset_dir, item_hashes, item_keys

SPLIT_METHOD = "content hash v1"  # own datasets (core.data.datasets.hash_split); built-ins: "fixed"
SPLITS = ("train", "test")
TEST_KEYS = "test_keys.npy"  # a run of an own dataset: each test image's (file, content hash), row by row


@dataclass(frozen=True)
class Place:
    """Where a fix's image is in a dataset: state is 'found', 'moved' (same content, other path), 'gone', or
    'flagged' (an index-keyed fix on an own dataset that changed since: which image it meant is unknown)."""
    state: str
    split: str | None = None
    index: int | None = None
    file: str | None = None   # own datasets: the image's path now
    hash: str | None = None

    @property
    def found(self) -> bool:
        return self.index is not None


class Locator:
    """Finds images of one dataset by key (and content hash): a dictionary built once, asked per fix."""

    def __init__(self, ds: Dataset):
        self.ds, self.own = ds, ds.has_files
        self.by_key = {split: {k: i for i, k in enumerate(item_keys(ds, split))} for split in SPLITS}
        self.by_hash: dict[str, list[tuple[str, int]]] = {}
        if self.own:
            for split in SPLITS:
                for i, h in enumerate(item_hashes(ds, split)):
                    self.by_hash.setdefault(h, []).append((split, i))
        self._legacy = self._newest = None

    def place(self, split: str, key, hash: str | None) -> Place:
        """Where the image a fix names is now."""
        if not self.own:  # built-ins: the index in the fix's split
            i = self.by_key[split].get(str(key))
            return Place("found", split, i) if i is not None else Place("gone")
        for s in SPLITS:  # a file's split follows from its content: look in both
            i = self.by_key[s].get(str(key))
            if i is not None and item_hashes(self.ds, s)[i] == hash:
                return Place("found", s, i, str(key), hash)
        for s, i in self.by_hash.get(hash, ()):  # renamed, or moved to another class folder
            return Place("moved", s, i, str(item_keys(self.ds, s)[i]), hash)
        return Place("gone", file=str(key), hash=hash)

    def legacy(self, split: str, index: int, when: str) -> Place:
        """An own dataset's fix keyed by position (before images had names): its image if the dataset is unchanged
        since the fix was made (the old seeded split is then known), else flagged."""
        if self._legacy is None:
            self._legacy, self._newest = legacy_files(self.ds), newest_change(self.ds.name)
        files, hashes = self._legacy[split]
        if not self._newest < seconds(when) * 1e9 or not 0 <= index < len(files):
            return Place("flagged")  # changed since (or in the same second): never re-pointed
        return self.place(split, files[index], hashes[index])


_LOCATORS: "weakref.WeakKeyDictionary[Dataset, Locator]" = weakref.WeakKeyDictionary()


def locator(ds: Dataset) -> Locator:
    """The dataset's Locator, built once per loaded dataset (pages ask it for every image they show)."""
    if ds not in _LOCATORS:
        _LOCATORS[ds] = Locator(ds)
    return _LOCATORS[ds]


def legacy_files(ds: Dataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each split's (files, hashes) in the order own datasets had before the content-hash split: the folder's
    readable files class by class, split 80/20 per class with seed 0."""
    files = np.concatenate([ds.train_files, ds.test_files])
    hashes = np.concatenate([ds.train_hashes, ds.test_hashes])
    labels = np.concatenate([ds.y_train, ds.y_test])
    order = np.lexsort((files, labels))  # the folder listing: classes in order, files by name within each
    files, hashes, labels = files[order], hashes[order], labels[order]
    train, test = stratified_split(labels, TEST_FRACTION, SEED)
    return {"train": (files[train], hashes[train]), "test": (files[test], hashes[test])}


def seconds(when: str) -> float:
    """A fix's local time ("2026-12-04 21:30:00") as seconds since the epoch; 0 if unreadable."""
    try:
        return time.mktime(time.strptime(when, "%Y-%m-%d %H:%M:%S"))
    except (TypeError, ValueError):
        return 0.0


def newest_change(name: str) -> int:
    """When (ns) an own dataset last changed: the newest mtime of its folders (adding, removing or renaming a file
    touches its folder) and files (editing one)."""
    newest = 0
    for folder, dirs, files in os.walk(dataset_dir(name)):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for entry in [folder, *(os.path.join(folder, f) for f in files)]:
            newest = max(newest, os.lstat(entry).st_mtime_ns)
    return newest


def split_version(ds: Dataset) -> dict:
    """Which test images a run is measured on: how the split was drawn and a digest of the test images (their
    files and hashes on own datasets, their pixels on built-ins; never their labels, which fixes may change)."""
    h = hashlib.blake2b(digest_size=8)
    if ds.has_files:
        for f, c in zip(ds.test_files, ds.test_hashes):
            h.update(f"{f}\0{c}\n".encode())
    else:
        x = ds.x_test  # streamed images are named by their cache key and rows: hashing them would read them all
        h.update(x.fingerprint() if hasattr(x, "fingerprint") else np.ascontiguousarray(x).data)
    return {"method": SPLIT_METHOD if ds.has_files else "fixed", "test": h.hexdigest(), "n_test": len(ds.y_test)}


def same_test_images(meta_a: dict, meta_b: dict) -> bool | None:
    """Whether two runs were measured on the same test images; None when a run predates split versions."""
    a, b = meta_a.get("split"), meta_b.get("split")
    if not a or not b:
        return None
    return a.get("test") == b.get("test")


def save_test_keys(run_dir: Path, ds: Dataset) -> None:
    """Beside a run's test_probs.npy: who each of its rows is (own datasets; built-ins go by index)."""
    if ds.has_files:
        np.save(Path(run_dir) / TEST_KEYS, np.stack([ds.test_files, ds.test_hashes], 1))


def stored_test_keys_match(run_dir: Path, ds: Dataset) -> bool:
    """Whether a run's stored test predictions are of these test images, row by row (always, for built-ins)."""
    if not ds.has_files:
        return True
    try:
        keys = np.load(Path(run_dir) / TEST_KEYS)
    except (OSError, ValueError):
        return False  # a run from before images had names, or a damaged file: predict again
    return keys.shape == (len(ds.y_test), 2) and bool((keys[:, 0] == ds.test_files).all()
                                                       and (keys[:, 1] == ds.test_hashes).all())
