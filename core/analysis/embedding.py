"""The test set as the model sees it: last-hidden-layer embeddings, 2-D maps, near-duplicates, outliers."""
from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from core import InvalidValue
from core.analysis.activations import penultimate

# t-SNE, UMAP and the neighbour searches start from a PCA to 50 dimensions: the usual advice for t-SNE and
# UMAP, and 5x less work for the distance computations on a 256-unit layer, with the structure kept
PCA_FIRST = 50
# the test set's embeddings as training leaves them in the run folder (next to test_probs.npy): that 50-D
# PCA, float16. Every view starts from it (a PCA to 2-D of it is the PCA to 2-D of the full layer), it
# is 5x smaller than the 256-D layer (1 MB for 10,000 images, so the bundled models can ship it), and
# float16 finds the same near-duplicates and outliers on Fashion-MNIST as float32
STORED = "test_embeddings.npz"


@dataclass(frozen=True)
class Embedded:
    """Test-set embeddings as the map uses them: PCA scores (N, ≤ 50) float32, the layer's width, variance kept."""
    x: np.ndarray
    width: int
    kept: float = 1.0


def embedding_model(model):
    """A sub-model from the input to the last hidden layer, or None for a model without one."""
    import keras

    last = penultimate(model)
    return None if last is None else keras.Model(model.inputs, last[1])


def embeddings(model, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Last-hidden-layer activations (N, D) float32 for a uint8 batch; ValueError without a hidden layer."""
    sub = embedding_model(model)
    if sub is None:
        raise InvalidValue("this model has no hidden layer before its output, so there is no embedding to map")
    from core.data.streaming import chunked
    streamed = chunked(embeddings, model, images, batch_size)  # a big folder: a chunk in memory at a time
    if streamed is not None:
        return streamed
    x = np.asarray(images)
    if len(x) == 0:
        return np.zeros((0, int(sub.output_shape[-1])), np.float32)
    # uint8 in, as core.analysis.inference.predict does: Keras casts each batch, the set isn't copied as float32
    return np.asarray(sub.predict(x, batch_size=batch_size, verbose=0), np.float32)


def reduce(full: np.ndarray, seed: int = 0) -> Embedded:
    """Full-width embeddings (N, D) as the map uses them: a PCA to 50 dimensions when D is wider."""
    from sklearn.decomposition import PCA

    full = np.asarray(full, np.float32)
    if full.shape[1] <= PCA_FIRST or len(full) <= PCA_FIRST:
        return Embedded(full, full.shape[1])
    pca = PCA(PCA_FIRST, random_state=seed)
    return Embedded(pca.fit_transform(full).astype(np.float32), full.shape[1],
                    float(pca.explained_variance_ratio_.sum()))


def images_hash(images: np.ndarray) -> str:
    """A short hash of the test images: stored embeddings are used only for exactly the images they came from."""
    # streamed images (core/data/streaming.py) are named by their cache key and rows: hashing would read them all
    data = images.fingerprint() if hasattr(images, "fingerprint") else np.ascontiguousarray(images).data
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def save_test(model, images: np.ndarray, folder: Path, full: np.ndarray | None = None) -> Path | None:
    """Write the test set's reduced embeddings (float16) to folder/STORED, atomically; None without a hidden layer.
    `full`: the model's last-hidden-layer activations when already computed (a pretrained model's cached features)."""
    try:
        emb = reduce(embeddings(model, images) if full is None else full)
    except ValueError:
        return None  # no hidden layer: nothing to map, the page says so
    path, tmp = Path(folder) / STORED, Path(folder) / f".{STORED}.tmp.npz"  # np.savez keeps a .npz name as is
    try:
        np.savez(tmp, x=emb.x.astype(np.float16), width=emb.width, kept=emb.kept, images=images_hash(images))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_test(folder: Path, images: np.ndarray) -> Embedded | None:
    """The stored reduced embeddings if they were made from exactly these images; None otherwise (or damaged)."""
    path = Path(folder) / STORED
    if not path.is_file():
        return None
    try:
        with np.load(path) as f:
            if str(f["images"]) != images_hash(images) or f["x"].shape[0] != len(images):
                return None
            return Embedded(f["x"].astype(np.float32), int(f["width"]), float(f["kept"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # damaged or foreign: compute again
        return None


def _pca(x: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    return PCA(2, random_state=seed).fit_transform(x)


def _reduced(x: np.ndarray, seed: int) -> np.ndarray:
    return reduce(x, seed).x


def _tsne(x: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    return TSNE(2, init="pca", perplexity=min(30.0, (len(x) - 1) / 3), random_state=seed).fit_transform(
        _reduced(x, seed))


def _umap(x: np.ndarray, seed: int) -> np.ndarray:
    import umap

    return umap.UMAP(n_components=2, random_state=seed).fit_transform(_reduced(x, seed))


def _has(module: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module) is not None


@dataclass(frozen=True)
class Projection:
    """A registry entry: a 2-D projection method and what it costs."""
    name: str
    title: str
    note: str
    fn: Callable[[np.ndarray, int], np.ndarray]
    module: str  # the package it needs

    def available(self) -> bool:
        return _has(self.module)


PROJECTIONS: dict[str, Projection] = {p.name: p for p in [
    Projection("pca", "PCA", "linear, instant", _pca, "sklearn"),
    Projection("tsne", "t-SNE", "keeps neighbourhoods; about a minute for 10,000 points", _tsne, "sklearn"),
    Projection("umap", "UMAP", "keeps neighbourhoods; needs umap-learn", _umap, "umap"),
]}


def project(x: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(N, 2) float32 coordinates of the embeddings by a registered method."""
    if method not in PROJECTIONS:
        raise InvalidValue(f"unknown projection {method!r}; choose one of {', '.join(PROJECTIONS)}")
    p = PROJECTIONS[method]
    if not p.available():
        raise InvalidValue(f"{p.title} needs the {p.module} package, which is not installed")
    x = np.asarray(x, np.float32)
    if len(x) < 3:
        return np.zeros((len(x), 2), np.float32)
    return np.asarray(p.fn(x, seed), np.float32)


def near_duplicates(x: np.ndarray, factor: float = 0.13) -> dict[str, np.ndarray]:
    """Pairs of images whose embeddings are nearly the same, closest first.

    A pair (i, j), i < j, is kept when j is i's nearest neighbour (or i is j's) and their Euclidean
    distance (after a PCA to 50 dimensions) is below `factor` × the median nearest-neighbour distance of
    the set: the rule and default of cleanlab's near_duplicate issue type, with scikit-learn's NearestNeighbors.
    """
    from sklearn.neighbors import NearestNeighbors

    x = _reduced(np.asarray(x, np.float32), 0)
    if len(x) < 2:
        return {"a": np.zeros(0, int), "b": np.zeros(0, int), "distance": np.zeros(0), "threshold": 0.0}
    dist, idx = NearestNeighbors(n_neighbors=2).fit(x).kneighbors(x)
    nearest, d = idx[:, 1], dist[:, 1]
    # exact copies tie with the point itself, so the "self" column may hold the copy: take whichever isn't i
    self_first = idx[:, 0] == np.arange(len(x))
    nearest = np.where(self_first, nearest, idx[:, 0])
    threshold = factor * float(np.median(d))
    keep = d <= threshold
    a, b = np.minimum(np.arange(len(x)), nearest)[keep], np.maximum(np.arange(len(x)), nearest)[keep]
    pairs = {}
    for i, j, dd in zip(a, b, d[keep]):
        pairs.setdefault((int(i), int(j)), float(dd))  # (i, j) and (j, i) are one pair
    order = sorted(pairs, key=lambda p: (pairs[p], p))
    return {"a": np.array([p[0] for p in order], int), "b": np.array([p[1] for p in order], int),
            "distance": np.array([pairs[p] for p in order]), "threshold": threshold}


def outliers(x: np.ndarray, n_neighbors: int = 20) -> dict[str, np.ndarray]:
    """Images ranked from most to least unusual by scikit-learn's Local Outlier Factor on the embeddings
    after a PCA to 50 dimensions (about 1: as dense as its neighbours; `flagged`: above 1.5, scikit-learn's
    `contamination="auto"` cut)."""
    from sklearn.neighbors import LocalOutlierFactor

    x = _reduced(np.asarray(x, np.float32), 0)
    if len(x) < 3:
        return {"index": np.zeros(0, int), "score": np.zeros(0), "flagged": np.zeros(0, bool)}
    lof = LocalOutlierFactor(n_neighbors=min(n_neighbors, len(x) - 1))
    flagged = lof.fit_predict(x) == -1
    score = -lof.negative_outlier_factor_
    order = np.argsort(-score, kind="stable")
    return {"index": order, "score": score[order], "flagged": flagged[order]}


COLOR_BY = ("true class", "predicted class", "right / wrong", "suspected label error")


def color_groups(by: str, y: np.ndarray, pred: np.ndarray, names, suspects=()) -> list[tuple[str, np.ndarray]]:
    """(legend name, test indices) per coloured group of the map, in trace order; empty groups dropped."""
    y, pred = np.asarray(y), np.asarray(pred)
    if by == "true class":
        groups = [(str(n), np.flatnonzero(y == k)) for k, n in enumerate(names)]
    elif by == "predicted class":
        groups = [(str(n), np.flatnonzero(pred == k)) for k, n in enumerate(names)]
    elif by == "right / wrong":
        groups = [("right", np.flatnonzero(pred == y)), ("wrong", np.flatnonzero(pred != y))]
    elif by == "suspected label error":
        flag = np.zeros(len(y), bool)
        flag[np.asarray(suspects, int)] = True
        groups = [("label looks right", np.flatnonzero(~flag)), ("suspected label error", np.flatnonzero(flag))]
    else:
        raise InvalidValue(f"colour by one of {', '.join(COLOR_BY)}, not {by!r}")
    return [(name, idx) for name, idx in groups if len(idx)]

