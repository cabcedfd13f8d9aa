"""Checked intake of images into own datasets: uploaded files, zips, folders and drawings, each file opened and
normalised before it is stored; one line per refused file."""
from __future__ import annotations

import io
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterable

import numpy as np

from core.data.images import ImageError, array_to_image, flatten_alpha, open_image, standard_mode
from core.data.owndata import add_class, create, images
from core.data.registry import OwnDataError, class_dir, class_name

MAX_FILE_BYTES = 25_000_000      # one uploaded image (a big phone photo is ~10 MB)
MAX_ZIP_FILES = 5_000            # entries read from one archive
MAX_ZIP_BYTES = 1_000_000_000    # total uncompressed bytes read from one archive
MAX_RATIO = 100                  # uncompressed/compressed above this on a sizeable entry: a zip bomb
RATIO_MIN_BYTES = 1_000_000      # small entries may compress well (flat BMPs): only bigger ones are checked
STORE_SIDE = 1024                # images are stored at most this big on each side: models use far less
JUNK = ("__MACOSX", "Thumbs.db", "desktop.ini")


@dataclass
class Report:
    """What an import did: images added per class, and one line per file that was refused."""
    added: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.added.values())

    def merge(self, other: "Report") -> "Report":
        for k, v in other.added.items():
            self.added[k] = self.added.get(k, 0) + v
        self.problems += other.problems
        return self

    def summary(self) -> str:
        per = ", ".join(f"{k}: {v}" for k, v in self.added.items())
        return f"added {self.total} image(s)" + (f" ({per})" if per else "") + \
            (f"; {len(self.problems)} file(s) refused" if self.problems else "")


def _stem(filename: str) -> str:
    stem = PurePosixPath(str(filename).replace("\\", "/").split(": ")[-1]).stem
    try:
        return class_name(stem)[:40] or "image"
    except OwnDataError:
        return "image"


def _save(img, folder: Path, stem: str, lossless: bool) -> Path:
    """Write a normalised copy (L or RGB, at most STORE_SIDE) under a fresh name, atomically."""
    img = standard_mode(img)
    if img.mode in ("LA", "RGBA"):
        img = flatten_alpha(img)
    img = img.convert("L" if img.mode == "L" else "RGB")
    img.thumbnail((STORE_SIDE, STORE_SIDE))
    ext = ".png" if lossless else ".jpg"
    path, k = folder / f"{stem}{ext}", 1
    while path.exists():
        k += 1
        path = folder / f"{stem}_{k}{ext}"
    tmp = folder / f".{path.name}.tmp"
    img.save(tmp, format="PNG" if lossless else "JPEG", quality=92)
    os.replace(tmp, path)
    return path


def _store(folder: Path, filename: str, data: bytes) -> Path:
    """Check one uploaded file is a usable image and store it; ImageError names the file otherwise."""
    label = str(filename) or "upload"  # as the user knows it: "photo.jpg", "shapes.zip: circle/a.png"
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{label}: file too large ({len(data) / 1e6:.0f} MB; limit {MAX_FILE_BYTES // 10**6} MB)")
    buf = io.BytesIO(data)
    buf.name = label
    img = open_image(buf)
    return _save(img, folder, _stem(label), lossless=not data.startswith(b"\xff\xd8\xff"))  # JPEG stays JPEG


def _add(name: str, cls: str, items: Iterable[tuple[str, bytes]], report: Report) -> Report:
    folder = class_dir(name, add_class(name, cls))
    for filename, data in items:
        try:
            _store(folder, filename, data)
            report.added[folder.name] = report.added.get(folder.name, 0) + 1
        except ImageError as e:
            report.problems.append(str(e))
    return report


def _junk(parts) -> bool:
    return any(p in JUNK or p.startswith(".") for p in parts)


def add_files(name: str, cls: str, files: Iterable[tuple[str, bytes]]) -> Report:
    """Add uploaded (filename, bytes) pairs to a class; a .zip among them is unpacked into that class."""
    report, plain = Report(), []
    for filename, data in files:
        if str(filename).lower().endswith(".zip"):
            report.merge(add_zip(name, io.BytesIO(data), cls=cls, label=filename))
        elif not _junk(PurePosixPath(str(filename).replace("\\", "/")).parts):
            plain.append((filename, data))
    _add(name, cls, plain, report)
    _check_classes(name, [cls], report)
    return report


def canvas_image(rgba: np.ndarray):
    """A drawing canvas's RGBA pixels (transparent where nothing was drawn) on its black background."""
    return flatten_alpha(array_to_image(np.asarray(rgba)), background=0)


def add_drawing(name: str, cls: str, rgba: np.ndarray) -> Path:
    """Store a canvas drawing as PNG."""
    folder = class_dir(name, add_class(name, cls))
    return _save(canvas_image(rgba), folder, "drawing", lossless=True)


def _entry_parts(entry: str) -> tuple[str, ...]:
    """The folder/file parts of a zip entry name; OwnDataError for an absolute or climbing one (zip slip)."""
    text = entry.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise OwnDataError(f"{entry}: absolute path in the archive: refused")
    parts = tuple(p for p in text.split("/") if p not in ("", "."))
    if ".." in parts:
        raise OwnDataError(f"{entry}: path leaves the archive's folder (zip slip): refused")
    return parts


def add_zip(name: str, source: str | Path | BinaryIO, cls: str | None = None, label: str | None = None) -> Report:
    """Import a .zip: into `cls`, or (cls None) one class per folder holding images (the parent folder's name)."""
    label = label or (Path(source).name if isinstance(source, (str, Path)) else "archive.zip")
    report = Report()
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        report.problems.append(f"{label}: not a readable zip file ({' '.join(str(e).split())[:100]})")
        return report
    by_class: dict[str, list[tuple[str, bytes]]] = {}
    total = 0
    with zf:
        entries = [i for i in zf.infolist() if not i.is_dir()]
        if len(entries) > MAX_ZIP_FILES:
            report.problems.append(f"{label}: {len(entries):,} files; only the first {MAX_ZIP_FILES:,} are read")
            entries = entries[:MAX_ZIP_FILES]
        for info in entries:
            try:
                parts = _entry_parts(info.filename)
            except OwnDataError as e:
                report.problems.append(f"{label}: {e}")
                continue
            if not parts or _junk(parts):
                continue
            where = f"{label}: {'/'.join(parts)}"
            if info.file_size > MAX_FILE_BYTES:
                report.problems.append(f"{where}: file too large ({info.file_size / 1e6:.0f} MB uncompressed; "
                                       f"limit {MAX_FILE_BYTES // 10**6} MB)")
                continue
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size >= RATIO_MIN_BYTES and ratio > MAX_RATIO:
                report.problems.append(f"{where}: compression ratio {ratio:,.0f}:1 looks like a zip bomb: refused")
                continue
            if total + info.file_size > MAX_ZIP_BYTES:
                report.problems.append(f"{where}: the archive unpacks to more than {MAX_ZIP_BYTES // 10**6:,} MB; "
                                       "this file and the rest are skipped")
                break
            target = cls if cls is not None else (parts[-2] if len(parts) >= 2 else None)
            if target is None:
                report.problems.append(f"{where}: not in a class folder: put the images in one folder per class")
                continue
            try:
                target = class_name(target)
                with zf.open(info) as f:  # read at most the limit: the header's sizes may lie
                    data = f.read(MAX_FILE_BYTES + 1)
            except OwnDataError as e:
                report.problems.append(f"{where}: {e}")
                continue
            except Exception as e:  # noqa: BLE001  bad CRC, encrypted, unsupported method: this entry only
                report.problems.append(f"{where}: cannot be unpacked ({' '.join(str(e).split())[:100]})")
                continue
            total += len(data)
            by_class.setdefault(target, []).append((where, data))
    for target, items in by_class.items():
        _add(name, target, items, report)
    _check_classes(name, list(by_class) + ([cls] if cls else []), report)
    return report


def _check_classes(name: str, touched: list[str], report: Report) -> None:
    """A class the import touched that still has no readable image: one line, and its empty folder goes."""
    for cls in dict.fromkeys(class_name(c) for c in touched):
        try:
            folder = class_dir(name, cls)
        except OwnDataError:
            folder = None
        if folder is None or not images(name, cls):
            report.problems.append(f"class {cls}: no readable image, so it is not part of the dataset")
            if folder is not None and not any(folder.iterdir()):
                folder.rmdir()


def import_source(source: str | Path, name: str) -> Report:
    """CLI: import a .zip or a folder of class subfolders into dataset `name` (made if missing)."""
    src = Path(source).expanduser()
    create(name)
    if src.is_file():
        return add_zip(name, src)
    if not src.is_dir():
        raise OwnDataError(f"{src}: no such zip file or folder")
    report, per_class = Report(), {}
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src).parts
        if _junk(rel) or path.is_dir():
            continue
        if path.is_symlink():
            report.problems.append(f"{path}: symbolic link: refused")
            continue
        if len(rel) < 2:
            report.problems.append(f"{path}: not in a class folder: put the images in one folder per class")
            continue
        per_class.setdefault(rel[-2], []).append(path)
    for cls, paths in per_class.items():
        try:
            cls = class_name(cls)
        except OwnDataError as e:
            report.problems.append(str(e))
            continue
        items = ((p.name, p.read_bytes()) for p in paths if p.stat().st_size <= MAX_FILE_BYTES)
        big = [p for p in paths if p.stat().st_size > MAX_FILE_BYTES]
        report.problems += [f"{p}: file too large (limit {MAX_FILE_BYTES // 10**6} MB)" for p in big]
        _add(name, cls, items, report)
    _check_classes(name, list(per_class), report)
    return report


