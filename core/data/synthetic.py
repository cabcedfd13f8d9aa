"""Small generated image datasets written as real PNG/JPEG files (for tests, benchmarks and demos).

    python -m core.data.synthetic OUT_DIR --kind shapes|colours|sketches [--classes 3] [--per-class 60]
"""
from __future__ import annotations

import argparse
import colorsys
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SHAPES = ("circle", "square", "triangle", "star", "cross")
COLOURS = {"red": 0, "green": 120, "blue": 225, "yellow": 55, "purple": 285}  # hue in degrees
SKETCHES = ("circle", "triangle", "zigzag", "cross", "spiral")
KINDS = {"shapes": SHAPES, "colours": tuple(COLOURS), "sketches": SKETCHES}


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Corner points of a shape of radius r around (cx, cy), turned by angle (radians)."""
    if shape == "square":
        pts = [(r * math.cos(a), r * math.sin(a)) for a in np.arange(4) * math.pi / 2 + math.pi / 4]
    elif shape == "triangle":
        pts = [(r * math.cos(a), r * math.sin(a)) for a in np.arange(3) * 2 * math.pi / 3 - math.pi / 2]
    elif shape == "star":
        pts = [((r if k % 2 == 0 else r * 0.45) * math.cos(a), (r if k % 2 == 0 else r * 0.45) * math.sin(a))
               for k, a in enumerate(np.arange(10) * math.pi / 5 - math.pi / 2)]
    elif shape == "cross":
        w = r * 0.35
        pts = [(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w), (-r, w), (-r, -w),
               (-w, -w)]
    else:  # circle
        pts = [(r * math.cos(a), r * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 48, endpoint=False)]
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]


def _rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb((h / 360) % 1, s, v))


def _placed(rng, w: int, h: int, lo: float = 0.18, hi: float = 0.36) -> tuple[float, float, float]:
    r = rng.uniform(lo, hi) * min(w, h)
    return rng.uniform(r, w - r), rng.uniform(r, h - r), r


def shape_image(rng, shape: str, size=(120, 90)) -> Image.Image:
    """A filled shape in a random colour on a random, different background colour."""
    w, h = size
    bg = _rgb(rng.uniform(0, 360), rng.uniform(0, 0.8), rng.uniform(0.3, 1))
    while True:
        fg = _rgb(rng.uniform(0, 360), rng.uniform(0.3, 1), rng.uniform(0.2, 1))
        if np.abs(np.subtract(fg, bg)).sum() > 150:
            break
    img = Image.new("RGB", size, bg)
    cx, cy, r = _placed(rng, w, h)
    ImageDraw.Draw(img).polygon(_polygon(shape, cx, cy, r, rng.uniform(0, 2 * math.pi)), fill=fg)
    return _noisy(rng, img)


def colour_image(rng, colour: str, size=(120, 90)) -> Image.Image:
    """Any shape in one hue family (jittered) on a greyish background."""
    w, h = size
    img = Image.new("RGB", size, _rgb(rng.uniform(0, 360), rng.uniform(0, 0.15), rng.uniform(0.15, 0.95)))
    fg = _rgb(COLOURS[colour] + rng.uniform(-12, 12), rng.uniform(0.65, 1), rng.uniform(0.7, 1))
    cx, cy, r = _placed(rng, w, h)
    ImageDraw.Draw(img).polygon(_polygon(SHAPES[rng.integers(len(SHAPES))], cx, cy, r, rng.uniform(0, 6.3)), fill=fg)
    return _noisy(rng, img)


def _noisy(rng, img: Image.Image) -> Image.Image:
    """Camera-ish: a little blur and sensor noise."""
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.2)))
    a = np.asarray(img, np.float32) + rng.normal(0, 6, (img.height, img.width, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def sketch_image(rng, shape: str, side: int = 140) -> Image.Image:
    """A hand-drawn-looking outline: white strokes with wobble on black (the drawing canvas's colours)."""
    img = Image.new("L", (side, side), 0)
    cx, cy, r = _placed(rng, side, side, 0.22, 0.4)
    angle = rng.uniform(-0.3, 0.3)
    if shape == "zigzag":
        xs = np.linspace(cx - r, cx + r, 5)
        pts = [(x, cy + (r * 0.6 if k % 2 else -r * 0.6)) for k, x in enumerate(xs)]
    elif shape == "spiral":
        t = np.linspace(0, 4 * math.pi, 60)
        pts = [(cx + r * tt / t[-1] * math.cos(tt + angle), cy + r * tt / t[-1] * math.sin(tt + angle)) for tt in t]
    elif shape == "cross":
        strokes = [[(cx - r, cy - r), (cx + r, cy + r)], [(cx + r, cy - r), (cx - r, cy + r)]]
        pts = None
    else:
        pts = _polygon(shape, cx, cy, r, angle)
        pts = pts + pts[:1]
    strokes = strokes if pts is None else [pts]
    draw, width = ImageDraw.Draw(img), int(rng.integers(5, 12))
    for line in strokes:
        dense = [(x + rng.normal(0, r * 0.03), y + rng.normal(0, r * 0.03)) for x, y in _densify(line)]
        draw.line(dense, fill=255, width=width, joint="curve")
    return img


def _densify(pts, step: int = 6):
    out = []
    for (xa, ya), (xb, yb) in zip(pts, pts[1:]):
        out += [(xa + (xb - xa) * k / step, ya + (yb - ya) * k / step) for k in range(step)]
    return out + [pts[-1]]


def make(root: str | Path, kind: str = "shapes", classes: int = 3, per_class: int = 60, seed: int = 0,
         size=(120, 90)) -> Path:
    """Write root/<class>/<class>_<i>.jpg|png; returns root."""
    names = KINDS[kind][:classes]
    rng = np.random.default_rng(seed)
    root = Path(root)
    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            if kind == "sketches":
                sketch_image(rng, name).save(root / name / f"{name}_{i}.png")
            elif kind == "colours":
                colour_image(rng, name, size).save(root / name / f"{name}_{i}.png")
            else:
                shape_image(rng, name, size).save(root / name / f"{name}_{i}.jpg", quality=90)
    return root


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.data.synthetic", description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--kind", choices=list(KINDS), default="shapes")
    p.add_argument("--classes", type=int, default=3)
    p.add_argument("--per-class", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    print(make(a.out, a.kind, a.classes, a.per_class, a.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
