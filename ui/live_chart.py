"""The Train page's live curves: canvas charts (uPlot) in the browser that append the points they have not drawn,
instead of Plotly figures sent and redrawn whole at each refresh. On the machine that trains, each Plotly redraw
took the browser's main thread ~0.2 s of CPU, most of it laying out tick labels (docs/benchmarks.md)."""
from __future__ import annotations

import functools
import math
import threading
import time
from pathlib import Path

import streamlit as st

from ui import charts, training

# uPlot comes from the npm registry (web/package.json; run.sh runs npm ci there): a 50 kB canvas chart made for
# streaming series, where a redraw of 1,000 points costs a few ms
LIB = Path(__file__).resolve().parent.parent / "web" / "node_modules" / "uplot" / "dist"
SENT = "live_chart_sent"  # what this session's chart was last sent: {"run", "k", "to", "t", "data"}
INSTALL_HINT = "The live chart's library is missing: run `./run.sh app` (or `npm ci` in web/)."


class Curves:
    """One run's per-batch curves, smoothed as its feed grows (charts.smooth's average, one point at a time);
    shared by every session that watches the run, so each batch is smoothed once."""

    def __init__(self, run_id: str, weight: float = 0.6):
        self.run_id, self.weight = run_id, weight
        self.steps: list[int] = []
        self.loss: list[float | None] = []
        self.acc: list[float | None] = []
        self._ema = {"loss": [0.0, 0], "accuracy": [0.0, 0]}  # running average and finite values seen, per series
        self._lock = threading.Lock()

    def _smooth(self, name: str, value: float) -> float | None:
        state = self._ema[name]
        if value is not None and math.isfinite(value):
            state[0] = state[0] * self.weight + (1 - self.weight) * value
            state[1] += 1
        return state[0] / (1 - self.weight ** state[1]) if state[1] else None

    def update(self) -> dict:
        """Take the batches the feed has gained; the run's snapshot from here on (epoch rows, state)."""
        with self._lock:
            snap = training.snapshot(self.run_id, since=len(self.steps))
            for step, loss, acc in zip(snap["steps"], snap["loss"], snap["accuracy"]):
                self.steps.append(step)
                self.loss.append(self._smooth("loss", loss))
                self.acc.append(self._smooth("accuracy", acc))
            return snap


@st.cache_resource(max_entries=32, show_spinner=False)
def _curves(run_dir: str, run_id: str) -> Curves:
    return Curves(run_id)


def stride(n: int, max_points: int = charts.MAX_POINTS) -> int:
    """Every k-th batch is drawn: the smallest power of two that keeps n batches within max_points. It only
    doubles as the run grows, so the browser keeps what it has until then."""
    k = 1
    while -(-n // k) > max_points:
        k *= 2
    return k


def _finite(values) -> list:
    # JSON has no NaN: a diverged loss is a gap in the line
    return [v if v is not None and math.isfinite(v) else None for v in values]


def _epochs(rows: list[dict]) -> dict:
    keys = ("loss", "val_loss", "accuracy", "val_accuracy")
    return {"epoch": [r.get("epoch", i + 1) for i, r in enumerate(rows)],
            **{k: _finite(r.get(k) for r in rows) for k in keys}}


def update(run_id: str, every: float = 0.0, tick: float = 0.0) -> dict:
    """What this session's chart lacks: the batches since its last update (every k-th, and the newest as the tip)
    and the epoch rows; all of them when the chart is new, shows another run, or k has doubled. Within `every` s
    of the last update (less half a `tick` of the timer), the same data again, which the browser does not redraw."""
    sent, now = st.session_state.get(SENT) or {}, time.monotonic()
    if sent.get("run") == run_id and now - sent["t"] < every - tick / 2:
        return sent["data"]
    curves = _curves(str(training.run_path(run_id)), run_id)
    snap = curves.update()
    n = len(curves.steps)
    k = stride(n)
    reset = (sent.get("run"), sent.get("k")) != (run_id, k) or sent.get("to", 0) > n
    start = 0 if reset else sent["to"]
    picked = range(-(-start // k) * k, n, k)
    tip = n - 1 if n and (n - 1) % k else None
    data = {"run": run_id, "k": k, "from": start, "to": n, "reset": reset, "max": charts.MAX_POINTS,
            "x": [curves.steps[i] for i in picked], "loss": _finite(curves.loss[i] for i in picked),
            "acc": _finite(curves.acc[i] for i in picked),
            "tip": None if tip is None else [curves.steps[tip], *_finite((curves.loss[tip], curves.acc[tip]))],
            "epochs": _epochs(snap["epochs"])}
    st.session_state[SENT] = {"run": run_id, "k": k, "to": n, "t": now, "data": data}
    return data


def _resend() -> None:
    """The browser's chart lacks points (a new element in an old session, an update it never got): all again."""
    st.session_state.pop(SENT, None)


@functools.cache
def _component():
    js = (LIB / "uPlot.iife.min.js").read_text() + "\n" + Path(__file__).with_suffix(".js").read_text()
    css = (LIB / "uPlot.min.css").read_text() + """
.live-curves .panels { display: flex; flex-wrap: wrap; justify-content: space-between; row-gap: 8px; }
.live-curves .u-title { font-size: 16px; font-weight: normal; }
.live-curves .caption { font-size: 14px; opacity: .6; min-height: 1.5em; }"""
    html = '<div class="live-curves"><div class="panels"></div><div class="caption"></div></div>'
    return st.components.v2.component("classifier_lab.live_chart", html=html, css=css, js=js)


def available() -> bool:
    return (LIB / "uPlot.iife.min.js").is_file()


def live_curves(run_id: str, every: float = 0.0, tick: float = 0.0, key: str = "batch_chart") -> None:
    """The run's live curves, brought up to date at most every `every` s (see update)."""
    _component()(key=key, data=update(run_id, every, tick), on_resend_change=_resend)
