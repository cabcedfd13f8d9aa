"""What a person does in the app, in Playwright terms: open a page, pick an option, draw, look for errors."""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

try:
    from playwright.sync_api import FrameLocator, Locator, Page, expect
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # then conftest skips every browser test, but the modules must still import
    FrameLocator = Locator = Page = expect = PlaywrightTimeout = None

ROOT = Path(__file__).resolve().parents[2]
ERRORS = "[data-testid=stException], [data-testid=stAlertContentError]"
MAX_SHOT_HEIGHT = 3200  # px: a full page, but not an endless one
LIVE = re.compile(r"^Training runs in ")  # the Train page's note above a queued or running run's live view
PROGRESS = re.compile(r"(\w+) · epoch (\d+)/(\d+) · batch (\d+)/(\d+)")
TRAIN_TIMEOUT = 900_000  # ms: a few hundred steps on a shared, busy 2-core machine
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]  # a camera, no prompt


def main(page: Page) -> Locator:
    return page.locator("[data-testid=stMain]")


def sidebar(page: Page) -> Locator:
    return page.locator("[data-testid=stSidebar]")


def wait_idle(page: Page, timeout: float = 60_000) -> None:
    """Until the script run has finished, nothing on the page is left over from an earlier run and every element
    is drawn: a chart still loading is a skeleton that grows when it draws, moving what is below it."""
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stApp]')?.dataset.testScriptState === 'notRunning'"
        " && !document.querySelector('[data-stale=true], [data-testid=stSkeleton]')", timeout=timeout)


def nav_links(page: Page) -> Locator:
    return page.locator("[data-testid=stSidebarNav] a")


def open_app(page: Page, timeout: float = 60_000) -> None:
    """The app's address, as a person types it: Home, drawn, with the app's sidebar navigation."""
    page.goto("/")
    expect(main(page).locator("h1")).to_have_text("Classifier Lab", timeout=timeout)
    wait_idle(page, timeout)


def open_page(page: Page, title: str, heading: str | re.Pattern | None = None, timeout: float = 90_000) -> None:
    """Click a page in the sidebar navigation; wait for its address, its heading and the end of its run."""
    link = page.locator("[data-testid=stSidebarNav]").get_by_role("link", name=re.compile(rf"{re.escape(title)}$"))
    address = link.get_attribute("href")
    link.click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(address)}/?(\?.*)?$"), timeout=timeout)
    h1 = main(page).locator("h1")
    if heading is not None:
        h1 = h1.filter(has_text=heading)
    expect(h1.first).to_be_visible(timeout=timeout)
    wait_idle(page, timeout)


def choose(page: Page, scope: Locator, label: str, option: str | re.Pattern) -> None:
    """Pick `option` in the selectbox labelled `label` inside `scope`."""
    box = scope.locator("[data-testid=stSelectbox]").filter(
        has=page.locator("[data-testid=stWidgetLabel]", has_text=re.compile(rf"^{re.escape(label)}$")))
    for attempt in range(3):
        box.click()
        try:
            page.get_by_role("option", name=option).first.click(timeout=10_000)
            break
        except PlaywrightTimeout:
            # a rerun from an earlier choice landed and redrew the box with its new options, closing the
            # open list: as a person would, let the page settle and open it again
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
            wait_idle(page)
    expect(box.get_by_role("combobox")).to_have_value(option)


def fill_train_form(page: Page, numbers: dict[str, int], dataset: str = "Fashion-MNIST",
                    arch: str | re.Pattern = re.compile(r"^Dense 128")) -> Locator:
    """Train page: choose the dataset and architecture and type these numbers (spin-box label → value);
    Start is left to the caller. Returns the page's main area."""
    open_page(page, "Train", heading="Train a model")
    m = main(page)
    choose(page, m, "Dataset", dataset)
    wait_idle(page)
    choose(page, m, "Architecture", arch)
    wait_idle(page)
    # a rerun from the choices above may still land after a number was typed and put the architecture's
    # preset back (wait_idle can look before that rerun has begun): type, let the page settle, read back
    for _ in range(5):
        for name, value in numbers.items():
            box = m.get_by_role("spinbutton", name=name)
            if box.input_value() != str(value):
                box.fill(str(value))
                box.press("Enter")
                wait_idle(page)
        page.wait_for_timeout(500)
        wait_idle(page)
        if all(m.get_by_role("spinbutton", name=n).input_value() == str(v) for n, v in numbers.items()):
            return m
    raise AssertionError(f"the Train form did not keep {numbers}")


def train_on_train_page(page: Page, dataset_title: str, arch_title: str | re.Pattern,
                        epochs: int) -> tuple[str, float]:
    """Today's Train page: choose, Start training, wait for the result line, make the run the active model;
    returns the run id and the test accuracy the line shows. (The one place to adapt when the Train page changes.)"""
    m = fill_train_form(page, {"Epochs": epochs}, dataset=dataset_title, arch=arch_title)
    m.get_by_role("button", name=re.compile("Start training")).click()
    result = m.locator("[data-testid=stAlertContentSuccess]").filter(has_text=re.compile(r"finished: test accuracy"))
    expect(result).to_be_visible(timeout=TRAIN_TIMEOUT)
    found = re.search(r"Run (\S+) finished: test accuracy ([\d.]+)%", result.inner_text())
    wait_idle(page)
    m.get_by_role("button", name=re.compile("Use as the active model")).click()
    expect(sidebar(page).get_by_role("combobox", name="Model")).to_have_value(re.compile(re.escape(found.group(1))))
    wait_idle(page)
    return found.group(1), float(found.group(2)) / 100


def use_bundled(page: Page, dataset_title: str, timeout: float = 60_000) -> None:
    """Sidebar: the dataset and its bundled model (not whatever a test trained meanwhile)."""
    side = sidebar(page)
    choose(page, side, "Dataset", dataset_title)
    wait_idle(page, timeout)
    choose(page, side, "Model", re.compile(r"\(bundled\)"))
    wait_idle(page, timeout)


def tick_row(page: Page, run_id: str) -> None:
    """Click the checkbox of the runs table's row whose first cell is `run_id` (the table is a canvas)."""
    table = main(page).locator("[data-testid=stDataFrame]")
    firsts = [t.strip() for t in table.locator("tr").evaluate_all(
        "rows => rows.map(r => (r.querySelector('td, th') || {}).textContent || '')")]
    row = firsts.index(run_id)  # 0 is the header
    box = table.bounding_box()
    height = box["height"] / len(firsts)  # header and rows are the same height
    page.mouse.click(box["x"] + 15, box["y"] + height * (row + 0.5))


def assert_no_error(page: Page) -> None:
    """No exception box and no st.error anywhere on the page."""
    errors = page.locator(ERRORS)
    if errors.count():
        raise AssertionError("error on the page:\n" + "\n---\n".join(errors.all_inner_texts()))


def drawing_canvas(page: Page, timeout: float = 30) -> Locator:
    """The drawing canvas, once it lies over the black square a person sees.

    streamlit-drawable-canvas draws in a shadow root whose stylesheet loads after the canvases appear; until
    then (long enough on a busy machine) the drawing layer sits below the square and a stroke is lost.
    """
    upper, square = page.locator("canvas.upper-canvas"), page.locator("canvas.dc-background-canvas")

    def ready():
        if upper.count() != 1 or square.count() != 1:
            return False
        a, b = upper.bounding_box(), square.bounding_box()
        return bool(a and b and a["width"] > 0 and abs(a["x"] - b["x"]) < 1 and abs(a["y"] - b["y"]) < 1)

    wait_for(ready, timeout, interval=0.2, message="the drawing canvas over the visible square")
    return upper


def pad(page: Page) -> FrameLocator:
    """Predict's drawing pad (ui/predict_pad.py): the canvas and the confidence bars, in the component's frame."""
    return page.frame_locator(".st-key-draw_pad iframe")


def drawing_pad(page: Page, timeout: float = 120_000) -> Locator:
    """The pad's canvas, once the pad has loaded the model into the browser."""
    expect(pad(page).locator("body[data-ready=true]")).to_have_count(1, timeout=timeout)
    return pad(page).locator("#pad")


def pad_probs(page: Page) -> dict[str, float]:
    """The pad's bars: class name -> probability (six decimals)."""
    pairs = pad(page).locator("#bars .row").evaluate_all("rs => rs.map(r => [r.dataset.class, r.dataset.p])")
    return {name: float(p) for name, p in pairs if p is not None}


PAD_PIXELS_JS = """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height);
    let s = ''; for (let i = 0; i < d.data.length; i += 8192) s += String.fromCharCode(...d.data.subarray(i, i + 8192));
    return [c.height, c.width, btoa(s)]; }"""


def pad_pixels(page: Page):
    """The pad's drawing as the model in the browser reads it: (H, W, 4) RGBA, transparent where nothing is drawn."""
    import base64

    import numpy as np

    h, w, data = pad(page).locator("#pad").evaluate(PAD_PIXELS_JS)
    return np.frombuffer(base64.b64decode(data), np.uint8).reshape(h, w, 4)


def server_probs(page: Page) -> dict[str, float]:
    """The server's confidence bars (Predict's Plotly chart, in percent): class name -> probability."""
    gd = main(page).locator(".st-key-predict_bars .js-plotly-plot")
    names, percent = gd.evaluate("gd => [Array.from(gd._fullData[0].y), Array.from(gd._fullData[0].x)]")
    return {name: p / 100 for name, p in zip(names, percent)}


def assert_same_bars(browser: dict[str, float], server: dict[str, float], tolerance: float = 1e-4) -> None:
    """The pad's bars and the server's for the same drawing: the same classes, every probability within `tolerance`."""
    assert browser.keys() == server.keys(), (browser, server)
    assert max(abs(server[n] - browser[n]) for n in server) < tolerance, (browser, server)


def stroke(page: Page, canvas: Locator, points: list[tuple[float, float]], steps: int = 10) -> None:
    """One pen stroke through `points` (canvas pixels): press, move in small steps, lift."""
    box = canvas.bounding_box()
    assert box is not None, "the drawing canvas is not visible"
    at = [(box["x"] + x, box["y"] + y) for x, y in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for (xa, ya), (xb, yb) in zip(at, at[1:]):
        for k in range(1, steps + 1):
            page.mouse.move(xa + (xb - xa) * k / steps, ya + (yb - ya) * k / steps)
    page.mouse.up()


# points plotly drew for a trace of chart `gd`: an empty trace still has one placeholder entry, x false
DRAWN_POINTS_JS = "(gd, t) => (gd && gd.calcdata && gd.calcdata[t] || []).filter(p => Number.isFinite(p.x)).length"


def plotly_points(chart: Locator, trace: int = 0) -> int:
    """How many points a plotly chart in the page draws for one trace (0 before it has drawn)."""
    return chart.locator(".js-plotly-plot").first.evaluate(f"gd => ({DRAWN_POINTS_JS})(gd, {trace})")


def screenshot(page: Page, path: Path, settle_ms: int = 800) -> Path:
    """The whole page (Streamlit scrolls inside stMain, so the viewport grows to fit it), then back; only when
    CLASSIFIER_LAB_SCREENSHOTS asks for the README's pictures (each costs a relayout at full height and a wait)."""
    if not os.environ.get("CLASSIFIER_LAB_SCREENSHOTS"):
        return path
    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]')?.scrollHeight || 0")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(height, MAX_SHOT_HEIGHT))})
    try:
        page.mouse.move(size["width"] - 2, size["height"] // 2)  # no hover label or sidebar button in the picture
        page.wait_for_timeout(settle_ms)  # charts redraw for the new size
        page.screenshot(path=str(path), style=".modebar-container { display: none !important; }")
    finally:
        page.set_viewport_size(size)
    return path


def wait_for(predicate, timeout: float, interval: float = 0.5, message: str = "condition"):
    """Poll a Python predicate until it returns something truthy; that value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(interval)


# --- the Train page's live view, and the run folders behind it ------------------------------------------------

def start_training(page: Page, timeout: float = 180_000) -> str:
    """Click Start training; wait for the live view; the run id that the page's address now names."""
    main(page).get_by_role("button", name=re.compile("Start training")).click()
    expect(main(page).get_by_text(LIVE)).to_be_visible(timeout=timeout)
    expect(page).to_have_url(re.compile(r"[?&]run=[^&]+"), timeout=timeout)
    return run_in_url(page)


def run_in_url(page: Page) -> str | None:
    """The run named by ?run= in the page's address."""
    return parse_qs(urlparse(page.url).query).get("run", [None])[0]


def train_progress(page: Page) -> tuple[str, int, int, int, int] | None:
    """(status, epoch, epochs, batch, steps) from the Train page's progress bar, or None (none, mid-redraw)."""
    try:
        texts = main(page).locator("[data-testid=stProgress]").all_inner_texts()
    except Exception:  # redrawn meanwhile
        return None
    found = [m for m in map(PROGRESS.search, texts) if m]
    if not found:
        return None
    status, *numbers = found[-1].groups()
    return (status, *map(int, numbers))


def progress_is(page: Page, status: str, epochs: int, steps: int, batch: int | None = None) -> bool:
    """The Train page's progress bar shows `status` for a run of this many epochs and steps (at `batch`)."""
    p = train_progress(page)
    return bool(p) and p[0] == status and (p[2], p[4]) == (epochs, steps) and batch in (None, p[3])


def batches_shown(page: Page) -> int | None:
    """The live chart's caption: 'N batches · at most … points drawn'; None without a chart."""
    caption = main(page).get_by_text(re.compile(r"^[\d,]+ batches · "))
    try:
        return int(caption.first.inner_text(timeout=2_000).split(" ")[0].replace(",", "")) if caption.count() else None
    except Exception:  # redrawn by the next refresh between count() and inner_text()
        return None


def result_line(page: Page, status: str) -> Locator:
    """The Train page's result for a run that ended `status` (finished/stopped) with a model."""
    return main(page).locator("[data-testid=stAlertContentSuccess]").filter(
        has_text=re.compile(rf"Run \S+ {status}: test accuracy"))


def run_meta(runs_dir: Path, run_id: str) -> dict:
    """A run's run.json as it is on disk now ({} while it is missing or being replaced)."""
    try:
        return json.loads((Path(runs_dir) / run_id / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def feed_batches(runs_dir: Path, run_id: str) -> int:
    """How many batches the run's worker has written to its feed so far."""
    try:
        lines = (Path(runs_dir) / run_id / "feed.jsonl").read_text().splitlines()
    except OSError:
        return 0
    count = 0
    for line in lines:
        try:
            count += len(json.loads(line).get("b", ()))
        except ValueError:  # a line being written
            continue
    return count


def running_with_pid(runs_dir: Path, run_id: str) -> int | None:
    """The worker's pid once the run is training (run.json: status running, with pid), else None."""
    meta = run_meta(runs_dir, run_id)
    return meta.get("pid") if meta.get("status") == "running" and meta.get("pid") else None


# the live view's chart (ui/live_chart.js), inside its component's shadow root: Playwright's CSS pierces it, a page
# function has to open it
LIVE_CHART = "[data-testid=stMain] .st-key-batch_chart .live-curves"
LIVE_POINTS_JS = """() => {
    const host = [...document.querySelectorAll('[data-testid=stMain] .st-key-batch_chart *')].find(e => e.shadowRoot);
    const box = host && host.shadowRoot.querySelector('.live-curves');
    return box ? Number(box.dataset.points || 0) : 0;
}"""


def live_chart(page: Page) -> dict:
    """What the Train page's live chart has drawn: run, batches, stride k, the per-batch x values and smoothed
    losses (the newest batch last), how many updates it took whole (resets) and appended; {} without one."""
    try:
        return page.locator(LIVE_CHART).evaluate("box => box.drawn ? box.drawn() : {}", timeout=2_000)
    except Exception:  # not there (yet), or redrawn meanwhile
        return {}


def batch_chart_points(page: Page) -> int:
    """Points the Train page's batch chart draws: the live chart's, else the Plotly chart's of an ended run (0
    without one, or mid-redraw)."""
    drawn = live_chart(page)
    if drawn:
        return len(drawn["x"])
    try:
        return plotly_points(main(page).locator(".st-key-batch_chart"))
    except Exception:  # no chart yet, or redrawn between the locator and the evaluation
        return 0


def write_y4m(path: Path, frame, frames: int = 10) -> Path:
    """A video file Chromium's fake camera plays (--use-file-for-fake-video-capture): YUV 4:2:0 frames of one
    PIL picture, whose sides must be even."""
    import numpy as np

    ycc = np.asarray(frame.convert("RGB").convert("YCbCr"))
    y, cb, cr = ycc[..., 0], ycc[::2, ::2, 1], ycc[::2, ::2, 2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{frame.width} H{frame.height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + y.tobytes() + cb.tobytes() + cr.tobytes())
    return path


def curves_every_second(page: Page) -> None:
    """Train page, live view: "Redraw the curves" every second instead of every 5 s (a session's choice; a reload
    is a new session). A test that waits for the chart's next points then waits 1 s, not 5 s, of training."""
    option = main(page).locator(".st-key-curves_every").get_by_role("radio", name="every second")
    option.click()
    expect(option).to_have_attribute("aria-checked", "true")
    wait_idle(page)
