"""Plotly figures for the pages: training curves, confusion matrix, confidence bars, images."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

MAX_POINTS = 1000
RED, BLUE, GREY = "#d62728", "#1f77b4", "#b0b0b0"
CURVE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def smooth(values: np.ndarray, weight: float = 0.6) -> np.ndarray:
    """TensorBoard-style exponential moving average, debiased at the start."""
    values = np.asarray(values, dtype=float)
    out, last, n = np.empty_like(values), 0.0, 0
    for i, v in enumerate(values):
        if np.isfinite(v):
            n += 1
            last = last * weight + (1 - weight) * v
        out[i] = last / (1 - weight ** n) if n else np.nan
    return out


def downsample(x, *ys, max_points: int = MAX_POINTS):
    """Every k-th point (always keeping the last) so charts stay light however long the run."""
    n = len(x)
    if n <= max_points:
        return (np.asarray(x), *[np.asarray(y) for y in ys])
    idx = np.unique(np.r_[np.linspace(0, n - 1, max_points).astype(int), n - 1])
    return (np.asarray(x)[idx], *[np.asarray(y)[idx] for y in ys])


def _two_panels(title_left: str, title_right: str, height: int = 300) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=(title_left, title_right), horizontal_spacing=0.08)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.2))
    return fig


def batch_curves(snap: dict) -> go.Figure:
    """Per-batch loss and accuracy (smoothed over the raw points, drawn at most MAX_POINTS)."""
    steps = snap["steps"]
    loss, acc = smooth(snap["loss"]), smooth(snap["accuracy"])
    steps, loss, acc = downsample(steps, loss, acc)
    fig = _two_panels("loss per batch", "accuracy per batch")
    fig.add_trace(go.Scatter(x=steps, y=loss, mode="lines", name="loss", line_color=BLUE), 1, 1)
    fig.add_trace(go.Scatter(x=steps, y=acc, mode="lines", name="accuracy", line_color="#ff7f0e"), 1, 2)
    fig.update_xaxes(title_text="batch")
    fig.update_layout(showlegend=False)
    return fig


def epoch_curves(histories: dict[str, list[dict]]) -> go.Figure:
    """Train (solid) and validation (dashed) loss and accuracy per epoch, one colour per run."""
    fig = _two_panels("loss", "accuracy")
    for i, (name, rows) in enumerate(histories.items()):
        color = CURVE_COLORS[i % len(CURVE_COLORS)]
        epochs = [r.get("epoch", j + 1) for j, r in enumerate(rows)]
        for col, metric in ((1, "loss"), (2, "accuracy")):
            for prefix, dash in (("", "solid"), ("val_", "dash")):
                ys = [r.get(prefix + metric) for r in rows]
                if all(y is None or not np.isfinite(y) for y in ys):
                    continue
                label = f"{name} {'validation' if prefix else 'train'}" if len(histories) > 1 else \
                    ("validation" if prefix else "train")
                fig.add_trace(go.Scatter(x=epochs, y=ys, mode="lines+markers", name=label,
                                         line=dict(color=color, dash=dash), legendgroup=label,
                                         showlegend=col == 1), 1, col)
    fig.update_xaxes(title_text="epoch", dtick=1)
    return fig


def confusion(cm: np.ndarray, class_names, selected: tuple[int, int] | None = None) -> go.Figure:
    """Confusion-matrix heatmap with a clickable marker per cell (heatmaps emit no selections)."""
    n = len(class_names)
    names = [str(c) for c in class_names]
    shown = np.log1p(cm)  # log colour so the small off-diagonal errors stay visible
    fig = go.Figure(go.Heatmap(z=shown, x=names, y=names, colorscale="Blues", showscale=False,
                               hoverinfo="skip"))
    t, p = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    t, p = t.ravel(), p.ravel()
    text_color = np.where(shown[t, p] > shown.max() * 0.6, "white", "black")
    fig.add_trace(go.Scatter(
        x=[names[i] for i in p], y=[names[i] for i in t], mode="markers+text", text=cm[t, p].astype(str),
        textfont=dict(color=list(text_color), size=11), customdata=np.c_[t, p],
        marker=dict(symbol="square", size=max(14, 420 // n), color="rgba(0,0,0,0.01)"),
        hovertemplate="true %{y}<br>predicted %{x}<br>%{text} images<extra></extra>", name="cells"))
    if selected is not None:
        fig.add_shape(type="rect", x0=selected[1] - 0.5, x1=selected[1] + 0.5, y0=selected[0] - 0.5,
                      y1=selected[0] + 0.5, line=dict(color=RED, width=3))
    fig.update_layout(height=max(360, 40 * n + 120), margin=dict(l=10, r=10, t=30, b=10),
                      xaxis=dict(title="predicted", side="top", type="category"),
                      yaxis=dict(title="true", autorange="reversed", type="category"),
                      clickmode="event+select", dragmode=False, showlegend=False)
    return fig


def confidence_bars(probs: np.ndarray, class_names, predicted: int | None = None,
                    true: int | None = None, height: int | None = None) -> go.Figure:
    """Horizontal bars of every class's confidence: predicted red, true blue (plot_value_array)."""
    predicted = int(np.argmax(probs)) if predicted is None else predicted
    colors = [GREY] * len(class_names)
    colors[predicted] = RED
    if true is not None:
        colors[true] = BLUE
    fig = go.Figure(go.Bar(x=probs * 100, y=[str(c) for c in class_names], orientation="h",
                           marker_color=colors, text=[f"{p:.1%}" for p in probs], textposition="auto",
                           hovertemplate="%{y}: %{x:.2f}%<extra></extra>"))
    fig.update_layout(height=height or 26 * len(class_names) + 60, margin=dict(l=10, r=10, t=10, b=30),
                      xaxis=dict(range=[0, 100], title="confidence %"), yaxis=dict(autorange="reversed"))
    return fig


def class_counts(names, train_counts, test_counts) -> go.Figure:
    """Images per class in each split."""
    fig = go.Figure([go.Bar(x=list(names), y=train_counts, name="train"),
                     go.Bar(x=list(names), y=test_counts, name="test")])
    fig.update_layout(barmode="group", height=320, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def per_class_accuracy(names, accuracy) -> go.Figure:
    """Accuracy per class, worst in red."""
    acc = np.asarray(accuracy) * 100
    colors = [RED if a == acc.min() else BLUE for a in acc]
    fig = go.Figure(go.Bar(x=[str(n) for n in names], y=acc, marker_color=colors,
                           text=[f"{a:.1f}%" for a in acc], textposition="auto"))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=10, b=10),
                      yaxis=dict(range=[max(0, acc.min() - 10), 100], title="accuracy %"))
    return fig


def enlarge(image: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour upscale so small images show crisp pixels at `size` px."""
    from PIL import Image

    img = Image.fromarray(np.asarray(image, dtype=np.uint8))
    scale = size / max(img.size)
    return np.asarray(img.resize((round(img.width * scale), round(img.height * scale)), Image.NEAREST))


def why(model, x: np.ndarray, class_index: int, size: int) -> tuple[np.ndarray, str]:
    """The input with its saliency for `class_index` overlaid, enlarged, and the method's name."""
    from core import explain

    heat = explain.saliency(model, x, class_index)
    return enlarge(explain.overlay(x, heat), size), explain.method(model)


def pixels(image: np.ndarray) -> go.Figure:
    """One image as a pixel heatmap with a colour bar (the tutorials' plt.imshow of image 0)."""
    img = np.asarray(image)
    gray = img if img.ndim == 2 else img.mean(-1)
    fig = go.Figure(go.Heatmap(z=gray, colorscale="gray", zmin=0, zmax=255, colorbar=dict(title="pixel")))
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=10, b=10),
                      yaxis=dict(autorange="reversed", scaleanchor="x"), xaxis=dict(constrain="domain"))
    return fig
