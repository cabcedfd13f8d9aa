"""Scenario 3: train a Fashion-MNIST dense model, watch the live chart grow, leave and come back, Stop, find the run;
the live chart appends what arrives and a reload draws the whole history again."""
import json
import re

import numpy as np
import pytest

from browser_helpers import (LIVE, batches_shown, curves_every_second, expect, fill_train_form, live_chart, main,
                             open_app, open_page, run_meta, screenshot, start_training, tick_row, wait_for, wait_idle)

from core.engine.feed import request_stop

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EPOCHS = 20  # of all 54,000 training images: long on any machine, so Stop always comes first (and ends it)
LONG_EPOCHS = 200  # the form's maximum: a run that only ends when stopped (or with its server)


def newest_drawn(page) -> int:
    """The newest batch the live chart has drawn (0 before its first points)."""
    return (live_chart(page).get("x") or [0])[-1]


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
    expect(m.get_by_text(LIVE)).to_be_visible()
    expect(m.locator("h3", has_text="fashion_mnist · dense")).to_be_visible()
    curves_every_second(page)  # the chart's next points in 1 s, not 5 s: less training to wait for
    first = wait_for(lambda: batches_shown(page), timeout=180, message="the first batches on the live chart")
    drawn_first = wait_for(lambda: newest_drawn(page), timeout=120, message="points in the live chart")
    expect(progress(page)).to_contain_text("training")
    later = wait_for(lambda: (n := batches_shown(page)) and n > first and n, timeout=60,
                     message=f"more than {first} batches")
    wait_for(lambda: newest_drawn(page) > drawn_first, timeout=120, message=f"points past batch {drawn_first} drawn")
    screenshot(page, screenshot_dir / "train.png")

    # elsewhere in the app meanwhile: the run is on the Runs page, still running
    open_page(page, "Runs")
    expect(runs_row(page, "fashion_mnist", "dense", "running")).to_have_count(1, timeout=30_000)
    open_page(page, "Home")
    expect(m.get_by_text(re.compile(r"Training in progress \(fashion_mnist · dense\)"))).to_be_visible()

    # back on Train: still training, and further along
    open_page(page, "Train", heading="Train a model")
    expect(m.get_by_text(LIVE)).to_be_visible()
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


def feed_curves(runs_dir, run_id: str) -> tuple[list[int], list[float]]:
    """Every batch's step and loss in the run's feed, as its worker wrote them."""
    steps, losses = [], []
    for line in (runs_dir / run_id / "feed.jsonl").read_text().splitlines():
        try:
            batches = json.loads(line).get("b", ())
        except ValueError:  # a line being written
            break
        steps += [b[0] for b in batches]
        losses += [b[1] for b in batches]
    return steps, losses


def assert_whole_history(drawn: dict, runs_dir, run_id: str) -> None:
    """The chart draws the run from its first batch: every k-th of the batches it has had, and the newest, each at
    the smoothed loss Plotly's chart would show (ui.charts.smooth over the feed)."""
    from ui.charts import smooth
    from ui.live_chart import stride

    steps, losses = feed_curves(runs_dir, run_id)
    n = drawn["batches"]
    assert drawn["run"] == run_id and 0 < n <= len(steps), (drawn["run"], n, len(steps))
    k = stride(n)
    picked = list(range(0, n, k)) + ([n - 1] if (n - 1) % k else [])
    assert drawn["k"] == k and drawn["x"] == [steps[i] for i in picked], (k, drawn["x"][:5], drawn["x"][-3:])
    assert drawn["x"][0] == 1
    np.testing.assert_allclose(drawn["loss"], smooth(losses[:n])[picked], rtol=1e-9)


def test_the_live_chart_appends_new_points_and_a_reload_draws_the_whole_history(app, page):
    open_app(page)
    fill_train_form(page, {"Epochs": LONG_EPOCHS})
    run_id = start_training(page)
    try:
        curves_every_second(page)  # each wait for new points below is then 1 s of training, not 5 s
        start = wait_for(lambda: (d := live_chart(page)) and d["batches"] and d, timeout=300,
                         message="the live chart's first points")

        # while it trains, updates carry only the new points and the chart appends them (a new stride k redraws it
        # whole)
        grown = wait_for(lambda: (d := live_chart(page)) and d["batches"] > start["batches"]
                         and d["last"] == "appended" and d, timeout=120, message="new points appended")
        assert_whole_history(grown, app.runs_dir, run_id)

        # a reload is a new session: its chart gets the whole history at once, then appends again
        page.reload()
        expect(main(page).get_by_text(LIVE)).to_be_visible()
        curves_every_second(page)
        back = wait_for(lambda: (d := live_chart(page)) and d["batches"] >= grown["batches"] and d, timeout=120,
                        message="the live chart after the reload")
        assert back["resets"] >= 1
        assert_whole_history(back, app.runs_dir, run_id)
        after = wait_for(lambda: (d := live_chart(page)) and d["batches"] > back["batches"]
                         and d["last"] == "appended" and d, timeout=120, message="new points appended after the reload")
        assert_whole_history(after, app.runs_dir, run_id)
    finally:
        # the server is shared by the tests: end the run now (it would train for hours and hold the only training
        # slot), after a failure too, and let it end before the next test
        request_stop(app.runs_dir / run_id)
        wait_for(lambda: run_meta(app.runs_dir, run_id).get("status") != "running", timeout=300,
                 message="the run to stop")
    assert run_meta(app.runs_dir, run_id)["status"] == "stopped"
