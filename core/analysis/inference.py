"""Turning user drawings and photos into model inputs, and model logits into predictions."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from core import LabError, InvalidValue
from core.data import identity
from core.data.images import ImageError, array_to_image, fit_rgb, flatten_alpha, open_image, standard_mode
from core.store import runs

__all__ = ["ImageError", "BlankImage", "preprocess", "mnist_style", "to_gray_ink", "softmax",
           "predict", "top_k", "predict_image"]

MIN_INK = 24.0         # peak contrast (0..255) below which nothing counts as drawn
MASK_FRACTION = 0.2    # ink mask = pixels above this share of the peak, so faint haze doesn't widen the crop
TRIM_FRACTION = 0.002  # share of ink pixels trimmed off each side of the box: drops far-away specks
MIN_EXTENT = 0.04      # ink spanning less than this share of the picture's longer side is a stray mark
WORK_SIDE = 1024       # big photos are box-reduced to about this before any float maths (speed, memory)
STAT_SAMPLES = 40_000  # background statistics are taken on a strided sample of about this many pixels
FLAT_RANGE = 12        # an RGB input whose every channel varies less than this is a blank photo

DRAW_HINT = "Nothing drawn yet — draw a digit large, in one colour, on a plain background."
PHOTO_HINT = "The image is a single flat colour — upload a photo that shows the object."


class BlankImage(LabError, ValueError):
    """Nothing drawn (or a featureless photo); str() is a short hint for the user."""


def _as_image(image) -> Image.Image:
    """Any accepted input (PIL image, array, bytes, path, file) as an L/LA/RGB/RGBA image."""
    if isinstance(image, np.ndarray):
        return array_to_image(image)
    if not isinstance(image, Image.Image):
        if not isinstance(image, (str, Path, bytes, bytearray, memoryview)) and not hasattr(image, "read"):
            raise ImageError(f"cannot use a {type(image).__name__} as an image")
        image = open_image(image)
    return standard_mode(image)


def _border(a: np.ndarray) -> np.ndarray:
    """The outer band of an image: where the background is, however much of the frame the object fills."""
    k = max(1, min(a.shape[0], a.shape[1]) // 16)
    return np.concatenate([a[:k].ravel(), a[-k:].ravel(), a[k:-k, :k].ravel(), a[k:-k, -k:].ravel()])


def _strided(a: np.ndarray) -> np.ndarray:
    step = max(1, int(math.sqrt(a.shape[0] * a.shape[1] / STAT_SAMPLES)))
    return a[::step, ::step]


def _otsu(v: np.ndarray) -> float:
    """Otsu's threshold of 0..255 values: the cut that maximises the variance between the two classes."""
    hist = np.bincount(np.clip(v, 0, 255).astype(np.int64).ravel(), minlength=256).astype(np.float64)
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * np.arange(256))
    w1 = w0[-1] - w0
    ok = (w0 > 0) & (w1 > 0)
    between = np.where(ok, (m0[-1] * w0 - m0 * w0[-1]) ** 2 / np.where(ok, w0 * w1, 1.0), -1.0)
    return float(np.argmax(between)) + 0.5


def _spread(v: np.ndarray) -> float:
    """Robust standard deviation (scaled median absolute deviation)."""
    return 1.4826 * float(np.median(np.abs(v - np.median(v))))


def _paper(s: np.ndarray, band: np.ndarray) -> tuple[bool, np.ndarray]:
    """Whether the background is light, and which pixels of the outer band are background.

    The band is all background unless ink runs off the frame (a tight scan): then it holds two kinds
    of pixel, and if one kind lies clearly beyond the other's noise it is ink and is left out; the
    four corners, which a digit rarely fills, say which kind is the background."""
    whole = (bool(np.median(band) > 127.5), np.ones(band.shape, bool))
    t = _otsu(s)
    high = band > t
    if high.all() or not high.any():
        return whole
    k = max(1, min(s.shape) // 8)
    corners = np.array([np.median(c) > t for c in (s[:k, :k], s[:k, -k:], s[-k:, :k], s[-k:, -k:])])
    light = corners.sum() >= 3 if corners.sum() != 2 else high.mean() > 0.5
    paper = high if light else ~high
    # the other kind counts as ink only if most of it lies beyond the paper's 3-sigma floor
    if abs(np.median(band[~paper]) - np.median(band[paper])) <= 3.0 * _spread(band[paper]):
        return whole
    return bool(light), paper


def _floor(gray: np.ndarray) -> tuple[bool, np.ndarray]:
    """Whether to flip (light paper), and the level per pixel at or below which the flipped image is paper.

    The paper is a plane fitted to the outer band's background pixels (uneven light in a photo or a
    scan), and its texture/JPEG noise (robust spread of the rest, 3 sigma) is paper too."""
    s = _strided(gray)
    band = _border(s)
    light, paper = _paper(s, band)
    v = (255.0 - band[paper]) if light else band[paper]
    if np.ptp(v) == 0:  # a flat background (a drawing canvas's transparent alpha): nothing to fit
        return light, np.float32(v[0])
    step = max(1, int(math.sqrt(gray.shape[0] * gray.shape[1] / STAT_SAMPLES)))
    ys = _border(np.broadcast_to(np.arange(s.shape[0], dtype=np.float32)[:, None] * step, s.shape))[paper]
    xs = _border(np.broadcast_to(np.arange(s.shape[1], dtype=np.float32)[None, :] * step, s.shape))[paper]
    design = np.stack([np.ones_like(v), ys, xs], axis=1)
    fit = np.ones(len(v), bool)
    for _ in range(2):  # refit without the stray ink edges and specks the first fit left far above the plane
        a = design[fit]
        coef = np.linalg.solve(a.T @ a + 1e-6 * np.eye(3), a.T @ v[fit])
        resid = v - design @ coef
        sigma = _spread(resid[fit])
        fit = resid - np.median(resid[fit]) <= 2.5 * sigma + 1e-6  # keeps at least half
    h, w = gray.shape
    level = (np.float32(coef[0] + 3.0 * sigma) + np.float32(coef[1]) * np.arange(h, dtype=np.float32)[:, None]
             + np.float32(coef[2]) * np.arange(w, dtype=np.float32)[None, :])
    return light, level.astype(np.float32)


def to_gray_ink(image) -> np.ndarray:
    """Any input -> 2-D float32 0..255 with bright ink on a 0 background."""
    img = _as_image(image)
    if max(img.size) > 2 * WORK_SIDE:  # integer box reduce: exact area average, fast, premultiplies alpha
        img = img.reduce(max(img.size) // WORK_SIDE)
    a = np.asarray(img)
    alpha = a[..., -1].astype(np.float32) if img.mode in ("LA", "RGBA") else None
    color = a[..., :-1] if alpha is not None else a
    if color.ndim == 2:
        gray = color.astype(np.float32)
    elif color.shape[2] == 1:
        gray = color[..., 0].astype(np.float32)
    else:  # ITU-R 601 luma, the same weights PIL's convert("L") uses
        c = color.astype(np.float32)
        gray = c[..., 0] * 0.299 + c[..., 1] * 0.587 + c[..., 2] * 0.114
    if alpha is not None:
        if np.median(_border(_strided(alpha))) < 128:
            # transparent background (drawing canvas): whatever was painted is ink, whatever its colour
            gray = alpha
        elif alpha.min() < 255:
            # mostly opaque: fill the few see-through pixels with the typical colour so they read as background
            cover = alpha / 255.0
            gray = gray * cover + float(np.median(_strided(gray)[_strided(alpha) >= 128])) * (1.0 - cover)
    light, floor = _floor(gray)
    if light:  # the background is light: dark pen on paper, so flip to MNIST's bright-on-dark
        gray = 255.0 - gray
    if float(floor.min()) >= 254.0:
        return np.zeros_like(gray)
    floor = np.minimum(floor, 254.0)
    return np.clip((gray - floor) * (255.0 / (255.0 - floor)), 0.0, 255.0)


def _ink_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (top, bottom, left, right; exclusive ends) of the mask, minus tiny far-off specks."""
    drop = int(mask.sum() * TRIM_FRACTION)

    def span(profile: np.ndarray) -> tuple[int, int]:
        cum = np.cumsum(profile)
        lo = int(np.searchsorted(cum, drop, side="right"))
        hi = int(np.searchsorted(cum, cum[-1] - drop, side="left")) + 1
        return lo, max(hi, lo + 1)

    top, bottom = span(mask.sum(axis=1))
    left, right = span(mask.sum(axis=0))
    return top, bottom, left, right


def mnist_style(gray: np.ndarray, size: int = 28, box: int = 20) -> np.ndarray:
    """The MNIST recipe: crop to the ink, fit its longer side to `box`, centre of mass at the centre."""
    g = np.asarray(gray)
    if g.ndim == 3 and g.shape[2] == 1:
        g = g[..., 0]
    if g.ndim != 2:
        raise InvalidValue(f"mnist_style wants a 2-D image, got shape {g.shape}")
    g = np.nan_to_num(g.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if np.issubdtype(np.asarray(gray).dtype, np.floating) and 0 < g.max() <= 1.0:
        g = g * 255.0  # 0..1 float images
    peak = float(g.max()) if g.size else 0.0
    if peak < MIN_INK:
        raise BlankImage(DRAW_HINT)
    mask = g > max(MASK_FRACTION * peak, MIN_INK / 2)
    top, bottom, left, right = _ink_box(mask)
    h, w = bottom - top, right - left
    extent = max(h, w)
    if extent < max(3, MIN_EXTENT * max(g.shape)):
        raise BlankImage(DRAW_HINT)  # a stray pixel or speck, not a drawing
    # a round, filled, small blob is a click of the brush (a dot), not a digit
    fill = mask[top:bottom, left:right].mean()
    if fill > 0.65 and 0.67 <= h / w <= 1.5 and extent < 0.12 * max(g.shape):
        raise BlankImage(DRAW_HINT)

    crop = g[top:bottom, left:right]
    scale = box / extent
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    # BOX = exact area coverage when shrinking (MNIST's anti-aliased grey edges, no ringing)
    resample = Image.BOX if scale < 1 else Image.BILINEAR
    patch = Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32)).resize((nw, nh), resample)
    patch = np.clip(np.asarray(patch, dtype=np.float32), 0.0, None)
    mass = float(patch.sum())
    if mass <= 0:
        raise BlankImage(DRAW_HINT)
    cy = float((patch.sum(axis=1) * np.arange(nh)).sum()) / mass
    cx = float((patch.sum(axis=0) * np.arange(nw)).sum()) / mass
    # shift the centre of mass onto the frame's centre (index (size-1)/2, i.e. (14,14) in pixel-edge
    # coordinates), rounded to whole pixels as in LeCun's description; clamped so a lopsided glyph
    # is never cut off at the frame edge
    mid = (size - 1) / 2
    oy = min(max(math.floor(mid - cy + 0.5), 0), size - nh)
    ox = min(max(math.floor(mid - cx + 0.5), 0), size - nw)
    out = np.zeros((size, size), np.float32)
    out[oy:oy + nh, ox:ox + nw] = patch
    return np.clip(out * (255.0 / float(out.max())) + 0.5, 0, 255).astype(np.uint8)


def _shape(input_shape) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if len(shape) in (3, 4) and shape[0] is None:  # tolerate model.input_shape with its batch axis
        shape = shape[1:]
    if len(shape) not in (2, 3) or any(not isinstance(d, (int, np.integer)) or d < 1 for d in shape):
        raise InvalidValue(f"unsupported model input shape {input_shape!r}")
    if len(shape) == 3 and shape[2] not in (1, 3):
        raise InvalidValue(f"unsupported channel count {shape[2]} in input shape {input_shape!r}")
    return tuple(int(d) for d in shape)


def preprocess(image, input_shape: tuple, *, box: int | None = None) -> np.ndarray:
    """Make one uint8 model input of exactly `input_shape` (no batch axis) from any image."""
    shape = _shape(input_shape)
    h, w = shape[:2]
    if len(shape) == 3 and shape[2] == 3:
        img = _as_image(image)
        if img.mode in ("LA", "RGBA"):
            img = flatten_alpha(img)  # transparent = white, as the folder loader does
        x = fit_rgb(img, (h, w))  # the very function datasets use, so inference matches training
        if int(np.ptp(x.reshape(-1, 3), axis=0).max()) < FLAT_RANGE:
            raise BlankImage(PHOTO_HINT)
        return x
    side = max(h, w)
    digit = mnist_style(to_gray_ink(image), side, box or max(1, round(side * 20 / 28)))
    if h != w:
        digit = np.asarray(Image.fromarray(digit).resize((w, h), Image.BILINEAR))
    return digit.reshape(shape)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits along the last axis (float32, overflow-safe)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def predict(model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, C) float32 for a uint8 batch (N, *input_shape)."""
    from core.data.streaming import chunked
    streamed = chunked(predict, model, images, batch_size)  # a big folder: a chunk in memory at a time
    if streamed is not None:
        return streamed
    x = np.asarray(images)
    if len(x) == 0:
        return np.zeros((0, int(model.output_shape[-1])), np.float32)
    if len(x) <= batch_size:
        # float32 because models rescale 0..255 themselves and an integer tensor would break a custom
        # first layer
        x = x.astype(np.float32)
        if getattr(getattr(model, "distribute_strategy", None), "num_replicas_in_sync", 1) == 1:
            # one compiled graph call (traced once per model): the eager model(x) runs every layer in
            # Python, ~30x slower for one image (bench/bench_predict.py); predict() adds a data pipeline
            logits = np.asarray(model.predict_on_batch(x))
        else:  # a model built under MirroredStrategy: predict_on_batch would run the batch once per replica
            logits = model(x, training=False)
            logits = logits.numpy() if hasattr(logits, "numpy") else np.asarray(logits)
    else:
        # uint8 goes in as is: Keras casts each batch to the Input dtype (same logits), so a big
        # test set isn't copied whole as float32 (4x its size)
        logits = model.predict(x, batch_size=batch_size, verbose=0)
    return softmax(logits)


def top_k(probs: np.ndarray, class_names, k: int = 3) -> list[tuple[str, float]]:
    """The k most likely (class name, probability) pairs, best first."""
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    names = list(class_names) if class_names is not None else []
    order = np.argsort(-p, kind="stable")[:max(0, int(k))]
    return [(str(names[i]) if i < len(names) else str(i), float(p[i])) for i in order]


def predict_image(model, image, class_names, *, k: int = 3, box: int | None = None) -> dict:
    """Preprocess and classify one image: {"input", "probs", "top"}."""
    x = preprocess(image, tuple(model.input_shape[1:]), box=box)
    probs = predict(model, x[None])[0]
    return {"input": x, "probs": probs, "top": top_k(probs, class_names, k)}


def stored_test_probs(model_path: Path, ds) -> np.ndarray | None:
    """The test-set probabilities training saved beside `model_path` (test_probs.npy), when they are for exactly
    `ds`'s test split (run.json names the same data source, the shape matches, and on an own dataset the files and
    content hashes saved beside them are these test images, row by row); None otherwise, or if damaged."""
    stored = Path(model_path).with_name("test_probs.npy")
    meta = runs.read_json(stored.with_name("run.json"), {}) or {}
    if not stored.is_file() or (meta.get("data") or {}).get("source") != ds.source \
            or not identity.stored_test_keys_match(stored.parent, ds):
        return None
    try:
        probs = np.load(stored)
    except (OSError, ValueError):  # a damaged file: the caller predicts instead
        return None
    return probs if probs.shape == (len(ds.y_test), ds.num_classes) else None
