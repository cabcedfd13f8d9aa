"""Your own image datasets: <data root>/<name>/<class>/<images>, listed, made and deleted safely (checked
intake of uploads, zips and drawings: core/data/uploads.py)."""
from __future__ import annotations

import io
import shutil
from pathlib import Path, PurePosixPath

from core.data.images import flatten_alpha, open_image, standard_mode
from core.data.registry import OwnDataError, class_dir, data_root, dataset_dir, inside

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")


def classes(name: str) -> list[str]:
    d = dataset_dir(name)
    return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))


def images(name: str, cls: str) -> list[Path]:
    """Image files of a class (symlinks and hidden files are never used)."""
    d = class_dir(name, cls)
    return sorted(p for p in d.iterdir() if p.is_file() and not p.is_symlink() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_EXTS)


def class_counts(name: str) -> dict[str, int]:
    return {c: len(images(name, c)) for c in classes(name)}


def create(name: str) -> str:
    """Make an empty dataset folder; returns the sanitised name."""
    path = dataset_dir(name, must_exist=False)
    path.mkdir(parents=True, exist_ok=True)
    return path.name


def add_class(name: str, cls: str) -> str:
    path = class_dir(name, cls, must_exist=False)
    path.mkdir(exist_ok=True)
    return path.name


def thumbnail(path: str | Path, side: int = 96) -> bytes:
    """A small PNG of a stored image, for galleries."""
    img = open_image(path, draft=side)
    img = flatten_alpha(img) if img.mode in ("LA", "RGBA") else standard_mode(img)
    img.thumbnail((side, side))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def delete_image(name: str, cls: str, filename: str) -> str:
    path = inside(class_dir(name, cls) / PurePosixPath(filename).name, data_root())
    if PurePosixPath(filename).name != filename or not path.is_file():
        raise OwnDataError(f"no image {filename!r} in class {cls!r}")
    path.unlink()
    return filename


def delete_class(name: str, cls: str) -> str:
    shutil.rmtree(class_dir(name, cls))  # rmtree never follows links: only the class folder goes
    return cls


def delete_dataset(name: str) -> str:
    shutil.rmtree(dataset_dir(name))
    return name


def usable(name: str) -> tuple[bool, str]:
    """Whether a dataset can be trained on (2+ classes with images), and one line saying so."""
    counts = {c: n for c, n in class_counts(name).items() if n}
    if len(counts) < 2:
        return False, f"{name} has {len(counts)} class(es) with images; a classifier needs at least 2"
    return True, f"{name} — my data: {len(counts)} classes, {sum(counts.values()):,} images"
