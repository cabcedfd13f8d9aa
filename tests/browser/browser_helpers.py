"""What a person does in the app, in Playwright terms: open a page, pick an option, draw, look for errors."""
from __future__ import annotations

import re
import time
from pathlib import Path

try:
    from playwright.sync_api import Locator, Page, expect
except ImportError:  # then conftest skips every browser test, but the modules must still import
    Locator = Page = expect = None

ROOT = Path(__file__).resolve().parents[2]
ERRORS = "[data-testid=stException], [data-testid=stAlertContentError]"
MAX_SHOT_HEIGHT = 3200  # px: a full page, but not an endless one


def main(page: Page) -> Locator:
    return page.locator("[data-testid=stMain]")


def sidebar(page: Page) -> Locator:
    return page.locator("[data-testid=stSidebar]")


def wait_idle(page: Page, timeout: float = 60_000) -> None:
    """Until the script run has finished and nothing on the page is left over from an earlier run."""
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stApp]')?.dataset.testScriptState === 'notRunning'"
        " && !document.querySelector('[data-stale=true]')", timeout=timeout)


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
    box.click()
    page.get_by_role("option", name=option).first.click()
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
    for name, value in numbers.items():
        box = m.get_by_role("spinbutton", name=name)
        box.fill(str(value))
        box.press("Enter")
        wait_idle(page)
    return m


def use_bundled(page: Page, dataset_title: str, timeout: float = 60_000) -> None:
    """Sidebar: the dataset and its bundled model (not whatever a test trained meanwhile)."""
    side = sidebar(page)
    choose(page, side, "Dataset", dataset_title)
    wait_idle(page, timeout)
    choose(page, side, "Model", re.compile(r"\(bundled\)"))
    wait_idle(page, timeout)


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


def plotly_points(chart: Locator, trace: int = 0) -> int:
    """How many points a plotly chart in the page draws for one trace (0 before it has drawn)."""
    return chart.locator(".js-plotly-plot").first.evaluate(
        f"gd => (gd.calcdata && gd.calcdata[{trace}]) ? gd.calcdata[{trace}].length : 0")


def screenshot(page: Page, path: Path, settle_ms: int = 800) -> Path:
    """The whole page (Streamlit scrolls inside stMain, so the viewport grows to fit it), then back."""
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


def tick_row(page, run_id: str) -> None:
    """Click the checkbox of the runs table's row whose first cell is `run_id` (the table is a canvas)."""
    table = main(page).locator("[data-testid=stDataFrame]")
    firsts = [t.strip() for t in table.locator("tr").evaluate_all(
        "rows => rows.map(r => (r.querySelector('td, th') || {}).textContent || '')")]
    row = firsts.index(run_id)  # 0 is the header
    box = table.bounding_box()
    height = box["height"] / len(firsts)  # header and rows are the same height
    page.mouse.click(box["x"] + 15, box["y"] + height * (row + 0.5))
