"""scripts/drawn_training.py: extra MNIST training digits in the app's input styles, and the scan style
of scripts/make_drawn_digits.py they share with the evaluation set."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.analysis.inference import preprocess

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import drawn_training  # noqa: E402
import make_drawn_digits as drawn  # noqa: E402

needs_fonts = pytest.mark.skipif(not drawn._font_files(), reason="handwriting fonts not installed "
                                 "(apt-get install the packages named in scripts/make_drawn_digits.py)")


def _stroke_seven() -> Image.Image:
    return drawn.draw_polylines([np.array([[60.0, 50], [220, 50], [130, 240]])], drawn.SIDE, 22)


@pytest.mark.parametrize("dark", [True, False])
def test_scan_is_a_tight_64px_image_of_either_polarity(dark):
    blob, res, stretch, got_dark = drawn.as_scan(_stroke_seven(), np.random.default_rng(0), res=14, dark=dark)
    img = np.asarray(Image.open(io.BytesIO(blob)))
    assert img.shape == (drawn.SCAN_SIDE, drawn.SCAN_SIDE) and res == 14 and got_dark is dark
    # tight: ink reaches near every edge of the frame
    ink = img < 128 if dark else img > 128
    ys, xs = np.nonzero(ink)
    assert ys.min() <= 6 and ys.max() >= 57
    # the paper is the commoner shade, and preprocessing reads the ink the right way round
    assert bool(np.median(img) > 127) == dark
    x = preprocess(blob, (28, 28))
    assert x[0].max() == 0 and x.max() == 255 and (x > 0).mean() < 0.4


def test_elastic_bends_the_ink_but_keeps_it():
    cov = np.asarray(_stroke_seven())
    bent = drawn_training.elastic(cov, np.random.default_rng(1), 0.06)
    assert bent.shape == cov.shape and bent.dtype == cov.dtype
    assert (bent != cov).mean() > 0.01
    assert 0.8 < bent.astype(float).sum() / cov.astype(float).sum() < 1.25
    assert np.array_equal(drawn_training.elastic(cov, np.random.default_rng(1), 0.0), cov)


@pytest.mark.quick
@needs_fonts
def test_training_digits_are_preprocessed_balanced_and_reproducible(mnist):
    x, y = drawn_training.make_training(30, seed=3, mnist_x=mnist.x_train[:500], mnist_y=mnist.y_train[:500])
    assert x.shape == (30, 28, 28) and x.dtype == np.uint8 and len(y) == 30
    assert set(y.tolist()) == set(range(10))
    # MNIST-style: bright ink on black at full contrast, its longer side fitted to 20 px
    assert (x.max(axis=(1, 2)) == 255).all()
    for img in x:
        ys, xs = np.nonzero(img)
        assert 19 <= max(np.ptp(ys), np.ptp(xs)) + 1 <= 21
    x2, y2 = drawn_training.make_training(30, seed=3, mnist_x=mnist.x_train[:500], mnist_y=mnist.y_train[:500])
    assert np.array_equal(x, x2) and np.array_equal(y, y2)


def test_training_seed_must_not_be_the_evaluation_seed():
    with pytest.raises(ValueError, match="seed"):
        drawn_training.make_training(1, seed=drawn.SEED)
