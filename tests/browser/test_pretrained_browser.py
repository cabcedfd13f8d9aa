"""Scenario (issue 25): a few photos a class in an own dataset, the pretrained EfficientNet-Lite0 trained on them in
the browser, and a held-out photo, uploaded and then held up to the camera on Predict, named by its class. Photos
are classified on the server (Keras), whatever the model: the browser's ONNX copy only serves the drawing pad."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from browser_helpers import (ROOT, assert_no_error, expect, main, open_app, open_page, server_probs,
                             train_on_train_page, wait_idle)

pytestmark = pytest.mark.browser

NAME = "clothes"
CLASSES = {"Bag": 8, "Sneaker": 7, "Trouser": 1}  # folder -> Fashion-MNIST label: three classes unlike in shape
PER_CLASS = 10
SIDE = 96  # as bench/bench_fewshot.py: a small product photo, RGB
HELD_OUT = "Bag"


def photo(item: np.ndarray):
    """A 28×28 Fashion-MNIST item as a SIDE×SIDE RGB photo."""
    from PIL import Image

    return Image.fromarray(item).resize((SIDE, SIDE), Image.BILINEAR).convert("RGB")


def make_photos(folder):
    """PER_CLASS training photos a class in class subfolders, and a test-split photo of HELD_OUT (never trained on)."""
    from core.data.datasets import DatasetUnavailable, load_dataset

    try:
        ds = load_dataset("fashion_mnist", offline=True)
    except DatasetUnavailable as e:
        pytest.skip(str(e))
    for name, label in CLASSES.items():
        (folder / name).mkdir(parents=True)
        for i in np.flatnonzero(ds.y_train == label)[:PER_CLASS]:
            photo(ds.x_train[i]).save(folder / name / f"{i}.png")
    held = folder.parent / "held_out.png"
    photo(ds.x_test[np.flatnonzero(ds.y_test == CLASSES[HELD_OUT])[0]]).save(held)
    return folder, held


def test_pretrained_on_a_few_photos_names_a_held_out_photo_uploaded_or_filmed(app, filmed_page, tmp_path):
    from PIL import Image

    source, held = make_photos(tmp_path / "photos")
    page = filmed_page(Image.open(held).resize((480, 480), Image.BILINEAR))  # the same photo before the webcam
    # into the server's data folder (next to its runs folder), as a person would import a folder from the shell
    out = subprocess.run([sys.executable, "-m", "core", "data", "import", str(source), "--name", NAME], cwd=ROOT,
                         env={**os.environ, "CLASSIFIER_LAB_RUNS": str(app.runs_dir)},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]

    open_app(page)
    run_id, accuracy = train_on_train_page(page, f"{NAME} (my data)", "EfficientNet-Lite0 (pretrained)", epochs=5)
    assert accuracy >= 0.8, f"{run_id}: test accuracy {accuracy:.0%} on photos ImageNet features tell apart"

    open_page(page, "Predict")
    m = main(page)
    expect(m.get_by_text(re.compile(rf"^Model: {NAME} · efficientnet_lite0 · .*\({run_id}\)$"))).to_be_visible()
    m.locator("[data-testid=stRadio]").filter(has_text="Input").get_by_text("Upload", exact=True).click()
    wait_idle(page)
    m.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(held)
    named_held_out(page)

    m.locator("[data-testid=stRadio]").filter(has_text="Input").get_by_text("Camera", exact=True).click()
    wait_idle(page)
    expect(m.get_by_text("Take a photo to classify it.")).to_be_visible()
    # as a person clicks once they see themselves: a snapshot taken before the first frame holds nothing
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stMain] video')]"
                           ".some(v => v.readyState >= 2 && v.videoWidth > 0)", timeout=60_000)
    m.get_by_role("button", name="Take Photo").click()
    named_held_out(page)


def named_held_out(page) -> None:
    """The prediction's heading and the server's bars name HELD_OUT top, over exactly our classes."""
    m = main(page)
    expect(m.locator("h3").filter(has_text=re.compile(r" · [\d.]+%$"))).to_have_text(
        re.compile(rf"^{HELD_OUT} · [\d.]+%$"), timeout=120_000)
    expect(m.locator(".st-key-predict_bars .js-plotly-plot")).to_be_visible(timeout=60_000)
    wait_idle(page)
    probs = server_probs(page)
    assert set(probs) == set(CLASSES) and abs(sum(probs.values()) - 1) < 1e-3, probs
    assert max(probs, key=probs.get) == HELD_OUT, probs
    assert_no_error(page)
