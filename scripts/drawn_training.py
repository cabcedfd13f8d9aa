"""Extra MNIST training digits in the styles people hand the app, preprocessed exactly as at prediction time.

    from drawn_training import make_training
    x, y = make_training(6000, seed=7, mnist_x=x_train, mnist_y=y_train)

Each sample is a digit shape -- a real MNIST training digit blown up (its own strokes, made thicker or
thinner), or one of scripts/make_drawn_digits.py's sources (handwriting font, brush, synthetic strokes) --
bent by a smooth random (elastic) distortion, then handed over as one of the app's inputs: a canvas
drawing (anywhere, any size), a photo of paper (make_drawn_digits.as_photo) or a tightly cropped
low-resolution scan blown up with blur, either polarity (make_drawn_digits.as_scan). It then goes
through core.analysis.inference.preprocess (ink crop, fit to 20 px, centre of mass), so the model trains on
what it will see. Seeded and deterministic; the seed must differ from the evaluation sets'
(make_drawn_digits.SEED, HELDOUT_SEED) so no evaluation image is trained on.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import make_drawn_digits as drawn  # noqa: E402

MEDIA = {"canvas": 0.4, "photo": 0.25, "scan": 0.35}


def elastic(cov: np.ndarray, rng, strength: float) -> np.ndarray:
    """Bend the ink's box by a smooth random displacement field (strength: share of the box's size)."""
    ys, xs = np.nonzero(cov > 32)
    if not len(ys):
        return cov
    ext = max(np.ptp(ys), np.ptp(xs)) + 1
    m = int(ext * 0.15) + 2
    top, left = max(0, ys.min() - m), max(0, xs.min() - m)
    bottom, right = min(cov.shape[0], ys.max() + m + 1), min(cov.shape[1], xs.max() + m + 1)
    box = cov[top:bottom, left:right].astype(np.float32)
    h, w = box.shape
    # a 4x4 grid of random offsets, smoothly interpolated: bends strokes, keeps the digit's topology
    field = [np.asarray(Image.fromarray(rng.normal(0, strength * ext, (4, 4)).astype(np.float32))
                        .resize((w, h), Image.BICUBIC)) for _ in range(2)]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sy, sx = np.clip(yy + field[0], 0, h - 1), np.clip(xx + field[1], 0, w - 1)
    y0, x0 = np.floor(sy).astype(int), np.floor(sx).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = sy - y0, sx - x0
    out = (box[y0, x0] * (1 - fy) * (1 - fx) + box[y1, x0] * fy * (1 - fx)
           + box[y0, x1] * (1 - fy) * fx + box[y1, x1] * fy * fx)
    res = cov.copy()
    res[top:bottom, left:right] = np.clip(out, 0, 255).astype(cov.dtype)
    return res


def mnist_drawing(digit: np.ndarray, rng, side: int = drawn.SIDE) -> Image.Image:
    """An MNIST digit as a drawing: its ink box blown up to 50-260 px, stroke changed, rotated, placed."""
    ys, xs = np.nonzero(digit > 30)
    crop = digit[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    height = math.exp(rng.uniform(math.log(50), math.log(260)))
    k = height / crop.shape[0]
    g = Image.fromarray(crop).resize((max(1, round(crop.shape[1] * k)), max(1, round(height))), Image.BICUBIC)
    width = max(1, int(height / 28 * rng.uniform(0, 2)))  # grey dilation/erosion of up to ~2 MNIST px
    if rng.random() < 0.5:
        g = g.filter(ImageFilter.MaxFilter(2 * (width // 2) + 1))
    elif rng.random() < 0.5:
        g = g.filter(ImageFilter.MinFilter(2 * (width // 4) + 1))
    g = g.point(lambda v: 255 if v > 110 else v * 255 // 110)  # MNIST's grey rims become a pen's solid ink
    g = g.rotate(rng.uniform(-12, 12), resample=Image.BILINEAR, expand=True)
    canvas = Image.new("L", (side, side), 0)
    cx, cy = drawn._place(g.height, g.width, side, rng, 2)
    canvas.paste(g, (int(round(cx - g.width / 2)), int(round(cy - g.height / 2))))
    return canvas


def as_input(cov: Image.Image, medium: str, rng):
    """A coverage drawing handed over as the app receives it in that medium."""
    if medium == "scan":
        return drawn.as_scan(cov, rng)[0]
    if medium == "photo":
        side = int(rng.integers(160, 301))
        return drawn.as_photo(cov.resize((side, side), Image.BILINEAR), rng)
    rgba = np.zeros((cov.height, cov.width, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = np.asarray(cov)
    return rgba


def make_training(n: int, seed: int, mnist_x: np.ndarray | None = None, mnist_y: np.ndarray | None = None,
                  mnist_share: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """n preprocessed 28x28 uint8 digits and their labels (balanced over the digits)."""
    from core.analysis.inference import BlankImage, preprocess

    if seed in (drawn.SEED, drawn.HELDOUT_SEED):
        raise ValueError("use a seed other than the evaluation sets' (make_drawn_digits.SEED, HELDOUT_SEED)")
    fonts = drawn._font_files()
    if not fonts:
        raise SystemExit("no fonts found: apt-get install the packages named in make_drawn_digits.py")
    rng = np.random.default_rng(seed)
    by_label = {k: np.flatnonzero(mnist_y == k) for k in range(10)} if mnist_x is not None else {}
    xs, ys = [], []
    i = 0
    while len(ys) < n:
        label = i % 10
        i += 1
        if by_label and rng.random() < mnist_share:
            cov = mnist_drawing(mnist_x[rng.choice(by_label[label])], rng)
        else:
            source = str(rng.choice(["font", "brush", "synthetic"], p=[0.3, 0.3, 0.4]))
            height = math.exp(rng.uniform(math.log(50), math.log(260)))
            brush = rng.uniform(6, min(36, max(9, 0.28 * height)))
            cov, _ = drawn.render(label, source, rng, fonts, drawn.SIDE, height, brush, rng.uniform(-15, 15))
        cov = Image.fromarray(elastic(np.asarray(cov), rng, rng.uniform(0.0, 0.06)))
        medium = str(rng.choice(list(MEDIA), p=list(MEDIA.values())))
        try:
            x = preprocess(as_input(cov, medium, rng), (28, 28))
        except BlankImage:  # e.g. a scan whose ink fills the frame: not something to learn from
            continue
        if x.mean() > 0.4 * 255:  # polarity misread (ink taken for paper): a blob, not a digit
            continue
        xs.append(x)
        ys.append(label)
    return np.stack(xs), np.array(ys, np.uint8)
