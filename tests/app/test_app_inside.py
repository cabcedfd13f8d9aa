"""AppTest of the views inside the model: Predict's activations, the embedding map and its selection,
Metrics against the confusion matrix, and the Model graph (a dense run and the bundled CNN)."""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from PIL import Image
from app_helpers import assert_clean, open_page
from test_app import app_env, captions, chart_spec, mnist_run, new_app, png, send_selection  # noqa: F401  (fixtures too)

from core.analysis import metrics

from core.store import runs
from core.data.datasets import load_dataset
from core.analysis.embedding import color_groups


@pytest.fixture(scope="module")
def data(mnist_run):
    probs = np.load(mnist_run.path / "test_probs.npy")
    ds = load_dataset("mnist")
    return probs, ds


def bundled_cnn():
    return [r for r in runs.bundled_models() if r.dataset == "mnist"][0]


def array(value) -> np.ndarray:
    """A figure's data array as the browser gets it: a list, or plotly's typed array {dtype, bdata, shape}."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return flat.reshape([int(n) for n in str(shape).split(",")]) if shape else flat
    return np.array(value, dtype=float)


def big(digit: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(digit).resize((112, 112)))


def upload(at, image: np.ndarray, name: str):
    at.file_uploader(key="upload").set_value((name, png(255 - image), "image/png")).run()
    assert_clean(at, name)
    return at


def activation_charts(at) -> list[dict]:
    found = {int(c.key[4:]): c for c in at.get("plotly_chart") if (c.key or "").startswith("act_")}
    return [json.loads(found[k].proto.spec) for k in sorted(found)]  # layer order (the page lays them out in columns)


def test_predict_shows_activations_that_follow_the_input(data):
    _, ds = data
    at = open_page(new_app(bundled_cnn()), "app_pages/predict.py")
    at.radio(key="predict_mode").set_value("Upload").run()
    first = activation_charts(upload(at, big(ds.x_test[0]), "a.png"))
    titles = [f["layout"]["title"]["text"] for f in first]
    # the bundled cnn_strong: four conv blocks (after BN + ReLU) and the 256-unit hidden layer
    assert [re.search(r"· (.+)$", t).group(1) for t in titles] == ["28×28×32", "28×28×32", "14×14×64", "14×14×64",
                                                                  "256 units"], titles
    assert all(f["data"][0]["type"] == "heatmap" and f["data"][0]["colorbar"]["title"]["text"] == "activation"
               for f in first)
    other = ds.x_test[int(np.flatnonzero(ds.y_test != ds.y_test[0])[0])]
    second = activation_charts(upload(at, big(other), "b.png"))
    for a, b in zip(first, second):  # every layer's picture changed with the input
        za, zb = (array(f["data"][0]["z"]).astype(float) for f in (a, b))
        assert za.shape == zb.shape and not np.allclose(np.nan_to_num(za), np.nan_to_num(zb))
    # the figures are kept per input: back to the first image, its own pictures again; a rerun keeps them
    assert activation_charts(upload(at, big(ds.x_test[0]), "c.png")) == first
    assert activation_charts(at.run()) == first


def test_predict_dense_model_shows_its_hidden_layer(mnist_run, data):
    _, ds = data
    at = open_page(new_app(mnist_run), "app_pages/predict.py")
    at.radio(key="predict_mode").set_value("Upload").run()
    charts_ = activation_charts(upload(at, big(ds.x_test[3]), "d.png"))
    assert [f["layout"]["title"]["text"] for f in charts_] == ["dense · 128 units"]


def the_map(at):
    found = [c for c in at.get("plotly_chart") if (c.key or "").startswith("e_map_")]
    assert len(found) == 1, [c.key for c in at.get("plotly_chart")]
    return found[0]


def map_points(at) -> list[list[int]]:
    """Per trace of the map, the test indices its hover texts name."""
    traces = json.loads(the_map(at).proto.spec)["data"]
    return [[int(re.match(r"#(\d+) ", t).group(1)) for t in trace["text"]] for trace in traces]


def test_embedding_map_colours_and_selection_fill_the_gallery(mnist_run, data):
    probs, ds = data
    y, pred = ds.y_test, probs.argmax(1)
    at = open_page(new_app(mnist_run), "app_pages/embedding_map.py")
    assert_clean(at, "embedding")
    spec = json.loads(the_map(at).proto.spec)
    assert [t["type"] for t in spec["data"]] == ["scattergl"] * 10
    traces = map_points(at)
    assert sorted(i for t in traces for i in t) == list(range(len(y)))
    assert all((y[t] == k).all() for k, t in enumerate(traces))  # coloured by true class

    at.radio(key="e_color").set_value("right / wrong").run()
    assert_clean(at, "recolour")
    right, wrong = map_points(at)
    assert sorted(wrong) == np.flatnonzero(pred != y).tolist() and len(right) + len(wrong) == len(y)

    # a box/lasso selection of 5 points of the "wrong" trace and 2 of "right": exactly those in the gallery
    groups = color_groups("right / wrong", y, pred, ds.class_names)
    chosen = [(1, k) for k in range(5)] + [(0, 3), (0, 7)]
    points = [{"curve_number": c, "point_index": k, "point_number": k} for c, k in chosen]
    send_selection(at, the_map(at), {"points": points, "point_indices": [k for _, k in chosen],
                                            "box": [{"x": [0, 1], "y": [0, 1]}], "lasso": []})
    assert_clean(at, "selection")
    want = sorted(int(groups[c][1][k]) for c, k in chosen)
    shown = [int(re.match(r"#(\d+) Label", c).group(1)) for c in captions(at) if re.match(r"#\d+ Label", c)]
    assert shown == want
    assert any(s.value == f"Selected images ({len(want)})" for s in at.subheader)
    details = [b for b in at.button if b.label == "Details"]
    details[0].click().run()
    assert_clean(at, "details")
    assert len(chart_spec(at, "detail_bars")["data"][0]["y"]) == 10  # the Mistakes detail panel
    assert any(c.value.startswith(f"Test image #{want[0]}:") for c in at.caption)

    at.radio(key="e_color").set_value("suspected label error").run()
    assert_clean(at, "suspects")
    flagged = metrics.label_issues(probs, y, 10)["index"]
    assert sorted(map_points(at)[-1]) == sorted(flagged.tolist())
    assert not at.tabs  # near-duplicates and outliers only on request
    at.toggle(key="e_neigh").set_value(True).run()
    assert_clean(at, "neighbours")
    labels = [t.label for t in at.tabs]
    assert labels[0].startswith("Near-duplicate pairs (") and labels[1].startswith("Outliers (")
    assert sum(bool(re.match(r"#\d+ .+ → .+, LOF [\d.]+$", c)) for c in captions(at)) == 12


def test_embedding_map_without_stored_embeddings_computes_the_same_map(mnist_run, tmp_path):
    """A run folder without test_embeddings.npz (or with one made from other images): the page runs the
    model over the test set and draws the map the stored embeddings give (float16 aside)."""
    import shutil

    from core.analysis.embedding import STORED

    at = open_page(new_app(mnist_run), "app_pages/embedding_map.py")
    stored = np.array([p for t in json.loads(the_map(at).proto.spec)["data"]
                       for p in zip(array(t["x"]), array(t["y"]))])
    copy = mnist_run.path.parent / f"{mnist_run.path.name}-nostore"
    shutil.copytree(mnist_run.path, copy)
    (copy / STORED).unlink()
    try:
        at = open_page(new_app(runs.load_run(copy)), "app_pages/embedding_map.py")
        assert_clean(at, "computed embeddings")
        assert any(f"{copy.name}" in c.value and "128 dimensions each (the last hidden layer; its 50 main directions"
                   in c.value for c in at.caption), [c.value for c in at.caption]
        computed = np.array([p for t in json.loads(the_map(at).proto.spec)["data"]
                             for p in zip(array(t["x"]), array(t["y"]))])
        assert computed.shape == stored.shape == (2000, 2)
        np.testing.assert_allclose(np.abs(computed), np.abs(stored), atol=0.02 * np.abs(stored).max())
    finally:
        shutil.rmtree(copy)


def test_metrics_table_agrees_with_the_confusion_matrix(mnist_run, data):
    probs, ds = data
    y = ds.y_test
    cm = np.zeros((10, 10), int)
    np.add.at(cm, (y, probs.argmax(1)), 1)
    at = open_page(new_app(mnist_run), "app_pages/metrics.py")
    assert_clean(at, "metrics")
    table = at.dataframe[0].value
    assert list(table.columns) == ["class", "precision", "recall", "F1", "support"]
    for k in range(10):
        row = table.iloc[k]
        assert row["support"] == cm[k].sum()
        assert row["recall"] == pytest.approx(cm[k, k] / cm[k].sum())
        assert row["precision"] == pytest.approx(cm[k, k] / cm[:, k].sum() if cm[:, k].sum() else 0)
    ece = metrics.calibration(probs, y)["ece"]
    assert [m.value for m in at.metric if m.label == "expected calibration error"] == [f"{ece:.2%}"]
    hist = chart_spec(at, "confidence_hist")["data"]
    assert sum(len(array(h["x"])) for h in hist) == len(y)
    assert chart_spec(at, "reliability")["layout"]["title"]["text"] == f"ECE {ece:.2%}"


@pytest.mark.quick
def test_model_page_draws_the_layer_graph(mnist_run):
    at = open_page(new_app(bundled_cnn()), "app_pages/model.py")
    assert_clean(at, "model")
    dot = at.get("graphviz_chart")[0].proto.spec
    assert dot.count("->") == len(at.dataframe[0].value) - 1 and "BatchNormalization" in dot
    assert "(?, 14, 14, 64)" in dot and "params" in dot


def test_an_old_selection_never_picks_from_new_groups(mnist_run):
    """A selection made under one colouring belongs to that chart: after a colour change nothing is selected."""
    at = open_page(new_app(mnist_run), "app_pages/embedding_map.py")
    send_selection(at, the_map(at), {"points": [{"curve_number": 0, "point_index": 0}], "point_indices": [0],
                                     "box": [], "lasso": []})
    assert any(s.value == "Selected images (1)" for s in at.subheader)
    at.radio(key="e_color").set_value("right / wrong").run()
    assert_clean(at, "recolour after a selection")
    assert any(s.value == "Selected images (0)" for s in at.subheader)
