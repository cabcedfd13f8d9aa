"""Architectures and the custom layer, on real Keras models (built, called, saved and loaded)."""
import keras
import numpy as np
import pytest

from core.model import compat
from core.model.layers import RandomStrokeWidth
from core.model.architectures import ARCHITECTURES, augmentation, build_model, summary_rows

GRAY, RGB = (28, 28), (32, 32, 3)


def pixels(shape, n=4, seed=0) -> np.ndarray:
    """Raw 0..255 pixel values, as datasets and drawings give them."""
    return np.random.default_rng(seed).integers(0, 256, (n, *shape)).astype(np.float32)


def np_(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


def test_registry_entries_are_complete():
    assert list(ARCHITECTURES) == ["dense", "dense_wide", "cnn", "cnn_augmented", "cnn_strong", "auto",
                                   "efficientnet_lite0"]
    for name, a in ARCHITECTURES.items():
        assert a.name == name and a.title and a.description and callable(a.builder)
        assert a.defaults["epochs"] >= 1 and a.defaults["batch_size"] >= 1 and a.defaults["learning_rate"] > 0


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("shape,n_classes,profile", [(GRAY, 10, "digits"), (RGB, 5, "photos")],
                         ids=["gray28", "rgb32"])
def test_every_architecture_builds_and_outputs_logits(arch, shape, n_classes, profile):
    model = build_model(arch, shape, n_classes, augment_profile=profile, seed=0)
    assert model.name == arch
    assert tuple(model.input_shape) == (None, *shape)
    x = pixels(shape, n=6)
    out = np_(model(x, training=False))
    assert out.shape == (6, n_classes)
    assert np.isfinite(out).all()
    # logits, not probabilities: a softmax layer would give non-negative rows summing to 1
    assert not np.allclose(out.sum(axis=1), 1.0, atol=1e-3)
    assert (out < 0).any()
    # raw 0..255 in: the model rescales itself, so its "rescale" layer sees x / 255 (the pretrained backbone's
    # sees (x - 127) / 128, ImageNet's scaling, after the image is made RGB and resized: tests/model/test_pretrained.py)
    if arch != "efficientnet_lite0":
        rescaled = np_(keras.Model(model.input, model.get_layer("rescale").output)(x))
        np.testing.assert_allclose(rescaled, x / 255.0, rtol=1e-6)
    # the summary table covers every layer and every parameter
    rows = summary_rows(model)
    assert [r["layer"] for r in rows] == [layer.name for layer in model.layers]
    assert sum(r["params"] for r in rows) == model.count_params()
    assert rows[-1]["output shape"] == str((None, n_classes))


@pytest.mark.quick
def test_dense_sizes_match_the_tutorials():
    # Flatten 784 -> Dense 128 -> Dense 10 and Flatten 784 -> Dense 1000 -> Dense 10
    assert build_model("dense", GRAY, 10).count_params() == 784 * 128 + 128 + 128 * 10 + 10
    assert build_model("dense_wide", GRAY, 10).count_params() == 784 * 1000 + 1000 + 1000 * 10 + 10


def test_cnn_strong_pools_big_photos_down_first():
    model = build_model("cnn_strong", (180, 180, 3), 5)
    first_conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert first_conv.input.shape[1] <= 64
    assert np_(model(pixels((180, 180, 3), n=2), training=False)).shape == (2, 5)


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown architecture 'resnet'.*dense"):
        build_model("resnet", GRAY, 10)


def test_augmentation_only_where_asked():
    def has_aug(m):
        return any(layer.name == "augmentation" for layer in m.layers)

    assert not has_aug(build_model("cnn", GRAY, 10))
    assert has_aug(build_model("cnn", GRAY, 10, augment=True, augment_profile="digits"))
    assert has_aug(build_model("cnn_augmented", GRAY, 10, augment_profile="digits"))
    assert has_aug(build_model("cnn_strong", GRAY, 10, augment=True, augment_profile="digits"))
    assert not has_aug(build_model("cnn_strong", GRAY, 10))
    dropouts = [layer.rate for layer in build_model("cnn_augmented", GRAY, 10).layers
                if isinstance(layer, keras.layers.Dropout)]
    assert dropouts == [0.2]


@pytest.mark.parametrize("profile,flips", [("digits", False), ("clothing", True), ("photos", True)])
def test_augmentation_profiles(profile, flips):
    types = [type(layer) for layer in augmentation(profile, seed=0).layers]
    assert (keras.layers.RandomFlip in types) == flips  # a mirrored 3 or 7 is not a digit
    assert (RandomStrokeWidth in types) == (profile == "digits")


@pytest.mark.parametrize("profile,shape", [("digits", GRAY), ("clothing", GRAY), ("photos", RGB)])
def test_cnn_augmented_is_random_in_training_only(profile, shape):
    model = build_model("cnn_augmented", shape, 10, augment_profile=profile, seed=1)
    x = pixels(shape, n=16, seed=2)
    a, b = np_(model(x, training=False)), np_(model(x, training=False))
    np.testing.assert_array_equal(a, b)
    # (Keras's own Random* layers treat a *missing* flag as training, so callers always pass training=False,
    # as core.analysis.inference.predict does, or use model.predict.)
    np.testing.assert_array_equal(a, np_(model.predict(x, verbose=0)))
    # in training the augmentation (and dropout) change the outputs from call to call
    t1, t2 = np_(model(x, training=True)), np_(model(x, training=True))
    assert not np.allclose(t1, t2) and not np.allclose(t1, a)


def test_augmentation_layers_draw_independent_random_numbers():
    """Layers sharing one seed draw identical numbers: every rotation would come with the same-signed zoom."""
    aug = augmentation("digits", seed=0)
    rotation = next(la for la in aug.layers if isinstance(la, keras.layers.RandomRotation))
    zoom = next(la for la in aug.layers if isinstance(la, keras.layers.RandomZoom))
    x = np.zeros((256, 28, 28, 1), np.float32)
    angle = np_(rotation.get_random_transformation(x, training=True)["angle"]).ravel()
    scale = np_(zoom.get_random_transformation(x, training=True)["height_zoom"]).ravel()
    assert angle.std() > 0 and scale.std() > 0
    assert abs(np.corrcoef(angle, scale)[0, 1]) < 0.3
    seeds = [layer.seed for layer in aug.layers]
    assert len(set(seeds)) == len(seeds)
    # and the same seed still gives the same augmentation
    assert [layer.seed for layer in augmentation("digits", seed=0).layers] == seeds


# --- RandomStrokeWidth --------------------------------------------------------------------------------------

def strokes(n=64) -> np.ndarray:
    """Bright vertical bars on black, with a one-pixel margin of black all round the bar."""
    x = np.zeros((n, 28, 28, 1), np.float32)
    x[:, 8:20, 12:15, 0] = 255.0
    return x


def test_stroke_width_thickens_and_thins_in_training():
    x = strokes()
    y = np_(RandomStrokeWidth(1.0, seed=3)(x, training=True))
    assert y.shape == x.shape
    before, after = x.sum(axis=(1, 2, 3)), y.sum(axis=(1, 2, 3))
    thick, thin = after > before, after < before
    assert thick.any() and thin.any() and (thick | thin).all()  # rate 1: every image changes, both ways
    assert (y[thick] >= x[thick]).all()  # dilation only adds ink
    assert (y[thin] <= x[thin]).all()  # erosion only removes it
    assert set(np.unique(y)) <= {0.0, 255.0}  # grey morphology: no new values on a binary image


def test_stroke_width_rate_is_the_share_of_changed_images():
    x = strokes(400)
    y = np_(RandomStrokeWidth(0.5, seed=7)(x, training=True))
    changed = (y != x).any(axis=(1, 2, 3)).mean()
    assert 0.35 < changed < 0.65
    np.testing.assert_array_equal(np_(RandomStrokeWidth(0.0, seed=7)(x, training=True)), x)


def test_stroke_width_is_identity_at_inference():
    x = strokes()
    layer = RandomStrokeWidth(1.0, seed=3)
    np.testing.assert_array_equal(np_(layer(x, training=False)), x)
    np.testing.assert_array_equal(np_(layer(x)), x)


def test_model_with_stroke_width_saves_and_loads_in_safe_mode(tmp_path):
    model = build_model("cnn_augmented", GRAY, 10, augment_profile="digits", seed=5)
    assert any(isinstance(la, RandomStrokeWidth) for la in model.get_layer("augmentation").layers)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = compat.load_model(path)  # safe_mode=True: works only because the layer is registered
    def stroke(m):
        return next(la for la in m.get_layer("augmentation").layers if isinstance(la, RandomStrokeWidth))

    assert stroke(model).rate == 0.5 and stroke(model).seed is not None
    assert (stroke(loaded).rate, stroke(loaded).seed) == (stroke(model).rate, stroke(model).seed)
    x = pixels(GRAY, n=8)
    np.testing.assert_allclose(np_(loaded(x, training=False)), np_(model(x, training=False)), rtol=1e-5, atol=1e-5)
    t1, t2 = np_(loaded(x, training=True)), np_(loaded(x, training=True))
    assert not np.allclose(t1, t2)  # the augmentation still works after loading


def test_cnn_strong_validates_well_after_few_steps(mnist_small):
    """BatchNorm's moving statistics must catch up within a short epoch: with Keras's default momentum
    (0.99) validation accuracy stayed near chance for the first epochs of a small dataset."""
    from core.train.trainer import TrainConfig, compile_model

    keras.utils.set_random_seed(0)
    cfg = TrainConfig(arch="cnn_strong", runs_dir="x").resolved()
    model = build_model("cnn_strong", (28, 28), 10)
    compile_model(model, cfg, steps_per_epoch=32)
    x, y = mnist_small.x_train[:1024], mnist_small.y_train[:1024]
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)  # 64 steps, about one epoch of the offline subset
    _, val_acc = model.evaluate(mnist_small.x_test, mnist_small.y_test, verbose=0)
    assert val_acc > 0.6, val_acc


def test_layer_graph_has_every_layer_and_edge():
    from core.model.architectures import layer_graph

    model = build_model("cnn", (28, 28), 10)
    dot = layer_graph(model)
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    for row in summary_rows(model):
        assert f'{row["layer"]}\\n{row["type"]}' in dot
        assert (f"{row['params']:,} params" if row["params"] else "no params") in dot
    edges = [line for line in dot.splitlines() if "->" in line]
    assert len(edges) == len(model.layers) - 1  # a chain: every layer but the input has one input
    assert "(?, 28, 28, 16)" in dot  # output shapes, the batch axis as ?
