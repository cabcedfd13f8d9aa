"""The feature cache (core.model.features): images are computed once, by content, across calls and processes."""
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from core import config
from core.model import features


def mean_colour(x, batch_size):
    """A real, cheap 'backbone': each image's mean colour."""
    return np.asarray(x, np.float32).mean(axis=(1, 2))


@pytest.mark.quick
def test_each_image_is_computed_once_by_its_content(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    images[5] = images[0]  # the same picture twice
    folder = tmp_path / "feat"
    before = features.COUNTS["computed"]
    first = features.cached(mean_colour, images, folder, (3,))
    assert features.COUNTS["computed"] - before == 5
    assert np.allclose(first, mean_colour(images, 0), atol=0.05)  # stored as float16
    again = features.cached(mean_colour, images[::-1], folder, (3,))  # other order, same images
    assert features.COUNTS["computed"] - before == 5 and np.array_equal(again, first[::-1])
    features._INDEX.clear()  # another process: only the files on disk
    grown = features.cached(mean_colour, np.concatenate([images, images[:1] // 2]), folder, (3,))
    assert features.COUNTS["computed"] - before == 6 and np.array_equal(grown[:6], first)


def test_keys_tell_content_shape_and_dtype_apart():
    a = np.zeros((4, 4), np.uint8)
    assert features.content_key(a) == features.content_key(a.copy())
    assert len({features.content_key(a), features.content_key(a.reshape(2, 8)),
                features.content_key(a.astype(np.int16)), features.content_key(a + 1)}) == 4


def stored(images) -> np.ndarray:
    """mean_colour as the cache keeps it (float16), and so as every call returns it, computed or read."""
    return mean_colour(images, 0).astype(np.float16).astype(np.float32)


def shards(root) -> set:
    """The shards on disk under root, as folder/name."""
    return {p.parent.name + "/" + p.name[: -len(features.KEYS)] for p in root.glob(f"*/*{features.KEYS}")}


def test_a_limit_removes_the_least_recently_used_shards_and_they_are_computed_again(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    batches = rng.integers(0, 256, (5, 4, 8, 8, 3), dtype=np.uint8)  # five calls of four new images each
    root = tmp_path / "features"
    made = []
    for i, folder in enumerate("abab"):  # across two folders: the limit is on all of them together
        before = shards(root)
        features.cached(mean_colour, batches[i], root / folder, (3,))
        (new,) = shards(root) - before
        made.append(new)
        os.utime(root / f"{new}{features.KEYS}", (0, time.time() - 3600 + 60 * i))  # used minutes apart, in order
    size = features.cache_bytes(root) / 4
    monkeypatch.setenv(config.FEATURE_CACHE_MB.name, str(3.5 * size / 2**20))  # room for three of five shards

    computed = features.COUNTS["computed"]
    features.cached(mean_colour, batches[0], root / "a", (3,))  # a read makes batch 0 the most recently used
    assert features.COUNTS["computed"] == computed and shards(root) == set(made)  # nothing written: none removed
    features.cached(mean_colour, batches[4], root / "a", (3,))  # a fifth shard: two must go
    assert shards(root) == {made[0], made[3], *(shards(root) - set(made))}  # the two oldest went, not the one read
    assert features.cache_bytes(root) <= 3.5 * size

    got = features.cached(mean_colour, batches[1], root / "b", (3,))  # removed: computed again, the same values
    assert features.COUNTS["computed"] == computed + 8
    assert np.array_equal(got, stored(batches[1])) and features.cache_bytes(root) <= 3.5 * size


def test_a_limit_of_zero_keeps_only_what_the_call_used(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    old, new = rng.integers(0, 256, (2, 3, 8, 8, 3), dtype=np.uint8)
    root = tmp_path / "features"
    features.cached(mean_colour, old, root / "a", (3,))
    features.cached(mean_colour, old[:1], root / "b", (3,))
    monkeypatch.setenv(config.FEATURE_CACHE_MB.name, "0")
    mixed = np.concatenate([old, new])
    computed = features.COUNTS["computed"]
    got = features.cached(mean_colour, mixed, root / "a", (3,))  # reads one shard, writes another
    assert features.COUNTS["computed"] == computed + 3 and {s.split("/")[0] for s in shards(root)} == {"a"}
    assert len(shards(root)) == 2 and np.array_equal(got, stored(mixed))


def test_a_shard_that_vanishes_after_the_index_is_computed_again(tmp_path):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (2, 4, 8, 8, 3), dtype=np.uint8)
    folder = tmp_path / "features" / "a"
    first = np.concatenate([features.cached(mean_colour, part, folder, (3,)) for part in images])
    gone = sorted(shards(folder.parent))[0].split("/")[1]
    for suffix in (features.KEYS, features.VALUES):  # another worker's eviction, after this process indexed it
        (folder / f"{gone}{suffix}").unlink()
    computed = features.COUNTS["computed"]
    again = features.cached(mean_colour, images.reshape(8, 8, 8, 3), folder, (3,))
    assert features.COUNTS["computed"] == computed + 4 and np.array_equal(again, first)
    (folder / f"{sorted(shards(folder.parent))[0].split('/')[1]}{features.VALUES}").write_bytes(b"cut short")
    assert np.array_equal(features.cached(mean_colour, images.reshape(8, 8, 8, 3), folder, (3,)), first)


def test_workers_sharing_a_tiny_cache_all_get_the_right_features(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    batches = rng.integers(0, 256, (6, 5, 8, 8, 3), dtype=np.uint8)
    root = tmp_path / "features"
    features.cached(mean_colour, batches[0], root / "a", (3,))
    limit = 2.5 * features.cache_bytes(root)  # two or three shards: each call evicts what the others use
    monkeypatch.setenv(config.FEATURE_CACHE_MB.name, str(limit / 2**20))

    def worker(seed) -> list[int]:
        """Thirty calls on overlapping batches; the batches whose features came back wrong."""
        wrong = []
        for k in np.random.default_rng(seed).integers(0, len(batches), 30):
            x = np.concatenate([batches[k], batches[(k + 1) % len(batches)]])
            if not np.array_equal(features.cached(mean_colour, x, root / "ab"[k % 2], (3,)), stored(x)):
                wrong.append(int(k))
        return wrong

    with ThreadPoolExecutor(3) as pool:  # a worker's exception is raised here
        wrong = [k for ks in pool.map(worker, range(3)) for k in ks]
    assert wrong == []
    features.cached(mean_colour, rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8), root / "a", (3,))
    assert features.cache_bytes(root) <= limit  # the workers left nothing the limit cannot remove
