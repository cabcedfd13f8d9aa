"""Several people on one server: separate runs and charts, a queue when the training slots are taken, and a
tab closed mid-training that neither breaks the server nor loses its run.

One server with two training slots (CLASSIFIER_LAB_MAX_TRAININGS=2, fixed when a server starts) and three
browser sessions: A and B train at the same time, C is told it is queued; A's tab is closed mid-training;
every run finishes into its own folder, each page shows only its own run. The queue is the same code for
any number of slots, so this also covers one slot with two sessions.

Training speed differs some 40× between a fast idle machine and a busy shared one, so the runs are sized
from the speed a first short training measures here: long enough to still be training while the test
acts, short enough not to keep it waiting.
"""
from __future__ import annotations

import math
import re
import time

from browser_helpers import (
    assert_no_error,
    expect,
    fill_train_form,
    main,
    open_app,
    open_page,
    wait_for,
)

from core import runs

BATCH = 32  # the dense preset's batch size
VAL = 0.1   # the form's default validation split
FASHION_TRAIN = 60_000
SECONDS = 40  # how long A should train for, at the speed measured alone and watched (together: slower)
PROGRESS = re.compile(r"(\w+) · epoch (\d+)/(\d+) · batch (\d+)/(\d+)")


def steps(samples: int) -> int:
    n = samples or FASHION_TRAIN
    return math.ceil((n - round(n * VAL)) / BATCH)


def fill_form(page, *, epochs: int, samples: int, seed: int) -> None:
    """Train page: Fashion-MNIST, Dense 128, these numbers; Start is left to the caller."""
    fill_train_form(page, {"Epochs": epochs, "Seed": seed, "Training samples (0 = all)": samples})


def start(page) -> None:
    main(page).get_by_role("button", name=re.compile("Start training")).click()
    expect(main(page).get_by_text("Training runs in the background")).to_be_visible(timeout=30_000)


def progress(page) -> tuple[str, int, int, int, int] | None:
    """(status, epoch, epochs, batch, steps) from the page's progress bar, or None mid-redraw."""
    try:
        texts = main(page).locator("[data-testid=stProgress]").all_inner_texts()
    except Exception:
        return None
    found = [PROGRESS.search(t) for t in texts]
    found = [m for m in found if m]
    if not found:
        return None
    status, *numbers = found[-1].groups()
    return (status, *map(int, numbers))


def training(page, total_steps: int) -> bool:
    p = progress(page)
    return bool(p) and p[0] == "training" and p[4] == total_steps


def batches_caption(page) -> int | None:
    caption = main(page).get_by_text(re.compile(r"^[\d,]+ batches · "))
    try:
        return int(caption.first.inner_text(timeout=2_000).split(" ")[0].replace(",", "")) if caption.count() else None
    except Exception:
        return None


def finished_run_id(page, timeout: float = 300) -> str:
    """Wait for the page's own result line; the run id it names."""
    result = main(page).locator("[data-testid=stAlertContentSuccess]").filter(
        has_text=re.compile(r"finished: test accuracy"))
    expect(result).to_be_visible(timeout=timeout * 1000)
    return re.search(r"Run (\S+) finished", result.inner_text()).group(1)


def samples_per_second(page) -> float:
    metric = main(page).locator("[data-testid=stMetric]").filter(has_text="samples/s")
    return float(metric.locator("[data-testid=stMetricValue]").inner_text().replace(",", ""))


def sized(sps: float, seconds: float) -> dict:
    """Epochs and a sample count that train for about `seconds` at `sps` samples/s."""
    want = max(int(sps * seconds), 3_000)
    full = FASHION_TRAIN - round(FASHION_TRAIN * VAL)
    if want >= full:
        return {"epochs": math.ceil(want / full), "samples": 0}
    return {"epochs": 1, "samples": int(math.ceil(want / (1 - VAL) / 1000) * 1000)}


def test_sessions_train_side_by_side_queue_and_survive_a_closed_tab(app_with_env, open_session):
    app = app_with_env(CLASSIFIER_LAB_MAX_TRAININGS="2")
    a, b, c = (open_session(app) for _ in range(3))
    for page in (a, b, c):
        open_app(page)

    # C measures this machine's speed (and warms up TensorFlow and the data for everybody)
    fill_form(c, epochs=1, samples=3_000, seed=1)
    start(c)
    finished_run_id(c)
    sps = samples_per_second(c)
    plans = {"A": (a, {**sized(sps, SECONDS), "seed": 11}),
             "B": (b, {**sized(sps, SECONDS * 0.8), "seed": 22}),
             "C": (c, {"epochs": 1, "samples": 1_000, "seed": 33})}
    print(f"\n{sps:,.0f} samples/s alone: {({k: v for k, (_, v) in plans.items()})}")
    for page, plan in plans.values():
        fill_form(page, **plan)

    # A and B train at the same time, each with its own step count on its own page
    t_start = time.time()
    start(a)
    start(b)
    total = {name: steps(plan["samples"]) for name, (_, plan) in plans.items()}
    wait_for(lambda: training(a, total["A"]) and training(b, total["B"]), timeout=120,
             message="A and B training at once")

    # C is queued while both slots are taken, and shows nothing of the others' training
    start(c)
    busy = main(c).locator("[data-testid=stAlertContentWarning]").filter(has_text=re.compile(r"^Busy: another"))
    expect(busy).to_be_visible(timeout=30_000)
    expect(busy).to_contain_text("at most 2 at a time")
    assert progress(c)[0] == "queued" and batches_caption(c) is None
    assert_no_error(c)

    # A's tab is closed mid-training; B's user goes elsewhere meanwhile (fewer live charts also leave the
    # busy machine's cores to the trainings)
    assert training(a, total["A"]), progress(a)
    a.close()
    t_closed = time.time()
    print(f"A's tab closed {t_closed - t_start:.0f} s after it started training")
    open_page(b, "Home")
    expect(main(b).get_by_text("Training in progress (fashion_mnist · dense)")).to_be_visible()

    # C trains once a slot came free; A's run finishes without its tab; B's run is on B's Train page
    ids = {"C": finished_run_id(c)}

    def finished(seed):
        return next((r for r in runs.list_runs(app.runs_dir) if r.config.get("seed") == seed
                     and r.status == "finished"), None)

    ids["A"] = wait_for(lambda: finished(11), timeout=300, message="A's run to finish without its tab").id
    wait_for(lambda: finished(22), timeout=300, message="B's run to finish")
    open_page(b, "Train", heading="Train a model")
    ids["B"] = finished_run_id(b, timeout=30)
    assert len(set(ids.values())) == 3
    done = {name: runs.load_run(app.runs_dir / run_id) for name, run_id in ids.items()}
    for name, (page, plan) in plans.items():
        run = done[name]
        assert run.status == "finished" and run.meta["epochs_done"] == plan["epochs"], (name, run.meta)
        assert run.config["seed"] == plan["seed"] and run.config["max_train_samples"] == (plan["samples"] or None)
        if name != "A":  # each open page shows its own run's steps and batches, nobody else's
            n = total[name]
            assert progress(page)[3:] == (n, n), (name, progress(page))
            assert batches_caption(page) == plan["epochs"] * n, name
            assert_no_error(page)
    assert done["A"].meta["created"] <= done["B"].meta["finished"]  # A and B overlapped
    assert done["B"].meta["created"] <= done["A"].meta["finished"]
    assert done["C"].meta["created"] >= min(done["A"].meta["finished"], done["B"].meta["finished"])  # C waited
    print(f"A finished {time.time() - t_closed:.0f} s after its tab was closed (or before we looked)")

    # the server still serves everybody, and lists all three runs as finished
    open_page(b, "Runs")
    table = main(b).locator("[data-testid=stDataFrame]")
    for run_id in ids.values():
        expect(table.locator("tr").filter(has_text=run_id)).to_contain_text("finished")
    assert_no_error(b)
