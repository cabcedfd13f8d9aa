"""A frozen backbone's outputs, computed once per image and kept on disk by the image's content.

Retraining, a sweep, the k folds of a label search and a learning-rate test all see the same images: each
image's features are looked up by a hash of its decoded pixels in a folder per (backbone checksum, input
side, layer), and only images never seen before go through the backbone. A folder holds shards written
atomically (features first, then the keys that make them visible), so concurrent workers never see half a
shard; two workers computing the same image only write it twice.
"""
from __future__ import annotations

import collections
import hashlib
import os
import threading
from pathlib import Path

import numpy as np

CHUNK = 512  # images hashed and computed at a time: bounds the memory of a streamed dataset
COUNTS = collections.Counter()  # "computed" / "reused" images in this process: what tests and run.json report
_INDEX: dict[Path, tuple] = {}  # folder -> (shard names seen, {key: (shard, row)}): read each shard's keys once
_LOCK = threading.Lock()


def content_key(image: np.ndarray) -> str:
    """An image's identity: a hash of its decoded pixels, shape and dtype (the same file decoded at another
    size is another image, with other features)."""
    a = np.ascontiguousarray(image)
    h = hashlib.blake2b(f"{a.shape}{a.dtype.str}".encode(), digest_size=16)
    h.update(a.data)
    return h.hexdigest()


def content_keys(images) -> list[str]:
    """Every image's content_key, reading the images CHUNK at a time (a streamed dataset chunk by chunk)."""
    from core.data.streaming import take

    return [content_key(img) for start in range(0, len(images), CHUNK)
            for img in np.asarray(take(images, np.arange(start, min(start + CHUNK, len(images)))))]


def _index(folder: Path) -> dict:
    """{key: (shard, row)} over the folder's complete shards, reading only shards not read before."""
    seen, index = _INDEX.get(folder, (set(), {}))
    for keys_file in sorted(folder.glob("*.keys.npy")) if folder.is_dir() else []:
        if keys_file.name in seen:
            continue
        try:
            keys = np.load(keys_file, allow_pickle=False)
        except (OSError, ValueError):
            continue  # damaged: its images are computed again
        shard = keys_file.name[: -len(".keys.npy")]
        index.update({str(k): (shard, row) for row, k in enumerate(keys)})
        seen.add(keys_file.name)
    _INDEX[folder] = (seen, index)
    return index


def _write_shard(folder: Path, keys: list[str], values: np.ndarray) -> None:
    """Features, then their keys (which make the shard visible), each via a temp file and a rename."""
    folder.mkdir(parents=True, exist_ok=True)
    shard = hashlib.blake2b("".join(keys).encode(), digest_size=12).hexdigest()
    for suffix, array in ((".npy", values.astype(np.float16)), (".keys.npy", np.asarray(keys))):
        tmp = folder / f".{shard}.{os.getpid()}.{threading.get_ident()}{suffix}"
        np.save(tmp, array, allow_pickle=False)
        os.replace(tmp, folder / f"{shard}{suffix}")


def _read(folder: Path, where: list[tuple[str, int]], shape: tuple) -> np.ndarray:
    """The cached rows at (shard, row) pairs, in order."""
    out = np.empty((len(where), *shape), np.float32)
    by_shard = collections.defaultdict(list)
    for i, (shard, row) in enumerate(where):
        by_shard[shard].append((i, row))
    for shard, items in by_shard.items():
        data = np.load(folder / f"{shard}.npy", mmap_mode="r")
        idx = np.array(items)
        out[idx[:, 0]] = data[idx[:, 1]]
    return out


def cached(extract, images, folder: Path, shape: tuple, batch_size: int = 32) -> np.ndarray:
    """extract(batch) -> outputs of `shape` for every image, float32, computing only images not in `folder`."""
    folder = Path(folder)
    keys = content_keys(images)
    with _LOCK:
        index = _index(folder)
    first = {}
    for i, k in enumerate(keys):
        if k not in index:
            first.setdefault(k, i)  # a picture twice in the data is computed once
    todo = sorted(first.values())
    for start in range(0, len(todo), CHUNK):
        part = todo[start:start + CHUNK]
        x = np.asarray(_take(images, part), np.float32)
        values = np.asarray(extract(x, batch_size), np.float32).reshape(len(part), *shape)
        _write_shard(folder, [keys[i] for i in part], values)
    COUNTS["computed"] += len(todo)
    COUNTS["reused"] += len(keys) - len(todo)
    with _LOCK:
        index = _index(folder)
    return _read(folder, [index[k] for k in keys], shape) if keys else np.zeros((0, *shape), np.float32)


def _take(images, rows: list[int]) -> np.ndarray:
    from core.data.streaming import take

    return np.asarray(take(images, np.asarray(rows, np.int64)))
