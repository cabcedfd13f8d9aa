"""Runs page: select the bundled MNIST model, download one export; its zip's model card names the data and accuracy."""
import json
import re
import zipfile

import pytest

from browser_helpers import ROOT, assert_no_error, expect, main, open_app, open_page, screenshot, tick_row, wait_idle

pytestmark = pytest.mark.browser

FORMAT = "ONNX"  # a real conversion (tf2onnx) checked with onnxruntime, and the quickest of them


def test_download_an_export_from_the_runs_page(page, screenshot_dir):
    open_app(page)
    open_page(page, "Runs")
    m = main(page)
    expect(m.locator("[data-testid=stDataFrame] tr").filter(has_text="cnn_strong")).to_have_count(2)  # the bundled pair
    tick_row(page, "mnist")
    wait_idle(page)
    m.get_by_text("Export to other runtimes").click()
    button = m.get_by_role("button", name=re.compile(re.escape(FORMAT)))
    expect(button).to_be_visible(timeout=60_000)  # the Runs page's 2 s training fragment keeps a busy machine busier
    expect(m.get_by_text("Built and checked when you click").first).to_be_visible()
    button.scroll_into_view_if_needed()

    # the zip is built (exported, loaded back, compared) on the click, then downloaded
    with page.expect_download(timeout=540_000) as download:  # TF starts in a fresh process
        button.click(timeout=120_000)
    assert download.value.suggested_filename == "mnist-onnx.zip"
    with zipfile.ZipFile(download.value.path()) as z:
        names = set(z.namelist())
        assert {"mnist-onnx/model.onnx", "mnist-onnx/predict.py"} <= names, names
        card = z.read("mnist-onnx/MODEL_CARD.md").decode()
    assert "# MNIST digits classifier" in card and "Dataset: **MNIST digits**" in card
    accuracy = json.loads((ROOT / "assets/models/mnist/run.json").read_text())["test_accuracy"]  # as bundled
    assert f"Test accuracy: **{accuracy:.2%}**" in card
    assert "0–255" in card and "centre of mass" in card

    # and its checks now stand beside its download button
    check = m.get_by_text(re.compile(r"^✓ top-1 agreement \d+\.\d% · max \|Δp\| [\d.e-]+ · 3\.\d\d MB"))
    expect(check).to_have_count(1, timeout=120_000)
    wait_idle(page)
    assert_no_error(page)
    screenshot(page, screenshot_dir / "export.png")
