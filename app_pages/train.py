"""Train: a configuration form, live charts read from the run's feed, Stop, and the result."""
import streamlit as st

from core import LabError
from core.store import runs
from core.model import efficientnet_lite
from core.model.architectures import ARCHITECTURES
from core.train.trainer import OPTIMIZERS, TrainConfig
from ui import charts, fixes, live_chart, settings, state, training, tuning

st.title("Train a model")
# the form is hidden while a run trains and when the user visits other pages: keep its values meanwhile,
# or they come back as the widgets' minimums (epochs 1, batch 8, …) instead of what the user set
KEEP = "session"
LIVE_KEY = "train_live"  # the run the last script run drew live: its end must redraw the sidebar too
PRESETS_KEY = "train_presets"  # the architecture presets the form last put in its fields


def _init_settings() -> None:
    """First visit: widget values from the URL, else the active dataset and the arch's presets."""
    if "train_arch" in st.session_state:
        return
    values, ignored = settings.from_query(st.query_params.to_dict())
    dataset = values.get("train_dataset", state.active_dataset())
    arch = values.get("train_arch", settings.default_arch(dataset))
    presets = settings.arch_defaults(arch)
    defaults = {"train_dataset": dataset, "train_arch": arch, "train_val": 0.1, "train_seed": 0,
                "train_subset": 0, "train_patience": 0, **presets}
    st.session_state.update({**defaults, **values, PRESETS_KEY: presets})
    if ignored:
        st.warning("Ignored settings from the link: " + "; ".join(ignored))


def _on_dataset() -> None:  # own datasets train with `auto` by default
    st.session_state["train_arch"] = settings.default_arch(st.session_state["train_dataset"])
    _on_arch()


def _on_arch() -> None:
    """Load the architecture's presets into the fields that still hold the last presets. A value the person typed
    (or a link gave) stays: a choice's rerun may arrive together with a number typed after it, and the number wins."""
    presets, last = settings.arch_defaults(st.session_state["train_arch"]), st.session_state.get(PRESETS_KEY, {})
    for key, value in presets.items():
        if st.session_state.get(key) == last.get(key) and st.session_state.get(key) != value:
            st.session_state[key] = value
    st.session_state[PRESETS_KEY] = presets


def config_form(run_id: str | None) -> TrainConfig:
    """The training settings; changing the architecture loads its presets; the URL mirrors them."""
    _init_settings()
    c1, c2 = st.columns(2)
    dataset = c1.selectbox("Dataset", state.dataset_names(), format_func=state.dataset_title, key="train_dataset",
                           on_change=_on_dataset, persist_state=KEEP)
    arch = c2.selectbox("Architecture", list(ARCHITECTURES), format_func=lambda a: ARCHITECTURES[a].title,
                        key="train_arch", on_change=_on_arch, persist_state=KEEP)
    st.caption(ARCHITECTURES[arch].description)
    if arch == "efficientnet_lite0" and not efficientnet_lite.status()[0]:  # say so before a run fails on it
        st.warning(efficientnet_lite.status()[1])
    c1, c2, c3, c4 = st.columns(4)
    epochs = c1.number_input("Epochs", 1, 200, key="train_epochs", persist_state=KEEP)
    batch = c2.select_slider("Batch size", settings.BATCH_SIZES, key="train_batch", persist_state=KEEP)
    lr = c3.select_slider("Learning rate", settings.LEARNING_RATES, key="train_lr", persist_state=KEEP)
    optimizer = c4.selectbox("Optimizer", OPTIMIZERS, key="train_opt", persist_state=KEEP)
    c1, c2, c3, c4 = st.columns(4)
    val = c1.slider("Validation split", 0.0, 0.5, step=0.05, key="train_val", persist_state=KEEP)
    seed = c2.number_input("Seed", 0, 2**31 - 1, key="train_seed", persist_state=KEEP)
    subset = c3.number_input("Training samples (0 = all)", 0, 10**7, step=1000, key="train_subset",
                             help="Train on a seeded subset for a quick look.", persist_state=KEEP)
    patience = c4.number_input("Early stopping patience (0 = off)", 0, 100, key="train_patience", persist_state=KEEP,
                               help="Stop after this many epochs without a lower validation loss, and keep the "
                                    "best epoch's weights (needs a validation split).")
    cfg = TrainConfig(dataset=dataset, arch=arch, epochs=int(epochs), batch_size=int(batch), learning_rate=lr,
                      optimizer=optimizer, validation_split=val, seed=int(seed),
                      max_train_samples=int(subset) or None, early_stopping_patience=int(patience) or None,
                      data_path=state.folder_path(dataset), **fixes.train_option(dataset))
    # the address bar now reproduces this set-up (and still names the run shown below it)
    st.query_params.from_dict({**settings.to_query(cfg), **({"run": run_id} if run_id else {})})
    st.caption("Share this page's address to share these settings.")
    return cfg


def progress(snap: dict, status: str) -> None:
    """One line: status, progress bar, throughput, ETA and the newest batch's loss and accuracy. One element
    rather than a row of metrics: each element redrawn costs the browser CPU, taken from the training."""
    epochs, steps = snap.get("epochs_total") or 1, snap.get("steps_per_epoch") or 1
    parts = [f"**{status}**", f"epoch {snap.get('epoch', 0)}/{epochs}", f"batch {snap.get('batch', 0)}/{steps}"]
    if status == "training":
        parts += [f"{snap.get('samples_per_s', 0):,.0f} samples/s", f"ETA {snap.get('eta_s', 0):.0f} s"]
    if snap["loss"]:
        parts += [f"loss {snap['loss'][-1]:.4f}", f"accuracy {snap['accuracy'][-1]:.2%}"]
    st.progress(training.fraction_done(snap), text=" · ".join(parts))


def heading(run: runs.Run) -> str:
    return f"{run.config.get('dataset')} · {run.config.get('arch')}"


def live(run_id: str, was_active: bool) -> None:
    """Redraws from the run's feed, which its worker writes; this page never touches the training."""
    run = training.load(run_id)
    snap = training.snapshot(run_id, since=-1)  # the newest batch is all the line shows
    active = run.status in runs.ACTIVE
    # run.json says queued/finished/failed; while it runs, the feed has the finer steps (loading data, saving…).
    # It says queued until TensorFlow has loaded in the worker: a run the engine has started is past the queue
    position = training.queue_position(run_id)
    started = run.status == "running" or (run.status == "queued" and not position
                                          and (snap.get("status") or training.engine().is_active(run_id)))
    status = snap.get("status", "starting") if started else run.status
    progress(snap, status)
    if status == "queued":
        st.warning(f"Busy: another training is running on this server (at most {training.max_concurrent()} at "
                   f"a time). Yours is number {position or '?'} in the queue and starts "
                   "as soon as a slot frees up.")
    if active and status != "queued" and training.stopping(run_id):
        st.caption("Stopping after the current batch…")
    if was_active and not active:
        st.session_state.pop(LIVE_KEY, None)
        st.rerun()  # ended: redraw the whole page (sidebar, result) once, without the timer


def watch(run_id: str, every: float) -> None:
    """The live view, redrawn by one timer: the progress line at each tick, the curves' new points every `every` s."""
    live(run_id, True)
    curves(run_id, True, every)


def curves(run_id: str, live: bool, every: float = 0.0) -> None:
    """Per-batch and per-epoch curves; a live run shows its axes before the first points arrive."""
    if live and live_chart.available():
        live_chart.live_curves(run_id, every, training.tick(every))
        return
    if live:
        st.caption(live_chart.INSTALL_HINT)
    snap = training.snapshot(run_id)
    if snap["steps"] or live:
        st.plotly_chart(charts.batch_curves(snap), key="batch_chart")
    if snap["steps"]:
        st.caption(f"{snap['n_batches']:,} batches · at most {charts.MAX_POINTS} points drawn, smoothed")
    if snap["epochs"]:
        st.plotly_chart(charts.epoch_curves({"run": snap["epochs"]}), key="epoch_chart")


def result(run: runs.Run) -> None:
    """Outcome of the run: its test metrics and a button that makes it the active model, or what went wrong."""
    m = run.meta
    if run.status == "cancelled":
        st.info("Cancelled while queued: this training never started.")
        return
    if run.kind == "lr_find":
        st.info(f"A learning-rate range test (no model): it suggested {m.get('suggested_lr', float('nan')):.2g}.")
        return
    if not run.usable:
        st.error(f"Training {run.status}: {m.get('error') or 'it ended without saving a model'}")
        return
    kept = f" (kept epoch {m['best_epoch']}, the best on validation loss)" if m.get("best_epoch") else ""
    st.success(f"Run **{run.id}** {m['status']}: test accuracy **{m['test_accuracy']:.2%}**, "
               f"test loss {m['test_loss']:.4f}, {m.get('epochs_done', 0)} epoch(s){kept} in "
               f"{m.get('fit_seconds', 0):.0f} s.")
    st.button("Use as the active model", on_click=state.set_active, args=(run,), icon=":material/check:")


def model_summary(run: runs.Run) -> None:
    """The trained model's layers, folded away."""
    if run.usable:
        with st.expander(f"Model summary · {run.meta.get('params', 0):,} parameters"):
            from core.model.architectures import summary_rows
            st.dataframe(summary_rows(state.model(run)), hide_index=True, width="stretch")


run_id = training.selected_run()
shown = training.load(run_id) if run_id else None
ended = st.session_state.pop(LIVE_KEY, None)
if shown is not None and shown.status in runs.ACTIVE:
    st.session_state[LIVE_KEY] = run_id
    st.query_params.from_dict({"run": run_id})  # this address re-attaches: after a reload, in another browser
    st.info("Training runs in the background, in a process of its own: visit other pages, reload, or share this "
            "page's address; the live curves are kept with the run.")
    # each redraw costs the browser CPU: on the machine that trains, CPU the training does not get. So one timer
    # redraws the progress line about every 2 s and sends the chart the points it lacks every 5 s, unless the
    # user asks for every second (bench/bench_watched.py, docs/benchmarks.md)
    every = st.session_state.get("curves_every") or training.CURVES_DEFAULT
    # the progress bar eases each change over 0.5 s: frames the browser renders in software, for nothing here
    st.html("<style>[data-testid=stProgress] * { transition: none !important; }</style>")
    st.subheader(heading(shown))
    # outside the timer: a click reruns the page, which greys it out; the timer's redraws leave it alone
    st.button("Stop", type="primary", icon=":material/stop:", on_click=training.stop, args=(run_id,),
              disabled=training.stopping(run_id), key="stop_button", help=training.STOP_HELP)
    st.fragment(run_every=training.tick(every))(watch)(run_id, every)
    st.segmented_control("Redraw the curves", list(training.CURVES_EVERY), key="curves_every",
                         default=training.CURVES_DEFAULT, format_func=training.CURVES_EVERY.get,
                         help=training.CURVES_HELP, persist_state=KEEP)
    st.button("Set up another training", on_click=training.forget, icon=":material/add:")
else:
    if ended and ended == run_id:
        st.rerun()  # it ended during this script run, after the sidebar had listed the models: once more
    cfg = config_form(run_id)
    available, why = state.status(cfg.dataset, cfg.data_path)
    if not available:
        st.warning(f"**{state.dataset_title(cfg.dataset)} is not available here.** {why}")
    with st.expander("Find a learning rate", icon=":material/search:"):
        tuning.lr_finder(cfg)
    if st.button("Start training", type="primary", icon=":material/play_arrow:", disabled=not available):
        try:
            st.query_params.from_dict({"run": training.submit(cfg)})
        except LabError as e:
            st.error(f"Cannot start this training: {e}")
        else:
            st.rerun()
    if shown is not None:
        st.subheader(heading(shown))
        live(run_id, False)
        # the outcome and its button above the charts, which grow when their script loads: nothing moves under the
        # pointer of a person who clicks "Use as the active model" at once
        result(shown)
        curves(run_id, False)
        model_summary(shown)
