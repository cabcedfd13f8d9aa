"""Saliency: Grad-CAM and gradient × input point at the evidence a trained model uses."""
import numpy as np
import pytest

from core.analysis import explain
from core.model.architectures import build_model
from core.train.trainer import TrainConfig, compile_model


def _squares(n: int, seed: int = 0):
    """28×28 images with one bright square in the left (class 0) or right (class 1) half."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 30, (n, 28, 28)).astype(np.uint8)
    y = rng.integers(0, 2, n)
    for i in range(n):
        r, c = rng.integers(4, 18), rng.integers(2, 6) + (16 if y[i] else 0)
        x[i, r:r + 6, c:c + 6] = 255
    return x, y


@pytest.fixture(scope="session", params=["cnn", "dense"])
def trained(request):
    import keras

    keras.utils.set_random_seed(0)
    x, y = _squares(600)
    model = build_model(request.param, (28, 28), 2)
    compile_model(model, TrainConfig(arch=request.param, learning_rate=3e-3).resolved(), 20)
    model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    return request.param, model


def test_method_follows_architecture(trained):
    arch, model = trained
    assert explain.method(model) == ("Grad-CAM" if arch == "cnn" else "gradient × input")


@pytest.mark.quick
def test_heat_points_at_the_square(trained):
    _, model = trained
    x, y = _squares(20, seed=1)
    hits = 0
    for img, label in zip(x, y):
        heat = explain.saliency(model, img, int(label))
        assert heat.shape == (28, 28) and heat.dtype == np.float32
        assert 0 <= heat.min() and heat.max() <= 1.0 + 1e-6
        left, right = heat[:, :14].sum(), heat[:, 14:].sum()
        hits += (right > left) == bool(label)
    assert hits >= 16  # the evidence lies in the half holding the square


def test_overlay_is_rgb_and_keeps_the_image_where_heat_is_zero():
    img = np.full((28, 28), 200, np.uint8)
    heat = np.zeros((28, 28), np.float32)
    heat[:5, :5] = 1.0
    out = explain.overlay(img, heat)
    assert out.shape == (28, 28, 3) and out.dtype == np.uint8
    assert (out[20:, 20:] == 200).all()
    assert not (out[:5, :5] == 200).all()
