"""Memory: (1) the app server's peak RSS (VmHWM) with MNIST and Fashion-MNIST loaded, driven by
Playwright through the Mistakes page of both datasets and the Predict page (one model loaded);
(2) the server's RSS over 10 consecutive short trainings started and watched from its Train page
(each trains in a worker process: the server only reads its feed); target growth <= 30 MB.

What bounds (1): core.data.datasets._load keeps at most 4 decoded datasets (lru_cache(maxsize=4)),
ui.state keeps at most 4 loaded models (_model, cache_resource max_entries=4) and 8 test-set
probability arrays (_test_probs, cache_data max_entries=8, N x classes float32 each).

    python bench/bench_memory.py [--quick]
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import common

GROWTH_MB = 30  # issue #12: the server must not grow with each training it watches


def _choose(page, label: str, option: str) -> None:
    side = page.locator("[data-testid=stSidebar]")
    box = side.locator("[data-testid=stSelectbox]").filter(
        has=page.locator("[data-testid=stWidgetLabel]", has_text=re.compile(rf"^{re.escape(label)}$")))
    box.click()
    page.get_by_role("option", name=option).first.click()


def server_memory(runs_dir: str, workdir: Path) -> dict:
    """Drive the app through Mistakes on MNIST, then Fashion-MNIST, then Predict with the Fashion-MNIST
    model active; memory figures of its process."""
    from playwright.sync_api import expect, sync_playwright

    proc, url = common.start_app(runs_dir, str(workdir / "streamlit.log"))
    out = {}
    try:
        common.wait_healthy(proc, url)
        with sync_playwright() as pw:
            browser = common.launch_browser(pw)
            try:
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                page.set_default_timeout(300_000)
                page.goto(url)
                expect(page.locator("[data-testid=stMain] h1")).to_have_text("Classifier Lab", timeout=120_000)
                common.wait_idle(page)
                out["home"] = common.proc_status_mb(proc.pid)
                page.locator("[data-testid=stSidebarNav]").get_by_role("link", name=re.compile("Mistakes$")).click()
                for dataset, key in (("MNIST digits", "mnist"), ("Fashion-MNIST", "fashion_mnist")):
                    if key != "mnist":
                        _choose(page, "Dataset", dataset)
                    # the first visit predicts the test set: a minute or more on a busy machine
                    expect(page.get_by_text(re.compile(rf"^Model {key} · "))).to_be_visible(timeout=600_000)
                    expect(page.get_by_text("Misclassified images")).to_be_visible(timeout=600_000)
                    common.wait_idle(page, 600_000)
                    if page.locator("[data-testid=stException]").count():
                        raise RuntimeError(f"Mistakes on {dataset}: " + page.locator(
                            "[data-testid=stException]").first.inner_text())
                    out[dataset] = common.proc_status_mb(proc.pid)
                    common.log(f"  server RSS after Mistakes on {dataset}: {out[dataset]:.0f} MB")
                # Mistakes reads the bundled models' stored predictions; Predict loads a model
                page.locator("[data-testid=stSidebarNav]").get_by_role("link", name=re.compile("Predict$")).click()
                expect(page.get_by_text(re.compile(r"^Model: fashion_mnist · "))).to_be_visible(timeout=600_000)
                common.wait_idle(page, 600_000)
                out["predict"] = common.proc_status_mb(proc.pid)
                common.log(f"  server RSS after Predict with the Fashion-MNIST model: {out['predict']:.0f} MB")
                out["hwm"] = common.proc_status_mb(proc.pid, "VmHWM")
            finally:
                browser.close()
    finally:
        common.stop_app(proc)
    return out


def server_training_growth(n: int, arch: str, workdir: Path) -> list[float]:
    """The app server's RSS (MB) after each of n short trainings (2,000 MNIST digits, 1 epoch) started
    one after another from the Train page of one browser session, each watched until its result shows."""
    from playwright.sync_api import sync_playwright

    runs_dir = workdir / "train-runs"
    runs_dir.mkdir()
    proc, url = common.start_app(str(runs_dir), str(workdir / "streamlit-train.log"), CLASSIFIER_LAB_OFFLINE="1")
    rss = []
    try:
        common.wait_healthy(proc, url)
        with sync_playwright() as pw:
            browser = common.launch_browser(pw)
            try:
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                common.open_train_form(page, url, {"dataset": "mnist", "arch": arch, "epochs": 1, "samples": 2000,
                                                   "val": 0.1, "seed": 0})
                for i in range(n):
                    common.start_and_watch(page, runs_dir)
                    common.wait_idle(page, 300_000)
                    rss.append(common.proc_status_mb(proc.pid))
                    common.log(f"  training {i + 1}/{n} from the page: server RSS {rss[-1]:.0f} MB")
            finally:
                browser.close()
    finally:
        common.stop_app(proc)
    return rss


def run(quick: bool) -> list[dict]:
    common.bundled_run("mnist"), common.bundled_run("fashion_mnist")  # both must be there
    workdir = Path(tempfile.mkdtemp(prefix="bench-memory-app-"))
    runs_dir = str(workdir / "runs")  # empty: bundled models are always listed
    Path(runs_dir).mkdir(exist_ok=True)
    common.log("memory: app server through Mistakes on MNIST and Fashion-MNIST")
    mem = server_memory(runs_dir, workdir)
    arch = "dense" if quick else "cnn"
    common.log(f"memory: 10 consecutive {arch} trainings started from the Train page, server RSS")
    rss = server_training_growth(10, arch, workdir)
    growth = rss[-1] - rss[0]
    per_run = (rss[-1] - rss[1]) / (len(rss) - 2)
    return [
        common.row("memory", "app server peak RSS (VmHWM)", mem["hwm"], "MB",
                   notes="after Mistakes on MNIST then Fashion-MNIST, then Predict (bundled models); bounded by "
                         "≤ 4 datasets (core.data.datasets._load), ≤ 4 models and ≤ 8 probability arrays (ui.state caches)"),
        common.row("memory", "app server RSS after Home", mem["home"], "MB"),
        common.row("memory", "app server RSS after Mistakes, MNIST", mem["MNIST digits"], "MB"),
        common.row("memory", "app server RSS after Mistakes, + Fashion-MNIST", mem["Fashion-MNIST"], "MB"),
        common.row("memory", "app server RSS after Predict, + Fashion-MNIST model loaded", mem["predict"], "MB"),
        common.row("memory", f"app server RSS after the 1st of 10 trainings from the page ({arch})", rss[0], "MB",
                   notes="MNIST 2,000 samples, 1 epoch each, one browser session; RSS after each: "
                         + ", ".join(f"{x:.0f}" for x in rss)),
        common.row("memory", "app server RSS after the 10th", rss[-1], "MB"),
        common.row("memory", "app server RSS growth, 1st → 10th training", growth, "MB", target=f"≤ {GROWTH_MB} MB",
                   ok=growth <= GROWTH_MB, notes=f"{per_run:+.1f} MB per training from the 2nd on; "
                   "the server only reads the workers' feeds (and loads each finished model for its summary)"),
    ]


if __name__ == "__main__":
    raise SystemExit(common.main(run))
