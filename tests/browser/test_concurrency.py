"""Several people on one server: separate runs and charts, a queue when the training slots are taken (with its
positions, and a queued run cancelled before it starts), and a tab closed mid-training that neither breaks the
server nor loses its run.

One server with two training slots (CLASSIFIER_LAB_MAX_TRAININGS=2, fixed when a server starts) and four
browser sessions (a session is a browser context). A and B start runs that train until they are stopped (many
epochs of Fashion-MNIST: minutes to hours on any machine), so both slots are certainly taken while C and D are
checked to be queued; nothing here is sized from a measured speed, so nothing can race. C is cancelled while
queued and never starts; A's tab is closed mid-training, its run goes on and is stopped from the Runs page in
B's session; that frees a slot for D, which trains and finishes; B stops its own run meanwhile.
"""
from __future__ import annotations

import math
import re

import pytest

from browser_helpers import (LIVE, assert_no_error, batches_shown, expect, feed_batches, fill_train_form, main,
                             open_app, open_page, progress_is, result_line, run_in_url, run_meta, running_with_pid,
                             start_training, train_progress, wait_for)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BATCH = 32  # the dense preset's batch size
VAL = 0.1   # the form's default validation split
FASHION_TRAIN = 60_000
SHOWN = 120_000  # ms for a page to show a change: four sessions' live views share one server on a loaded machine
SAMPLES = "Training samples (0 = all)"
PLANS = {"A": {"Epochs": 200, "Seed": 11},  # all of Fashion-MNIST, 200 epochs: trains until stopped
         "B": {"Epochs": 150, "Seed": 22, SAMPLES: 20_000},  # also until stopped, with other step counts
         "C": {"Epochs": 1, "Seed": 33, SAMPLES: 1_000},
         "D": {"Epochs": 1, "Seed": 44, SAMPLES: 1_000}}


def steps(plan: dict) -> int:
    n = plan.get(SAMPLES) or FASHION_TRAIN
    return math.ceil((n - round(n * VAL)) / BATCH)


def own_progress(page, plan: dict, status: str = "training", batch: int | None = None) -> bool:
    """The page's progress bar shows `status` with this plan's epoch and batch counts (nobody else's)."""
    return progress_is(page, status, plan["Epochs"], steps(plan), batch)


def busy(page):
    return main(page).locator("[data-testid=stAlertContentWarning]").filter(has_text=re.compile(r"^Busy: another"))


def test_sessions_train_side_by_side_queue_cancel_and_survive_a_closed_tab(app_with_env, open_session):
    app = app_with_env(CLASSIFIER_LAB_MAX_TRAININGS="2")
    pages = {name: open_session(app) for name in PLANS}
    for name, page in pages.items():
        open_app(page)
        fill_train_form(page, PLANS[name])
    a, b, c, d = pages.values()

    # A and B train at the same time, each page with its own run, progress and chart
    ids = {name: start_training(pages[name]) for name in "AB"}
    for name in "AB":
        wait_for(lambda: running_with_pid(app.runs_dir, ids[name]), timeout=300, message=f"{name}'s worker to train")
        wait_for(lambda: own_progress(pages[name], PLANS[name]) and batches_shown(pages[name]), timeout=300,
                 message=f"{name}'s own progress and live chart")
        assert run_in_url(pages[name]) == ids[name]
    wait_for(lambda: own_progress(a, PLANS["A"]), timeout=60, message="A's page still on A's run, not B's")

    # A's tab is closed mid-training; its run trains on without it. B's user goes elsewhere meanwhile. (Fewer
    # live charts also leave the busy machine's server and browser free to answer the next sessions.)
    a.close()
    at_close = feed_batches(app.runs_dir, ids["A"])
    wait_for(lambda: feed_batches(app.runs_dir, ids["A"]) > at_close, timeout=60,
             message="A's run to go on training without its tab")
    open_page(b, "Home")
    expect(main(b).get_by_text("Training in progress (fashion_mnist · dense)").first).to_be_visible(timeout=SHOWN)

    # both slots taken: C and D are queued, in order, and show nothing of the others' training
    ids["C"] = start_training(c)
    expect(busy(c)).to_contain_text("at most 2 at a time", timeout=SHOWN)
    expect(busy(c)).to_contain_text("number 1 in the queue", timeout=SHOWN)
    ids["D"] = start_training(d)
    expect(busy(d)).to_contain_text("number 2 in the queue", timeout=SHOWN)
    for name in "CD":
        assert run_meta(app.runs_dir, ids[name])["status"] == "queued"
        wait_for(lambda: (p := train_progress(pages[name])) and p[0] == "queued", timeout=60,
                 message=f"{name}'s progress bar to say queued")
        assert batches_shown(pages[name]) is None, name
        assert_no_error(pages[name])
    for name in "AB":  # still training after those checks: the queue was seen while both slots were taken
        assert run_meta(app.runs_dir, ids[name])["status"] == "running", name
    assert len(set(ids.values())) == 4

    # C is cancelled while queued (the same Stop button); D moves up
    main(c).get_by_role("button", name=re.compile("Stop")).click()
    expect(main(c).get_by_text("Cancelled while queued: this training never started.")).to_be_visible(timeout=SHOWN)
    assert run_meta(app.runs_dir, ids["C"])["status"] == "cancelled"
    expect(busy(d)).to_contain_text("number 1 in the queue", timeout=SHOWN)

    # B's session sees everything on Runs ("Training now") and stops A's run from there
    open_page(b, "Runs")
    now = main(b).locator("[data-testid=stProgress]")
    expect(now.filter(has_text=ids["A"])).to_contain_text("epoch", timeout=SHOWN)
    expect(now.filter(has_text=ids["B"])).to_contain_text("epoch")
    expect(now.filter(has_text=ids["D"])).to_contain_text("number 1 in the queue")
    expect(now.filter(has_text=ids["C"])).to_have_count(0)
    # (.first: while the fragment redraws, its old and new button can both be on the page; both stop A)
    main(b).locator(f".st-key-stop_{ids['A']}").get_by_role("button", name=re.compile("Stop")).first.click()
    wait_for(lambda: run_meta(app.runs_dir, ids["A"]).get("status") == "stopped", timeout=300,
             message="A's run to stop")
    assert (app.runs_dir / ids["A"] / "model.keras").is_file(), "A's run lost its model"

    # the slot A held goes to D while B still trains in the other (D may already have finished: a small run)
    wait_for(lambda: run_meta(app.runs_dir, ids["D"]).get("status") in ("running", "finished"), timeout=300,
             message="D to leave the queue")
    assert run_meta(app.runs_dir, ids["B"])["status"] == "running"

    # B comes back to its own live run (the session remembers it) and stops it, while D trains (B's training is
    # not needed past this point: stopped now, it leaves D the machine)
    open_page(b, "Train", heading="Train a model")
    expect(main(b).get_by_text(LIVE)).to_be_visible(timeout=SHOWN)
    assert run_in_url(b) == ids["B"]
    wait_for(lambda: own_progress(b, PLANS["B"]), timeout=60, message="B's own progress")
    main(b).get_by_role("button", name=re.compile("Stop")).click()
    expect(result_line(b, "stopped")).to_be_visible(timeout=300_000)
    expect(result_line(b, "stopped")).to_contain_text(ids["B"])

    # D finishes on D's page
    expect(result_line(d, "finished")).to_be_visible(timeout=300_000)
    expect(result_line(d, "finished")).to_contain_text(ids["D"])
    n = steps(PLANS["D"])
    wait_for(lambda: own_progress(d, PLANS["D"], "finished", batch=n), timeout=60,
             message=f"D's progress bar at batch {n}/{n}")
    assert batches_shown(d) == n
    assert_no_error(d)

    # C never started: no worker, no feed, no model
    meta = run_meta(app.runs_dir, ids["C"])
    assert meta["status"] == "cancelled" and "started" not in meta and "pid" not in meta, meta
    assert not [f for f in ("feed.jsonl", "worker.log", "model.keras") if (app.runs_dir / ids["C"] / f).exists()]
    expect(main(c).get_by_text("Cancelled while queued")).to_be_visible()

    # the server still serves everybody and lists every run as it ended
    wait_for(lambda: run_meta(app.runs_dir, ids["B"]).get("status") == "stopped", timeout=60,
             message="B's run.json to say stopped")
    open_page(b, "Runs")
    expect(main(b).get_by_text("Training now")).to_have_count(0)
    table = main(b).locator("[data-testid=stDataFrame]")
    for name, status in {"A": "stopped", "B": "stopped", "C": "cancelled", "D": "finished"}.items():
        expect(table.locator("tr").filter(has_text=ids[name])).to_contain_text(status)
    assert_no_error(b)
