"""The web-page export in Chromium: exported by the CLI, unzipped and opened from its folder (file://). It agrees with
Keras on 100 test images; drawing, uploading and the camera (Chromium's fake device filming a digit on paper) each
give the right class; its JavaScript preprocessing gives the app's model input on drawings, photos and scans."""
import base64
import importlib.util
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from browser_helpers import FAKE_CAMERA, ROOT, expect, write_y4m

from core import config
from core.analysis.inference import BlankImage, predict, preprocess
from core.data.images import open_image
from core.export import webpage
from core.model import compat
from core.store import runs

pytestmark = pytest.mark.browser

TIMEOUT = 600  # s for the CLI export on a busy 2-core machine
READY = "document.body.dataset.ready === 'true'"
SHOWN = "!document.getElementById('result').hidden"


@pytest.fixture(scope="session")
def exported(tmp_path_factory, subprocess_env):
    """`python -m core export --model mnist --format webpage` once: (its JSON result, the unzipped page folder)."""
    if webpage.missing():
        pytest.skip(f"web-page export {webpage.missing()}")
    out = tmp_path_factory.mktemp("webpage")
    proc = subprocess.run([sys.executable, "-m", "core", "export", "--model", "mnist", "--format", "webpage",
                           "--out", out, "--json", "--runs-dir", out / "runs"], cwd=ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    with zipfile.ZipFile(result["zip"]) as z:
        z.extractall(out / "unzipped")
    return result, out / "unzipped" / "mnist-webpage"


def open_page(context, folder):
    """The page from its folder, model loaded; no script error and no request beyond file:, blob: and data:."""
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on("request", lambda r: problems.append(f"network: {r.url}")
            if not r.url.startswith(("file:", "blob:", "data:")) else None)
    page.goto((folder / "index.html").as_uri())
    page.wait_for_function(READY, timeout=120_000)
    page.problems = problems
    return page


@pytest.fixture
def shared(browser, exported):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = open_page(context, exported[1])
    yield page
    assert page.problems == []
    context.close()


def bars(page) -> dict[str, float]:
    return {r.get_attribute("data-class"): float(r.get_attribute("data-p"))
            for r in page.locator("#bars .row").all()}


def top(page) -> str:
    p = bars(page)
    assert len(p) == 10 and abs(sum(p.values()) - 1) < 1e-3, p
    return max(p, key=p.get)


def seen(page) -> np.ndarray:
    """The 'What the model sees' canvas as a 28×28 array."""
    rgba = page.evaluate("() => { const c = document.getElementById('seen');"
                         " return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }")
    return np.asarray(rgba, np.uint8).reshape(28, 28, 4)[..., 0]


def test_export_is_checked_in_chromium_and_sized(exported):
    result, folder = exported
    assert result["ok"] and result["n"] == 200, result
    assert result["top1_agreement"] == 1.0 and result["max_abs_dprob"] <= 1e-4, result
    assert result["latency_ms"] > 0 and result["bytes"] == webpage.size(folder)
    assert {p.name for p in folder.iterdir()} == {"index.html", "classifier.js", "page.js", "ort.wasm.min.js",
                                                   "runtime.js", "model.js", "MODEL_CARD.md"}
    card, page = (folder / "MODEL_CARD.md").read_text(), (folder / "index.html").read_text()
    size = f"{result['bytes'] / 1e6:.1f} MB"
    assert "opened from its folder" in card and f"page size: {size}" in card and "100.00%" in card
    assert "<h2>Checked on export</h2>" in page and f"This page: {size}." in page  # the card, rendered
    assert "{{" not in page.split("-->", 1)[1] and "<!--card-->" not in page


def test_the_check_runs_beside_a_running_asyncio_loop(browser, exported, mnist):
    """The export's check from a thread whose asyncio loop runs (here this process's Playwright session; for a
    person, a Jupyter notebook): Playwright's sync API refuses such a thread, so the check takes one of its own."""
    import asyncio

    _, folder = exported
    assert asyncio.get_running_loop().is_running()  # (raises RuntimeError where no loop runs)
    probs, times = webpage.measure(folder, mnist.x_test[:3].astype(np.float32), 2)
    assert probs.shape == (3, 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-4) and len(times) == 2


@pytest.mark.quick
def test_page_from_its_folder_agrees_with_keras_on_100_test_images(shared, mnist):
    x = mnist.x_test[np.linspace(0, len(mnist.x_test) - 1, 100).astype(int)]
    ref = predict(compat.load_model(runs.resolve("mnist").model_path), x)
    data = base64.b64encode(x.astype(np.float32).tobytes()).decode()
    out = shared.evaluate(webpage.MEASURE_JS, [data, len(x), 0])
    probs = np.asarray(out["probs"], np.float32).reshape(ref.shape)
    assert (probs.argmax(1) == ref.argmax(1)).all()
    assert np.abs(probs - ref).max() <= 1e-4


def test_drawing_a_one_follows_the_pen_and_matches_the_app(shared):
    pad = shared.locator("#pad")
    box = pad.bounding_box()
    shared.mouse.move(box["x"] + 140, box["y"] + 40)
    shared.mouse.down()
    for y in range(40, 241, 10):
        shared.mouse.move(box["x"] + 140 + (y - 40) / 50, box["y"] + y)
    shared.wait_for_function(SHOWN)  # bars while the pen is still down
    shared.mouse.up()
    shared.wait_for_function("document.getElementById('status').textContent.startsWith('Predicted')")
    assert top(shared) == "1"
    rgba = np.asarray(shared.evaluate("() => Array.from(document.getElementById('pad').getContext('2d')"
                                      ".getImageData(0, 0, 280, 280).data)"), np.uint8).reshape(280, 280, 4)
    assert np.array_equal(seen(shared), preprocess(rgba, (28, 28), box=20))  # the app's input, to the pixel


def test_uploading_real_test_digits_gives_their_class(shared, mnist, tmp_path):
    shared.click("#tab-upload")
    for i, (index, paper) in enumerate([(0, False), (1, False), (2, True)]):
        digit = mnist.x_test[index]  # white on black as in MNIST, or dark pen on paper, bigger
        img = Image.fromarray(255 - digit).resize((112, 112), Image.BILINEAR) if paper else Image.fromarray(digit)
        path = tmp_path / f"digit{i}.png"
        img.save(path)
        shared.set_input_files("#file", str(path))
        shared.wait_for_function(SHOWN, timeout=30_000)  # a new picture hides the last one's bars until it is read
        assert top(shared) == str(mnist.y_test[index])
        assert np.array_equal(seen(shared), preprocess(open_image(path), (28, 28), box=20))
        shared.set_input_files("#file", [])


def test_camera_photo_of_a_digit_on_paper_gives_its_class(browser, exported, mnist, tmp_path):
    index = 3
    paper = Image.new("L", (640, 480), 235)  # dark ink on light paper, filmed
    paper.paste(Image.fromarray(255 - mnist.x_test[index]).resize((300, 300), Image.BILINEAR), (170, 90))
    write_y4m(tmp_path / "digit.y4m", paper)
    camera = browser.browser_type.launch(executable_path=str(config.CHROMIUM.get()), args=[
        *webpage.BROWSER_ARGS, *FAKE_CAMERA, f"--use-file-for-fake-video-capture={tmp_path / 'digit.y4m'}"])
    try:
        page = open_page(camera.new_context(), exported[1])
        page.click("#tab-camera")
        page.click("#start")
        expect(page.locator("#snap")).to_be_enabled(timeout=30_000)
        page.click("#snap")
        page.wait_for_function(SHOWN, timeout=30_000)
        assert top(page) == str(mnist.y_test[index])
        assert page.problems == []
    finally:
        camera.close()


def _drawn_digits():
    spec = importlib.util.spec_from_file_location("make_drawn_digits", ROOT / "scripts" / "make_drawn_digits.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, mod.load(ROOT / "assets" / "data" / "drawn_digits.npz")


def test_javascript_preprocessing_gives_the_apps_model_input(browser):
    """web/classifier.js against core.analysis.inference.preprocess on the same pixels: canvases and scans to the
    pixel; photos within 1 of 255 on a few pixels (their paper plane is fitted in float32 by BLAS in numpy)."""
    mod, d = _drawn_digits()
    rng = np.random.default_rng(0)
    cases = []
    for medium, n in (("canvas", 12), ("photo", 12), ("scan", 12)):
        for i in rng.choice(np.flatnonzero(d["medium"] == medium), n, replace=False):
            src = mod.image(d, int(i))
            img = src if isinstance(src, np.ndarray) else np.asarray(open_image(src).convert("RGBA"))
            cases.append((medium, img, src if isinstance(src, np.ndarray) else open_image(src), (28, 28), 20))
    for i in rng.choice(np.flatnonzero(d["medium"] == "photo"), 4, replace=False):  # a colour model's input
        photo = open_image(mod.image(d, int(i))).convert("RGB")
        cases.append(("colour", np.asarray(photo.convert("RGBA")), photo, (64, 48, 3), None))
    context = browser.new_context()
    try:
        page = context.new_page()
        page.add_script_tag(path=str(webpage.WEB / "classifier.js"))
        for medium, rgba, source, shape, box in cases:
            try:
                want = preprocess(source, shape, box=box).ravel()
            except BlankImage:
                want = None
            got = page.evaluate("""([b64, w, h, shape, box]) => {
                const data = Uint8ClampedArray.from(atob(b64), c => c.charCodeAt(0));
                try { return Array.from(ClassifierLab.preprocess({data, width: w, height: h}, shape, box)); }
                catch (e) { if (e instanceof ClassifierLab.BlankImage) return null; throw e; }
            }""", [base64.b64encode(np.ascontiguousarray(rgba).tobytes()).decode(), rgba.shape[1], rgba.shape[0],
                   list(shape), box])
            assert (got is None) == (want is None), medium
            if want is None:
                continue
            diff = np.abs(np.asarray(got, int) - want.astype(int))
            if medium == "photo":
                assert diff.max() <= 1 and (diff > 0).sum() <= 3, (medium, diff.max(), (diff > 0).sum())
            else:
                assert diff.max() == 0, (medium, diff.max(), (diff > 0).sum())
    finally:
        context.close()
