"""Data fixes that never touch the originals: relabel, exclude, add — an append-only overlay per dataset."""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import InvalidValue, config
from core.store import runs
from core.data.streaming import is_lazy, take

OPS = ("relabel", "exclude", "add")
SPLITS = ("train", "test")


def fixes_dir(runs_dir: Path | str | None = None) -> Path:
    """The overlays' folder: $CLASSIFIER_LAB_FIXES, else `.fixes` in the runs folder (hidden from the run list)."""
    return config.FIXES.get() or Path(runs_dir or runs.default_runs_dir()) / ".fixes"


@dataclass(frozen=True)
class Fix:
    """One change to one item: relabel or exclude (train or test item), or add an image to the training split."""
    id: str
    op: str
    split: str
    key: int | str | None    # training/test index (built-in datasets) or relative file path (own datasets)
    label: int | None = None
    label_name: str | None = None
    view: str = ""           # the page it was made on: mistakes, label errors, predict, cli, test
    when: str = ""
    file: str | None = None  # an added image, relative to the overlay's folder

    @property
    def item(self) -> tuple:
        return (self.split, self.key if self.op != "add" else self.file)


class Overlay:
    """The fixes of one dataset: one JSON line per fix or undo, appended under a lock, never rewritten."""

    def __init__(self, dataset: str, runs_dir: Path | str | None = None):
        if not dataset or Path(dataset).name != dataset or dataset.startswith("."):
            raise InvalidValue(f"not a dataset name: {dataset!r}")
        self.dataset = dataset
        self.dir = fixes_dir(runs_dir)
        self.path = self.dir / f"{dataset}.jsonl"
        self.images = self.dir / dataset  # added images, one PNG per fix

    # --- writing: one O_APPEND write per line under flock, so concurrent sessions and processes lose nothing ---

    def _append(self, entry: dict) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)  # closing releases the lock
        except OSError as e:
            raise runs.RunError(f"cannot save the fix in {self.path}: {e.strerror or e}") from None

    def record(self, op: str, split: str, key, label: int | None = None, label_name: str | None = None,
               view: str = "", file: str | None = None) -> Fix:
        """Append one fix and return it (ValueError for a fix that makes no sense)."""
        if op not in OPS or split not in SPLITS or (op == "add") != (split == "train" and file is not None):
            raise InvalidValue(f"not a fix: {op} on {split} (added images go to the training split)")
        if op in ("relabel", "add") and (label is None or int(label) < 0):
            raise InvalidValue(f"{op} needs a class")
        key = int(key) if isinstance(key, (int, np.integer)) else key
        fix = Fix(uuid.uuid4().hex[:12], op, split, key, None if label is None else int(label), label_name,
                  view, runs.now(), file)
        self._append({"fix": dataclasses.asdict(fix)})
        return fix

    def add_image(self, image: np.ndarray, label: int, label_name: str | None = None, view: str = "") -> Fix:
        """Store a preprocessed image (e.g. Predict's 28×28) as a PNG under the overlay's folder and record it."""
        from PIL import Image

        name = f"{uuid.uuid4().hex[:12]}.png"
        pixels = np.asarray(image)
        pixels = pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels
        try:
            self.images.mkdir(parents=True, exist_ok=True)
            tmp = self.images / f".{name}.tmp"
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(tmp, format="PNG")
            os.replace(tmp, self.images / name)
        except OSError as e:
            raise runs.RunError(f"cannot save the image in {self.images}: {e.strerror or e}") from None
        return self.record("add", "train", None, label, label_name, view, file=f"{self.dataset}/{name}")

    def undo(self, fix_id: str) -> None:
        """Take one fix back (recorded as a line too, so the log stays a full history)."""
        if fix_id not in {f.id for f in self.state()[0]}:
            raise InvalidValue(f"no active fix {fix_id!r} for {self.dataset}")
        self._append({"undo": fix_id, "when": runs.now()})

    # --- reading ------------------------------------------------------------------------------------------------

    def lines(self, upto: int | None = None) -> list[bytes]:
        """The log's complete lines (the first `upto`); a torn last line from a crash is left out."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as e:
            raise runs.RunError(f"cannot read the fixes in {self.path}: {e.strerror or e}") from None
        out = data.split(b"\n")[:-1]  # the part after the last newline is not a whole line yet
        return out if upto is None else out[:upto]

    def state(self, upto: int | None = None) -> tuple[list[Fix], list[Fix]]:
        """(active fixes, undone fixes), oldest first, replaying the first `upto` lines (all by default)."""
        fixes, undone = {}, set()
        for raw in self.lines(upto):
            try:
                entry = json.loads(raw)
                if "fix" in entry:
                    fix = Fix(**entry["fix"])
                    fixes[fix.id] = fix
                elif "undo" in entry:
                    undone.add(entry["undo"])
            except (ValueError, TypeError):
                continue  # a line written by hand or by a newer version: skip it, keep the rest
        return [f for i, f in fixes.items() if i not in undone], [f for i, f in fixes.items() if i in undone]

    def version(self, upto: int | None = None) -> dict:
        """Which overlay a run used: its line count (a prefix of an append-only log replays exactly) and hash."""
        lines = self.lines(upto)
        active = self.state(len(lines))[0]
        return {"lines": len(lines), "hash": hashlib.sha256(b"\n".join(lines)).hexdigest()[:16],
                "applied": len(active)}


@dataclass(frozen=True)
class Prepared:
    """A dataset with an overlay applied, the original key of each training item, and which test items count."""
    dataset: object
    train_keys: np.ndarray
    test_keep: np.ndarray
    version: dict


def item_keys(ds, split: str) -> np.ndarray:
    """Each item's stable key as text: its relative file path when the dataset has one, else its index."""
    files = getattr(ds, f"{split}_files", None)  # own datasets (loaded from files) can carry their paths
    n = len(ds.y_train if split == "train" else ds.y_test)
    return np.asarray([str(f) for f in files]) if files is not None else np.arange(n).astype(str)


def base_hash(ds) -> str:
    """A short hash of the base arrays, so a run says which data it saw, whatever its source line says."""
    h = hashlib.blake2b(digest_size=8)
    for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        # streamed images are named by their cache key and rows: hashing them would read them all
        h.update(a.fingerprint() if hasattr(a, "fingerprint") else np.ascontiguousarray(a).data)
    return h.hexdigest()


def apply(ds, overlay: Overlay | None, upto: int | None = None) -> Prepared:
    """The dataset as the overlay changes it (the originals stay untouched); no overlay = the base data."""
    train_keys, n_test = item_keys(ds, "train"), len(ds.y_test)
    version = {"base": base_hash(ds), "fixes": None}
    if overlay is None:
        return Prepared(ds, train_keys, np.ones(n_test, bool), version)
    version["fixes"] = overlay.version(upto)
    active = overlay.state(version["fixes"]["lines"])[0]
    y_train, y_test = np.array(ds.y_train), np.array(ds.y_test)
    keep_train, keep_test = np.ones(len(y_train), bool), np.ones(n_test, bool)
    where = {"train": {k: i for i, k in enumerate(train_keys)},
             "test": {k: i for i, k in enumerate(item_keys(ds, "test"))}}
    added_x, added_y, added_keys, skipped = [], [], [], 0
    for fix in active:
        if fix.op == "add":
            image = _added_image(overlay, fix, ds)
            if image is None or not 0 <= fix.label < ds.num_classes:
                skipped += 1
                continue
            added_x.append(image), added_y.append(fix.label), added_keys.append(fix.file)
            continue
        i = where[fix.split].get(str(fix.key))
        if i is None or fix.op == "relabel" and not 0 <= fix.label < ds.num_classes:
            skipped += 1  # an item the dataset no longer has (a file removed), or a class it lost
            continue
        labels, keep = (y_train, keep_train) if fix.split == "train" else (y_test, keep_test)
        if fix.op == "relabel":
            labels[i], keep[i] = fix.label, True  # the later fix of an item wins
        else:
            keep[i] = False
    x_train = take(ds.x_train, keep_train)
    if added_x:  # a streamed set keeps them beside its cache file: never the whole set in memory
        added = np.stack(added_x).astype(x_train.dtype)
        x_train = x_train.append(added) if is_lazy(x_train) else np.concatenate([x_train, added])
    y_train = np.concatenate([y_train[keep_train], np.asarray(added_y, np.int64)])
    keys = np.concatenate([train_keys[keep_train], np.asarray(added_keys, str)]) if added_keys else train_keys[keep_train]
    version["fixes"]["skipped"] = skipped
    for a in (x_train, y_train, y_test):
        a.flags.writeable = False
    fixed = dataclasses.replace(ds, x_train=x_train, y_train=y_train, y_test=y_test)
    return Prepared(fixed, keys, keep_test, version)


def _added_image(overlay: Overlay, fix: Fix, ds) -> np.ndarray | None:
    """An added image as the dataset's arrays hold it, or None if it is missing or does not fit."""
    from PIL import Image

    try:
        with Image.open(overlay.dir / fix.file) as im:
            image = np.asarray(im.convert("L" if len(ds.input_shape) == 2 or ds.input_shape[-1] == 1 else "RGB"))
    except (OSError, ValueError):
        return None
    return image.reshape(ds.input_shape) if image.size == int(np.prod(ds.input_shape)) else None


def for_config(ds, cfg) -> Prepared:
    """The data a TrainConfig asks for: the overlay next to its runs folder when `cfg.fixes`, else the base."""
    return apply(ds, Overlay(ds.name, cfg.runs_dir) if cfg.fixes else None, cfg.fixes_upto)


def for_run(ds, meta: dict, runs_dir: Path | str | None = None) -> Prepared:
    """The data a finished run was trained and evaluated on: its overlay replayed up to the recorded line."""
    fixes = (meta.get("data_version") or {}).get("fixes")
    if not fixes:
        return apply(ds, None)
    return apply(ds, Overlay(ds.name, runs_dir), upto=int(fixes.get("lines", 0)))


def version_id(version: dict | None) -> str:
    """A short label for a data version: base hash, plus +N fixes."""
    if not version:
        return "unknown"
    fixes = version.get("fixes")
    return version.get("base", "?")[:8] + (f" + {fixes['applied']} fixes (log line {fixes['lines']})" if fixes else "")
