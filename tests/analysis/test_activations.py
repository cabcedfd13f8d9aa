"""Inside a model: the watched layers and their activations, on real (tiny or trained) Keras models."""
import numpy as np
import pytest

from core.analysis.activations import inspector, mosaic, penultimate
from core.analysis.inference import predict, softmax


@pytest.fixture(scope="session")
def strong():
    from core.model.architectures import build_model

    return build_model("cnn_strong", (28, 28), 10, augment=True, augment_profile="digits", seed=0)


@pytest.mark.quick
def test_conv_blocks_are_seen_after_batchnorm_and_relu(strong, mnist_small):
    import keras

    ins = inspector(strong)
    conv = [p for p in ins.probes if p.kind == "conv"]
    assert [p.shape for p in conv] == [(28, 28, 32), (28, 28, 32), (14, 14, 64), (14, 14, 64)]
    assert all(" → activation" in p.name for p in conv)  # conv → BN → ReLU: the maps after the ReLU
    dense = [p for p in ins.probes if p.kind == "dense"]
    assert len(dense) == 1 and dense[0].shape == (256,)  # Dropout skipped: the ReLU before the logits
    x = mnist_small.x_test[0]
    acts, logits = ins(x)
    assert [a.shape for a in acts] == [p.shape for p in ins.probes]
    assert all((a >= 0).all() for a in acts)  # after ReLUs
    np.testing.assert_allclose(softmax(logits), predict(strong, x[None])[0], atol=1e-5)
    # the same values as a separate model up to that layer, called eagerly
    name = conv[1].name.split(" → ")[1]
    eager = keras.Model(strong.inputs, strong.get_layer(name).output)(x[None].astype("float32"), training=False)
    np.testing.assert_allclose(acts[1], np.asarray(eager)[0], rtol=1e-4, atol=1e-4)
    # a different input, different activations
    assert not np.allclose(ins(mnist_small.x_test[1])[0][0], acts[0])


def test_dense_model_has_only_its_hidden_layer(trained):
    from core.model.compat import load_model

    run, _, ds = trained
    model = load_model(run.path / "model.keras")
    ins = inspector(model)
    assert [(p.kind, p.shape) for p in ins.probes] == [("dense", (128,))]
    acts, _ = ins(ds.x_test[0])
    assert acts[0].shape == (128,) and (acts[0] >= 0).all() and acts[0].max() > 0


def test_a_model_without_hidden_layer_has_no_penultimate(tmp_path):
    from app_helpers import save_model
    from core.model.compat import load_model

    model = load_model(save_model(tmp_path / "flat.keras", (28, 28)))
    assert penultimate(model) is None
    ins = inspector(model)
    assert ins.probes == [] and ins(np.zeros((28, 28), np.uint8))[0] == []


def test_mosaic_tiles_channels_with_gaps():
    maps = np.arange(3 * 2 * 5, dtype=np.float32).reshape(3, 2, 5)
    grid, channel = mosaic(maps)
    assert grid.shape == (2 * 4 - 1, 3 * 3 - 1)  # 5 channels in 3 columns × 2 rows, 1-px gaps
    for k in range(5):
        r, q = divmod(k, 3)
        np.testing.assert_array_equal(grid[r * 4: r * 4 + 3, q * 3: q * 3 + 2], maps[..., k])
        assert (channel[r * 4: r * 4 + 3, q * 3: q * 3 + 2] == k).all()
    assert np.isnan(grid[3]).all() and (channel[3] == -1).all()  # the gap row
    assert np.isnan(grid[4:, 6:]).all()  # the missing sixth tile
