"""Prediction latency: preprocess + predict one 280x280 RGBA canvas drawing with the bundled MNIST
model, in-process, as the server does for an upload or on ?predict=server: a breakdown, with no target. What a
person waits for on Predict (in Chromium, the model in the browser), the headline, is bench_predict_browser.py.

    python bench/bench_predict.py [--quick]
"""
from __future__ import annotations

import time

import numpy as np

import common


def canvas_digit(seed: int = 0) -> np.ndarray:
    """A '7' in white freehand-width strokes on a transparent 280x280 RGBA canvas, as st_canvas
    returns it (ink painted, the rest alpha 0), a little different each seed."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    img = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    j = lambda x, y: (x + rng.integers(-8, 9), y + rng.integers(-8, 9))  # noqa: E731
    d.line([j(70, 60), j(200, 60), j(150, 160), j(120, 230)], fill=(255, 255, 255, 255), width=20, joint="curve")
    d.line([j(110, 140), j(180, 140)], fill=(255, 255, 255, 255), width=20)
    return np.asarray(img).copy()


def run(quick: bool) -> list[dict]:
    from core.model import compat
    from core.analysis.inference import predict, predict_image, preprocess

    n = 200 if quick else 500
    run_, note = common.bundled_run("mnist"), "bundled model"
    model = compat.load_model(run_.model_path)
    names = list("0123456789")
    images = [canvas_digit(i) for i in range(20)]
    first, out = common.timed(predict_image, model, images[0], names, box=20)
    common.log(f"prediction latency: {n} calls, {note}; first call {first * 1e3:.0f} ms, "
               f"top {out['top'][0]}")
    for img in images[:5]:
        predict_image(model, img, names, box=20)  # warm
    total, prep, infer = [], [], []
    for i in range(n):
        img = images[i % len(images)]
        t0 = time.perf_counter()
        predict_image(model, img, names, box=20)
        total.append((time.perf_counter() - t0) * 1e3)
    shape = tuple(model.input_shape[1:])
    for i in range(n):  # the two halves alone, alternating, to say where the time goes
        t0 = time.perf_counter()
        x = preprocess(images[i % len(images)], shape, box=20)
        t1 = time.perf_counter()
        predict(model, x[None])
        t2 = time.perf_counter()
        prep.append((t1 - t0) * 1e3)
        infer.append((t2 - t1) * 1e3)
    p50, p95 = common.percentile(total, 50), common.percentile(total, 95)
    where = f"in-process breakdown of the server's canvas path ({note}); {n} calls on 20 drawings"
    return [
        common.row("predict", "canvas → prediction in-process, p50", p50, "ms",
                   spread=common.spread(total, "{:.1f}"), notes=where),
        common.row("predict", "canvas → prediction in-process, p95", p95, "ms"),
        common.row("predict", "preprocess alone, p50", common.percentile(prep, 50), "ms",
                   spread=common.spread(prep, "{:.1f}")),
        common.row("predict", "model call alone, p50", common.percentile(infer, 50), "ms",
                   spread=common.spread(infer, "{:.1f}")),
        common.row("predict", "first call after loading", first * 1e3, "ms"),
    ]


if __name__ == "__main__":
    raise SystemExit(common.main(run))
