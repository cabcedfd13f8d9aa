"""Tests for core.analysis.inference: the MNIST recipe, input handling, blank detection and prediction."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.model import compat
import core.data.images
from core.analysis import inference as inf
from core.analysis.inference import BlankImage, ImageError, mnist_style, predict, predict_image, preprocess, softmax, top_k

ROOT = Path(__file__).resolve().parents[2]


def digit(kind: str = "0", n: int = 280, at=(20, 20), size: int = 70, width: int = 12,
          bg: int = 0, ink: int = 255) -> Image.Image:
    """A hand-drawn-looking digit at `at` on an n×n grayscale canvas."""
    img = Image.new("L", (n, n), bg)
    d = ImageDraw.Draw(img)
    x, y = at
    if kind == "0":
        d.ellipse([x, y, x + size * 0.7, y + size], outline=ink, width=width)
    elif kind == "1":
        d.line([(x + size * 0.35, y), (x + size * 0.35, y + size)], fill=ink, width=width)
    else:  # "7"
        d.line([(x, y), (x + size * 0.7, y), (x + size * 0.25, y + size)], fill=ink, width=width, joint="curve")
    return img


def centre_of_mass(x: np.ndarray) -> tuple[float, float]:
    m = x.astype(np.float64)
    ys, xs = np.indices(m.shape)
    return (m * ys).sum() / m.sum(), (m * xs).sum() / m.sum()


def jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=kw.pop("quality", 90), **kw)
    return buf.getvalue()


def rgba_canvas(gray: Image.Image, transparent: bool, color=(255, 255, 255)) -> np.ndarray:
    """What streamlit-drawable-canvas returns: strokes in `color`, background transparent or opaque black."""
    g = np.asarray(gray)
    a = np.zeros((*g.shape, 4), np.uint8)
    if transparent:
        a[..., :3] = color
        a[..., 3] = g
    else:
        a[..., :3] = (g[..., None].astype(np.uint16) * np.array(color) // 255).astype(np.uint8)
        a[..., 3] = 255
    return a


@pytest.fixture(scope="module")
def ref7():
    return preprocess(digit("7"), (28, 28))


@pytest.mark.parametrize("kind", ["0", "1", "7"])
@pytest.mark.parametrize("corner", [(15, 15), (190, 195)])
def test_off_centre_digit_is_cropped_scaled_and_centred(kind, corner):
    x = preprocess(digit(kind, at=corner), (28, 28))
    assert x.shape == (28, 28) and x.dtype == np.uint8 and x.max() == 255
    cy, cx = centre_of_mass(x)
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1, (cy, cx)
    ink = np.argwhere(x > 0)
    extent = ink.max(0) - ink.min(0) + 1
    assert max(extent) in (20, 21)  # longer side fitted to the 20 px box (antialiased edge may add 1)
    if kind in "01":  # symmetric glyphs need no clamping: all ink inside the central 20×20 box
        assert ink.min() >= 4 and ink.max() <= 23


def test_channel_axis_and_other_gray_sizes():
    assert preprocess(digit("0"), (28, 28, 1)).shape == (28, 28, 1)
    big = preprocess(digit("0"), (64, 64))
    assert big.shape == (64, 64) and abs(centre_of_mass(big)[0] - 32) <= 1
    assert preprocess(digit("0"), (20, 30)).shape == (20, 30)
    assert preprocess(digit("0"), (None, 28, 28)).shape == (28, 28)  # model.input_shape with batch axis
    with pytest.raises(ValueError):
        preprocess(digit("0"), (28, 28, 2))


@pytest.mark.quick
def test_dark_ink_on_paper_is_inverted(ref7):
    paper = digit("7", bg=255, ink=0)
    x = preprocess(paper, (28, 28))
    assert np.abs(x.astype(int) - ref7).max() <= 2
    # a phone-ish photo: grey paper, dark grey pen, JPEG artefacts, as RGB bytes
    photo = digit("7", bg=205, ink=60).convert("RGB")
    y = preprocess(jpeg(photo, quality=75), (28, 28))
    assert y[:3].max() == 0 and y[:, :3].max() == 0  # paper became 0
    assert y.max() == 255
    assert np.abs(y.astype(int) - ref7).mean() < 8, np.abs(y.astype(int) - ref7).mean()
    g = inf.to_gray_ink(photo)
    assert g.ndim == 2 and np.median(g) == 0 and g.max() > 100


def test_rgba_canvases(ref7):
    gray = digit("7")
    for arr in (rgba_canvas(gray, transparent=True),                      # white ink, transparent background
                rgba_canvas(gray, transparent=True, color=(0, 0, 0)),     # black ink, transparent background
                rgba_canvas(gray, transparent=True, color=(30, 90, 220)),
                rgba_canvas(gray, transparent=False)):                    # white ink on opaque black
        x = preprocess(arr, (28, 28))
        assert np.abs(x.astype(int) - ref7).max() <= 2
        assert np.abs(preprocess(Image.fromarray(arr), (28, 28)).astype(int) - x).max() == 0


@pytest.mark.parametrize("mode", ["L", "P", "LA", "CMYK", "I;16", "1", "RGB", "F", "I"])
def test_image_modes(mode, ref7):
    gray = digit("7")
    if mode == "I;16":
        img = Image.fromarray(np.asarray(gray).astype(np.uint16) * 257)
    elif mode == "I":
        img = Image.fromarray(np.asarray(gray).astype(np.int32) * 257)
    elif mode == "F":
        img = Image.fromarray(np.asarray(gray).astype(np.float32) / 255)
    else:
        img = gray.convert(mode)
    assert img.mode == mode
    x = preprocess(img, (28, 28))
    tol = 60 if mode == "1" else 2  # "1" dithers the antialiased edge
    assert np.abs(x.astype(int) - ref7).max() <= tol
    cy, cx = centre_of_mass(x)
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64, np.uint16, np.int64, bool])
def test_numpy_dtypes(dtype, ref7):
    g = np.asarray(digit("7"))
    arr = {np.float32: g / 255.0, np.float64: g / 255.0, np.uint16: g.astype(np.uint16) * 257,
           bool: g > 127}.get(dtype, g)
    x = preprocess(np.asarray(arr).astype(dtype), (28, 28))
    assert x.shape == (28, 28) and x.dtype == np.uint8
    assert np.abs(x.astype(int) - ref7).mean() < (12 if dtype is bool else 1)


def test_exif_rotated_photo_is_upright():
    # a "1" photographed with the phone on its side: stored as a horizontal stroke, orientation 6
    stored = digit("1", bg=255, ink=0).rotate(90).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    x = preprocess(jpeg(stored, exif=exif.tobytes()), (28, 28))
    ink = np.argwhere(x > 64)
    h, w = ink.max(0) - ink.min(0) + 1
    assert h >= 19 and w <= 8, (h, w)


def test_animated_gif_frame_0():
    frames = [digit("0").convert("P"), Image.new("P", (280, 280), 0)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    x = preprocess(buf.getvalue(), (28, 28))
    assert x.max() == 255


@pytest.mark.parametrize("blank", [
    np.zeros((280, 280, 4), np.uint8),                              # untouched transparent canvas
    np.dstack([np.zeros((280, 280, 3), np.uint8), np.full((280, 280), 255, np.uint8)]),  # opaque black
    np.full((280, 280), 255, np.uint8),                             # white paper
    Image.new("RGB", (640, 480), (120, 130, 140)),                  # flat colour photo
], ids=["transparent", "black", "white", "flat"])
def test_blank_inputs(blank):
    with pytest.raises(BlankImage) as e:
        preprocess(blank, (28, 28))
    assert "draw" in str(e.value).lower()


def test_noisy_uniform_photo_is_blank():
    rng = np.random.default_rng(0)
    noisy = np.clip(rng.normal(180, 3, (480, 640, 3)), 0, 255).astype(np.uint8)
    data = jpeg(Image.fromarray(noisy), quality=70)
    with pytest.raises(BlankImage):
        preprocess(data, (28, 28))
    with pytest.raises(BlankImage):
        preprocess(data, (32, 32, 3))


def test_stray_marks_are_blank():
    one = np.zeros((280, 280), np.uint8)
    one[100, 200] = 255
    with pytest.raises(BlankImage):
        preprocess(one, (28, 28))
    dot = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(dot).ellipse([100, 100, 120, 120], fill=255)  # a single click of a 20 px brush
    with pytest.raises(BlankImage):
        preprocess(dot, (28, 28))
    with pytest.raises(BlankImage):
        mnist_style(np.zeros((28, 28)))


def test_far_speck_does_not_widen_the_crop(ref7):
    g = np.asarray(digit("7")).copy()
    g[270, 5] = 255  # one hot pixel far from the digit
    assert np.abs(preprocess(g, (28, 28)).astype(int) - ref7).max() <= 2


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                                  jpeg(digit("0").convert("RGB"))[:300]])
def test_bad_uploads_raise_image_error(data):
    assert inf.ImageError is core.data.images.ImageError
    with pytest.raises(ImageError) as e:
        preprocess(data, (28, 28))
    assert "\n" not in str(e.value)
    with pytest.raises(ImageError):
        preprocess(12345, (28, 28))  # not an image-like object at all


def test_big_photo_lean():
    page = digit("7", n=400, at=(120, 100), size=180, width=25, bg=230, ink=40).convert("RGB")
    data = jpeg(page.resize((6000, 4000), Image.BILINEAR), quality=85)
    tracemalloc.start()
    x = preprocess(data, (28, 28))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert x.shape == (28, 28) and x.max() == 255
    assert peak < 150e6  # the full-size float image alone would be 96 MB per channel
    assert preprocess(data, (32, 32, 3)).shape == (32, 32, 3)


def test_rgb_model_input():
    photo = Image.linear_gradient("L").resize((300, 200)).convert("RGB")
    x = preprocess(photo, (32, 32, 3))
    assert x.shape == (32, 32, 3) and x.dtype == np.uint8
    assert np.array_equal(x, core.data.images.fit_rgb(photo, (32, 32)))  # identical to the folder loader
    rgba = np.dstack([np.asarray(photo), np.full((200, 300), 255, np.uint8)])
    rgba[:100, :, 3] = 0  # transparent top half is flattened on white
    y = preprocess(rgba, (24, 40, 3))
    assert y.shape == (24, 40, 3) and y[:8].min() >= 250
    assert preprocess(digit("0"), (32, 32, 3)).shape == (32, 32, 3)  # a gray drawing for an RGB model


def test_softmax():
    p = softmax(np.array([[1000.0, 1001.0, 1002.0], [-1e4, 0.0, 1e4], [0.0, 0.0, 0.0]]))
    assert p.dtype == np.float32 and np.all(np.isfinite(p))
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-6)
    e = np.exp([0.0, 1.0, 2.0])
    assert np.allclose(p[0], e / e.sum(), atol=1e-6)
    assert np.allclose(p[1], [0, 0, 1]) and np.allclose(p[2], 1 / 3)
    assert np.allclose(softmax(np.array([2.0, 2.0])), [0.5, 0.5])


def test_top_k():
    probs = np.array([0.1, 0.6, 0.05, 0.25], np.float32)
    assert top_k(probs, ["a", "b", "c", "d"]) == [("b", pytest.approx(0.6)), ("d", pytest.approx(0.25)),
                                                 ("a", pytest.approx(0.1))]
    assert [n for n, _ in top_k(probs, list("abcd"), k=10)] == ["b", "d", "a", "c"]
    assert all(isinstance(p, float) for _, p in top_k(probs, list("abcd")))
    assert top_k(probs, ["a", "b"], k=2)[1][0] == "3"  # a missing name falls back to the index


@pytest.fixture(scope="module")
def model():
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((28, 28)), keras.layers.Rescaling(1 / 255),
                             keras.layers.Flatten(), keras.layers.Dense(10)])


def test_predict_matches_direct_call(model):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (600, 28, 28), dtype=np.uint8)
    expect = softmax(np.asarray(model(x.astype(np.float32), training=False)))
    many = predict(model, x, batch_size=256)  # > batch_size: goes through model.predict
    one = predict(model, x[:1])
    assert many.shape == (600, 10) and many.dtype == np.float32 and one.shape == (1, 10)
    assert np.allclose(many, expect, atol=1e-5) and np.allclose(one, expect[:1], atol=1e-5)
    assert np.allclose(many.sum(axis=1), 1, atol=1e-5)
    assert predict(model, x[:0]).shape == (0, 10)
    t0 = time.perf_counter()
    for _ in range(10):
        predict(model, x[:1])
    print(f"predict one image: {(time.perf_counter() - t0) * 100:.1f} ms")


def test_predict_image(model):
    names = [str(i) for i in range(10)]
    out = predict_image(model, rgba_canvas(digit("0"), transparent=True), names)
    assert out["input"].shape == (28, 28) and out["input"].dtype == np.uint8
    assert out["probs"].shape == (10,) and abs(float(out["probs"].sum()) - 1) < 1e-5
    assert len(out["top"]) == 3 and out["top"][0][1] == pytest.approx(float(out["probs"].max()))
    with pytest.raises(BlankImage):
        predict_image(model, np.zeros((280, 280, 4), np.uint8), names)


def test_import_does_not_pull_tensorflow_or_streamlit():
    code = ("import sys, core.analysis.inference, core.data.images; "
            "bad = [m for m in ('tensorflow', 'keras', 'streamlit') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_frame_filling_items_keep_their_polarity():
    """Fashion-MNIST items fill most of the frame: the background is read from the border, not the median."""
    from core.store import runs
    from core.data.datasets import DATASETS, load_dataset

    ds = load_dataset("fashion_mnist")
    model = compat.load_model(runs.resolve("fashion_mnist").model_path)
    x = np.stack([preprocess(img, (28, 28), box=DATASETS["fashion_mnist"].ink_box) for img in ds.x_test[:300]])
    inverted = [i for i in range(300) if np.corrcoef(x[i].ravel(), ds.x_test[i].ravel())[0, 1] < 0]
    assert not inverted
    assert (predict(model, x).argmax(1) == ds.y_test[:300]).mean() > 0.85


def stretched(kind: str) -> np.ndarray:
    """The digit's ink cropped and stretched to fill 64×64, from 16×16 (a low-resolution scan blown up)."""
    cov = np.asarray(digit(kind, width=16))
    ys, xs = np.nonzero(cov > 64)
    crop = Image.fromarray(cov[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
    return np.asarray(crop.resize((16, 16), Image.BOX).resize((64, 64), Image.BICUBIC))


def tight_scan(kind: str, dark: bool, contrast: float = 200.0, tilt: float = 0.0, seed: int = 0) -> np.ndarray:
    """stretched() as a scan: ink runs along the frame's edges; paper lit unevenly (tilt: grey levels
    corner to corner), a little noise; dark ink on light paper or light ink on dark."""
    c = stretched(kind).astype(np.float32) / 255
    yy, xx = np.mgrid[0:64, 0:64] / 63
    paper = (215.0 if dark else 40.0) + tilt * ((xx + yy) / 2 - 0.5)
    ink = paper - contrast if dark else paper + contrast
    noise = np.random.default_rng(seed).normal(0, 3, c.shape)
    return np.clip(paper * (1 - c) + ink * c + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("kind", ["0", "7"])
@pytest.mark.parametrize("dark", [True, False], ids=["dark-on-light", "light-on-dark"])
def test_ink_touching_the_frame_is_read(kind, dark):
    """A tight scan's ink runs off the frame: the border band is partly ink, yet the background and the
    polarity come out right (neither blank nor inverted) in both polarities, also on unevenly lit paper."""
    ref = preprocess(np.pad(stretched(kind), 16), (28, 28))  # the same ink with a margin: no ink on the border
    for contrast, tilt in ((200.0, 0.0), (170.0, 50.0), (70.0, 40.0)):  # bold ink; uneven light; faint ink
        x = preprocess(tight_scan(kind, dark, contrast, tilt), (28, 28))
        corr = np.corrcoef(x.ravel(), ref.ravel())[0, 1]
        assert corr > 0.9, (contrast, tilt, corr)
        assert x[:, :3].max() == 0 and x[:, -3:].max() == 0  # the paper around the centred digit is 0


def test_uneven_light_stays_paper(ref7):
    """A photo lit from one side (paper 150 to 245 grey) with a small digit: the light's gradient is paper."""
    ink = np.asarray(digit("7"), np.float32) / 255
    paper = np.linspace(150, 245, 280, dtype=np.float32)[None, :].repeat(280, 0)
    photo = Image.fromarray((paper * (1 - ink) + 40 * ink).astype(np.uint8)).convert("RGB")
    x = preprocess(jpeg(photo, quality=80), (28, 28))
    assert np.abs(x.astype(int) - ref7).mean() < 8
    g = inf.to_gray_ink(photo)
    assert (g[:, 150:] == 0).all() and (g > 100).sum() > 0.8 * (np.asarray(digit("7")) > 128).sum()
