"""What datasets there are and who each image is: the registry, the Dataset value, own datasets' folders."""
from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import LabError, config
from core.store.runs import default_runs_dir

NAME_LEN = 40


class DatasetUnavailable(LabError, RuntimeError):
    """A dataset that cannot be loaded here; the message says why and what to do."""


class OwnDataError(LabError, ValueError):
    """A refused name or operation; the message is one line for the user."""


@dataclass(frozen=True, eq=False)  # eq=False: arrays don't compare with ==, identity is what we want
class Dataset:
    """Train/test arrays plus what a model and the UI need to know about them.

    Own datasets also say who each image is: its path inside the dataset folder ("cats/cats_00.png") and a
    hash of its file's bytes (content_hash), per split; built-ins leave these None and go by index."""
    name: str
    class_names: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    augment: str
    train_files: np.ndarray | None = None
    test_files: np.ndarray | None = None
    train_hashes: np.ndarray | None = None
    test_hashes: np.ndarray | None = None

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_files(self) -> bool:
        """Whether images are known by file and content (own datasets) rather than by index (built-ins)."""
        return self.train_files is not None


def item_keys(ds: Dataset, split: str) -> np.ndarray:
    """Each image's key as text: its path inside the dataset folder (own datasets), else its index."""
    files = getattr(ds, f"{split}_files")
    n = len(ds.y_train if split == "train" else ds.y_test)
    return np.asarray(files, str) if files is not None else np.arange(n).astype(str)


def item_hashes(ds: Dataset, split: str) -> np.ndarray | None:
    """Each image's content hash (own datasets), else None."""
    hashes = getattr(ds, f"{split}_hashes")
    return None if hashes is None else np.asarray(hashes, str)


@dataclass(frozen=True)
class DatasetSpec:
    """One registry entry: what the UI shows before anything is loaded."""
    name: str
    title: str
    description: str
    augment: str
    needs_path: bool
    ink_box: int | None = None  # grayscale inputs: side of the box the ink is fitted into (MNIST: 20)


DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec("mnist", "MNIST digits", "Handwritten digits 0-9, 28×28 grayscale.", "digits", False, 20),
    DatasetSpec("fashion_mnist", "Fashion-MNIST", "Zalando clothing photos in 10 classes, 28×28 grayscale.",
                "clothing", False, 28),  # items fill the frame, unlike MNIST's 20-px digits
    DatasetSpec("flowers", "Flowers", "TensorFlow flower_photos: 3,670 colour photos of 5 kinds of flower.",
                "photos", False),
    DatasetSpec("folder", "Image folder",
                "Your own images: one subfolder per class (the flower_photos layout).", "photos", True),
)}


def own_spec(name: str) -> DatasetSpec:
    """The registry entry of an own dataset (made on the My data page, under the data root)."""
    return DatasetSpec(name, f"{name} (my data)", "Your own images, one folder per class under the data root "
                       "(the My data page).", "photos", False)


def spec(name: str) -> DatasetSpec:
    """A built-in's registry entry, else an own dataset's; DatasetUnavailable for an unknown name."""
    if name in DATASETS:
        return DATASETS[name]
    if name in list_datasets():
        return own_spec(name)
    raise DatasetUnavailable(f"Unknown dataset {name!r}; choose one of {', '.join(dataset_names(True))}.")


def is_own(name: str) -> bool:
    return name not in DATASETS


def dataset_names(include_folder: bool = False) -> list[str]:
    """Built-ins (the path-taking "folder" one only for the CLI), then own datasets by name."""
    return [n for n, s in DATASETS.items() if include_folder or not s.needs_path] + list_datasets()


# --- own datasets on disk: <data root>/<name>/<class>/<images>, every path checked to stay inside ----------------

def data_root() -> Path:
    """$CLASSIFIER_LAB_DATA, else data/ next to the runs folder."""
    return config.DATA.get() or default_runs_dir().parent / "data"


def _clean(text: str, allowed: str, what: str, length: int) -> str:
    """Refuse path-like names, map other odd characters to '_'."""
    text = unicodedata.normalize("NFKC", str(text)).strip()
    if not text:
        raise OwnDataError(f"empty {what}: give it a name")
    if "/" in text or "\\" in text or text.startswith(".") or ":" in text or "\0" in text:
        raise OwnDataError(f"{what} {text[:60]!r} looks like a path: use letters, digits, '-' and '_' only")
    out = re.sub(rf"[^{allowed}]+", "_", text).strip("_ ")[:length].strip("_ ")
    if not out:
        raise OwnDataError(f"{what} {text[:60]!r} has no usable characters: use letters, digits, '-' and '_'")
    return out


def dataset_name(text: str) -> str:
    """A safe dataset name (ASCII letters, digits, - and _; it goes into run ids and URLs)."""
    name = _clean(text, r"A-Za-z0-9_\-", "dataset name", NAME_LEN)
    if name.lower() in DATASETS:
        raise OwnDataError(f"{name!r} is a built-in dataset: choose another name")
    return name


def class_name(text: str) -> str:
    """A safe class name (letters of any script, digits, space, - and _)."""
    return _clean(text, r"\w \-", "class name", 60)


def inside(path: Path, root: Path) -> Path:
    """path, if it and every folder between it and root are real folders/files inside root (no symlinks)."""
    base = Path(os.path.abspath(root))  # the root itself may be a link (the owner's choice); nothing below it
    try:
        rel = Path(os.path.abspath(path)).relative_to(base)
    except ValueError:
        raise OwnDataError(f"{path} is outside the data folder") from None
    p = base
    for part in rel.parts:
        p = p / part
        if p.is_symlink():
            raise OwnDataError(f"{p.name} is a symbolic link: refused (nothing is read outside the data folder)")
    return p


def dataset_dir(name: str, must_exist: bool = True) -> Path:
    """The folder of an own dataset, checked to be inside the data root."""
    path = inside(data_root() / dataset_name(name), data_root())
    if must_exist and not path.is_dir():
        raise OwnDataError(f"no dataset named {name!r} in the data folder")
    return path


def class_dir(name: str, cls: str, must_exist: bool = True) -> Path:
    path = inside(dataset_dir(name) / class_name(cls), data_root())
    if must_exist and not path.is_dir():
        raise OwnDataError(f"dataset {name!r} has no class {cls!r}")
    return path


def list_datasets() -> list[str]:
    """Own dataset names under the data root (real folders with a valid name), sorted."""
    try:
        entries = sorted(data_root().iterdir())
    except OSError:
        return []
    out = []
    for p in entries:
        try:
            if p.is_dir() and not p.is_symlink() and dataset_name(p.name) == p.name:
                out.append(p.name)
        except OwnDataError:
            continue
    return out
