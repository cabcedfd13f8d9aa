"""Plotly figures for looking inside a model: feature maps, embedding map, reliability, layer graph.

Figures are built from plain dicts in one go (as charts._two_panels does): trace-by-trace validation
costs tens of ms a figure, and the activation figures are redrawn on every pen lift.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.analysis.activations import mosaic
from ui.charts import BLUE, CURVE_COLORS, GREY, RED

PALETTE = (*CURVE_COLORS, "#bcbd22", "#7f7f7f")  # 10 distinct colours, one per class
MARGIN = dict(l=10, r=10, t=40, b=10)


def _heatmap(z: np.ndarray, title: str, hover: str, customdata=None, height: int = 300) -> go.Figure:
    top = float(np.nanmax(z)) if np.isfinite(z).any() else 1.0
    trace = dict(type="heatmap", z=z, colorscale="Viridis", zmin=0, zmax=max(top, 1e-6), hovertemplate=hover,
                 colorbar=dict(title=dict(text="activation", side="right"), thickness=12))
    if customdata is not None:
        trace["customdata"] = customdata
    return go.Figure(dict(data=[trace], layout=dict(
        # no plotly template: deep-copying the default one took a third of each figure's serialisation,
        # and Streamlit's theme styles the chart in the browser anyway
        template="none", title=dict(text=title, font=dict(size=13)), height=height, margin=MARGIN,
        xaxis=dict(visible=False, constrain="domain"), yaxis=dict(visible=False, autorange="reversed",
                                                                 scaleanchor="x"))))


MAX_SIDE = 56  # px of a channel's map as drawn: big photos' maps are max-pooled down to it


def feature_maps(name: str, maps: np.ndarray) -> go.Figure:
    """One conv layer's (H, W, C) output: every channel's map in a grid, one colour scale."""
    h, w, c = maps.shape
    k = -(-max(h, w) // MAX_SIDE)
    note = ""
    if k > 1:  # 16 channels of 180×180 would be half a million cells: pool k×k blocks, keeping peaks
        hh, ww = h // k * k, w // k * k
        maps = maps[:hh, :ww].reshape(hh // k, k, ww // k, k, c).max(axis=(1, 3))
        note = f" (shown max-pooled {k}×{k})"
    grid, channel = mosaic(maps)
    return _heatmap(grid.astype(np.float32), f"{name} · {h}×{w}×{c}{note}", "channel %{customdata}<br>%{z:.3f}<extra></extra>",
                    customdata=channel.astype(np.int16))  # half the bytes of int32


def dense_units(name: str, values: np.ndarray) -> go.Figure:
    """A hidden dense layer's activations as a near-square grid of units."""
    n = len(values)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.full(rows * cols, np.nan, np.float32)
    grid[:n] = values
    units = np.arange(rows * cols).reshape(rows, cols)
    return _heatmap(grid.reshape(rows, cols), f"{name} · {n} units",
                    "unit %{customdata}<br>%{z:.3f}<extra></extra>", customdata=units, height=260)


def activation_figures(probes, acts) -> list[go.Figure]:
    """One figure per watched layer (core.analysis.activations.Probe), from that layer's activations."""
    return [feature_maps(p.name, a) if p.kind == "conv" else dense_units(p.name, a) for p, a in zip(probes, acts)]


def embedding_map(xy: np.ndarray, groups: list[tuple[str, np.ndarray]], hover: list[str],
                  colors: dict[str, str] | None = None, title: str = "") -> go.Figure:
    """A WebGL scatter, one trace per group (its legend entry); hover text per test image."""
    traces = []
    for k, (name, idx) in enumerate(groups):
        color = (colors or {}).get(name, PALETTE[k % len(PALETTE)])
        traces.append(dict(type="scattergl", mode="markers", name=name, x=xy[idx, 0], y=xy[idx, 1],
                           text=[hover[i] for i in idx], customdata=idx, hovertemplate="%{text}<extra></extra>",
                           marker=dict(size=4, color=color, opacity=0.75)))
    return go.Figure(dict(data=traces, layout=dict(
        title=dict(text=title, font=dict(size=13)), height=600, margin=MARGIN, dragmode="lasso",
        xaxis=dict(showticklabels=False, zeroline=False), yaxis=dict(showticklabels=False, zeroline=False),
        legend=dict(itemsizing="constant"), clickmode="event+select")))


GROUP_COLORS = {"right": BLUE, "wrong": RED, "label looks right": GREY, "suspected label error": RED}


def selected_indices(points: list[dict], groups: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Test indices of the points a plotly selection names (curve number = group, point index within it),
    sorted and unique; points of other traces (e.g. a highlight) are ignored."""
    out = [int(groups[p["curve_number"]][1][p["point_index"]]) for p in points
           if p.get("curve_number", -1) in range(len(groups)) and
           p.get("point_index", -1) in range(len(groups[p["curve_number"]][1]))]
    return np.unique(np.asarray(out, int))


def reliability(cal: dict) -> go.Figure:
    """Accuracy against confidence per bin (bars), the diagonal of perfect calibration, and the gaps."""
    edges = cal["edges"]
    mids, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    has = cal["count"] > 0
    return go.Figure(dict(data=[
        dict(type="bar", x=mids[has], y=cal["accuracy"][has], width=width, name="accuracy",
             marker=dict(color=BLUE), customdata=np.c_[cal["count"][has], cal["confidence"][has]],
             hovertemplate="confidence %{customdata[1]:.3f}<br>accuracy %{y:.3f}<br>%{customdata[0]} images"
                           "<extra></extra>"),
        dict(type="bar", x=mids[has], y=(cal["confidence"] - cal["accuracy"])[has], base=cal["accuracy"][has],
             width=width, name="gap to confidence", marker=dict(color="rgba(214,39,40,0.35)"), hoverinfo="skip"),
        dict(type="scatter", x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
             line=dict(color=GREY, dash="dash")),
    ], layout=dict(height=360, margin=MARGIN, barmode="overlay", title=dict(text=f"ECE {cal['ece']:.2%}"),
                   xaxis=dict(range=[0, 1], title=dict(text="confidence")),
                   yaxis=dict(range=[0, 1], title=dict(text="accuracy")), legend=dict(orientation="h", y=-0.2))))


def confidence_histograms(right: np.ndarray, wrong: np.ndarray, bins: int = 20) -> go.Figure:
    """How confident the model is when right and when wrong (share of each group per bin)."""
    def hist(values, name, color):
        return dict(type="histogram", x=values, name=f"{name} ({len(values):,})", histnorm="percent",
                    xbins=dict(start=0, end=1.0001, size=1 / bins), marker=dict(color=color), opacity=0.6)
    return go.Figure(dict(data=[hist(right, "right", BLUE), hist(wrong, "wrong", RED)], layout=dict(
        height=360, margin=MARGIN, barmode="overlay", xaxis=dict(range=[0, 1], title=dict(text="confidence")),
        yaxis=dict(title=dict(text="% of the group")), legend=dict(orientation="h", y=-0.2))))
