"""A small sweep from the Sweeps page: two real runs through the engine, ranked, drawn, the best one used."""
import re

import pytest

from browser_helpers import assert_no_error, expect, main, open_app, open_page, screenshot, sidebar, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_run_a_small_sweep_and_use_its_best_run(page, app, screenshot_dir):
    open_app(page)  # MNIST is the active dataset: its offline subset loads fast
    open_page(page, "Sweeps", heading="Sweeps")
    m = main(page)
    # defaults: dense, learning rates 0.001 and 0.003, batch 32, 1 epoch; a 300-image subset keeps it short
    box = m.get_by_role("spinbutton", name="Training samples (0 = all)")
    box.fill("300")
    box.press("Tab")
    m.get_by_role("button", name=re.compile("Start sweep")).click()

    expect(m.get_by_text(re.compile(r"0 of 2 runs ended|1 of 2 runs ended|2 of 2 runs ended"))).to_be_visible(
        timeout=60_000)
    expect(m.get_by_text(re.compile(r"2 of 2 runs ended"))).to_be_visible(timeout=600_000)
    best = m.get_by_text(re.compile(r"Best so far: \S+ · validation accuracy"))
    expect(best).to_be_visible(timeout=30_000)
    best_run = re.search(r"Best so far: (\S+) ·", best.inner_text()).group(1)
    sweep_file = next((app.runs_dir / ".sweeps").glob("*.json"))
    assert best_run in sweep_file.read_text()
    # the ranked table (★ on the best row) and the parallel-coordinates chart
    expect(m.locator("[data-testid=stDataFrame]")).to_be_visible()
    expect(m.locator(".st-key-sweep_parcoords")).to_be_visible()
    # parcoords draws with WebGL, in software in headless Chromium: minutes on a loaded 2-core machine
    chart = m.locator(".st-key-sweep_parcoords .js-plotly-plot")
    expect(chart).to_be_visible(timeout=300_000)
    assert chart.evaluate("gd => gd.data[0].type") == "parcoords"
    assert chart.evaluate("gd => gd.data[0].dimensions.map(d => d.label)") == [
        "arch", "learning rate (log)", "val accuracy"]
    assert_no_error(page)
    screenshot(page, screenshot_dir / "sweeps.png")

    m.get_by_role("button", name=re.compile("Use the best run")).click()
    wait_idle(page)
    expect(sidebar(page).locator("[data-testid=stSelectbox]").filter(has_text="Model")
           .get_by_role("combobox")).to_have_value(re.compile(re.escape(best_run)))
    assert_no_error(page)
