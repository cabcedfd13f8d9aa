"""A frozen backbone's outputs, computed once per image and kept on disk by the image's content.

Retraining, a sweep, the k folds of a label search and a learning-rate test all see the same images: each
image's features are looked up by a hash of its decoded pixels in a folder per (backbone checksum, input
side, layer), and only images never seen before go through the backbone. A folder holds shards written
atomically (features first, then the keys that make them visible), so concurrent workers never see half a
shard; two workers computing the same image only write it twice. All folders together stay under
CLASSIFIER_LAB_FEATURE_CACHE_MB: a call that wrote a shard removes the least recently used others (keys
first, so no reader indexes a shard without features), and a reader whose shard vanished computes it again.
"""
from __future__ import annotations

import collections
import hashlib
import os
import threading
import time
from pathlib import Path

import numpy as np

CHUNK = 512  # images hashed and computed at a time: bounds the memory of a streamed dataset
COUNTS = collections.Counter()  # "computed" / "reused" images in this process: what tests and run.json report
_INDEX: dict[Path, tuple] = {}  # folder -> (shard names seen, {key: (shard, row)}): read each shard's keys once
_LOCK = threading.Lock()
KEYS, VALUES = ".keys.npy", ".npy"
ORPHAN_SECONDS = 600  # features without keys this old are left by a worker that died mid-eviction, not mid-write


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
    for keys_file in sorted(folder.glob(f"[!.]*{KEYS}")) if folder.is_dir() else []:  # not a temp file being written
        if keys_file.name in seen:
            continue
        try:
            keys = np.load(keys_file, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            continue  # damaged, or removed meanwhile: its images are computed again
        shard = keys_file.name[: -len(KEYS)]
        index.update({str(k): (shard, row) for row, k in enumerate(keys)})
        seen.add(keys_file.name)
    _INDEX[folder] = (seen, index)
    return index


def _forget(folder: Path, shard: str) -> None:
    """Drop a vanished shard from this process's index (it may be written again under the same name)."""
    seen, index = _INDEX.get(folder, (set(), {}))
    seen.discard(shard + KEYS)
    for k in [k for k, (s, _) in index.items() if s == shard]:
        del index[k]


def _write_shard(folder: Path, keys: list[str], values: np.ndarray) -> str:
    """Features, then their keys (which make the shard visible), each via a temp file and a rename; the shard."""
    folder.mkdir(parents=True, exist_ok=True)
    shard = hashlib.blake2b("".join(keys).encode(), digest_size=12).hexdigest()
    for suffix, array in ((VALUES, values.astype(np.float16)), (KEYS, np.asarray(keys))):
        tmp = folder / f".{shard}.{os.getpid()}.{threading.get_ident()}{suffix}"
        np.save(tmp, array, allow_pickle=False)
        os.replace(tmp, folder / f"{shard}{suffix}")
    return shard


def _read(folder: Path, where: dict[int, tuple[str, int]], out: np.ndarray) -> tuple[set[str], list[int]]:
    """Fill out[i] from the cached row at where[i] = (shard, row); the shards read (touched: recently used) and
    the positions whose shard vanished or is damaged (another worker evicted it since the index was read)."""
    by_shard = collections.defaultdict(list)
    for i, (shard, row) in where.items():
        by_shard[shard].append((i, row))
    read, lost = set(), []
    for shard, items in by_shard.items():
        idx = np.array(items)
        try:
            out[idx[:, 0]] = np.load(folder / f"{shard}{VALUES}", mmap_mode="r")[idx[:, 1]]
        except (OSError, ValueError, EOFError, IndexError):  # gone, or cut short: its images are computed again
            with _LOCK:
                _forget(folder, shard)
            lost.extend(idx[:, 0].tolist())
            continue
        read.add(shard)
        try:
            os.utime(folder / f"{shard}{KEYS}")  # its last use: what eviction goes by
        except OSError:  # evicted meanwhile, or a read-only cache: the features are read all the same
            pass
    return read, lost


def cached(extract, images, folder: Path, shape: tuple, batch_size: int = 32, keys: list[str] | None = None) -> np.ndarray:
    """extract(batch) -> outputs of `shape` for every image, float32, computing only images not in `folder`;
    `keys`: the images' content_keys when the caller has them already."""
    folder = Path(folder)
    keys = content_keys(images) if keys is None else keys
    out = np.empty((len(keys), *shape), np.float32)
    with _LOCK:
        index = _index(folder)
        where = {i: index[k] for i, k in enumerate(keys) if k in index}
    used, lost = _read(folder, where, out)
    lost = set(lost)
    rows = collections.defaultdict(list)  # key -> positions: a picture twice in the data is computed once
    for i, k in enumerate(keys):
        if i not in where or i in lost:
            rows[k].append(i)
    todo = list(rows)
    for start in range(0, len(todo), CHUNK):
        part = todo[start:start + CHUNK]
        x = np.asarray(_take(images, [rows[k][0] for k in part]), np.float32)
        values = np.asarray(extract(x, batch_size), np.float32).reshape(len(part), *shape)
        used.add(_write_shard(folder, part, values))
        for k, v in zip(part, values.astype(np.float16).astype(np.float32)):  # as a later call reads it back
            out[rows[k]] = v
    COUNTS["computed"] += len(todo)
    COUNTS["reused"] += len(keys) - len(todo)
    if todo:
        evict(folder.parent, keep={folder / s for s in used})
    return out


def cache_bytes(root: Path) -> int:
    """The size of every shard in the feature folders under `root`."""
    return sum(size for _, size, _ in _shards(root))


def _shards(root: Path) -> list[tuple[float, int, Path]]:
    """(last used, bytes, folder/shard) for each shard under root, by its keys file; features without keys count
    once ORPHAN_SECONDS old (younger ones are being written)."""
    found, now = [], time.time()
    for values in root.glob(f"*/[!.]*{VALUES}") if root.is_dir() else []:
        if values.name.endswith(KEYS):
            continue
        shard = values.with_name(values.name[: -len(VALUES)])
        try:
            stat = values.stat()
        except OSError:  # removed meanwhile
            continue
        try:
            keys = shard.with_name(shard.name + KEYS).stat()
        except OSError:
            if now - stat.st_mtime > ORPHAN_SECONDS:
                found.append((stat.st_mtime, stat.st_size, shard))
            continue
        found.append((keys.st_mtime, stat.st_size + keys.st_size, shard))
    return found


def evict(root: Path, keep: set[Path] = frozenset()) -> int:
    """Remove the least recently used shards under root, never one in `keep`, until all of them fit in
    CLASSIFIER_LAB_FEATURE_CACHE_MB; the bytes removed."""
    from core import config

    limit = config.FEATURE_CACHE_MB.get() * 2**20
    shards = sorted(_shards(root))
    total, removed = sum(size for _, size, _ in shards), 0
    for _, size, shard in shards:
        if total - removed <= limit:
            break
        if shard in keep:
            continue
        for suffix in (KEYS, VALUES):  # keys first: a reader never indexes a shard whose features are gone
            (shard.parent / f"{shard.name}{suffix}").unlink(missing_ok=True)
        with _LOCK:
            _forget(shard.parent, shard.name)
        removed += size
    return removed


def _take(images, rows: list[int]) -> np.ndarray:
    from core.data.streaming import take

    return np.asarray(take(images, np.asarray(rows, np.int64)))
