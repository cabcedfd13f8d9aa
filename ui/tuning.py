"""The app's tuning tools on the training engine: the learning-rate finder (Train page) and sweeps (Sweeps page)."""
from __future__ import annotations

from dataclasses import replace

import streamlit as st

from core import LabError
from core.store import runs

from core.train import lr_find, sweeps
from core.train.trainer import TrainConfig
from ui import charts, settings, state, training

LR_RUN_KEY, SWEEP_KEY = "lr_find_run", "sweep_id"


# --- learning-rate finder ------------------------------------------------------------------------------------

def _start_lr_find(cfg: TrainConfig) -> None:
    try:
        cfg = replace(cfg, mode="lr_find", epochs=1, early_stopping_patience=None)
        st.session_state[LR_RUN_KEY] = training.engine().submit(cfg)
    except LabError as e:
        st.session_state[LR_RUN_KEY + "_error"] = str(e)


def _use_rate(lr: float) -> None:
    st.session_state["train_lr"] = settings.nearest_rate(lr)


def lr_finder(cfg: TrainConfig) -> None:
    """Start a range test with the form's settings; show its curve and a button that puts its rate in the form."""
    st.caption(f"A short run ({lr_find.STEPS} batches) with the learning rate rising from {lr_find.MIN_LR:g} to "
               f"{lr_find.MAX_LR:g}; the suggestion is where the smoothed loss falls fastest before it bottoms out. "
               "It queues like any training and saves no model.")
    st.button("Find a learning rate", icon=":material/search:", on_click=_start_lr_find, args=(cfg,),
              key="lr_find_start")
    error = st.session_state.pop(LR_RUN_KEY + "_error", None)
    if error:
        st.error(f"Cannot start the range test: {error}")
    run_id = st.session_state.get(LR_RUN_KEY)
    try:
        run = training.load(run_id) if run_id else None
    except runs.RunError:
        run = None  # deleted meanwhile
    if run is not None and run.status in runs.ACTIVE:
        st.fragment(run_every=1.0)(_lr_progress)(run_id)
    elif run is not None:
        _lr_result(run)


def _lr_progress(run_id: str) -> None:
    """Live progress; once the test has ended, the whole page redraws (the result's button is outside)."""
    run = training.load(run_id)
    if run.status not in runs.ACTIVE:
        st.rerun()
    snap = training.snapshot(run_id)
    done = snap.get("n_batches", 0)
    what = "queued: it starts when a training slot frees up" if run.status == "queued" else \
        f"{snap.get('status', 'starting')} · batch {done}/{lr_find.STEPS}"
    st.progress(min(done / lr_find.STEPS, 1.0), text=f"Range test {what}")


def _lr_result(run: runs.Run) -> None:
    record = lr_find.load(run.path)
    if record is None:
        st.error(f"The range test {run.status}: {run.meta.get('error') or 'it recorded no result'}")
        return
    snapped = settings.nearest_rate(record["suggested_lr"])
    st.plotly_chart(charts.lr_curve(record), key="lr_find_chart")
    c1, c2 = st.columns([3, 2], vertical_alignment="center")
    c1.markdown(f"Suggested learning rate **{record['suggested_lr']:.2g}** ({record['method']}, "
                f"{len(record['losses'])} batches of {record['batch_size']} in {record['seconds']:.0f} s; "
                f"lowest loss at {record['min_loss_lr']:.2g}).")
    c2.button(f"Use {snapped:g}", icon=":material/check:", on_click=_use_rate, args=(record["suggested_lr"],),
              key="lr_find_use", help="Sets the form's learning rate to the nearest option.")


# --- sweeps ---------------------------------------------------------------------------------------------------

def launch(base: TrainConfig, grid: dict[str, list], n_random: int | None) -> dict:
    """Queue a sweep on this server's engine (ValueError or RunError when it can't); the session shows it."""
    sweep = sweeps.launch(training.engine(), base, grid, n_random)
    st.session_state[SWEEP_KEY] = sweep["id"]
    return sweep


def stop(sweep_id: str) -> None:
    sweeps.stop(sweeps.load(sweep_id, training.engine().runs_dir), training.engine())



def sweep_view(sweep_id: str, was_active: bool = False) -> None:
    """A sweep's runs ranked by validation accuracy, its parallel coordinates, the best run, Stop."""
    engine = training.engine()
    try:
        sweep = sweeps.load(sweep_id, engine.runs_dir)
    except runs.RunError as e:
        st.warning(str(e))
        return
    rows = sweeps.summary(sweep, engine.runs_dir)
    going = sweeps.active(sweep, engine)
    if was_active and not going:
        st.rerun()  # the sweep has ended: redraw the page once, without the timer
    ended = len(rows) - len(going)  # the engine's word: a worker that wrote "finished" may still be exiting
    st.progress(ended / max(1, len(rows)), text=f"**{sweep['name']}** · {ended} of {len(rows)} runs ended"
                + (f" · {len(going)} queued or running" if going else ""))
    if going:
        st.button("Stop the sweep", type="primary", icon=":material/stop:", on_click=stop, args=(sweep_id,),
                  key="sweep_stop", help="Cancels its queued runs; running ones end after their batch and keep "
                                         "their models.")
    top = sweeps.best(rows)
    if top:
        c1, c2 = st.columns([3, 1], vertical_alignment="center")
        c1.success(f"Best so far: **{top['run']}** · validation accuracy **{top['val_accuracy']:.2%}** (epoch "
                   f"{top['epoch']}), test accuracy {top['test_accuracy']:.2%}")
        if c2.button("Use the best run", icon=":material/check:", key="sweep_use"):
            state.set_active(training.load(top["run"]))
            st.rerun()  # the whole page, so the sidebar shows it (a click in a fragment reruns only the fragment)
        in_use = state.active_run()
        if in_use is not None and in_use.id == top["run"]:
            c1.caption("It is the active model (see the sidebar).")
    axes = list(sweep["grid"])
    table = [{"best": "★" if top and r["run"] == top["run"] else "", "rank": r["rank"], **{a: r.get(a) for a in axes},
              "val acc": r["val_accuracy"], "val loss": r["val_loss"], "test acc": r["test_accuracy"],
              "epoch kept": r["epoch"], "status": r["status"], "run": r["run"]} for r in rows]
    st.dataframe(table, hide_index=True, width="stretch", key="sweep_table",
                 column_config={"val acc": st.column_config.NumberColumn(format="percent"),
                                "test acc": st.column_config.NumberColumn(format="percent")})
    if sum(r["val_accuracy"] is not None for r in rows) >= 2:
        st.plotly_chart(charts.sweep_parcoords(rows, axes), key="sweep_parcoords")
    else:
        st.caption("The parallel-coordinates chart appears once two runs have a validation accuracy.")
