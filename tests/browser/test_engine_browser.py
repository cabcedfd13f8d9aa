"""The training engine seen from the browser: trainings live in worker processes, pages only watch them.

A reload or the same address in another browser re-attaches to a running training's live curves, and Stop
works from there; a worker killed with SIGKILL shows as failed within seconds and the next training runs;
a server killed mid-training leaves a run that the next server lists as interrupted, never as running, and a
worker that outlives its server is taken over by the next one (listed, stoppable).

Runs that must still be running when the test acts are long (LONG_EPOCHS of all of Fashion-MNIST: many
minutes on any machine) and are ended by the test (Stop, a kill); every other training is a small slice.
Each test has a server of its own, so a run left behind by a failure cannot queue the next test's.
"""
from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from browser_helpers import (LIVE, LIVE_POINTS_JS, batch_chart_points, batches_shown, expect, feed_batches,
                             fill_train_form, main, open_app, open_page, progress_is, result_line, run_in_url, run_meta,
                             running_with_pid, start_training, wait_for, wait_idle)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LONG_EPOCHS = 200  # the form's maximum, of all 54,000 training images: a run that ends only when stopped
FULL_STEPS = 1688  # batches per epoch of 54,000 images at the dense preset's batch size 32
SMALL = {"Epochs": 1, "Training samples (0 = all)": 1000}
# the target is 3 s (a quiet machine); at a load of 18-60 on 2 cores a reload took 8-32 s, most of it Chromium
# loading the front-end again. The bound leaves room for that and still fails a page that does not re-attach, or only
# draws the curves once the next epoch arrives (an epoch of this run takes minutes).
RELOAD_BOUND_S = 60
KILL_BOUND_S = 5  # from SIGKILL to "failed" in run.json (the engine polls every 0.2 s)
KILL_PAGE_BOUND_S = 30  # …and on the page, which redraws once a second: slower only on a loaded machine
CHART_PLACED = "() => !!document.querySelector('[data-testid=stMain] .st-key-batch_chart')"
CURVES_DRAWN = f"() => ({LIVE_POINTS_JS})() > 0"
ERROR_SHOWN = """text => [...document.querySelectorAll('[data-testid=stMain] [data-testid=stAlertContentError]')]
    .some(e => e.textContent.includes(text))"""


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (an orphan nobody has reaped yet is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def start_long_run(page, runs_dir: Path) -> tuple[str, int]:
    """Start a run that trains until stopped; once its worker trains and the page draws its curves:
    (run id, worker pid)."""
    open_app(page)
    fill_train_form(page, {"Epochs": LONG_EPOCHS})
    run_id = start_training(page)

    def training_alone():
        # the only run on this server: its page must never say it waits in a queue (it did while the worker
        # loaded TensorFlow, when run.json still says queued)
        assert not main(page).get_by_text(re.compile(r"^Busy: another training")).count(), "queued behind nobody"
        return running_with_pid(runs_dir, run_id)

    pid = wait_for(training_alone, timeout=300, interval=0.25, message="the worker to train")
    wait_for(lambda: batch_chart_points(page), timeout=300, message="the live batch chart")
    return run_id, pid


def training_long(page) -> bool:
    """The page's progress bar shows the long run training (its epoch and batch counts)."""
    return progress_is(page, "training", LONG_EPOCHS, FULL_STEPS)


def stop_button(page):
    return main(page).get_by_role("button", name=re.compile("Stop"))


def test_reload_and_another_browser_reattach_and_stop_works(fresh_app, open_session):
    app = fresh_app
    page = open_session(app)
    run_id, pid = start_long_run(page, app.runs_dir)

    # reload: a new session, which finds the run from the address alone
    before = feed_batches(app.runs_dir, run_id)
    t0 = time.monotonic()
    page.reload(wait_until="commit")
    page.wait_for_function(CHART_PLACED, timeout=120_000)
    placed_s = time.monotonic() - t0
    page.wait_for_function(CURVES_DRAWN, timeout=120_000)
    reload_s = time.monotonic() - t0
    print(f"\nreload → batch chart on the page {placed_s:.2f} s, its curves drawn {reload_s:.2f} s "
          f"({before} batches trained before)")
    assert reload_s < RELOAD_BOUND_S, f"the live curves took {reload_s:.1f} s to come back after a reload"
    assert run_in_url(page) == run_id
    expect(main(page).get_by_text(LIVE)).to_be_visible()
    assert (batches_shown(page) or 0) >= before, "the reloaded chart lost the batches from before the reload"
    wait_for(lambda: training_long(page), timeout=30, message="the reloaded page's progress bar")

    # the same address in another browser: the same run, as far along
    other = open_session(app)
    other.goto(page.url, wait_until="commit", timeout=120_000)
    expect(main(other).get_by_text(LIVE)).to_be_visible(timeout=120_000)
    assert run_in_url(other) == run_id
    now = feed_batches(app.runs_dir, run_id)
    for p in (page, other):
        wait_for(lambda: (n := batches_shown(p)) and n >= now and training_long(p), timeout=30,
                 message=f"{now} batches of this run on both pages")
    expect(stop_button(other)).to_be_enabled()

    # Stop from the reloaded page: the run ends after its batch and keeps its model, on both pages
    stop_button(page).click()
    for p in (page, other):
        expect(result_line(p, "stopped")).to_be_visible(timeout=240_000)
        expect(result_line(p, "stopped")).to_contain_text(run_id)
        expect(stop_button(p)).to_have_count(0)
    meta = run_meta(app.runs_dir, run_id)
    assert meta["status"] == "stopped" and 1 <= meta["epochs_done"] < LONG_EPOCHS, meta
    assert (app.runs_dir / run_id / "model.keras").is_file()
    wait_for(lambda: not alive(pid), timeout=30, message="the worker to exit")


def test_killed_worker_reads_failed_and_the_next_training_runs(fresh_app, open_session):
    app = fresh_app
    page = open_session(app)
    run_id, pid = start_long_run(page, app.runs_dir)
    assert pid != app.proc.pid, "run.json should name the worker, not the server"

    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: run_meta(app.runs_dir, run_id).get("status") == "failed", timeout=60,
             message="run.json to read failed")
    disk_s = time.monotonic() - t0
    page.wait_for_function(ERROR_SHOWN, arg="worker exited (signal 9", timeout=60_000)
    kill_s = time.monotonic() - t0
    print(f"\nSIGKILL of the worker → 'failed' in run.json {disk_s:.2f} s, on the page {kill_s:.2f} s")
    assert disk_s < KILL_BOUND_S, f"the run took {disk_s:.1f} s to read failed"
    assert kill_s < KILL_PAGE_BOUND_S, f"the page took {kill_s:.1f} s to show the dead worker"
    expect(main(page).locator("[data-testid=stAlertContentError]")).to_contain_text(
        "Training failed: worker exited (signal 9, SIGKILL)")
    expect(stop_button(page)).to_have_count(0)
    meta = run_meta(app.runs_dir, run_id)
    assert meta["status"] == "failed" and meta["error"] == "worker exited (signal 9, SIGKILL)", meta
    assert "pid" not in meta, meta

    # the slot it held is free: a next training from the page starts and finishes
    fill_train_form(page, {**SMALL, "Seed": 7})
    next_id = start_training(page)
    assert next_id != run_id
    expect(result_line(page, "finished")).to_be_visible(timeout=300_000)
    expect(result_line(page, "finished")).to_contain_text(next_id)
    assert run_meta(app.runs_dir, next_id)["status"] == "finished"
    assert run_meta(app.runs_dir, run_id)["status"] == "failed"


def test_server_killed_mid_training_leaves_an_interrupted_run(app_with_env, open_session):
    first = app_with_env()
    page = open_session(first)
    run_id, pid = start_long_run(page, first.runs_dir)
    page.close()

    # the server and its worker (one process group) die mid-training: run.json still says running
    os.killpg(first.proc.pid, signal.SIGKILL)
    first.proc.wait(30)
    wait_for(lambda: not alive(pid), timeout=30, message="the worker to die with its server")
    assert run_meta(first.runs_dir, run_id)["status"] == "running"

    second = app_with_env(CLASSIFIER_LAB_RUNS=str(first.runs_dir))
    page = open_session(second)
    open_app(page)
    open_page(page, "Runs")
    row = main(page).locator("[data-testid=stDataFrame] tr").filter(has_text=run_id)
    expect(row).to_contain_text("interrupted", timeout=30_000)
    expect(row).not_to_contain_text("running")
    expect(main(page).get_by_text("Training now")).to_have_count(0)
    meta = run_meta(first.runs_dir, run_id)
    assert meta["status"] == "interrupted" and "interrupted" in meta["error"], meta

    # its link says so too, with nothing to stop
    page.goto(f"/train?run={run_id}")
    expect(main(page).locator("[data-testid=stAlertContentError]")).to_contain_text("Training interrupted",
                                                                                      timeout=60_000)
    expect(stop_button(page)).to_have_count(0)


def test_a_worker_that_outlives_its_server_is_taken_over_by_the_next(app_with_env, open_session):
    first = app_with_env()
    page = open_session(first)
    run_id, pid = start_long_run(page, first.runs_dir)
    page.close()

    os.kill(first.proc.pid, signal.SIGKILL)  # only the server dies: its worker trains on, an orphan
    first.proc.wait(30)
    assert alive(pid) and run_meta(first.runs_dir, run_id)["status"] == "running"

    second = app_with_env(CLASSIFIER_LAB_RUNS=str(first.runs_dir))
    page = open_session(second)
    open_app(page)
    open_page(page, "Runs")
    now = main(page).locator("[data-testid=stProgress]").filter(has_text=run_id)
    expect(now).to_contain_text("training", timeout=30_000)  # under "Training now", with its progress
    main(page).locator(f".st-key-stop_{run_id}").get_by_role("button", name=re.compile("Stop")).first.click()
    wait_for(lambda: run_meta(first.runs_dir, run_id)["status"] == "stopped", timeout=120,
             message="the orphaned run to stop")
    wait_for(lambda: not alive(pid), timeout=30, message="the orphaned worker to end")
    # its row stays, saying how it ended (nothing moves under the pointer), until the page is drawn again
    expect(now).to_contain_text("stopped", timeout=30_000)
    page.reload()
    expect(main(page).locator("h1")).to_have_text("Runs", timeout=60_000)
    wait_idle(page)
    expect(main(page).get_by_text("Training now")).to_have_count(0)
