"""A dataset seen through the pretrained backbone before any model is trained: every image's ImageNet
EfficientNet-Lite0 features (from the feature cache a later training reuses), a 2-D map of them, exact and
near-duplicate pairs, and suspects (possibly mislabelled, odd one out), each naming its file.

Thresholds were read off real photos: 800 Fashion-MNIST product shots (80 a class, 96×96 RGB files loaded at
180×180, the backbone at 224) with planted re-encoded copies, mislabelled images and skimage sample photos.
"""
from __future__ import annotations

import collections
import functools
from dataclasses import dataclass

import numpy as np

from core.analysis.embedding import Embedded, project, reduce
from core.data.registry import Dataset, item_keys
from core.model import efficientnet_lite as enet
from core.model import features

NEIGHBOURS = 5         # the nearest images that vote on an image's label
DUPLICATE_SEARCH = 10  # nearest images searched for near-duplicates: a picture with more copies shows 10
# cosine similarity of the 1,280 features from which two images are near-duplicates: JPEG re-encodes scored
# ≥ 0.98 and small resizes ≥ 0.998 of their original; the closest two distinct photos of 800 scored 0.947
NEAR_DUPLICATE = 0.96
# share of the NEIGHBOURS carrying one other label from which an image is possibly mislabelled (4 of 5): a
# planted one scored 5 of 5; on clean Fashion-MNIST it flags 4-6%, mostly its shirt/T-shirt/pullover/coat overlap
# (5 of 5 flags about 1% but misses a mislabelled image whose copy carries the same wrong label)
MISLABEL_SHARE = 0.8
# robust z-score (median, 1.4826 × MAD) of an image's similarity to its nearest image below which it is an odd
# one out: clean Fashion-MNIST's lowest was -3.3, skimage photos and noise among it -7 to -10
ODD_Z = -5.0
MIN_FOR_ODD = 10       # fewer images than this: no statistics of "typical" to stand out from
ROWS = 1024            # rows of the similarity matrix held at a time: 40 MB for 10,000 images
TRAIN_VALIDATION = 0.1  # the Train page's default validation split: the training images decide the backbone side


@dataclass(frozen=True)
class Pair:
    """Two images that look the same: identical pixels (exact) or features at least NEAR_DUPLICATE alike."""
    a: int
    b: int
    file_a: str
    file_b: str
    similarity: float
    exact: bool


@dataclass(frozen=True)
class Suspect:
    """An image worth a second look: kind is 'possibly mislabelled' or 'odd one out', why says what was seen."""
    index: int
    file: str
    kind: str
    why: str
    score: float  # mislabelled: the share of neighbours with the other label; odd: its robust z-score
    suggested: int | None = None  # mislabelled: the label its neighbours carry (what a relabel would set)


@dataclass(frozen=True, eq=False)  # eq=False: arrays don't compare with ==
class DataMap:
    """All images of a dataset (train, then test) as the backbone sees them, and what stood out."""
    files: np.ndarray        # (N,) each image's key: its path in an own dataset, else its index
    labels: np.ndarray       # (N,) class indices
    splits: np.ndarray       # (N,) "train" / "test"
    class_names: tuple[str, ...]
    embedded: Embedded       # the features as the embedding map uses them (a PCA to 50 dimensions)
    pairs: tuple[Pair, ...]
    suspects: tuple[Suspect, ...]
    side: int                # the backbone's input side (the feature cache a training at this size reuses)
    computed: int            # images that went through the backbone for this look (0: all from the cache)

    def xy(self, method: str = "pca", seed: int = 0) -> np.ndarray:
        """(N, 2) map coordinates by one of the embedding map's projections."""
        return project(self.embedded.x, method, seed)


def available() -> tuple[bool, str]:
    """(usable, one line): whether the pretrained backbone can be had here, without loading it."""
    return enet.status()


def side_for(n_train: int) -> int:
    """The backbone side a default training of this dataset uses, so its features come from the same cache."""
    from core.model.recipes import pretrained_side

    return pretrained_side(n_train - round(n_train * TRAIN_VALIDATION))


@functools.lru_cache(maxsize=2)
def _frozen(input_shape: tuple, side: int):
    """Pixels -> pooled features, built as a training builds its frozen part (and so the same cache folder)."""
    from core.model.pretrained import efficientnet_lite0, feature_head

    return feature_head(efficientnet_lite0(input_shape, 2, side=side)).frozen


def backbone_features(images, side: int, keys: list[str] | None = None) -> np.ndarray:
    """(N, 1280) float32 pooled features through the feature cache; the backbone is built only for unseen images.
    `keys`: the images' features.content_keys, if already computed."""
    from core.model.pretrained import feature_folder

    def extract(x, batch_size):
        return _frozen(tuple(images.shape[1:]), side).predict(x, batch_size=batch_size, verbose=0)

    return features.cached(extract, images, feature_folder(side), (enet.HEAD,), keys=keys)


def _neighbours(z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k most similar other rows of unit vectors z, most similar first: (indices, cosines)."""
    n = len(z)
    idx, sim = np.zeros((n, k), np.int64), np.zeros((n, k), np.float32)
    for start in range(0, n, ROWS):
        s = z[start:start + ROWS] @ z.T
        s[np.arange(len(s)), np.arange(start, start + len(s))] = -np.inf  # not itself
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(s, top, 1), axis=1, kind="stable")
        idx[start:start + ROWS] = np.take_along_axis(top, order, 1)
        sim[start:start + ROWS] = np.take_along_axis(s, idx[start:start + ROWS], 1)
    return idx, sim


def duplicate_pairs(keys: list[str], files: np.ndarray, idx: np.ndarray, sim: np.ndarray) -> tuple[Pair, ...]:
    """Exact copies (same pixel key: each copy paired with the first), then near-duplicates, most alike first."""
    groups = collections.defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    exact = [(g[0], j) for g in groups.values() for j in g[1:]]
    near = {}
    for i, (row, cos) in enumerate(zip(idx, sim)):
        for j, c in zip(row, cos):
            if c >= NEAR_DUPLICATE and keys[i] != keys[j]:
                near[min(i, int(j)), max(i, int(j))] = float(c)
    pairs = [Pair(a, b, str(files[a]), str(files[b]), 1.0, True) for a, b in exact]
    pairs += [Pair(a, b, str(files[a]), str(files[b]), c, False)
              for (a, b), c in sorted(near.items(), key=lambda item: (-item[1], item[0]))]
    return tuple(pairs)


def suspects(labels: np.ndarray, names, files: np.ndarray, idx: np.ndarray, sim: np.ndarray) -> tuple[Suspect, ...]:
    """Odd ones out (far from every image), then possibly mislabelled images (neighbours of another label)."""
    n, k = idx.shape
    nearest = sim[:, 0].astype(np.float64)
    odd = np.zeros(n, bool)
    found = []
    if n >= MIN_FOR_ODD:
        median = float(np.median(nearest))
        spread = 1.4826 * float(np.median(np.abs(nearest - median)))
        z = (nearest - median) / max(spread, 1e-6)
        odd = z < ODD_Z
        for i in np.argsort(z, kind="stable")[: int(odd.sum())]:
            found.append(Suspect(int(i), str(files[i]), "odd one out", f"its closest image is only "
                                 f"{nearest[i]:.0%} alike (typical here: {median:.0%})", float(z[i])))
    votes = labels[idx[:, :min(NEIGHBOURS, k)]]
    mislabelled = []
    for i in np.flatnonzero(~odd):  # an odd image's neighbours are far away: their labels say little
        others = votes[i][votes[i] != labels[i]]
        if not len(others):
            continue
        other, count = collections.Counter(others.tolist()).most_common(1)[0]
        if count >= MISLABEL_SHARE * votes.shape[1]:
            mislabelled.append(Suspect(int(i), str(files[i]), "possibly mislabelled",
                                       f"labelled {names[labels[i]]}, but {count} of its {votes.shape[1]} nearest "
                                       f"images are {names[other]}", count / votes.shape[1], int(other)))
    return tuple(found + sorted(mislabelled, key=lambda s: (-s.score, s.index)))


def look(ds: Dataset, side: int | None = None) -> DataMap:
    """The DataMap of all of a dataset's images through the backbone (BackboneUnavailable where it can't be had)."""
    before = features.COUNTS["computed"]
    side = side or side_for(len(ds.y_train))
    train_keys, test_keys = features.content_keys(ds.x_train), features.content_keys(ds.x_test)
    f = np.concatenate([backbone_features(ds.x_train, side, train_keys), backbone_features(ds.x_test, side, test_keys)])
    files = np.concatenate([item_keys(ds, "train"), item_keys(ds, "test")])
    labels = np.concatenate([ds.y_train, ds.y_test]).astype(np.int64)
    splits = np.repeat(np.array(["train", "test"]), [len(ds.y_train), len(ds.y_test)])
    keys = train_keys + test_keys
    pairs, found = (), ()
    if len(f) >= 2:
        z = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
        idx, sim = _neighbours(z, min(DUPLICATE_SEARCH, len(f) - 1))
        pairs, found = duplicate_pairs(keys, files, idx, sim), suspects(labels, ds.class_names, files, idx, sim)
    return DataMap(files, labels, splits, tuple(ds.class_names), reduce(f), pairs, found, side,
                   features.COUNTS["computed"] - before)
