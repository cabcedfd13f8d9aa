"""Data fixes that never touch the originals: relabel, exclude, add — an append-only overlay per dataset.

Own datasets' fixes name an image by its path inside the dataset folder and its content hash (a renamed or moved
file keeps its fix; core/data/identity.py finds it); built-ins' by their index in a split."""
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
from core.data import identity
from core.data.images import content_hash
from core.data.registry import is_own, item_hashes, item_keys
from core.data.streaming import is_lazy, take
from core.store import runs

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
    key: int | str | None    # training/test index (built-in datasets) or the file's path inside the dataset folder
    label: int | None = None
    label_name: str | None = None  # own datasets: the class, found by name (a new class folder shifts indices)
    view: str = ""           # the page it was made on: mistakes, label errors, predict, cli, test
    when: str = ""
    file: str | None = None  # an added image, relative to the overlay's folder
    hash: str | None = None  # own datasets: the image's content hash (core.data.images.content_hash)
    converted: str | None = None  # an own dataset's fix once keyed by position: "train #12", converted once

    @property
    def by_position(self) -> bool:
        """Keyed by an index (built-ins; on an own dataset, a fix from before its images were named)."""
        return self.op != "add" and self.hash is None and str(self.key).isdigit()

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
               view: str = "", file: str | None = None, hash: str | None = None) -> Fix:
        """Append one fix and return it (ValueError for a fix that makes no sense)."""
        if op not in OPS or split not in SPLITS or (op == "add") != (split == "train" and file is not None):
            raise InvalidValue(f"not a fix: {op} on {split} (added images go to the training split)")
        if op in ("relabel", "add") and (label is None or int(label) < 0):
            raise InvalidValue(f"{op} needs a class")
        if op != "add" and is_own(self.dataset) and not (isinstance(key, str) and not key.isdigit() and hash):
            raise InvalidValue(f"{self.dataset} is your own dataset: name the image by its file inside the dataset "
                             "folder and its content hash (item_ref), not by a position")
        key = int(key) if isinstance(key, (int, np.integer)) else key
        fix = Fix(uuid.uuid4().hex[:12], op, split, key, None if label is None else int(label), label_name,
                  view, runs.now(), file, None if hash is None else str(hash))
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

    def convert(self, ds) -> dict[str, identity.Place]:
        """Rewrite, once, each position-keyed fix of an own dataset as a path-and-hash fix, where the dataset is
        unchanged since the fix (a line with the same id replaces it); {fix id: place} of those that were left
        flagged, never re-pointed."""
        flagged = {}
        if not ds.has_files:
            return flagged
        locator = identity.Locator(ds)
        for fix in self.state()[0]:
            if not fix.by_position:
                continue
            where = locator.legacy(fix.split, int(fix.key), fix.when)
            if not where.found:
                flagged[fix.id] = where
                continue
            new = dataclasses.replace(fix, split=where.split, key=where.file, hash=where.hash,
                                      converted=f"{fix.split} #{fix.key}")
            self._append({"fix": dataclasses.asdict(new)})
        return flagged

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
    """A dataset with an overlay applied, the original key of each training item, which test items count, and
    where each active fix landed (fix id -> identity.Place)."""
    dataset: object
    train_keys: np.ndarray
    test_keep: np.ndarray
    version: dict
    places: dict = dataclasses.field(default_factory=dict)
    added: int = 0  # images fixes added: the last `added` training items


def item_ref(ds, split: str, i: int) -> tuple[int | str, str | None]:
    """How a fix names image i of a split: (its path, its content hash) on own datasets, (i, None) on built-ins."""
    hashes = item_hashes(ds, split)
    return (int(i), None) if hashes is None else (str(item_keys(ds, split)[i]), str(hashes[i]))


def base_hash(ds) -> str:
    """A short hash of the base arrays, so a run says which data it saw, whatever its source line says."""
    h = hashlib.blake2b(digest_size=8)
    for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        # streamed images are named by their cache key and rows: hashing them would read them all
        h.update(a.fingerprint() if hasattr(a, "fingerprint") else np.ascontiguousarray(a).data)
    return h.hexdigest()


def place(locator: identity.Locator, fix: Fix) -> identity.Place:
    """Where a fix's image is in the locator's dataset (an added image is always in the training split)."""
    if fix.op == "add":
        return identity.Place("added", "train")
    if locator.own and fix.by_position:
        return locator.legacy(fix.split, int(fix.key), fix.when)
    return locator.place(fix.split, fix.key, fix.hash)


def placed(ds, overlay: Overlay) -> tuple[list[tuple[Fix, identity.Place]], list[Fix]]:
    """(each active fix with where its image is now, oldest first; the undone fixes), once the overlay's
    position-keyed fixes of an own dataset are converted where they can be (Overlay.convert)."""
    overlay.convert(ds)
    active, undone = overlay.state()
    locator = identity.Locator(ds)
    return [(fix, place(locator, fix)) for fix in active], undone


def whom(fix: Fix, where: identity.Place | None = None) -> str:
    """The image a fix is about, as a person finds it: its file (own datasets; where it is now if moved), its
    split and index (built-ins), or an added image."""
    if fix.op == "add":
        return "an added image"
    if fix.hash or fix.converted:
        return where.file if where is not None and where.file else str(fix.key)
    return f"{fix.split} #{fix.key}"


NOTES = {"moved": "renamed or moved since: found by its content", "gone": "no longer in the dataset",
         "flagged": "made when images were known by position, and the dataset has changed since: which image it "
                    "meant is unknown, so it is not applied (undo it and fix the image again)"}


def label_of(fix: Fix, ds) -> int | None:
    """The class a relabel or add means: by name on own datasets (a new class folder shifts the indices), else by
    index; None for a class the dataset no longer has."""
    if ds.has_files and fix.label_name is not None:
        names = list(ds.class_names)
        return names.index(fix.label_name) if fix.label_name in names else None
    return fix.label if fix.label is not None and 0 <= fix.label < ds.num_classes else None


def apply(ds, overlay: Overlay | None, upto: int | None = None) -> Prepared:
    """The dataset as the overlay changes it (the originals stay untouched); no overlay = the base data."""
    train_keys, n_test = item_keys(ds, "train"), len(ds.y_test)
    version = {"base": base_hash(ds), "fixes": None}
    if overlay is None:
        return Prepared(ds, train_keys, np.ones(n_test, bool), version)
    version["fixes"] = overlay.version(upto)
    active = overlay.state(version["fixes"]["lines"])[0]
    y = {"train": np.array(ds.y_train), "test": np.array(ds.y_test)}
    keep = {"train": np.ones(len(ds.y_train), bool), "test": np.ones(n_test, bool)}
    locator, places = identity.Locator(ds), {}
    added_x, added_y, added_keys, skipped = [], [], [], 0
    for fix in active:
        where, label = places.setdefault(fix.id, place(locator, fix)), label_of(fix, ds)
        if fix.op == "add":
            image = _added_image(overlay, fix, ds)
            if image is None or label is None:
                skipped += 1
                continue
            added_x.append(image), added_y.append(label), added_keys.append(fix.file)
        elif not where.found or fix.op == "relabel" and label is None:
            skipped += 1  # an image the dataset no longer has (a file removed), a class it lost, or flagged
        elif fix.op == "relabel":
            y[where.split][where.index], keep[where.split][where.index] = label, True  # the later fix wins
        else:
            keep[where.split][where.index] = False
    kept = keep["train"]
    x_train = take(ds.x_train, kept)
    if added_x:  # a streamed set keeps them beside its cache file: never the whole set in memory
        added = np.stack(added_x).astype(x_train.dtype)
        x_train = x_train.append(added) if is_lazy(x_train) else np.concatenate([x_train, added])
    y_train = np.concatenate([y["train"][kept], np.asarray(added_y, np.int64)])
    keys = np.concatenate([train_keys[kept], np.asarray(added_keys, str)])
    identity_fields = {}
    if ds.has_files:  # added images are named by their file in the overlay's folder
        hashes = [content_hash(overlay.dir / f) for f in added_keys]
        identity_fields = {"train_files": keys, "train_hashes": np.concatenate([ds.train_hashes[kept],
                                                                                np.asarray(hashes, str)])}
    version["fixes"]["skipped"] = skipped
    for a in (x_train, y_train, y["test"], *identity_fields.values()):
        a.flags.writeable = False
    fixed = dataclasses.replace(ds, x_train=x_train, y_train=y_train, y_test=y["test"], **identity_fields)
    return Prepared(fixed, keys, keep["test"], version, places, len(added_keys))


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
