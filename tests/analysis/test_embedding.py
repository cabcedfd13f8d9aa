"""Embeddings, 2-D projections, near-duplicates and outliers on a trained run's real MNIST test slice."""
import numpy as np
import pytest

from core.analysis.embedding import PROJECTIONS, embeddings, near_duplicates, outliers, project


@pytest.fixture(scope="module")
def emb(trained):
    from core.model.compat import load_model

    run, _, ds = trained
    return embeddings(load_model(run.path / "model.keras"), ds.x_test), ds


def test_embeddings_are_the_hidden_layer(trained, emb):
    import keras

    from core.model.compat import load_model

    e, ds = emb
    model = load_model(trained[0].path / "model.keras")
    assert e.shape == (len(ds.x_test), 128) and e.dtype == np.float32 and (e >= 0).all()
    hidden = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][0]
    direct = keras.Model(model.inputs, hidden.output).predict(ds.x_test[:10], verbose=0)
    np.testing.assert_allclose(e[:10], direct, rtol=1e-5, atol=1e-5)
    assert embeddings(model, ds.x_test[:0]).shape == (0, 128)


def test_a_model_without_hidden_layer_says_so(tmp_path, mnist_small):
    from app_helpers import save_model
    from core.model.compat import load_model

    model = load_model(save_model(tmp_path / "flat.keras", (28, 28)))
    with pytest.raises(ValueError, match="no hidden layer"):
        embeddings(model, mnist_small.x_test[:5])


def test_pca_map_separates_classes(emb):
    e, ds = emb
    xy = project(e, "pca")
    assert xy.shape == (len(e), 2) and np.isfinite(xy).all()
    np.testing.assert_allclose(xy, project(e, "pca"))  # deterministic
    # images of a class sit closer to their class centre than to the other centres, more often than chance
    centres = np.stack([xy[ds.y_test == k].mean(0) for k in range(10)])
    nearest = np.linalg.norm(xy[:, None] - centres[None], axis=-1).argmin(1)
    assert (nearest == ds.y_test).mean() > 0.3


def test_tsne_map_on_a_slice(emb):
    e, ds = emb
    xy = project(e[:150], "tsne")
    assert xy.shape == (150, 2) and np.isfinite(xy).all()
    with pytest.raises(ValueError, match="unknown projection"):
        project(e, "nope")
    if not PROJECTIONS["umap"].available():
        with pytest.raises(ValueError, match="umap"):
            project(e, "umap")


@pytest.mark.quick
def test_copies_are_found_as_near_duplicates(emb):
    e, ds = emb
    base = e[:300]
    copies = [5, 40, 111]
    x = np.concatenate([base, base[copies] + 1e-6])  # three near-exact copies at 300, 301, 302
    dup = near_duplicates(x)
    found = set(zip(dup["a"].tolist(), dup["b"].tolist()))
    assert {(5, 300), (40, 301), (111, 302)} <= found
    assert (dup["distance"] <= dup["threshold"]).all() and (np.diff(dup["distance"]) >= 0).all()
    assert len(found) == len(dup["a"])  # each pair once


def test_an_odd_image_is_the_top_outlier(emb):
    e, _ = emb
    odd = e[:300].copy()
    odd[17] = e[:300].max(0) * 3  # far from everything
    out = outliers(odd)
    assert out["index"][0] == 17 and out["flagged"][0]
    assert sorted(out["index"].tolist()) == list(range(300)) and (np.diff(out["score"]) <= 0).all()
    assert out["flagged"].sum() < 300 * 0.2


def test_groups_and_selection_map_back_to_test_indices():
    from core.analysis.embedding import color_groups

    y = np.array([0, 1, 2, 1, 0, 2])
    pred = np.array([0, 2, 2, 1, 1, 2])
    groups = color_groups("true class", y, pred, ["a", "b", "c"])
    assert [(n, i.tolist()) for n, i in groups] == [("a", [0, 4]), ("b", [1, 3]), ("c", [2, 5])]
    rw = color_groups("right / wrong", y, pred, ["a", "b", "c"])
    assert [(n, i.tolist()) for n, i in rw] == [("right", [0, 2, 3, 5]), ("wrong", [1, 4])]
    sus = color_groups("suspected label error", y, pred, "abc", suspects=[4])
    assert sus[1][0] == "suspected label error" and sus[1][1].tolist() == [4]
    assert [n for n, _ in color_groups("predicted class", y, pred, "abc")] == ["a", "b", "c"]
    assert [n for n, _ in color_groups("predicted class", y, np.zeros(6, int), "abc")] == ["a"]  # empty dropped
    with pytest.raises(ValueError):
        color_groups("nope", y, pred, "abc")


def test_stored_embeddings_round_trip_for_exactly_their_images(trained, emb, tmp_path):
    from core.analysis.embedding import STORED, load_test, reduce, save_test
    from core.model.compat import load_model

    e, ds = emb
    model = load_model(trained[0].path / "model.keras")
    path = save_test(model, ds.x_test, tmp_path)
    assert path == tmp_path / STORED and not list(tmp_path.glob(".*"))  # written through a temp file
    stored, fresh = load_test(tmp_path, ds.x_test), reduce(e)
    assert stored.x.shape == (len(e), 50) and stored.x.dtype == np.float32 and stored.width == 128
    assert 0.5 < stored.kept <= 1.0 and stored.kept == pytest.approx(fresh.kept, abs=1e-4)
    np.testing.assert_allclose(stored.x, fresh.x, atol=0.02 * np.abs(fresh.x).max())  # float16 on disk
    # the 2-D PCA of the stored 50-D form is the 2-D PCA of the full layer (up to each axis's sign)
    a, b = project(stored.x, "pca"), project(e, "pca")
    np.testing.assert_allclose(np.abs(a), np.abs(b), atol=0.02 * np.abs(b).max())
    # other images (one pixel changed, or fewer) are never given these embeddings
    other = np.array(ds.x_test)
    other[0, 0, 0] ^= 1
    assert load_test(tmp_path, other) is None and load_test(tmp_path, ds.x_test[:-1]) is None
    path.write_bytes(path.read_bytes()[:100])  # damaged: computed again, no crash
    assert load_test(tmp_path, ds.x_test) is None
    assert load_test(tmp_path / "nowhere", ds.x_test) is None


def test_no_stored_embeddings_for_a_model_without_hidden_layer(tmp_path, mnist_small):
    from app_helpers import save_model
    from core.analysis.embedding import save_test
    from core.model.compat import load_model

    model = load_model(save_model(tmp_path / "flat.keras", (28, 28)))
    assert save_test(model, mnist_small.x_test[:5], tmp_path) is None and not list(tmp_path.glob("*.npz"))


def test_training_stores_the_test_embeddings(trained, emb):
    from core.analysis.embedding import load_test, reduce

    e, ds = emb
    stored = load_test(trained[0].path, ds.x_test)
    assert stored is not None and stored.width == e.shape[1]
    np.testing.assert_allclose(stored.x, reduce(e).x, atol=0.02 * np.abs(stored.x).max())
