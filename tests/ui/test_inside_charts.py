"""Figures of the inside-the-model views: what they draw, from known arrays."""
import numpy as np
import pytest

from core.analysis.metrics import calibration
from ui import inside_charts


@pytest.mark.quick
def test_feature_maps_grid_title_and_pooling():
    maps = np.random.default_rng(0).random((28, 28, 32), dtype=np.float32)
    fig = inside_charts.feature_maps("conv2d → relu", maps)
    trace = fig.data[0]
    assert fig.layout.title.text == "conv2d → relu · 28×28×32"
    assert np.asarray(trace.z).shape == (6 * 29 - 1, 6 * 29 - 1)  # 32 channels in a 6×6 grid
    assert trace.zmin == 0 and trace.zmax == float(maps.max())
    big = np.zeros((180, 180, 16), np.float32)
    big[100, 7, 3] = 5.0  # one bright pixel survives max-pooling
    fig = inside_charts.feature_maps("conv", big)
    z = np.asarray(fig.data[0].z)
    assert "180×180×16 (shown max-pooled 4×4)" in fig.layout.title.text
    assert z.shape == (4 * 46 - 1, 4 * 46 - 1) and np.nanmax(z) == 5.0


def test_dense_units_and_reliability():
    fig = inside_charts.dense_units("dense", np.arange(10, dtype=np.float32))
    z = np.asarray(fig.data[0].z, dtype=float)
    assert z.shape == (3, 4) and np.nansum(z) == 45 and np.isnan(z).sum() == 2
    probs = np.tile([0.8, 0.2], (10, 1))
    fig = inside_charts.reliability(calibration(probs, np.array([0] * 6 + [1] * 4), bins=10))
    assert fig.layout.title.text == "ECE 20.00%"
    assert list(fig.data[0].y) == [0.6]  # one non-empty bin


def test_a_plotly_selection_maps_back_to_test_indices():
    from core.analysis.embedding import color_groups
    from ui.inside_charts import selected_indices

    y = np.array([0, 1, 2, 1, 0, 2])
    pred = np.array([0, 2, 2, 1, 1, 2])
    rw = color_groups("right / wrong", y, pred, ["a", "b", "c"])
    # a box over the second point of trace "wrong" and the first of "right", plus a stray trace's point
    points = [{"curve_number": 1, "point_index": 1}, {"curve_number": 0, "point_index": 0},
              {"curve_number": 0, "point_index": 0}, {"curve_number": 7, "point_index": 0}]
    assert selected_indices(points, rw).tolist() == [0, 4]
    assert selected_indices([], rw).tolist() == []
