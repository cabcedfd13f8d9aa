"""Scenario: make a dataset on My data — a folder upload for one class, a zip for another, canvas drawings for
the third — train `auto` on it, and have the Predict page read a new drawing."""
import re
import shutil
import zipfile

import pytest

from browser_helpers import (assert_no_error, assert_same_bars, drawing_canvas, drawing_pad, expect, main, open_app,
                             open_page, pad, pad_pixels, pad_probs, screenshot, server_probs, stroke,
                             train_on_train_page, wait_idle)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NAME = "toys"
PER_CLASS = 16
DRAWINGS = 8


def zigzag(dx: float = 0, dy: float = 0, k: float = 1.0) -> list[tuple[float, float]]:
    """A zigzag across the canvas, moved by (dx, dy) and scaled by k."""
    return [(140 + dx + k * x, 140 + dy + k * y) for x, y in ((-90, -30), (-45, 40), (0, -30), (45, 40), (90, -30))]


def uploader(page, label: str):
    """The file input of the uploader labelled `label`."""
    box = main(page).locator("[data-testid=stFileUploader]").filter(has_text=label)
    return box.locator("[data-testid=stFileUploaderDropzoneInput]")


def expect_added(page, text: str) -> None:
    expect(main(page).locator("[data-testid=stAlertContentSuccess]").filter(has_text=text)).to_be_visible(
        timeout=120_000)
    wait_idle(page)
    assert_no_error(page)


def add_class(page, name: str) -> None:
    m = main(page)
    m.get_by_label("New class").fill(name)
    m.get_by_role("button", name=re.compile("Add class")).click()
    expect_added(page, f"Class {name} added")


def test_make_train_predict_own_dataset(page, tmp_path, screenshot_dir):
    from core.data import synthetic

    shapes = synthetic.make(tmp_path / "shapes", "shapes", classes=2, per_class=PER_CLASS, seed=3)
    folder = shapes / "circle"
    archive = tmp_path / "squares.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted((shapes / "square").iterdir()):
            zf.write(f, f"square/{f.name}")
    shutil.rmtree(shapes / "square")

    open_app(page)
    open_page(page, "My data")
    m = main(page)
    m.get_by_label("Name of the new dataset").fill(NAME)
    m.get_by_role("button", name=re.compile("Create")).click()
    expect_added(page, f"Dataset {NAME} created")

    # a folder for "circle"
    add_class(page, "circle")
    uploader(page, "A whole folder of images for circle").set_input_files(folder)
    expect_added(page, f"Added {PER_CLASS} image(s) (circle: {PER_CLASS})")

    # a zip of class subfolders makes "square"
    uploader(page, "Import a .zip of class subfolders").set_input_files(archive)
    expect_added(page, f"Added {PER_CLASS} image(s) (square: {PER_CLASS})")

    # drawings for "zigzag"
    add_class(page, "zigzag")
    m.locator("[data-testid=stRadio]").filter(has_text="Add images by").get_by_text("Draw", exact=True).click()
    wait_idle(page)
    for i in range(DRAWINGS):
        canvas = drawing_canvas(page)
        canvas.scroll_into_view_if_needed()  # below the fold: a stroke off screen is lost
        stroke(page, canvas, zigzag(dx=(i % 3 - 1) * 25, dy=(i % 4 - 1.5) * 20, k=0.8 + 0.05 * i))
        add = m.get_by_role("button", name=re.compile("Add drawing"))
        expect(add).to_be_enabled(timeout=30_000)
        add.click()
        expect_added(page, "Drawing added to zigzag")
    expect(m.get_by_text(re.compile(rf"^{NAME} — my data: 3 classes, {2 * PER_CLASS + DRAWINGS} images"))).to_be_visible()
    screenshot(page, screenshot_dir / "my_data.png")

    train_on_train_page(page, f"{NAME} (my data)", "Auto (small data)", epochs=2)  # 60 steps: plenty here

    open_page(page, "Predict")
    expect(m.get_by_text(re.compile(rf"^Model: {NAME} · auto"))).to_be_visible(timeout=60_000)
    # a model that converts to ONNX runs in the browser (the pad); `auto` today resizes with antialiasing
    # (ScaleAndTranslate), which ONNX cannot hold: then the server's canvas, and one line saying why
    note = m.get_by_text(re.compile(r"^Predictions run on the server: this model cannot run in the browser \(ONNX: "))
    expect(m.locator(".st-key-draw_pad iframe").or_(note)).to_be_visible(timeout=120_000)
    if note.count():
        canvas = drawing_canvas(page, timeout=60)
        canvas.scroll_into_view_if_needed()
        stroke(page, canvas, zigzag(dx=10, dy=15, k=0.9))
        top = m.locator("h3").filter(has_text=re.compile(r" · [\d.]+%$"))
        expect(top).to_have_text(re.compile(r"^zigzag · [\d.]+%$"), timeout=60_000)
        assert_no_error(page)
        return
    canvas = drawing_pad(page)
    canvas.scroll_into_view_if_needed()
    stroke(page, canvas, zigzag(dx=10, dy=15, k=0.9))
    expect(pad(page).locator("#top")).to_have_text(re.compile(r"^zigzag · [\d.]+%$"), timeout=60_000)
    seen = m.locator("[data-testid=stImage]").filter(has_text="What the model sees")
    expect(seen).to_be_visible(timeout=60_000)  # the server got the pen lift's model input
    wait_idle(page)
    expect(m.locator("[data-testid=stAlertContentWarning]")).to_have_count(0)  # Keras reads it as the browser did
    assert_no_error(page)
    browser = pad_probs(page)

    # the same drawing on the server's path (on black, as the canvas stores it): the same bars
    from core.data.uploads import canvas_image

    canvas_image(pad_pixels(page)).save(tmp_path / "drawing.png")
    m.locator("[data-testid=stRadio]").filter(has_text="Input").get_by_text("Upload", exact=True).click()
    m.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(tmp_path / "drawing.png")
    expect(m.locator(".st-key-predict_bars .js-plotly-plot")).to_be_visible(timeout=60_000)
    wait_idle(page)
    assert_same_bars(browser, server_probs(page))
