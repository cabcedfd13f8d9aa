"""Watched training (issue #12): fit throughput of a training started from the Train page and watched
there until it ends, against the same training from `python -m core train`. Both go through the engine
(a worker process); throughput = data.n_train x epochs_done / fit_seconds from the run's run.json.
Target watched / headless >= 0.9. Also the server's and Chromium's CPU while the page redraws, and
re-attaching: a reload brings the live curves back (target <= 3 s), Stop works from the reloaded page, and
a worker killed with SIGKILL reads failed (target <= 5 s) on disk and on the page.

    python bench/bench_watched.py [--quick]
"""
from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import common

TARGET = 0.9
DATASET = "fashion_mnist"
# (arch, training samples before the 10 % validation split, epochs, batch): the settings of issue #12
FULL = (("dense", 40_000, 2, 32), ("cnn", 15_000, 1, 64))
QUICK = (("dense", 10_000, 1, 32), ("cnn", 4_000, 1, 64))
RELOAD_TARGET_S, KILL_TARGET_S = 3.0, 5.0
RELOADS = 5
LONG = {"dataset": DATASET, "arch": "dense", "epochs": 200, "batch": 32, "val": 0.1, "seed": 0}  # ends when stopped
# points plotly has drawn in the Train page's live batch chart (an empty trace keeps a placeholder, x false)
CURVES_DRAWN = """() => {
    const gd = document.querySelector('[data-testid=stMain] .st-key-batch_chart .js-plotly-plot');
    return (gd && gd.calcdata && gd.calcdata[0] || []).filter(p => Number.isFinite(p.x)).length > 0;
}"""


def _settings(arch: str, n: int, epochs: int, batch: int) -> dict:
    return {"dataset": DATASET, "arch": arch, "epochs": epochs, "batch": batch, "samples": n, "val": 0.1, "seed": 0}


def _result(run_dir: Path, sampler: common.CpuSampler) -> tuple:
    """(samples/s, {group: CPU % of one core during fit}, worker CPU µs per sample) of a finished run."""
    meta = json.loads((run_dir / "run.json").read_text())
    samples = meta["data"]["n_train"] * meta["epochs_done"]
    t0, t1 = common.fit_window(run_dir)
    cpu = {name: sampler.cpu_percent(name, t0, t1) for name in sampler.groups}
    return samples / meta["fit_seconds"], cpu, cpu["worker"] / 100 * (t1 - t0) / samples * 1e6


def _workers(parent: int):
    return lambda: [p for p in common.descendants(parent) if "core.engine.worker" in common.cmdline(p)]


def _chromium() -> list[int]:
    return [p for p in common.descendants(os.getpid()) if "chrom" in common.cmdline(p).split(" ")[0]]


def watched(browser, server, url: str, runs_dir: Path, settings: dict) -> tuple:
    """A: the Train page in a fresh browser session, Start training, the page open until the result shows."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        common.open_train_form(page, url, settings)
        groups = {"server": lambda: [server.pid], "chromium": _chromium, "worker": _workers(server.pid)}
        with common.CpuSampler(groups) as sampler:
            run_dir = common.start_and_watch(page, runs_dir)
    finally:
        context.close()
    return _result(run_dir, sampler)


def headless(runs_dir: Path, settings: dict) -> tuple:
    """B: `python -m core train` with the same settings (its own engine and worker), offline."""
    cmd = [common.PYTHON, "-m", "core", "train", "--dataset", settings["dataset"], "--arch", settings["arch"],
           "--epochs", str(settings["epochs"]), "--batch-size", str(settings["batch"]),
           "--max-train-samples", str(settings["samples"]), "--validation-split", str(settings["val"]),
           "--seed", str(settings["seed"]), "--runs-dir", str(runs_dir)]
    proc = subprocess.Popen(cmd, cwd=common.ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "CLASSIFIER_LAB_OFFLINE": "1"})
    groups = {"cli": lambda: [proc.pid], "worker": _workers(proc.pid)}
    with common.CpuSampler(groups) as sampler:
        out, _ = proc.communicate()
    line = json.loads(out.strip().splitlines()[-1])
    if proc.returncode != 0:
        raise RuntimeError(f"python -m core train failed: {line}")
    return _result(Path(line["path"]), sampler)


def _status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "run.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def _until(check, timeout: float, what: str, every: float = 0.05) -> float:
    """perf_counter() once check() is true."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if check():
            return time.perf_counter()
        time.sleep(every)
    raise TimeoutError(f"{what} within {timeout:.0f} s")


def _long_run(browser, url: str, runs_dir: Path):
    """A page that has started a training that only ends when stopped, once its curves are drawn: (context,
    page, run folder)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    common.open_train_form(page, url, LONG)
    before = {p.name for p in runs_dir.iterdir()}
    page.get_by_role("button", name="Start training").click()
    _until(lambda: [p for p in runs_dir.iterdir() if p.name not in before], 60, "the run folder")
    run_dir = next(p for p in runs_dir.iterdir() if p.name not in before)
    _until(lambda: _status(run_dir) == "running", 300, "the worker to train")
    page.wait_for_function(CURVES_DRAWN, timeout=300_000)
    return context, page, run_dir


def reattach(browser, url: str, runs_dir: Path, reloads: int) -> list[dict]:
    """Reload a page watching a training (curves back), Stop from it; then a second run's worker killed."""
    from playwright.sync_api import expect

    context, page, run_dir = _long_run(browser, url, runs_dir)
    try:
        times = []
        for _ in range(reloads):
            time.sleep(2)  # the page redraws as a user's would meanwhile
            t0 = time.perf_counter()
            page.reload(wait_until="commit")
            page.wait_for_function(CURVES_DRAWN, timeout=120_000)
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        page.get_by_role("button", name="Stop").click()
        stopped = _until(lambda: _status(run_dir) == "stopped", 120, "the run to stop") - t0
        expect(page.get_by_text(re.compile(r"Run \S+ stopped: test accuracy"))).to_be_visible(timeout=60_000)
        shown = time.perf_counter() - t0
    finally:
        context.close()
    context, page, run_dir = _long_run(browser, url, runs_dir)
    try:
        t0 = time.perf_counter()
        os.kill(json.loads((run_dir / "run.json").read_text())["pid"], signal.SIGKILL)
        failed = _until(lambda: _status(run_dir) == "failed", 60, "run.json to say failed") - t0
        expect(page.get_by_text(re.compile("worker exited"))).to_be_visible(timeout=60_000)
        failed_page = time.perf_counter() - t0
    finally:
        context.close()
    reload_s = common.median(times)
    return [common.row("watched", "reload → live curves drawn again", reload_s, "s",
                       spread=common.spread(times), target=f"≤ {RELOAD_TARGET_S:.0f} s",
                       ok=reload_s <= RELOAD_TARGET_S,
                       notes=f"a dense run on Fashion-MNIST training meanwhile; {reloads} reloads of the Train page "
                             "(?run=<id>): from the reload to plotly's first drawn points"),
            common.row("watched", "Stop on the reloaded page → run.json stopped", stopped, "s"),
            common.row("watched", "Stop on the reloaded page → its result shown", shown, "s"),
            common.row("watched", "kill -9 of the worker → run.json failed", failed, "s",
                       target=f"≤ {KILL_TARGET_S:.0f} s", ok=failed <= KILL_TARGET_S),
            common.row("watched", "kill -9 of the worker → the page says so", failed_page, "s")]


def run(quick: bool) -> list[dict]:
    from playwright.sync_api import sync_playwright

    # 5 rounds in full mode; BENCH_ROUNDS=3 when a loaded machine makes each training minutes long
    cases, repeats = (QUICK, 3) if quick else (FULL, int(os.environ.get("BENCH_ROUNDS", 5)))
    workdir = Path(tempfile.mkdtemp(prefix="bench-watched-"))
    app_runs, cli_runs = workdir / "app-runs", workdir / "cli-runs"
    app_runs.mkdir(), cli_runs.mkdir()
    rows = []
    server, url = common.start_app(str(app_runs), str(workdir / "streamlit.log"), CLASSIFIER_LAB_OFFLINE="1")
    try:
        common.wait_healthy(server, url)
        with sync_playwright() as pw:
            browser = common.launch_browser(pw)
            try:
                warm = _settings("dense", 2_000, 1, 32)  # first imports, OS file cache: not measured
                watched(browser, server, url, app_runs, warm), headless(cli_runs, warm)
                for arch, n, epochs, batch in cases:
                    settings = _settings(arch, n, epochs, batch)
                    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
                    common.log(f"watched vs headless: {arch}, Fashion-MNIST {n:,} samples (10 % validation), "
                               f"{epochs} epoch(s), batch {batch}, {repeats} rounds, load {load}; "
                               "A = Train page open, B = python -m core train")
                    pairs = common.alternate(lambda: watched(browser, server, url, app_runs, settings),
                                             lambda: headless(cli_runs, settings), repeats, common.log)
                    rows += _rows(arch, n, epochs, batch, repeats, pairs, load)
                rows += reattach(browser, url, app_runs, 2 if quick else RELOADS)
            finally:
                browser.close()
    finally:
        common.stop_app(server)
    return rows


def _rows(arch, n, epochs, batch, repeats, pairs, load) -> list[dict]:
    ratios = [a[0] / b[0] for a, b in pairs]
    ratio = common.median(ratios)
    end_load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    out = [common.row("watched", f"{arch}: watched / headless fit throughput", ratio, "ratio",
                      spread=common.spread(ratios), target=f"≥ {TARGET}", ok=ratio >= TARGET,
                      notes=f"Train page open in Chromium vs python -m core train; Fashion-MNIST {n:,} samples, "
                            f"{epochs} epoch(s), batch {batch}, {repeats} A/B rounds; load avg {load} → {end_load}")]
    for label, k in (("watched", 0), ("headless", 1)):
        values = [p[k][0] for p in pairs]
        out.append(common.row("watched", f"{arch}: {label} throughput", common.median(values), "samples/s",
                              spread=common.spread(values, "{:,.0f}")))
    for group, what in (("server", "the Streamlit server process (its own threads)"),
                        ("chromium", "all Chromium processes")):
        values = [a[1][group] for a, _ in pairs]
        out.append(common.row("watched", f"{arch}: {group} CPU while watched", common.median(values), "% of a core",
                              spread=common.spread(values, "{:.1f}"), notes=f"during fit: {what}"))
    cli = [b[1]["cli"] for _, b in pairs]
    out.append(common.row("watched", f"{arch}: CLI CPU while headless", common.median(cli), "% of a core",
                          spread=common.spread(cli, "{:.1f}"),
                          notes="during fit: the python -m core train process, which polls the feed"))
    work = [a[2] / b[2] for a, b in pairs]
    out.append(common.row("watched", f"{arch}: worker CPU per sample, watched / headless", common.median(work),
                          "ratio", spread=common.spread(work),
                          notes="≈ 1: the worker does the same work either way; a throughput loss is CPU it was not given"))
    return out


if __name__ == "__main__":
    raise SystemExit(common.main(run))
