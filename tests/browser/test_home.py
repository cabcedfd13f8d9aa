"""Scenario 1: Home answers at once, without waiting for TensorFlow; every page in the navigation opens cleanly."""
import re
import time
from urllib.parse import urlparse

import pytest

from browser_helpers import (assert_no_error, expect, main, nav_links, open_app, open_page, screenshot,
                             sidebar, wait_idle)

pytestmark = pytest.mark.browser

HOME_BUDGET = 20  # s from typing the address to Home's finished page; TensorFlow's import takes 60 s more here
PAGE_TITLES = ["Home", "Data", "Train", "Runs", "Mistakes", "Predict"]  # at least these, in this order
TOUR_SHOTS = {"Data": "data", "Label errors": "label_errors"}  # the other pages are pictured by their scenarios


def test_home_renders_without_waiting_for_tensorflow(slow_tf_app, open_session, screenshot_dir):
    page = open_session(slow_tf_app)
    t0 = time.monotonic()
    page.goto("/")
    expect(main(page).locator("h1")).to_have_text("Classifier Lab", timeout=HOME_BUDGET * 1000)
    expect(main(page).get_by_text("Train image classifiers in your browser")).to_be_visible()
    wait_idle(page, timeout=HOME_BUDGET * 1000)
    elapsed = time.monotonic() - t0
    assert elapsed < HOME_BUDGET, f"Home took {elapsed:.1f} s: it waits for TensorFlow"
    for label in ("Draw or upload an image", "Explore the mistakes", "Train a model"):
        expect(main(page).get_by_role("link", name=re.compile(re.escape(label)))).to_be_visible()
    expect(sidebar(page).get_by_text("Dataset", exact=True)).to_be_visible()
    assert_no_error(page)
    screenshot(page, screenshot_dir / "home.png")


@pytest.mark.quick
def test_every_page_opens_without_an_error(page, screenshot_dir):
    open_app(page)
    titles = [t.split("\n")[-1].strip() for t in nav_links(page).all_inner_texts()]
    assert [t for t in titles if t in PAGE_TITLES] == PAGE_TITLES, f"navigation shows {titles}"
    for title in titles[1:] + titles[:1]:  # Home last: it was already open
        open_page(page, title)
        path = "/" if title == "Home" else "/" + title.lower().replace(" ", "_")
        assert urlparse(page.url).path == path, f"{title} opened {page.url}"
        assert_no_error(page)
        if title in TOUR_SHOTS:
            screenshot(page, screenshot_dir / f"{TOUR_SHOTS[title]}.png")


def test_a_page_address_opens_the_app_on_a_fresh_server(fresh_app, open_session):
    """A bookmarked or shared page address (the Train page offers one) is the first visit after a restart."""
    page = open_session(fresh_app)
    page.goto("/train")
    expect(main(page).locator("h1")).to_have_text("Train a model", timeout=60_000)
    wait_idle(page)
    titles = [t.split("\n")[-1].strip() for t in nav_links(page).all_inner_texts()]
    assert [t for t in titles if t in PAGE_TITLES] == PAGE_TITLES, f"navigation shows {titles}"
    expect(sidebar(page).get_by_text("Dataset", exact=True)).to_be_visible()
