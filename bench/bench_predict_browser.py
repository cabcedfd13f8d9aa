"""Predict as a person feels it (issue 27, items 1 and 2): the real app in headless Chromium, bundled MNIST model,
activations view on. Strokes are drawn with the mouse on the drawing pad (the model in the browser) and, alternating
round by round in the same run, on the server's canvas (?predict=server: streamlit-drawable-canvas, a rerun, Plotly).

- pen lift -> bars: from the mouseup event's timestamp to the first animation frame whose bars show the drawing as
  the pen left it (the pad: its data-shown version reaches the drawing's; the server path: the bar values differ).
  Targets p50 <= 100 ms, p95 <= 200 ms.
- bars while drawing: the interval between bar updates while the pen is down (target p50 <= 100 ms), and what the
  drawing itself feels: the delay from a pointermove's timestamp to its handler, and the frame interval, pen down.
  Every other stroke on the pad has the bars at pen lift only (window.padGapMs = Infinity): what the live bars cost
  the drawing, and the whole pen-lift prediction when none was under way.

    python bench/bench_predict_browser.py [--quick]
"""
from __future__ import annotations

import os
import re
import time

import common

LIFT_P50, LIFT_P95, CADENCE_MS = 100.0, 200.0, 100.0
PAD = ".st-key-draw_pad iframe"
# strokes in canvas pixels (280 x 280): each changes the drawing; every round starts on a fresh page
STROKES = [[(140, 45), (140, 235)], [(90, 60), (190, 60)], [(100, 150), (180, 150)], [(70, 230), (210, 230)],
           [(75, 60), (75, 140)], [(205, 140), (205, 230)], [(110, 100), (170, 200)], [(170, 100), (110, 200)]]
STEPS, STEP_S = 24, 0.012  # a stroke of ~0.4 s, a pointermove every ~12 ms plus the driver's round trip

# Installed in the frame that holds the bars; one record a stroke. Times are epoch ms (timeOrigin + now).
PROBE = """kind => {
  if (window.__strokes) return;
  const abs = t => performance.timeOrigin + t, S = window.__strokes = [];
  const bars = () => {
    if (kind === "pad") return document.body.dataset.shown || "";
    const gd = document.querySelector(".st-key-predict_bars .js-plotly-plot");
    return gd && gd._fullData ? JSON.stringify(gd._fullData[0].x) : "";
  };
  const done = u => kind === "pad" ? Number(bars()) >= u.drawn : bars() !== u.bars && bars() !== "";
  let s = null, lastFrame = null, lastBars = bars(), waiting = null;
  addEventListener("pointerdown", e => {
    s = {live: window.padGapMs !== Infinity, down: abs(e.timeStamp), updates: [], model_ms: [], lags: [], frames: []};
    S.push(s);
  }, true);
  addEventListener("pointermove", e => { if (s) s.lags.push(performance.now() - e.timeStamp); }, true);
  addEventListener("pointerup", e => {
    waiting = {s, t: abs(e.timeStamp), bars: bars(), drawn: Number(document.body.dataset.drawn || 0)};
    s.up = waiting.t;
    s = null;
  }, true);
  const frame = () => {
    const now = performance.now(), b = bars();
    if (s && lastFrame !== null) s.frames.push(now - lastFrame);
    if (s && b !== lastBars) { s.updates.push(abs(now)); s.model_ms.push(Number(document.body.dataset.ms)); }
    lastFrame = now;
    lastBars = b;
    if (waiting && done(waiting)) {
      waiting.s.lift = abs(now) - waiting.t;
      waiting.s.lift_model_ms = Number(document.body.dataset.ms);
      waiting = null;
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}"""


# In the page itself: when the model input the server shows ("What the model sees") changes, epoch ms
SEEN = """() => {
  if (window.__seen) return;
  const src = () => {
    const fig = [...document.querySelectorAll("[data-testid=stImage]")]
      .find(e => e.textContent.includes("What the model sees"));
    return fig && fig.querySelector("img") ? fig.querySelector("img").src : "";
  };
  let last = src();
  window.__seen = [];
  const frame = () => {
    const now = src();
    if (now !== last && now) window.__seen.push(performance.timeOrigin + performance.now());
    last = now;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}"""


def stroke(page, box, points) -> None:
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    (xa, ya), (xb, yb) = points
    for k in range(1, STEPS + 1):
        page.mouse.move(box["x"] + xa + (xb - xa) * k / STEPS, box["y"] + ya + (yb - ya) * k / STEPS)
        time.sleep(STEP_S)
    page.mouse.up()


def open_predict(page, url: str, kind: str):
    """The Predict page on one path, ready to draw: (the frame holding the bars, the drawing surface's box)."""
    page.goto(f"{url}/predict" + ("?predict=server" if kind == "server" else ""))
    common.wait_idle(page, 240_000)
    if kind == "pad":
        page.wait_for_selector(PAD, timeout=240_000)
        frame = page.locator(PAD).element_handle().content_frame()
        frame.wait_for_function("document.body.dataset.ready === 'true'", timeout=240_000)
        surface = frame.locator("#pad")
    else:
        frame, surface = page.main_frame, page.locator("canvas.upper-canvas")
        surface.wait_for(timeout=240_000)
        page.wait_for_timeout(1000)  # the canvas's stylesheet puts the drawing layer over the square (browser_helpers)
    frame.evaluate(PROBE, kind)
    page.evaluate(SEEN)
    return frame, surface.bounding_box()


def measure(page, url: str, kind: str, strokes) -> tuple:
    """One round: a fresh page on `kind`'s path, the strokes drawn one at a time, each waited for (on the pad, every
    other one with the bars at pen lift only); (p50 of pen lift -> bars, one record a stroke)."""
    frame, box = open_predict(page, url, kind)
    loaded = frame.locator("#status").inner_text() if kind == "pad" else ""
    for i, points in enumerate(strokes):
        if kind == "pad":
            frame.evaluate(f"window.padGapMs = {'undefined' if i % 2 == 0 else 'Infinity'}")
        stroke(page, box, points)
        frame.wait_for_function(f"window.__strokes[{i}] && window.__strokes[{i}].lift !== undefined", timeout=120_000)
        # the server's part of this pen lift (model input, activations) is drawn before the next stroke begins
        page.wait_for_function(f"window.__seen.length > {i}", timeout=120_000)
        common.wait_idle(page)
        page.wait_for_timeout(300)
    records, seen = frame.evaluate("window.__strokes"), page.evaluate("window.__seen")
    for r, t in zip(records, seen):
        r["server_part"] = t - r["up"]
    if kind == "pad":  # "Model loaded into this browser in N ms", then predictions: the first record keeps N
        records[0]["load_ms"] = float(re.search(r"in (\d+) ms", loaded).group(1))
    return common.percentile([r["lift"] for r in records if r["live"]], 50), records


def cadence(records: list[dict]) -> list[float]:
    """Intervals between bar updates while the pen is down: from the pen going down to the first, then between."""
    return [b - a for r in records for a, b in zip([r["down"], *r["updates"]], r["updates"])]


def values(records: list[dict], key: str) -> list[float]:
    """Every stroke's figure (lift, server_part) or figures (lags, frames, model_ms) under `key`."""
    return [v for r in records for v in (r[key] if isinstance(r[key], list) else [r[key]])]


def run(quick: bool) -> list[dict]:
    rounds, per_round = (2, 6) if quick else (4, 8)
    load0 = os.getloadavg()
    with common.app_in_chromium("bench-predict-") as (_, url, browser):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # warm: TensorFlow, the ONNX copy, both pages' first draw; the runtime's first fetch into the browser
        first_load = measure(page, url, "pad", STROKES[:1])[1][0]["load_ms"]
        measure(page, url, "server", STROKES[:1])
        common.log(f"predict in the browser: {rounds} rounds of {per_round} strokes a path, A = the pad, "
                   f"B = the server's canvas")
        pairs = common.alternate(lambda: measure(page, url, "pad", STROKES[:per_round]),
                                 lambda: measure(page, url, "server", STROKES[:per_round]), rounds, log=common.log)
    load = common.load_note(load0)
    live = [r for (_, a), _ in pairs for r in a if r["live"]]
    lifted = [r for (_, a), _ in pairs for r in a if not r["live"]]
    server = [r for _, (_, b) in pairs for r in b]
    p = common.percentile
    lifts, every = values(live, "lift"), cadence(live)
    ratios = [a[0] / b[0] for a, b in pairs]

    def three(key: str, q: float) -> str:  # pad with live bars / pad, bars at pen lift only / server's canvas
        return " / ".join(f"{p(values(group, key), q):.0f}" for group in (live, lifted, server))

    def row(metric: str, value, unit: str = "ms", **kw) -> dict:
        return common.row("predict_browser", metric, value, unit, **kw)

    return [
        row("pen lift → bars, model in the browser, p50", p(lifts, 50), spread=common.spread(lifts, "{:.0f}"),
            target=f"≤ {LIFT_P50:g} ms", ok=p(lifts, 50) <= LIFT_P50,
            notes=f"{len(live)} strokes with live bars, {len(lifted)} with bars at pen lift only, {len(server)} on "
                  f"the server's canvas, {rounds} alternating rounds; {load}"),
        row("pen lift → bars, model in the browser, p95", p(lifts, 95), target=f"≤ {LIFT_P95:g} ms",
            ok=p(lifts, 95) <= LIFT_P95),
        row("pen lift → bars, browser, bars at pen lift only, p50 / p95",
            f"{p(values(lifted, 'lift'), 50):.0f} / {p(values(lifted, 'lift'), 95):.0f}",
            notes="no prediction while the pen moves: the whole pen-lift prediction in the worker"),
        row("pad: model loaded into the browser, first visit / later visits (p50)",
            f"{first_load:.0f} / {p([r['load_ms'] for r in live + lifted if 'load_ms' in r], 50):.0f}",
            notes="the runtime (15 MB of WebAssembly) fetched once, then from the browser's Cache Storage"),
        row("model call + preprocessing in the worker, p50 / p95",
            f"{p(values(live, 'model_ms'), 50):.0f} / {p(values(live, 'model_ms'), 95):.0f}"),
        row("pen lift → bars, server path, p50", p(values(server, "lift"), 50),
            spread=common.spread(values(server, "lift"), "{:.0f}"),
            notes="?predict=server: the path before the pad (a rerun, Plotly)"),
        row("pen lift → bars, server path, p95", p(values(server, "lift"), 95)),
        row("pen lift → bars, browser / server per round (p50s)", common.median(ratios), "×",
            spread=common.spread(ratios, "{:.3f}")),
        row("pen lift → the server's model input shown, p50, pad / server path",
            f"{p(values(live + lifted, 'server_part'), 50):.0f} / {p(values(server, 'server_part'), 50):.0f}",
            notes="the pad reports a pen lift after 250 ms of pen up; activations and Add follow it"),
        row("bars while drawing: interval between updates, p50", p(every, 50), spread=common.spread(every, "{:.0f}"),
            target=f"≤ {CADENCE_MS:g} ms", ok=p(every, 50) <= CADENCE_MS,
            notes="from the pen going down; the server path updates at pen lift only"),
        row("bars while drawing: interval between updates, p95", p(every, 95)),
        row("drawing: pointermove → its handler, p50, live / lift only / server", three("lags", 50),
            notes="how long the pen waits for the page's thread; server = streamlit-drawable-canvas"),
        row("drawing: pointermove → its handler, p95, live / lift only / server", three("lags", 95)),
        row("drawing: frame interval pen down, p95, live / lift only / server", three("frames", 95)),
    ]

if __name__ == "__main__":
    raise SystemExit(common.main(run))
