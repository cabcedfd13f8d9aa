"""Plotly figures for the pages: training curves, confusion matrix, confidence bars, images."""
from __future__ import annotations

import numpy as np
import pandas  # noqa: F401  see below
import plotly.graph_objects as go

# Plotly checks sys.modules for pandas without importing it. The server's warm-up thread imports
# TensorFlow, which imports pandas: a figure built meanwhile finds a half-initialised pandas and fails
# with "partially initialized module 'pandas' has no attribute 'Series'". A real import here waits
# for that import to finish (or does it), so every chart is built with a complete pandas.

MAX_POINTS = 1000
RED, BLUE, GREY = "#d62728", "#1f77b4", "#b0b0b0"
CURVE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def smooth(values: np.ndarray, weight: float = 0.6) -> np.ndarray:
    """TensorBoard-style exponential moving average, debiased at the start (non-finite values skipped)."""
    values = np.asarray(values, dtype=float)
    if not np.isfinite(values).all():
        out, last, n = np.empty_like(values), 0.0, 0
        for i, v in enumerate(values):
            if np.isfinite(v):
                n += 1
                last = last * weight + (1 - weight) * v
            out[i] = last / (1 - weight ** n) if n else np.nan
        return out
    # vectorised in blocks (the live chart smooths every batch of the run once a second); within a block
    # ema_k = w^(k+1)·last + (1-w)·w^k·Σ_{j≤k} v_j/w^j, and 256 keeps w^-j inside float64's range
    out, last = np.empty_like(values), 0.0
    for s in range(0, len(values), 256):
        block = values[s:s + 256]
        k = np.arange(len(block))
        power = weight ** k
        ema = weight ** (k + 1) * last + (1 - weight) * power * np.cumsum(block / power)
        out[s:s + len(block)] = ema / (1 - weight ** (s + k + 1))
        last = ema[-1]
    return out


def downsample(x, *ys, max_points: int = MAX_POINTS):
    """Every k-th point (always keeping the last) so charts stay light however long the run."""
    n = len(x)
    if n <= max_points:
        return (np.asarray(x), *[np.asarray(y) for y in ys])
    idx = np.unique(np.r_[np.linspace(0, n - 1, max_points).astype(int), n - 1])
    return (np.asarray(x)[idx], *[np.asarray(y)[idx] for y in ys])


def _two_panels(titles: tuple[str, str], left: list[dict], right: list[dict], x_axis: dict,
                height: int = 300, **layout) -> go.Figure:
    """Two charts side by side, built from plain dicts in one go: make_subplots and trace-by-trace
    validation take 0.1–0.5 s a figure on a busy machine, too slow for charts redrawn every second."""
    for trace in right:
        trace.update(xaxis="x2", yaxis="y2")

    def title(text: str, x: float) -> dict:
        return dict(text=text, x=x, y=1.0, xref="paper", yref="paper", xanchor="center", yanchor="bottom",
                    showarrow=False, font=dict(size=16))

    return go.Figure(dict(data=[*left, *right], layout=dict(
        height=height, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.2),
        xaxis=dict(domain=[0, 0.46], anchor="y", **x_axis), yaxis=dict(anchor="x"),
        xaxis2=dict(domain=[0.54, 1], anchor="y2", **x_axis), yaxis2=dict(anchor="x2"),
        annotations=[title(titles[0], 0.23), title(titles[1], 0.77)], **layout)))


def batch_curves(snap: dict) -> go.Figure:
    """Per-batch loss and accuracy (smoothed over the raw points, drawn at most MAX_POINTS)."""
    steps = snap["steps"]
    loss, acc = smooth(snap["loss"]), smooth(snap["accuracy"])
    steps, loss, acc = downsample(steps, loss, acc)
    return _two_panels(("loss per batch", "accuracy per batch"),
                       [dict(type="scatter", x=steps, y=loss, mode="lines", name="loss", line=dict(color=BLUE))],
                       [dict(type="scatter", x=steps, y=acc, mode="lines", name="accuracy",
                             line=dict(color="#ff7f0e"))],
                       dict(title=dict(text="batch")), showlegend=False)


def epoch_curves(histories: dict[str, list[dict]]) -> go.Figure:
    """Train (solid) and validation (dashed) loss and accuracy per epoch, one colour per run."""
    panels: dict[str, list[dict]] = {"loss": [], "accuracy": []}
    most = 0
    for i, (name, rows) in enumerate(histories.items()):
        color = CURVE_COLORS[i % len(CURVE_COLORS)]
        epochs = [r.get("epoch", j + 1) for j, r in enumerate(rows)]
        most = max(most, len(epochs))
        for metric, traces in panels.items():
            for prefix, dash in (("", "solid"), ("val_", "dash")):
                ys = [r.get(prefix + metric) for r in rows]
                if all(y is None or not np.isfinite(y) for y in ys):
                    continue
                label = f"{name} {'validation' if prefix else 'train'}" if len(histories) > 1 else \
                    ("validation" if prefix else "train")
                traces.append(dict(type="scatter", x=epochs, y=ys, mode="lines+markers", name=label,
                                   line=dict(color=color, dash=dash), legendgroup=label,
                                   showlegend=metric == "loss"))
    ticks = dict(dtick=1) if most <= 20 else dict(tickformat="d")  # a tick per epoch while they fit
    return _two_panels(("loss", "accuracy"), panels["loss"], panels["accuracy"],
                       dict(title=dict(text="epoch"), **ticks))


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
        textfont=dict(color=list(text_color), size=11),
        customdata=np.c_[t, p].tolist(),  # a list: a numpy array reaches the browser as a typed array, whose
        # rows Streamlit returns in selections as {"0": t, "1": p} dicts instead of [t, p]
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
                      xaxis=dict(range=[0, 100], title="confidence %"),
                      yaxis=dict(autorange="reversed", type="category"))  # "0".."9" are names, not numbers
    return fig


def grouped_bars(names, series: dict[str, np.ndarray], yaxis: dict | None = None) -> go.Figure:
    """One bar per class for each named series, side by side."""
    fig = go.Figure([go.Bar(x=[str(n) for n in names], y=list(v), name=k) for k, v in series.items()])
    fig.update_layout(barmode="group", height=320, margin=dict(l=10, r=10, t=10, b=10), yaxis=yaxis or {},
                      xaxis=dict(type="category"))  # else digit names make a numeric axis labelled 0, 2, 4…
    return fig


def class_counts(names, train_counts, test_counts) -> go.Figure:
    """Images per class in each split."""
    return grouped_bars(names, {"train": train_counts, "test": test_counts})


def confusion_diff(diff: np.ndarray, class_names) -> go.Figure:
    """After minus before, per (true, predicted) cell: fewer off the diagonal is better (blue), more is red."""
    names = [str(c) for c in class_names]
    off = diff * (1 - 2 * np.eye(len(names), dtype=diff.dtype))  # on the diagonal more is better: flip its sign
    span = max(1, int(np.abs(off).max()))
    fig = go.Figure(go.Heatmap(z=-off, x=names, y=names, text=diff, texttemplate="%{text:+d}", zmin=-span,
                               zmax=span, colorscale="RdBu", showscale=False,
                               hovertemplate="true %{y}<br>predicted %{x}<br>%{text:+d} images<extra></extra>"))
    fig.update_layout(height=max(360, 40 * len(names) + 120), margin=dict(l=10, r=10, t=30, b=10),
                      xaxis=dict(title="predicted", side="top", type="category"),
                      yaxis=dict(title="true", autorange="reversed", type="category"))
    return fig


def per_class_accuracy(names, accuracy) -> go.Figure:
    """Accuracy per class, worst in red."""
    acc = np.asarray(accuracy) * 100
    colors = [RED if a == acc.min() else BLUE for a in acc]
    fig = go.Figure(go.Bar(x=[str(n) for n in names], y=acc, marker_color=colors,
                           text=[f"{a:.1f}%" for a in acc], textposition="auto"))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(type="category"), yaxis=dict(range=[max(0, acc.min() - 10), 100], title="accuracy %"))
    return fig


def enlarge(image: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour upscale so small images show crisp pixels at `size` px."""
    from PIL import Image

    img = Image.fromarray(np.asarray(image, dtype=np.uint8))
    scale = size / max(img.size)
    return np.asarray(img.resize((round(img.width * scale), round(img.height * scale)), Image.NEAREST))


def why(model, x: np.ndarray, class_index: int, size: int) -> tuple[np.ndarray, str]:
    """The input with its saliency for `class_index` overlaid, enlarged, and the method's name."""
    from core.analysis import explain

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


def lr_curve(record: dict) -> go.Figure:
    """Range test: each batch's loss (faint), the smoothed loss against the rate (log axis), the suggestion."""
    lrs, suggested = record["lrs"], record["suggested_lr"]
    losses = [np.nan if v is None else v for v in record["losses"]]
    top = np.nanmax(record["smoothed"]) * 1.15  # raw losses past divergence would squash the curve
    return go.Figure(dict(data=[
        dict(type="scatter", x=lrs, y=losses, mode="lines", name="loss per batch", line=dict(color=GREY, width=1)),
        dict(type="scatter", x=lrs, y=record["smoothed"], mode="lines", name="smoothed", line=dict(color=BLUE)),
        dict(type="scatter", x=[suggested], y=[record["smoothed"][record["suggested_index"]]], mode="markers",
             name=f"suggested {suggested:.2g}",
             marker=dict(color=RED, size=12, symbol="circle-open", line=dict(width=3))),
    ], layout=dict(height=320, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.25),
                   xaxis=dict(type="log", title=dict(text="learning rate"), exponentformat="power"),
                   yaxis=dict(title=dict(text="loss"), range=[0, top]))))


def sweep_parcoords(rows: list[dict], axes: list[str]) -> go.Figure:
    """Parallel coordinates: one line per run through its settings to its validation accuracy (colour too)."""
    rows = [r for r in rows if r.get("val_accuracy") is not None]
    dims = []
    for axis in axes:
        values = [r.get(axis) for r in rows]
        if axis == "learning_rate":
            ticks = sorted(set(values))
            dims.append(dict(label="learning rate (log)", values=np.log10(values), tickvals=np.log10(ticks),
                             ticktext=[f"{t:g}" for t in ticks]))
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            dims.append(dict(label=axis.replace("_", " "), values=values, tickvals=sorted(set(values))))
        else:  # names (architectures) and on/off: categories at 0, 1, 2…
            cats = list(dict.fromkeys(str(v) for v in values))
            dims.append(dict(label=axis, values=[cats.index(str(v)) for v in values], tickvals=list(range(len(cats))),
                             ticktext=cats))
    acc = [r["val_accuracy"] for r in rows]
    dims.append(dict(label="val accuracy", values=acc))
    return go.Figure(dict(data=[dict(type="parcoords", dimensions=dims,
                                     line=dict(color=acc, colorscale="Viridis", showscale=True))],
                          layout=dict(height=360, margin=dict(l=60, r=60, t=50, b=20))))
