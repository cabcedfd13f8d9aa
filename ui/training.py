"""The app's handle on the training engine: one engine per server; pages only read what workers write."""
from __future__ import annotations

import streamlit as st

from core.store import runs
from core.engine.scheduler import Engine, max_concurrent  # noqa: F401  (max_concurrent: for the pages' messages)
from core.engine.feed import FeedReader, stop_requested
from core.train.trainer import TrainConfig

RUN_KEY = "train_run"  # the run this session last started or opened on the Train page
CURVES_EVERY = {1.0: "every second", 5.0: "every 5 s", 15.0: "every 15 s"}
CURVES_DEFAULT = 5.0
PROGRESS_EVERY = 2.0  # about how often the progress line redraws, or as often as the curves when that is more
CURVES_HELP = ("Each redraw of the charts costs your browser CPU. When the browser runs on the computer that "
               "trains, that CPU is taken from the training.")
STOP_HELP = "A running training ends after the current batch and keeps its model; a queued one is cancelled."


@st.cache_resource(max_entries=4, show_spinner=False)
def _engine(runs_dir: str) -> Engine:
    # one per server process (and runs folder): the queue and its slots are server-wide
    return Engine(runs_dir)


def engine() -> Engine:
    return _engine(str(runs.default_runs_dir().resolve()))


@st.cache_resource(max_entries=32, show_spinner=False)
def _reader(run_dir: str) -> FeedReader:
    # shared by every session that watches the run: each new line of feed.jsonl is parsed once
    return FeedReader(run_dir)


def run_path(run_id: str):
    return runs.run_path(run_id, engine().runs_dir)


def submit(config: TrainConfig) -> str:
    """Queue a training (ValueError for bad settings); the session remembers it."""
    run_id = engine().submit(config)
    st.session_state[RUN_KEY] = run_id
    return run_id


def tick(every: float) -> float:
    """The live view's timer for curves redrawn every `every` s: that divided into whole ticks of at least
    PROGRESS_EVERY s (5 s: 2.5 s), so the curves go with every n-th redraw of the progress line."""
    return every / max(1, int(every // PROGRESS_EVERY))


def stop(run_id: str) -> None:
    engine().stop(run_id)


def stopping(run_id: str) -> bool:
    return stop_requested(run_path(run_id))


def snapshot(run_id: str, since: int = 0) -> dict:
    """The run's live feed so far (state, per-batch points from index `since` (-1: the newest), epoch rows)."""
    return _reader(str(run_path(run_id))).snapshot(since)


def fraction_done(snap: dict) -> float:
    """How far a run's training is, 0–1, from its feed's epoch and batch counters."""
    epochs, steps = snap.get("epochs_total") or 1, snap.get("steps_per_epoch") or 1
    done = ((max(snap.get("epoch", 0), 1) - 1) * steps + snap.get("batch", 0)) / (epochs * steps)
    return min(max(done, 0.0), 1.0)


def load(run_id: str) -> runs.Run:
    return runs.load_run(run_path(run_id))


def active() -> list[dict]:
    """Running and queued runs of this server, in order, each with its Run. A run whose worker has written its
    end is left out, though the engine may not have seen the worker exit yet."""
    out = []
    for item in engine().active():
        try:
            run = load(item["run_id"])
        except runs.RunError:
            continue  # deleted by hand meanwhile
        if run.status not in runs.ENDED:
            out.append({**item, "run": run})
    return out


def queue_position(run_id: str) -> int:
    """1 for the next run to start, 0 when not queued here."""
    return next((a["position"] for a in engine().active() if a["run_id"] == run_id), 0)


def selected_run() -> str | None:
    """The run the Train page shows: ?run=<id> from the address, else this session's last one."""
    wanted = st.query_params.get("run") or st.session_state.get(RUN_KEY)
    if not wanted:
        return None
    try:
        run_path(wanted)
    except runs.RunError as e:
        st.warning(f"Cannot show that run: {e}.")
        st.session_state.pop(RUN_KEY, None)
        return None
    st.session_state[RUN_KEY] = wanted
    return wanted


def forget() -> None:
    """The Train page shows the form again (a running run goes on; Runs lists it)."""
    st.session_state.pop(RUN_KEY, None)
    st.query_params.pop("run", None)
