"""Scenario 2: Predict with the bundled MNIST model: draw a 1, clear, draw a 7, upload a digit, and nothing drawn."""
import re

import numpy as np
import pytest
from PIL import Image

from browser_helpers import (ROOT, assert_no_error, drawing_canvas, expect, main, open_app, open_page, screenshot,
                             stroke, use_bundled, wait_idle)

pytestmark = pytest.mark.browser

DRAW_HINT = "Draw a digit on the canvas."
UPLOAD_HINT = "Upload an image to classify it."
UPLOAD_INDEX = 15  # a test digit of the offline MNIST subset (a 0) that the bundled model reads correctly


def top_class(page):
    """The big 'class · confidence' line above the bars."""
    return main(page).locator("h3").filter(has_text=re.compile(r" · [\d.]+%$"))


def bars(page):
    return main(page).locator(".st-key-predict_bars .js-plotly-plot")


def model_input(page):
    """The 'What the model sees' picture (its address changes with its content)."""
    return main(page).locator("[data-testid=stImage]").filter(has_text="What the model sees").locator("img")


def expect_prediction(page, label: str, replacing: str | None = None) -> str:
    """The prediction for a new input: top class `label`, ten bars; returns the model-input picture's address."""
    if replacing:  # the page showed another input's prediction before: wait until this one's replaces it
        expect(model_input(page)).not_to_have_attribute("src", replacing, timeout=60_000)
    expect(top_class(page)).to_have_text(re.compile(rf"^{re.escape(label)} · [\d.]+%$"), timeout=60_000)
    wait_idle(page)
    expect(bars(page)).to_have_count(1, timeout=30_000)
    expect(bars(page)).to_be_visible()
    expect(bars(page).locator("g.trace.bars path")).to_have_count(10)  # one bar per digit
    expect(model_input(page)).to_be_visible()
    assert_no_error(page)
    return model_input(page).get_attribute("src")


def expect_no_prediction(page, hint: str) -> None:
    expect(main(page).locator("[data-testid=stAlertContentInfo]").filter(has_text=hint)).to_be_visible()
    expect(bars(page)).to_have_count(0)
    expect(top_class(page)).to_have_count(0)
    wait_idle(page)


def upload_png(path) -> tuple:
    """A real MNIST test digit as a person would photograph it: dark ink on light paper, 140 px."""
    data = np.load(ROOT / "assets" / "data" / "mnist_subset.npz")
    digit, label = data["x_test"][UPLOAD_INDEX], int(data["y_test"][UPLOAD_INDEX])
    Image.fromarray(255 - digit).resize((140, 140), Image.BILINEAR).save(path)
    return path, str(label)


def test_draw_clear_draw_upload(page, tmp_path, screenshot_dir):
    open_app(page)
    open_page(page, "Predict", timeout=120_000)
    use_bundled(page, "MNIST digits", timeout=120_000)
    expect(main(page).get_by_text(re.compile(r"^Model: mnist · .* \(bundled\)$"))).to_be_visible()

    expect(page.locator("canvas.upper-canvas")).to_be_visible(timeout=60_000)
    expect_no_prediction(page, DRAW_HINT)  # nothing drawn yet: a hint, no bars
    canvas = drawing_canvas(page)

    # a 1: one vertical stroke down the middle
    stroke(page, canvas, [(140, 45), (140, 235)])
    expect_prediction(page, "1")

    # Clear gives an empty canvas and takes the prediction away
    main(page).get_by_role("button", name=re.compile("Clear")).click()
    expect_no_prediction(page, DRAW_HINT)
    canvas = drawing_canvas(page)  # a new, empty one

    # a 7: the top bar, then the diagonal (the canvas sends the image each time the pen lifts)
    stroke(page, canvas, [(75, 60), (205, 60)])
    expect(model_input(page)).to_be_visible(timeout=60_000)  # the bar alone is read as something already
    wait_idle(page)
    bar_only = model_input(page).get_attribute("src")
    stroke(page, canvas, [(205, 60), (170, 130), (125, 235)])
    expect_prediction(page, "7", replacing=bar_only)
    screenshot(page, screenshot_dir / "predict.png")

    # upload: switch the input, see the upload hint, then give it a PNG
    main(page).locator("[data-testid=stRadio]").get_by_text("Upload", exact=True).click()
    expect_no_prediction(page, UPLOAD_HINT)
    png, label = upload_png(tmp_path / "digit.png")
    main(page).locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(png)
    expect(main(page).get_by_text("digit.png")).to_be_visible()
    expect_prediction(page, label)
