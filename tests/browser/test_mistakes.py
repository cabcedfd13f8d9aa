"""Scenario 4: click a confusion-matrix cell of a bundled model; the gallery shows only that pair; open one image."""
import csv
import re

import pytest

from browser_helpers import (assert_no_error, expect, main, open_app, open_page, screenshot, use_bundled,
                             wait_for, wait_idle)

from core.data.datasets import FASHION_CLASSES

pytestmark = pytest.mark.browser

DATASET = "Fashion-MNIST"
PAGE_SIZE = 24  # app_pages/mistakes.py shows this many images per page


def test_cell_filters_the_gallery_and_details_open(page, screenshot_dir):
    open_app(page)
    open_page(page, "Mistakes")
    use_bundled(page, DATASET, timeout=180_000)
    m = main(page)
    expect(m.get_by_text(re.compile(rf"^Model \S+ · .* \(bundled\) on {re.escape(DATASET)}"))).to_be_visible()
    chart = page.locator(".st-key-cm_chart")
    cells = chart.locator("g.trace.scatter path.point")
    expect(cells.first).to_be_attached(timeout=180_000)
    # the chart the page opened with (MNIST's digits) stays drawn until Plotly draws this model's
    columns = chart.locator(".xaxislayer-above .xtick text")
    wait_for(lambda: tuple(t.strip() for t in columns.all_text_contents()) == FASHION_CLASSES, timeout=60,
             message=f"the confusion matrix of the {DATASET} model")
    wait_idle(page)
    assert_no_error(page)

    # read the matrix as a person does: the numbers printed in its cells, rows true, columns predicted
    counts = [int(t) for t in chart.locator("g.trace.scatter g.textpoint text").evaluate_all(
        "els => els.map(e => e.textContent)")]
    n = round(len(counts) ** 0.5)
    assert n * n == len(counts) and n >= 2, f"{len(counts)} cells"
    names = [t.strip() for t in chart.locator(".xaxislayer-above .xtick text").evaluate_all(
        "els => els.map(e => e.textContent)")]  # the columns, left to right (the rows run upwards)
    assert len(names) == n, names
    count, true, pred = max((counts[t * n + p], t, p) for t in range(n) for p in range(n) if t != p)
    assert count > 0, "the model makes no mistakes to look at"

    # hover the cell until its tooltip names it, then click it
    cell = cells.nth(true * n + pred)
    cell.scroll_into_view_if_needed()
    box = cell.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y, steps=5)
    hover = chart.locator("g.hovertext")
    expect(hover).to_contain_text(f"true {names[true]}")
    expect(hover).to_contain_text(f"predicted {names[pred]}")
    expect(hover).to_contain_text(f"{count} images")
    page.mouse.click(x, y)

    # the filters follow the click, and the gallery shows that (true, predicted) pair only
    expect(m.locator("[data-testid=stSelectbox]").filter(has_text="True class").get_by_role("combobox")
           ).to_have_value(names[true], timeout=60_000)
    expect(m.locator("[data-testid=stSelectbox]").filter(has_text="Predicted class").get_by_role("combobox")
           ).to_have_value(names[pred])
    expect(m.get_by_text(re.compile(rf"^{count:,} images · showing 1–{min(count, PAGE_SIZE)}$"))).to_be_visible()
    wait_idle(page)
    captions = m.locator("[data-testid=stImageCaption]").all_inner_texts()
    want = re.compile(rf"^Label: {re.escape(names[true])} \| Predict: {re.escape(names[pred])} \(\d+%\)$")
    assert len(captions) == min(count, PAGE_SIZE), captions
    assert all(want.match(c) for c in captions), captions

    # the CSV holds exactly the filtered mistakes (it is built on the click, not on every rerun)
    with page.expect_download(timeout=60_000) as download:
        m.get_by_role("button", name="Download these mistakes as CSV").click()
    rows = list(csv.DictReader(open(download.value.path(), newline="")))
    assert len(rows) == count, (len(rows), count)
    assert {(r["true label"], r["predicted label"]) for r in rows} == {(names[true], names[pred])}

    # Details: the image on top with its confidence bars (predicted red, true blue)
    m.get_by_role("button", name="Details").first.click()
    detail = m.locator(".st-key-detail_bars .js-plotly-plot")
    expect(detail).to_be_visible(timeout=30_000)
    expect(detail.locator("g.trace.bars path")).to_have_count(n)
    expect(m.get_by_text(re.compile(r"^Test image #\d+: red = predicted class, blue = true class\.$"))).to_be_visible()
    expect(m.get_by_role("button", name="Close")).to_be_visible()
    wait_idle(page)
    assert_no_error(page)
    screenshot(page, screenshot_dir / "mistakes.png")
