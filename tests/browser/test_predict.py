"""Scenario 2: Predict with the bundled MNIST model: draw a 1, clear, draw a 7, upload a digit, and nothing drawn; on
the drawing pad (the model in the browser) and on the server's canvas (?predict=server). The pad's bars follow the pen
before it lifts, and at pen lift they agree with the server's prediction for the same drawing."""
import re

import numpy as np
import pytest
from PIL import Image

from browser_helpers import (ROOT, assert_no_error, assert_same_bars, drawing_canvas, drawing_pad, expect, main,
                             open_app, open_page, pad, pad_pixels, pad_probs, screenshot, server_probs, stroke,
                             use_bundled, wait_for, wait_idle)

pytestmark = pytest.mark.browser

DRAW_HINT = "Draw a digit on the canvas."
UPLOAD_HINT = "Upload an image to classify it."
UPLOAD_INDEX = 15  # a test digit of the offline MNIST subset (a 0) that the bundled model reads correctly
TOP = re.compile(r"^(\S+) · [\d.]+%$")


def top_class(page, path: str = "server"):
    """The big 'class · confidence' line above the bars."""
    if path == "pad":
        return pad(page).locator("#top")
    return main(page).locator("h3").filter(has_text=TOP)


def bars(page):
    return main(page).locator(".st-key-predict_bars .js-plotly-plot")


def model_input(page):
    """The 'What the model sees' picture (its address changes with its content)."""
    return main(page).locator("[data-testid=stImage]").filter(has_text="What the model sees").locator("img")


def expect_prediction(page, label: str, replacing: str | None = None, path: str = "server") -> str:
    """The prediction for a new input: top class `label`, ten bars; returns the model-input picture's address."""
    if replacing:  # the page showed another input's prediction before: wait until this one's replaces it
        expect(model_input(page)).not_to_have_attribute("src", replacing, timeout=60_000)
    expect(top_class(page, path)).to_have_text(re.compile(rf"^{re.escape(label)} · [\d.]+%$"), timeout=60_000)
    wait_idle(page)
    if path == "pad":  # one bar per digit, the probabilities of one softmax
        expect(pad(page).locator("#bars .row")).to_have_count(10)
        expect(pad(page).locator("#result")).to_be_visible()
        probs = pad_probs(page)
        assert len(probs) == 10 and abs(sum(probs.values()) - 1) < 1e-4 and max(probs, key=probs.get) == label, probs
        expect(bars(page)).to_have_count(0)  # the server draws no bars of its own
    else:
        expect(bars(page)).to_have_count(1, timeout=30_000)
        expect(bars(page)).to_be_visible()
        expect(bars(page).locator("g.trace.bars path")).to_have_count(10)  # one bar per digit
    expect(model_input(page)).to_be_visible()
    assert_no_error(page)
    return model_input(page).get_attribute("src")


def expect_no_prediction(page, hint: str, path: str = "server") -> None:
    if path == "pad":
        expect(pad(page).locator("#hint")).to_have_text(hint)
        expect(pad(page).locator("#result")).to_be_hidden()
        expect(model_input(page)).to_have_count(0)
    else:
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


def open_predict(page, path: str):
    """Predict on the bundled MNIST model, on the pad or the server's canvas: the drawing surface."""
    open_app(page)
    if path == "server":  # the address asks for it, as a link would
        page.goto("/predict?predict=server")
        expect(main(page).locator("h1")).to_have_text("Predict", timeout=120_000)
        wait_idle(page, 120_000)
    else:
        open_page(page, "Predict", timeout=120_000)
    use_bundled(page, "MNIST digits", timeout=120_000)
    if path == "server":
        expect(main(page).get_by_text("Predictions run on the server: asked for by the page's address")).to_be_visible()
    expect(main(page).get_by_text(re.compile(r"^Model: mnist · .* \(bundled\)$"))).to_be_visible()
    if path == "pad":
        expect(main(page).get_by_text(re.compile("^Predictions run on the server"))).to_have_count(0)
        return drawing_pad(page)
    expect(page.locator("canvas.upper-canvas")).to_be_visible(timeout=60_000)
    return drawing_canvas(page)


@pytest.mark.parametrize("path", ["pad", "server"])
def test_draw_clear_draw_upload(page, tmp_path, screenshot_dir, path):
    canvas = open_predict(page, path)
    expect_no_prediction(page, DRAW_HINT, path)  # nothing drawn yet: a hint, no bars

    # a 1: one vertical stroke down the middle
    stroke(page, canvas, [(140, 45), (140, 235)])
    expect_prediction(page, "1", path=path)

    # Clear gives an empty canvas and takes the prediction away
    clear = pad(page).get_by_role("button", name="Clear") if path == "pad" else \
        main(page).get_by_role("button", name=re.compile("Clear"))
    clear.click()
    expect_no_prediction(page, DRAW_HINT, path)
    canvas = drawing_pad(page) if path == "pad" else drawing_canvas(page)  # a new, empty one

    # a 7: the top bar, then the diagonal (the server hears of the drawing each time the pen lifts)
    stroke(page, canvas, [(75, 60), (205, 60)])
    expect(model_input(page)).to_be_visible(timeout=60_000)  # the bar alone is read as something already
    wait_idle(page)
    bar_only = model_input(page).get_attribute("src")
    stroke(page, canvas, [(205, 60), (170, 130), (125, 235)])
    expect_prediction(page, "7", replacing=bar_only, path=path)
    screenshot(page, screenshot_dir / ("predict.png" if path == "pad" else "predict_server.png"))

    # upload: switch the input, see the upload hint, then give it a PNG
    main(page).locator("[data-testid=stRadio]").get_by_text("Upload", exact=True).click()
    expect_no_prediction(page, UPLOAD_HINT)
    png, label = upload_png(tmp_path / "digit.png")
    main(page).locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(png)
    expect(main(page).get_by_text("digit.png")).to_be_visible()
    expect_prediction(page, label)


def shown(page) -> int:
    return int(pad(page).locator("body").get_attribute("data-shown") or 0)


@pytest.mark.quick
def test_bars_follow_the_pen_and_agree_with_the_server(page, tmp_path):
    canvas = open_predict(page, "pad")
    box = canvas.bounding_box()
    at = lambda x, y: (box["x"] + x, box["y"] + y)

    # pen down, half a vertical stroke: bars appear while the pen is still down, and the server has heard nothing
    page.mouse.move(*at(140, 45))
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(*at(140, 45 + 9.5 * k))
    expect(pad(page).locator("#result")).to_be_visible(timeout=60_000)
    first, seen_at = pad_probs(page), shown(page)
    assert len(first) == 10 and seen_at > 0, first
    # the stroke goes on (an L), pen still down: the bars follow it
    for k in range(1, 11):
        page.mouse.move(*at(140, 140 + 9.5 * k))
    for k in range(1, 11):
        page.mouse.move(*at(140 + 7 * k, 235))
    wait_for(lambda: shown(page) > seen_at and pad_probs(page) != first, 60, interval=0.1,
             message="the bars to change while the pen is down")
    expect(model_input(page)).to_have_count(0)  # nothing was sent to the server: the bars came from the browser
    page.mouse.up()

    # pen lift: the bars show the whole drawing, and the server gets its model input
    drawn = int(pad(page).locator("body").get_attribute("data-drawn"))
    wait_for(lambda: shown(page) == drawn, 60, interval=0.1, message="the bars for the drawing as the pen left it")
    browser = pad_probs(page)
    expect(model_input(page)).to_be_visible(timeout=60_000)
    wait_idle(page)
    expect(main(page).locator("[data-testid=stAlertContentWarning]")).to_have_count(0)  # Keras agrees on the class
    assert_no_error(page)

    # the same pixels, uploaded: the server's own prediction (preprocessing and Keras) gives the same bars
    pixels = pad_pixels(page)
    assert pixels[..., 3].any() and not pixels[..., 3].all()  # ink on a transparent canvas, as the server's one sends
    Image.fromarray(pixels, "RGBA").save(tmp_path / "drawing.png")
    main(page).locator("[data-testid=stRadio]").get_by_text("Upload", exact=True).click()
    expect_no_prediction(page, UPLOAD_HINT)
    main(page).locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(tmp_path / "drawing.png")
    expect_prediction(page, max(browser, key=browser.get))
    assert_same_bars(browser, server_probs(page))


DRAW_JS = """([strokes, width]) => {  // strokes on a transparent 280 x 280 canvas, as the pad draws them
    const c = document.createElement('canvas'), g = c.getContext('2d');
    c.width = c.height = 280;
    for (const points of strokes) points.forEach((p, i) => ClassifierLab.ink(g, i ? points[i - 1] : null, p, width));
    window.drawing = g.getImageData(0, 0, 280, 280);
    return Array.from(window.drawing.data);
}"""
PREPROCESS_JS = """([shape, background]) => {
    try { return Array.from(ClassifierLab.preprocess(window.drawing, shape, null, background)); }
    catch (e) { if (e instanceof ClassifierLab.BlankImage) return null; throw e; }
}"""


def test_own_datasets_drawings_go_on_black_as_on_the_server(browser):
    """web/classifier.js with background 0 (the pad, on a model of an own dataset) against the server's path for such a
    drawing (core.data.uploads.canvas_image, then preprocess): the same model input, to the pixel, gray and colour."""
    from core.analysis.inference import BlankImage, preprocess
    from core.data.uploads import canvas_image
    from core.export import webpage

    drawings = [([[(60, 70), (220, 70), (120, 230)]], 20), ([[(140, 40), (140, 240)], [(80, 140), (200, 140)]], 12),
                ([[(70, 200), (110, 60), (150, 200), (190, 60), (230, 200)]], 32)]
    context = browser.new_context()
    try:
        page = context.new_page()
        page.add_script_tag(path=str(webpage.WEB / "classifier.js"))
        for strokes, width in drawings:
            rgba = np.asarray(page.evaluate(DRAW_JS, [strokes, width]), np.uint8).reshape(280, 280, 4)
            assert 0 < rgba[..., 3].mean() < 255 and len(np.unique(rgba[..., 3])) > 2  # ink, with soft edges
            for shape in ((28, 28), (180, 180, 3), (64, 48, 3)):
                try:
                    want = preprocess(canvas_image(rgba), shape).ravel()
                except BlankImage:
                    want = None
                got = page.evaluate(PREPROCESS_JS, [list(shape), 0])
                assert (got is None) == (want is None), (width, shape)
                if want is not None:
                    assert np.array_equal(np.asarray(got, np.uint8), want), (width, shape)
    finally:
        context.close()
