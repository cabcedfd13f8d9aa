"""Scenario: relabel a mistake, retrain with fixes from Runs, and see the image as fixed on the Compare page."""
import re

import pytest

from browser_helpers import assert_no_error, expect, main, open_app, open_page, screenshot, tick_row, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_relabel_retrain_compare(fresh_app, open_session, screenshot_dir):
    from core.train.trainer import TrainConfig, train

    # a small model of our own (a dense net on 500 digits makes plenty of mistakes), in the server's runs folder
    made = train(TrainConfig(dataset="mnist", arch="dense", epochs=1, max_train_samples=500,
                             runs_dir=str(fresh_app.runs_dir)))
    assert made.meta["status"] == "finished", made.meta.get("error")
    before = made.id

    page = open_session(fresh_app)
    open_app(page)
    open_page(page, "Mistakes")
    m = main(page)
    expect(m.get_by_text(re.compile(rf"^Model .*\({re.escape(before)}\) on "))).to_be_visible(timeout=120_000)
    details = m.get_by_role("button", name="Details").first
    expect(details).to_be_visible(timeout=120_000)
    wait_idle(page, 120_000)
    details.click(no_wait_after=True)
    caption = m.get_by_text(re.compile(r"^Test image #\d+: red = predicted class"))
    expect(caption).to_be_visible(timeout=60_000)
    index = int(re.search(r"#(\d+)", caption.inner_text()).group(1))
    predicted = m.locator("[data-testid=stSelectbox]").filter(has_text="Relabel as").get_by_role("combobox")
    new_label = predicted.input_value()  # offered first: the class the model predicted
    m.get_by_role("button", name="Relabel", exact=True).click(no_wait_after=True)
    expect(page.get_by_text(f"Relabelled test image {index} as {new_label}")).to_be_visible(timeout=30_000)
    wait_idle(page)

    open_page(page, "Fixes")
    expect(m.get_by_text(f"relabel test #{index} as {new_label}")).to_be_visible()
    expect(m.get_by_text(re.compile(r"^1 active, 0 undone"))).to_be_visible()

    open_page(page, "Runs")
    expect(m.locator("[data-testid=stDataFrame] tr").filter(has_text=before)).to_have_count(1, timeout=120_000)
    tick_row(page, before)
    m.get_by_role("button", name="Retrain with fixes").click(no_wait_after=True)
    queued = m.get_by_text(re.compile(r"^Queued \S+: dense on mnist with fixes\."))
    expect(queued).to_be_visible(timeout=30_000)
    after = re.match(r"Queued (\S+):", queued.inner_text()).group(1)
    m.get_by_role("link", name="Compare it with this run").click()
    expect(m.locator("h1", has_text="Compare runs")).to_be_visible(timeout=60_000)

    # the page fills in by itself once the retrained run has finished
    fixed = m.get_by_text(re.compile(rf"^#{index} label fixed: \S+→{re.escape(new_label)}, predicted "))
    expect(fixed).to_be_visible(timeout=600_000)
    wait_idle(page)
    expect(m.locator("[data-testid=stSelectbox]").filter(has_text="After (B)").get_by_role("combobox")
           ).to_have_value(re.compile(re.escape(after)))
    expect(m.get_by_text(re.compile(r"^1 relabelled by fixes between them|relabelled by fixes"))).to_be_visible()
    assert_no_error(page)
    screenshot(page, screenshot_dir / "compare.png")
