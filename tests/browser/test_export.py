"""Runs page: select the bundled MNIST model, download one export; its zip's model card names the data and accuracy."""
import re
import zipfile

import pytest

from browser_helpers import assert_no_error, expect, main, open_app, open_page, screenshot, tick_row, wait_idle

pytestmark = pytest.mark.browser

FORMAT = "TFLite int8 (dynamic range)"  # the smallest zip, and a real conversion plus a LiteRT check


def test_download_an_export_from_the_runs_page(page, screenshot_dir):
    open_app(page)
    open_page(page, "Runs")
    m = main(page)
    expect(m.locator("[data-testid=stDataFrame] tr").filter(has_text="cnn_strong")).to_have_count(2)  # the bundled pair
    tick_row(page, "mnist")
    wait_idle(page)
    m.get_by_text("Export to other runtimes").click()
    button = m.get_by_role("button", name=re.compile(re.escape(FORMAT)))
    expect(button).to_be_visible()
    expect(m.get_by_text("Built and checked when you click").first).to_be_visible()

    # the zip is built (exported, loaded back, compared) on the click, then downloaded
    with page.expect_download(timeout=300_000) as download:
        button.click()
    assert download.value.suggested_filename == "mnist-tflite-int8.zip"
    with zipfile.ZipFile(download.value.path()) as z:
        names = set(z.namelist())
        assert {"mnist-tflite-int8/model_int8.tflite", "mnist-tflite-int8/predict.py"} <= names, names
        card = z.read("mnist-tflite-int8/MODEL_CARD.md").decode()
    assert "# MNIST digits classifier" in card and "Dataset: **MNIST digits**" in card
    assert "Test accuracy: **98.75%**" in card
    assert "0–255" in card and "centre of mass" in card

    # and its checks now stand beside its download button
    check = m.get_by_text(re.compile(r"^✓ top-1 agreement \d+\.\d% · max \|Δp\| [\d.e-]+ · 0\.\d\d MB"))
    expect(check).to_have_count(1, timeout=60_000)
    wait_idle(page)
    assert_no_error(page)
    screenshot(page, screenshot_dir / "export.png")
