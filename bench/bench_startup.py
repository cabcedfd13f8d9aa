"""Start-up: from `streamlit run` to the home page's title visible in headless Chromium. The first start
of the run is reported as cold, the median of the later ones as warm. Target warm <= 3 s.

    python bench/bench_startup.py [--quick]
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import common

TARGET_S = 3.0


def one_start(browser, workdir: Path) -> tuple[float, float]:
    """(seconds to the health endpoint answering, seconds to the title visible), from Popen."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    t0 = time.perf_counter()
    proc, url = common.start_app(str(workdir / "runs"), str(workdir / "streamlit.log"))
    try:
        healthy = common.wait_healthy(proc, url) - t0
        page.goto(url)
        expect(page.locator("[data-testid=stMain] h1")).to_have_text("Classifier Lab", timeout=120_000)
        title = time.perf_counter() - t0
    finally:
        context.close()
        common.stop_app(proc)
    return healthy, title


def run(quick: bool) -> list[dict]:
    from playwright.sync_api import sync_playwright

    starts = 4 if quick else 6
    workdir = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    (workdir / "runs").mkdir()
    results = []
    with sync_playwright() as pw:
        browser = common.launch_browser(pw)  # the browser's own start is not the app's
        try:
            for i in range(starts):
                results.append(one_start(browser, workdir))
                common.log(f"start-up {i + 1}/{starts}: server answers after {results[-1][0]:.2f} s, "
                           f"title visible after {results[-1][1]:.2f} s")
                time.sleep(1.0)
        finally:
            browser.close()
    warm = [t for _, t in results[1:]]
    warm_health = [h for h, _ in results[1:]]
    median = common.median(warm)
    return [
        common.row("start-up", "streamlit run → title visible, warm", median, "s", spread=common.spread(warm),
                   target=f"≤ {TARGET_S:g} s", ok=median <= TARGET_S,
                   notes=f"median of starts 2–{starts}, headless Chromium, empty runs folder"),
        common.row("start-up", "streamlit run → title visible, cold", results[0][1], "s",
                   notes="first start of this run (OS file cache as other processes left it)"),
        common.row("start-up", "streamlit run → server answers, warm", common.median(warm_health), "s",
                   spread=common.spread(warm_health)),
    ]


if __name__ == "__main__":
    raise SystemExit(common.main(run))
