"""Folder datasets too big for memory: decoded once into a uint8 .npy cache file, then read batch by batch.

A folder whose decoded images would take more than CLASSIFIER_LAB_STREAM_MB (default 1 GB) is decoded by the
same Pillow code as the in-memory path, a chunk at a time, into `<cache>/<dataset>-…-<key>.npy` (the key
hashes the file list, sizes and mtimes, so any change rebuilds it). The dataset's arrays are then DiskImages:
an int index reads one image, any other index reads just those images, and training gets a tf.data pipeline
that reads its shuffled batches from the file, so memory holds a few batches, never the dataset
(figures: bench/bench_streaming.py, docs/benchmarks.md).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from core import config
from core.data.registry import data_root
from core.store.runs import pid_alive, write_json_atomic

CHUNK = 256         # images decoded per write while building: bounds the build's memory (25 MB at 180×180)
PREDICT_ROWS = 512  # images read per predict() chunk (50 MB at 180×180)
PREDICT_BATCH = 32  # and predicted per batch: a conv net's activations on 256 photos take ~800 MB more
PARALLEL = 2        # batches read at once by the pipeline
PREFETCH = 4        # batches read ahead: a fixed few, so memory doesn't grow with AUTOTUNE's buffer


def threshold_bytes() -> float:
    """The decoded size (bytes) above which a folder dataset streams; CLASSIFIER_LAB_STREAM_MB=0 forces it."""
    return config.STREAM_MB.get() * 2**20


def should_stream(n_images: int, size: tuple[int, int]) -> bool:
    return n_images * size[0] * size[1] * 3 > threshold_bytes()


def cache_dir() -> Path:
    """$CLASSIFIER_LAB_CACHE; else the data root's .cache; else, for a data root we cannot write, the user's."""
    if config.CACHE.is_set():
        return config.CACHE.get()
    # ".cache" is no valid dataset name, so it is never listed as one
    here = data_root() / ".cache" / "decoded"
    try:
        here.mkdir(parents=True, exist_ok=True)
        if os.access(here, os.W_OK):
            return here
    except OSError:
        pass
    return config.user_cache_dir() / "decoded"


class _Opened:
    """A cache file held open by a DiskImages and its views: a rebuild may replace or delete the file (the
    folder changed) while a training still reads the version it started with."""

    def __init__(self, path: str):
        self.fd = os.open(path, os.O_RDONLY)

    def __del__(self):
        try:
            os.close(self.fd)
        except (OSError, AttributeError):
            pass


class DiskImages:
    """uint8 images (N, H, W, 3): rows of a .npy file read on demand, never all held in memory.

    Indexing follows numpy (an int gives one image, a slice or index array an array of those images);
    subset() is the lazy view training and the splits use; np.asarray() reads everything (avoid it).
    A negative row -1-i is image i of `extra`, the few images held in memory (ones a fix added)."""
    ndim = 4
    dtype = np.dtype(np.uint8)

    def __init__(self, path: str | Path, offset: int, image_shape: tuple, rows: np.ndarray, key: str,
                 opened: _Opened | None = None, extra: np.ndarray | None = None):
        self.path, self.offset, self.image_shape, self.key = str(path), int(offset), tuple(image_shape), key
        self.opened = opened or _Opened(self.path)
        self.extra = np.zeros((0, *self.image_shape), np.uint8) if extra is None else extra
        self.extra.flags.writeable = False
        self.rows = np.asarray(rows, np.int64)
        self.rows.flags.writeable = False
        self.row_bytes = int(np.prod(self.image_shape))
        self.flags = types.SimpleNamespace(writeable=False)  # datasets freeze their arrays; these are read-only

    @property
    def shape(self) -> tuple:
        return (len(self.rows), *self.image_shape)

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, index) -> "DiskImages":
        return DiskImages(self.path, self.offset, self.image_shape, self.rows[index], self.key, self.opened,
                          self.extra)

    def append(self, images: np.ndarray) -> "DiskImages":
        """These images after this view's, kept in memory (the cache file is never written)."""
        images = np.asarray(images, np.uint8).reshape(-1, *self.image_shape)
        new_rows = -1 - (len(self.extra) + np.arange(len(images)))
        return DiskImages(self.path, self.offset, self.image_shape, np.concatenate([self.rows, new_rows]), self.key,
                          self.opened, np.concatenate([self.extra, images]))

    def read(self, index=slice(None)) -> np.ndarray:
        """The images at `index` (positions in this view) as one array, read straight into it."""
        rows = np.atleast_1d(self.rows[index])
        out = np.empty((len(rows), *self.image_shape), np.uint8)
        flat = out.reshape(len(rows), -1)
        for k, r in enumerate(rows):  # pread: thread-safe on a shared descriptor, and releases the GIL
            if r < 0:
                out[k] = self.extra[-1 - r]
            elif os.preadv(self.opened.fd, [flat[k]], self.offset + int(r) * self.row_bytes) != self.row_bytes:
                raise OSError(f"{self.path}: the decoded cache is truncated; delete it and it is rebuilt")
        return out

    def __getitem__(self, key):
        if isinstance(key, tuple):  # x[rows, ::4, ::4]: read the rows, then index the images
            first, rest = key[0], key[1:]
            return self[first][rest] if _is_int(first) else self.read(first)[(slice(None), *rest)]
        return self.read(key)[0] if _is_int(key) else self.read(key)

    def __array__(self, dtype=None, copy=None):
        a = self.read()
        return a if dtype is None else a.astype(dtype)

    def batches(self, n: int = PREDICT_ROWS):
        for start in range(0, len(self), n):
            yield self.read(slice(start, start + n))

    def fingerprint(self) -> bytes:
        """What identifies these images without reading them: the cache key, the rows in order, the extra images."""
        extra = hashlib.blake2b(self.extra.tobytes(), digest_size=16).digest() if len(self.extra) else b""
        return self.key.encode() + self.rows.tobytes() + extra


def _is_int(key) -> bool:
    return isinstance(key, (int, np.integer))


def is_lazy(x) -> bool:
    return isinstance(x, DiskImages)


def take(x, index):
    """x[index], lazily for streamed images (a view, nothing read)."""
    return x.subset(index) if is_lazy(x) else x[index]


def concat(a, b):
    """a's images then b's: lazily for two views of one streamed set (b's in-memory extras follow a's)."""
    if not is_lazy(a):
        return np.concatenate([a, b])
    if not is_lazy(b) or b.path != a.path:
        raise ValueError("only views of one decoded cache can be joined lazily")
    rows = np.where(b.rows < 0, b.rows - len(a.extra), b.rows)  # b's extra image k becomes a's len(a.extra)+k
    return DiskImages(a.path, a.offset, a.image_shape, np.concatenate([a.rows, rows]), a.key, a.opened,
                      np.concatenate([a.extra, b.extra]))


# --- the cache file ----------------------------------------------------------------------------------------

def decoded(root: Path, files: list[Path], size: tuple[int, int],
            read: Callable[[Path, tuple, np.ndarray], str | None]) -> tuple[DiskImages, list[str | None]]:
    """All files decoded at `size` (by `read`, the in-memory path's decoder, which returns a file's content hash)
    into the cache, built once and reused while no file changes: (the images in file order, each file's content
    hash or None where it could not be read)."""
    where = str(root.resolve())
    h = hashlib.blake2b(f"{where}|{size}".encode(), digest_size=10)
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    key = h.hexdigest()
    prefix = "".join(c if c.isalnum() or c in "-_" else "_" for c in root.name)[:40] + \
        "-" + hashlib.blake2b(where.encode(), digest_size=3).hexdigest() + f"-{size[0]}x{size[1]}-"
    folder = cache_dir()
    npy, meta = folder / f"{prefix}{key}.npy", folder / f"{prefix}{key}.json"
    shape = (len(files), size[0], size[1], 3)
    info = _valid_meta(meta, npy, shape)
    if info is None:
        _reap_stale_builds(folder)
        info = _build(files, size, read, npy, meta, shape)
        for old in folder.glob(f"{prefix}*"):  # earlier versions of this folder: free their disk space
            if old.name not in (npy.name, meta.name):
                old.unlink(missing_ok=True)
    return DiskImages(npy, info["offset"], shape[1:], np.arange(len(files)), key), info["hashes"]


def _valid_meta(meta: Path, npy: Path, shape: tuple) -> dict | None:
    """The cache's record if it is complete (its .npy has exactly the expected size), else None."""
    try:
        info = json.loads(meta.read_text())
        if info["shape"] == list(shape) and len(info["hashes"]) == shape[0] and npy.stat().st_size == info["offset"] + int(np.prod(shape)):
            return info
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _reap_stale_builds(folder: Path) -> None:
    """Delete the partial caches of builds killed on this host (their process is gone): gigabytes otherwise."""
    host = os.uname().nodename
    for tmp in folder.glob(".*.tmp"):
        *_, tmp_host, pid, _ext = tmp.name.rsplit(".", 3)
        if tmp_host == host and not pid_alive(pid):
            tmp.unlink(missing_ok=True)


def _build(files, size, read, npy: Path, meta: Path, shape: tuple) -> dict:
    """Decode chunk by chunk into a temporary .npy, then move it into place (two builders can't clash)."""
    npy.parent.mkdir(parents=True, exist_ok=True)
    tmp = npy.with_name(f".{npy.name}.{os.uname().nodename}.{os.getpid()}.tmp")
    hashes: list[str | None] = [None] * len(files)
    buf = np.empty((CHUNK, *size, 3), np.uint8)
    try:
        with open(tmp, "wb") as f, ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": shape})
            offset = f.tell()
            for start in range(0, len(files), CHUNK):
                n = min(CHUNK, len(files) - start)
                # Pillow decodes without the GIL, so threads use every core
                hashes[start:start + n] = pool.map(lambda i: read(files[start + i], size, buf[i]), range(n))
                buf[:n][[h is None for h in hashes[start:start + n]]] = 0
                f.write(buf[:n].data)
        os.replace(tmp, npy)
    finally:
        tmp.unlink(missing_ok=True)
    # the content hashes ride with the cache: a reused cache knows its images without reading a file
    info = {"shape": list(shape), "offset": offset, "hashes": hashes}
    write_json_atomic(meta, info)
    return info


# --- training and prediction ---------------------------------------------------------------------------

def pipeline(x: DiskImages, y: np.ndarray, batch_size: int, seed: int | None = None, repeat: bool = False):
    """A tf.data pipeline of (images, labels) batches read from the cache; shuffled every epoch with a seed."""
    import tensorflow as tf

    y = np.asarray(y, np.int64)
    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(y)), y))
    if seed is not None:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    def load(index, label):
        images = tf.numpy_function(x.read, [index], tf.uint8, stateful=False)
        images.set_shape((None, *x.image_shape))
        return images, label

    return ds.batch(batch_size).map(load, num_parallel_calls=PARALLEL, deterministic=True).prefetch(PREFETCH)


def fit_inputs(x: DiskImages, y: np.ndarray, batch_size: int, steps: int, seed: int) -> dict:
    """model.fit's data arguments for streamed images (see core.model.recipes.fit_inputs)."""
    repeat = steps > math.ceil(len(y) / batch_size)
    return {"x": pipeline(x, y, batch_size, seed, repeat), "steps_per_epoch": steps if repeat else None,
            "shuffle": False}


def validation(x, y, batch_size: int):
    """model.fit's validation_data: the arrays, a pipeline for streamed images, or None when empty."""
    if not len(y):
        return None
    return pipeline(x, y, batch_size) if is_lazy(x) else (x, y)


def chunked(fn, model, images, batch_size: int):
    """fn(model, chunk, batch_size) over streamed images a chunk at a time, in small batches, concatenated;
    None for plain arrays (measured on 10,000 images at 180×180: +290 MB in batches of 32, +790 MB of 256)."""
    if not is_lazy(images) or not len(images):
        return None
    return np.concatenate([fn(model, chunk, min(batch_size, PREDICT_BATCH)) for chunk in images.batches()])
