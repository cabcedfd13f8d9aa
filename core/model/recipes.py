"""Data-dependent training recipes: what `auto` picks from a dataset's size and kind of image."""
from __future__ import annotations

import math

import numpy as np

MIN_STEPS = 30        # an epoch of a small dataset is repeated up to this many batches: steps, not epochs
SMALL_SIDE = 48       # input side for small datasets: shapes, colours and sketches need no more
LARGE_SIDE = 96       # and for bigger ones, which have the examples to use finer detail
LARGE_N = 5_000       # training images from which a dataset counts as big
GRAY_TOLERANCE = 8    # mean |R-G|+|G-B| below which an image is grayscale
COLOUR_MIN = 0.3      # colour_informative() below this: the classes are not told apart by colour
PLAIN_SHARE = 0.6     # share of pixels at the background level above which a grayscale image is a drawing
# the pretrained backbone's input side by training images: ImageNet's 224 for small sets; smaller ones keep a
# big set's one-off feature extraction to minutes (about 13 ms an image at 224, 3 ms at 96 on two cores)
PRETRAINED_SIDES = ((2_000, 224), (10_000, 128), (math.inf, 96))


def default_arch(dataset: str) -> str:
    """The architecture to start from: `auto` for own datasets, the tutorial's dense net for the built-ins."""
    from core.data.datasets import is_own
    return "auto" if is_own(dataset) else "dense"


def image_kind(x: np.ndarray, sample: int = 64) -> str:
    """'drawings' (grayscale strokes on a plain background) or 'photos', from a sample of images."""
    x = np.asarray(x[: min(sample, len(x))])
    if x.ndim == 4 and x.shape[-1] == 3:
        spread = np.abs(np.diff(x.astype(np.int16), axis=-1)).sum(-1).mean()
        if spread > GRAY_TOLERANCE:
            return "photos"
        x = x.mean(-1)
    elif x.ndim == 4:
        x = x[..., 0]
    return "drawings" if plain_share(x) > PLAIN_SHARE else "photos"


def plain_share(x: np.ndarray, sample: int = 64) -> float:
    """The share of pixels at each image's background level (its median grey), over a sample of images."""
    x = np.asarray(x[: min(sample, len(x))], np.float32)
    if x.ndim == 4:
        x = x.mean(-1)
    flat = x.reshape(len(x), -1)
    return float((np.abs(flat - np.median(flat, axis=1, keepdims=True)) < 24).mean())


def colour_informative(x: np.ndarray, y: np.ndarray, sample: int = 400, seed: int = 0) -> float:
    """Leave-one-out 5-NN accuracy of coarse colour histograms, over chance: 0 = colour says nothing, 1 = all."""
    if x.ndim != 4 or x.shape[-1] != 3 or len(y) < 10:
        return 0.0
    idx = np.random.default_rng(seed).permutation(len(y))[:sample]
    bins = (np.asarray(x[idx, ::4, ::4]) // 64).astype(np.int64)  # 4 levels per channel: 64 colours
    codes = (bins[..., 0] * 16 + bins[..., 1] * 4 + bins[..., 2]).reshape(len(idx), -1)
    hist = np.stack([np.bincount(c, minlength=64) for c in codes]).astype(np.float32) / codes.shape[1]
    dist = np.abs(hist[:, None, :] - hist[None, :, :]).sum(-1)
    np.fill_diagonal(dist, np.inf)
    labels = np.asarray(y)[idx]
    near = labels[np.argsort(dist, axis=1)[:, :5]]
    pred = np.array([np.bincount(row).argmax() for row in near])
    chance = np.bincount(labels).max() / len(labels)
    return float(((pred == labels).mean() - chance) / max(1 - chance, 1e-9))


def pretrained_side(n_train: int) -> int:
    """The pretrained backbone's input side for a training set of this size."""
    return next(side for limit, side in PRETRAINED_SIDES if n_train <= limit)


def pretrained_choice(kind: str, n: int, plain: float = 0.0) -> tuple[bool, str]:
    """Whether `auto` takes the pretrained EfficientNet-Lite0, and why (the rule, recorded in the run).

    The rule: photo-like images (not drawings, nor flat graphics on a plain background: `plain` is their
    plain_share) and fewer than LARGE_N of them. There ImageNet features beat a
    small CNN trained from scratch (bench/bench_fewshot.py: Fashion-MNIST photos, 40 a class); drawings keep
    the stroke-augmented CNN, and big sets have the examples to learn from scratch without a one-off
    extraction of minutes."""
    from core.model import efficientnet_lite

    if kind == "drawings":
        return False, "drawings: the from-scratch CNN with stroke augmentation"
    if plain > PLAIN_SHARE:  # synthetic shapes and colours: 0.85–0.92 here; Fashion-MNIST photos 0.51
        return False, f"flat graphics ({plain:.0%} of pixels plain background): the from-scratch CNN learns them"
    if n >= LARGE_N:
        return False, f"{n:,} training images (≥ {LARGE_N:,}): enough to learn from scratch"
    ok, line = efficientnet_lite.status()
    if not ok:
        return False, f"pretrained backbone unavailable ({line})"
    return True, f"photo-like images, {n:,} of them (< {LARGE_N:,}): ImageNet features beat learning from scratch"


def plan_auto(x_train: np.ndarray, y_train: np.ndarray, cfg) -> dict:
    """Input side, augmentation profile and steps per epoch for the `auto` architecture, or the pretrained
    backbone when pretrained_choice() says so."""
    n = len(y_train)
    kind = image_kind(x_train)
    steps = max(math.ceil(n / cfg.batch_size), MIN_STEPS)
    use, why = pretrained_choice(kind, n, plain_share(x_train))
    if use:
        return {"kind": kind, "choice": "efficientnet_lite0", "why": why, "steps_per_epoch": steps,
                "model": {"pretrained": True, "side": pretrained_side(n)}}
    colour = colour_informative(x_train, y_train) if kind == "photos" else 0.0
    if kind == "photos" and colour < COLOUR_MIN:
        kind = "shapes"  # colour tells the classes apart no better than chance: teach the model to ignore it
    side = min(SMALL_SIDE if n < LARGE_N else LARGE_SIDE, *x_train.shape[1:3])
    augment = True if cfg.augment is None else bool(cfg.augment)
    return {"kind": kind, "choice": "from scratch", "why": why, "colour_signal": round(colour, 3),
            "steps_per_epoch": steps,
            "model": {"side": int(side), "augment": augment, "edges": kind == "shapes",
                      "augment_profile": "digits" if kind == "drawings" else "photos"}}


def fit_inputs(x: np.ndarray, y: np.ndarray, batch_size: int, steps: int, seed: int) -> dict:
    """model.fit's data arguments: the arrays for plain epochs, else a shuffled, repeated tf.data pipeline
    of `steps` batches an epoch (a recipe that wants more steps than one pass over the data holds)."""
    from core.data import streaming
    if streaming.is_lazy(x):  # a big folder read batch by batch from its decoded cache
        return streaming.fit_inputs(x, y, batch_size, steps, seed)
    if steps <= math.ceil(len(y) / batch_size):
        return {"x": x, "y": y, "batch_size": batch_size, "shuffle": True}
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    return {"x": ds.repeat().batch(batch_size).prefetch(tf.data.AUTOTUNE), "steps_per_epoch": steps,
            "shuffle": False}  # shuffled above; fit would only warn that it ignores shuffle=True
