"""Browser end-to-end fixtures: the real app (`streamlit run`) driven in Debian's Chromium by Playwright.

    app           one Streamlit server for the session: a free local port, headless, offline data, a throwaway
                  runs folder; stopped by process group at the end whatever happens
    fresh_app     a server of the test's own that nobody has opened yet
    slow_tf_app   the same, with TensorFlow's import made SLOW_TF_SECONDS slower (what waits for it, shows)
    app_with_env  app_with_env(NAME=value) -> a server of the test's own with these environment variables
    browser       Debian's Chromium headless shell (Blink without the desktop browser around it, as Playwright's
                  own headless mode uses), else /usr/bin/chromium; no Playwright browser download is needed
    page          a fresh browser context (= a fresh Streamlit session) on `app`, 1400×1000
    open_session  open_session(app) -> another such page, on any of these servers
    filmed_page   filmed_page(picture) -> such a page on `app` in a Chromium of its own whose camera films a picture

Without the playwright package or without Chromium every browser test is skipped with the reason.
Screenshots of the pages are taken only when $CLASSIFIER_LAB_SCREENSHOTS names a folder for them (docs/screenshots
refreshes the README's pictures), so a test run leaves the repository untouched; an element's picture that a test
takes anyway goes to the session's temp folder otherwise.
On a failure the page's screenshot and the end of the server's log are printed with the test's output.
"""
from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from browser_helpers import FAKE_CAMERA, write_y4m
from site_hooks import site_pythonpath

from core import config

ROOT = Path(__file__).resolve().parents[2]
# the headless shell draws the same pages for less CPU than the full browser in headless mode, on a suite that is
# CPU-bound (docs: README, Tests); $CLASSIFIER_LAB_CHROMIUM picks another
HEADLESS_SHELL = Path("/usr/bin/chromium-headless-shell")
CHROMIUM = config.CHROMIUM.get() if config.CHROMIUM.is_set() or not HEADLESS_SHELL.is_file() else HEADLESS_SHELL
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 1000}
SLOW_TF_SECONDS = 60  # see slow_tf_app
EXPECT_TIMEOUT = 15_000  # ms for expect(...) by default: a page redraw on a busy 2-core machine can take seconds
START_TIMEOUT = 120  # s until the server answers (a loaded 2-core machine is slow to import Streamlit)

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # reported as the skip reason below
    sync_playwright = None


def missing() -> str | None:
    """Why browser tests cannot run here, or None."""
    if sync_playwright is None:
        return "the playwright Python package is not installed (pip install -r requirements-dev.txt)"
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium-headless-shell, or set CLASSIFIER_LAB_CHROMIUM)"
    return None


def pytest_collection_modifyitems(config, items):
    """Every test in this folder is a browser test; skipped with the reason where it cannot run."""
    here, reason = Path(__file__).parent, missing()
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"browser tests: {reason}"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Say why the browser tests were skipped, even when `-rs` did not ask for skip reasons."""
    reason, chars = missing(), config.option.reportchars or ""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "tests/browser/" in r.nodeid]
    if reason and skipped and not {"s", "a", "A"} & set(chars):
        terminalreporter.write_line(f"{len(skipped)} browser test(s) skipped: {reason}", yellow=True, bold=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class App:
    url: str
    proc: subprocess.Popen
    log: Path
    runs_dir: Path

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL if it lingers (training threads, TF)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue


def _die_with_pytest() -> None:
    """In the server's process (Linux): SIGTERM when pytest dies without its teardown (kill -9, a CI timeout)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux: the fixtures' teardown still stops it
        pass


@contextmanager
def serve_app(workdir: Path, **env):
    """`streamlit run streamlit_app.py` on a free port with its own runs folder; yields an App."""
    workdir.mkdir(parents=True, exist_ok=True)
    runs_dir, log_path = workdir / "runs", workdir / "streamlit.log"
    runs_dir.mkdir(exist_ok=True)
    port = free_port()
    env = {**os.environ, "CLASSIFIER_LAB_OFFLINE": "1", "CLASSIFIER_LAB_RUNS": str(runs_dir),
           "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", **env}
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.address", "127.0.0.1", "--server.port", str(port),
           "--server.fileWatcherType", "none"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,  # own group: killpg
                                preexec_fn=_die_with_pytest)
    app = App(f"http://127.0.0.1:{port}", proc, log_path, runs_dir)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{app.log_tail()}")
            try:
                with urllib.request.urlopen(app.url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not answer within {START_TIMEOUT} s:\n{app.log_tail()}")
            time.sleep(0.25)
        yield app
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def browser():
    reason = missing()
    if reason:
        pytest.skip(f"browser tests: {reason}")
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def app(browser, tmp_path_factory):
    """The app shared by the scenarios (each test gets its own browser session)."""
    with serve_app(tmp_path_factory.mktemp("app")) as app:
        yield app


@pytest.fixture
def slow_tf_app(browser, tmp_path):
    """A fresh app whose TensorFlow import takes `SLOW_TF_SECONDS` longer than usual (a sitecustomize hook).

    Whatever waits for TensorFlow then visibly waits that long, on any machine, fast or slow.
    """
    # (paced too: only the first sitecustomize on the path runs, and this one comes before the session's)
    with serve_app(tmp_path / "app", PYTHONPATH=site_pythonpath(tmp_path / "hooks", slow_tf=SLOW_TF_SECONDS,
                                                                 paced=True)) as app:
        yield app


@pytest.fixture
def fresh_app(browser, tmp_path):
    """An app of the test's own, started for it (nobody has opened it yet)."""
    with serve_app(tmp_path / "app") as app:
        yield app


@pytest.fixture
def app_with_env(browser, tmp_path):
    """app_with_env(NAME=value, …) -> an app of the test's own whose server has these environment variables
    (e.g. CLASSIFIER_LAB_MAX_TRAININGS, fixed when a server starts); stopped after the test."""
    with ExitStack() as stack:
        count = iter(range(1000))
        yield lambda **env: stack.enter_context(serve_app(tmp_path / f"app-env-{next(count)}", **env))


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory) -> Path:
    path = Path(os.environ.get("CLASSIFIER_LAB_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    path = path if path.is_absolute() else ROOT / path
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember each phase's outcome on the test item, so `page` can keep evidence of a failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


_SHOTS = itertools.count(1)


@contextmanager
def browser_session(browser, app: App, request, tmp_path: Path):
    """A new browser context (a new Streamlit session); on failure its screenshot and the server log are kept."""
    context = browser.new_context(viewport=VIEWPORT, base_url=app.url)
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        yield page
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is None or rep.failed:
            shot = tmp_path / f"failure-{app.url.rsplit(':', 1)[-1]}-{next(_SHOTS)}.png"  # one per session
            try:
                page.screenshot(path=str(shot))
                print(f"\nscreenshot at failure: {shot}")
            except Exception as e:  # the page or the browser may be gone
                print(f"\nno screenshot at failure: {e}")
            print(f"streamlit log ({app.log}), last lines:\n{app.log_tail(3000)}")
        context.close()


@pytest.fixture
def open_session(browser, request, tmp_path):
    """open_session(app) -> a page in a new browser session on that app, closed after the test."""
    with ExitStack() as stack:
        yield lambda app: stack.enter_context(browser_session(browser, app, request, tmp_path))


@pytest.fixture
def page(app, open_session):
    """A fresh browser session on the shared app."""
    return open_session(app)


@pytest.fixture
def filmed_page(browser, app, request, tmp_path):
    """filmed_page(picture) -> a page on the shared app in a Chromium of its own whose fake camera films this PIL
    picture (even sides), as if held up to a webcam; closed after the test."""
    with ExitStack() as stack:
        def film(picture):
            video = write_y4m(tmp_path / "camera.y4m", picture)
            camera = browser.browser_type.launch(executable_path=str(CHROMIUM), args=[
                *CHROMIUM_ARGS, *FAKE_CAMERA, f"--use-file-for-fake-video-capture={video}"])
            stack.callback(camera.close)
            return stack.enter_context(browser_session(camera, app, request, tmp_path))
        yield film
