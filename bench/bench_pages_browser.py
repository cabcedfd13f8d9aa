"""What people feel going from page to page (issue 26, item 2): the real app in headless Chromium, offline, bundled
MNIST model (the default active one). Times are taken in the page: from the click event on a sidebar link to the
first animation frame that shows what the page is for.

- page switch -> content drawn, every page of the sidebar: the script run has ended, no skeleton or stale element
  is left and the page's title (its h1) is shown. Rounds visit the pages in orders of varying stride (so no page
  always follows the same one), in a few browser sessions: the first visit to a page in a session apart from
  repeat visits (the browser loads code the first time: the first page with a Plotly chart, reported on its own
  too). A session before them visits every page once, right after the server starts (its caches empty).
- Mistakes: first gallery, a fresh session, from the click on Mistakes (the session starts on Home) to the first
  gallery image loaded (naturalWidth > 0).
- Embedding map: first points, a fresh session, from the click to the first frame whose WebGL scatter (scattergl)
  canvas has drawn pixels.

    python bench/bench_pages_browser.py [--quick] [--json FILE]
"""
from __future__ import annotations

import math
import os

import common

# a click that takes over a second no longer feels like following a link; two is waiting
SWITCH_P50_S, SWITCH_MAX_S = 1.0, 2.0
# the page's point is its pictures: three seconds is about as long as one waits before wondering
GALLERY_S, POINTS_S = 3.0, 3.0

# (sidebar link, its address, the page's h1)
PAGES = [("Home", "/", "Classifier Lab"), ("Data", "/data", "Data"), ("My data", "/my_data", "My data"),
         ("Train", "/train", "Train a model"), ("Runs", "/runs", "Runs"), ("Sweeps", "/sweeps", "Sweeps"),
         ("Mistakes", "/mistakes", "Mistakes"), ("Label errors", "/label_errors", "Likely label errors"),
         ("Fixes", "/fixes", "Fixes"), ("Compare", "/compare", "Compare runs"), ("Predict", "/predict", "Predict"),
         ("Embedding map", "/embedding_map", "Embedding map"), ("Metrics", "/metrics", "Metrics"),
         ("Model", "/model", "Model"), ("Share", "/share", "Share a model")]
BY_NAME = {name: (path, title) for name, path, title in PAGES}
SETTLE_S = 0.5  # after a page is drawn, before the next click: its trailing work (iframes, charts) is not the next's

# Clicks the sidebar link to `path` and polls every animation frame until `until` holds. Returns ms from the click
# event's timestamp: started and ended of the script run (ended: the first frame it is no longer running), done, and
# gap, the longest time between frames (the page's thread busy: code loading, drawing); first_chart: the first page
# of this browser session to show a Plotly chart (the browser loads Plotly's code then). null if nothing came within
# two minutes.
CLICK_UNTIL = """async ({path, title, until}) => {
  const q = s => document.querySelector(s), main = '[data-testid=stMain] ';
  const state = () => q('[data-testid=stApp]')?.dataset.testScriptState;
  const titled = () => [...document.querySelectorAll(main + 'h1 [data-heading-text]')]
    .some(h => h.textContent.trim() === title);
  const page = () => state() === 'notRunning' && !q('[data-testid=stSkeleton]') && !q('[data-stale=true]') && titled();
  const gallery = () => [...document.querySelectorAll(main + '[data-testid=stImage] img')]
    .some(i => i.complete && i.naturalWidth > 0);
  const small = document.createElement('canvas');
  small.width = small.height = 64;
  const ctx = small.getContext('2d', {willReadFrequently: true});
  const points = () => {  // scattergl draws into a WebGL canvas (plotly keeps its drawing buffer): any pixel?
    const c = q(main + '.js-plotly-plot canvas.gl-canvas-context');
    if (!c || !c.width) return false;
    ctx.clearRect(0, 0, 64, 64);
    ctx.drawImage(c, 0, 0, 64, 64);
    const d = ctx.getImageData(0, 0, 64, 64).data;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true;
    return false;
  };
  const done = {page, gallery, points}[until];
  const link = [...document.querySelectorAll('[data-testid=stSidebarNav] a')]
    .find(a => new URL(a.href).pathname === path);
  let t0 = null;
  link.addEventListener('click', e => { t0 = e.timeStamp; }, {capture: true, once: true});
  link.click();
  const r = {started: null, ended: null, done: null, gap: 0};
  let last = 0;
  return await new Promise(resolve => {
    const frame = () => {
      const now = performance.now() - t0, s = state();
      r.gap = Math.max(r.gap, now - last);
      last = now;
      if (r.started === null && s !== 'notRunning') r.started = now;
      if (r.started !== null && r.ended === null && s === 'notRunning') r.ended = now;
      if (done()) {
        r.done = now;
        if (r.ended === null) r.ended = now;  // a run too short to be seen in a frame
        const chart = !!q(main + '.js-plotly-plot');
        r.first_chart = chart && !window.__chartSeen;
        window.__chartSeen = window.__chartSeen || chart;
        return resolve(r);
      }
      if (now > 120000) return resolve(null);
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  });
}"""


def session(browser, url: str):
    """A fresh browser session (nothing of the app cached in it) on Home, drawn: (context, page)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url)
    common.wait_idle(page, 240_000)
    page.wait_for_selector("[data-testid=stMain] h1", timeout=240_000)
    return context, page


def click(page, name: str, until: str = "page") -> dict:
    """Click page `name`'s sidebar link; {started, ended, done, gap} in seconds from the click, first_chart (see
    CLICK_UNTIL)."""
    path, title = BY_NAME[name]
    r = page.evaluate(CLICK_UNTIL, {"path": path, "title": title, "until": until})
    if r is None:
        raise TimeoutError(f"{name}: {until} not drawn within 2 minutes of the click")
    common.wait_idle(page, 240_000)
    page.wait_for_timeout(SETTLE_S * 1000)
    # started is null when the run was too short to be seen in a frame
    return {k: float("nan") if v is None else v / 1000 if k != "first_chart" else v for k, v in r.items()}


def orders(rounds: int, first: int = 0) -> list[list[str]]:
    """Every page once a round; round k steps through the list by a stride coprime to its length, a different one
    each round, so a page's predecessor changes from round to round."""
    names = [p[0] for p in PAGES]
    n = len(names)
    strides = [s for s in range(1, n) if math.gcd(s, n) == 1]
    out = []
    for k in range(first, first + rounds):
        stride = strides[k % len(strides)]
        out.append([names[(k + i * stride) % n] for i in range(n)])
    return out


def visit(page, order: list[str], at: str, log_as: str) -> tuple[dict, str]:
    """Click through `order` from page `at` (the first page comes later if it is `at`); ({page: timing}, the page
    the browser ends on)."""
    if order[0] == at:
        order = order[1:] + order[:1]
    out = {name: click(page, name) for name in order}
    slow = max(out, key=lambda n: out[n]["done"])
    middle = common.median([t["done"] for t in out.values()])
    common.log(f"  {log_as} (load {os.getloadavg()[0]:.1f}): median {middle:.2f} s, slowest {slow} "
               f"{out[slow]['done']:.2f} s")
    return out, order[-1]


def first_drawn(browser, url: str, name: str, until: str) -> dict:
    """A fresh session on Home, then the click on `name` until `until` is drawn."""
    context, page = session(browser, url)
    try:
        return click(page, name, until)
    finally:
        context.close()


def run(quick: bool) -> list[dict]:
    sessions, rounds, fresh = (1, 2, 1) if quick else (2, 4, 5)
    load0 = os.getloadavg()
    first, repeat = {}, {}  # page -> [timing, …]
    with common.app_in_chromium("bench-pages-") as (_, url, browser):
        # right after the server starts: the first person's first visits (server caches empty)
        cold_gallery = first_drawn(browser, url, "Mistakes", "gallery")
        cold_points = first_drawn(browser, url, "Embedding map", "points")
        context, page = session(browser, url)
        cold, _ = visit(page, orders(1)[0], "Home", "first session after the server started")
        context.close()
        k = 1
        for s in range(sessions):
            context, page = session(browser, url)
            at = "Home"
            for i, order in enumerate(orders(rounds, k)):
                times, at = visit(page, order, at, f"session {s + 1}, round {i + 1}")
                for name, t in times.items():
                    (first if i == 0 else repeat).setdefault(name, []).append(t)
            k += rounds
            context.close()
        gallery = [first_drawn(browser, url, "Mistakes", "gallery") for _ in range(fresh)]
        points = [first_drawn(browser, url, "Embedding map", "points") for _ in range(fresh)]
    return rows(first, repeat, cold, gallery, points, cold_gallery, cold_points, sessions, rounds,
                common.load_note(load0))


def rows(first, repeat, cold, gallery, points, cold_gallery, cold_points, sessions, rounds, load) -> list[dict]:
    def p50(ts, key: str = "done") -> float:
        return common.percentile([t[key] for t in ts], 50)

    def top(ts) -> float:
        return max(t["done"] for t in ts)

    target = f"p50 ≤ {SWITCH_P50_S:g} s, max ≤ {SWITCH_MAX_S:g} s"

    def ok(ts) -> bool:
        return p50(ts) <= SWITCH_P50_S and top(ts) <= SWITCH_MAX_S

    def parts(ts) -> str:  # server (the script run) or browser (a busy page thread)
        return (f"script run ended at {p50(ts, 'ended'):.2f} s, longest frame gap {p50(ts, 'gap'):.2f} s"
                + (" (p50s)" if len(ts) > 1 else ""))

    def row(metric: str, value, unit: str = "s", **kw) -> dict:
        return common.row("pages_browser", metric, value, unit, **kw)

    out = []
    for name, _, _ in PAGES:
        ts, fs = repeat[name], first[name]
        out.append(row(f"{name}: page switch → drawn, repeat visits, p50", p50(ts),
                       spread=common.spread([t["done"] for t in ts], "{:.2f}"), target=target, ok=ok(ts),
                       notes=f"max {top(ts):.2f} s over {len(ts)}; {parts(ts)}; first visit in a session: p50 "
                             f"{p50(fs):.2f} s, max {top(fs):.2f} s over {len(fs)}, {parts(fs)}"))
    for what, group in (("repeat visits", repeat), ("first visit in a session", first)):
        slow = max(group, key=lambda n: p50(group[n]))
        meds = [p50(ts) for ts in group.values()]
        out.append(row(f"page switch → drawn, {what}: median of the pages' p50", common.median(meds),
                       spread=common.spread(meds, "{:.2f}"), target=target + " every page",
                       ok=all(ok(ts) for ts in group.values()),
                       notes=f"measured in the browser: from the click on the sidebar link to the first frame with "
                             f"the script run ended, no skeleton or stale element and the page's h1 shown; "
                             f"slowest {slow} p50 {p50(group[slow]):.2f} s, max {top(group[slow]):.2f} s; "
                             f"{sessions} session(s) × {rounds} rounds; {load}"))
    charted = [(n, t) for n, ts in first.items() for t in ts if t["first_chart"]]
    ts = [t for _, t in charted]
    out.append(row("page switch → drawn, a session's first page with a Plotly chart, p50", p50(ts),
                   spread=common.spread([t["done"] for t in ts], "{:.2f}"),
                   notes=f"{', '.join(sorted({n for n, _ in charted}))}: the browser loads Plotly's code; {parts(ts)}"))
    slow = sorted(cold, key=lambda n: -cold[n]["done"])[:3]
    out.append(row("page switch → drawn, first session after the server starts: slowest page", cold[slow[0]]["done"],
                   notes="server caches empty but for what the first visits to Mistakes and the Embedding map (below) "
                         "filled: " + ", ".join(f"{n} {cold[n]['done']:.2f} s ({parts([cold[n]])})" for n in slow)))
    for name, what, ts, cold_t, limit, cold_why in (
            ("Mistakes", "first gallery image loaded", gallery, cold_gallery, GALLERY_S,
             "the first page after start-up to need the model: it is loaded and the test set predicted"),
            ("Embedding map", "first points drawn", points, cold_points, POINTS_S,
             "right after Mistakes' first visit: the embeddings and their projection computed")):
        v, spread = p50(ts), common.spread([t["done"] for t in ts], "{:.2f}")
        out.append(row(f"{name}: click → {what}, fresh session", v, spread=spread,
                       target=f"≤ {limit:g} s", ok=v <= limit,
                       notes=f"measured in the browser, {len(ts)} fresh session(s) from Home, server caches warm"
                             + ("; the session's first Plotly chart" if all(t["first_chart"] for t in ts) else "")
                             + f"; {parts(ts)}"))
        out.append(row(f"{name}: click → {what}, first after the server starts", cold_t["done"],
                       target=f"≤ {limit:g} s", ok=cold_t["done"] <= limit,
                       notes=f"measured in the browser; {cold_why}; {parts([cold_t])}"))
    return out


if __name__ == "__main__":
    raise SystemExit(common.main(run))
