"""Scenario 3: train a Fashion-MNIST dense model, watch the live chart grow, leave and come back, Stop, find the run."""
import re

import pytest

from browser_helpers import (expect, fill_train_form, main, open_app, open_page, plotly_points, screenshot,
                             tick_row, wait_for, wait_idle)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EPOCHS = 20  # of all 54,000 training images: long on any machine, so Stop always comes first (and ends it)
CHART_POINTS_CAP = 1000  # ui.charts.MAX_POINTS: the live chart draws at most this many


def batches_shown(page) -> int | None:
    """The live chart's caption: 'N batches · at most … points drawn'."""
    caption = main(page).get_by_text(re.compile(r"^[\d,]+ batches · "))
    if not caption.count():
        return None
    try:
        return int(caption.first.inner_text(timeout=2_000).split(" ")[0].replace(",", ""))
    except Exception:  # redrawn by the next refresh between count() and inner_text()
        return None


def chart_points(page) -> int:
    try:
        return plotly_points(main(page).locator(".st-key-batch_chart"))
    except Exception:  # mid-redraw
        return 0


def progress(page):
    return main(page).locator("[data-testid=stProgress]")


def runs_row(page, *texts):
    row = main(page).locator("[data-testid=stDataFrame] tr")
    for text in texts:
        row = row.filter(has_text=text)
    return row


def test_train_watch_leave_return_stop(page, screenshot_dir):
    open_app(page)
    m = fill_train_form(page, {"Epochs": EPOCHS})
    expect(m.get_by_role("spinbutton", name="Training samples (0 = all)")).to_have_value("0")
    m.get_by_role("button", name=re.compile("Start training")).click()

    # the live view: status, then a chart whose point count grows while we watch
    expect(m.get_by_text("Training runs in the background")).to_be_visible()
    expect(m.locator("h3", has_text="fashion_mnist · dense")).to_be_visible()
    first = wait_for(lambda: batches_shown(page), timeout=180, message="the first batches on the live chart")
    points_first = wait_for(lambda: chart_points(page), timeout=30, message="points in the live chart")
    expect(progress(page)).to_contain_text("training")
    later = wait_for(lambda: (n := batches_shown(page)) and n > first and n, timeout=60,
                     message=f"more than {first} batches")
    points_later = wait_for(lambda: (p := chart_points(page)) and (p > points_first or p >= CHART_POINTS_CAP) and p,
                            timeout=30, message=f"more than {points_first} points drawn")
    assert later > first and points_later > points_first or points_later >= CHART_POINTS_CAP
    screenshot(page, screenshot_dir / "train.png")

    # elsewhere in the app meanwhile: the run is on the Runs page, still running
    open_page(page, "Runs")
    expect(runs_row(page, "fashion_mnist", "dense", "running")).to_have_count(1, timeout=30_000)
    open_page(page, "Home")
    expect(m.get_by_text(re.compile(r"Training in progress \(fashion_mnist · dense\)"))).to_be_visible()

    # back on Train: still training, and further along
    open_page(page, "Train", heading="Train a model")
    expect(m.get_by_text("Training runs in the background")).to_be_visible()
    expect(progress(page)).to_contain_text("training", timeout=10_000)
    wait_for(lambda: (n := batches_shown(page)) and n > later, timeout=60, message=f"more than {later} batches")

    # Stop ends it after the current batch and keeps the model
    m.get_by_role("button", name=re.compile("Stop")).click()
    expect(progress(page)).to_contain_text("stopped", timeout=120_000)
    result = m.locator("[data-testid=stAlertContentSuccess]").filter(has_text=re.compile(r"stopped: test accuracy"))
    expect(result).to_be_visible(timeout=30_000)
    run_id = re.search(r"Run (\S+) stopped", result.inner_text()).group(1)
    expect(m.get_by_role("button", name=re.compile("Stop"))).to_have_count(0)
    expect(m.get_by_role("button", name=re.compile("Start training"))).to_be_visible()

    open_page(page, "Runs")
    expect(runs_row(page, run_id)).to_have_count(1, timeout=30_000)
    expect(runs_row(page, run_id)).to_contain_text("stopped")

    # tick it and the bundled Fashion-MNIST model in the table: their curves side by side
    for run in (run_id, "fashion_mnist"):
        tick_row(page, run)
        wait_idle(page)
    expect(m.locator(".st-key-compare_chart .js-plotly-plot")).to_be_visible(timeout=30_000)
    screenshot(page, screenshot_dir / "runs.png")
