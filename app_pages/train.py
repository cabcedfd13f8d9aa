"""Train: a configuration form, live charts fed by the training thread, Stop, and the result."""
import streamlit as st

from core.models import ARCHITECTURES
from core.training import OPTIMIZERS, TrainConfig
from ui import charts, jobs, settings, state

st.title("Train a model")
# the form is hidden while a run trains and when the user visits other pages: keep its values meanwhile,
# or they come back as the widgets' minimums (epochs 1, batch 8, …) instead of what the user set
KEEP = "session"
job = jobs.current()
busy = job is not None and job.alive


def _init_settings() -> None:
    """First visit: widget values from the URL, else the active dataset and the arch's presets."""
    if "train_arch" in st.session_state:
        return
    values, ignored = settings.from_query(st.query_params.to_dict())
    dataset = values.get("train_dataset", state.active_dataset())
    arch = values.get("train_arch", settings.default_arch(dataset))
    defaults = {"train_dataset": dataset, "train_arch": arch, "train_val": 0.1, "train_seed": 0,
                "train_subset": 0, **settings.arch_defaults(arch)}
    st.session_state.update({**defaults, **values})
    if ignored:
        st.warning("Ignored settings from the link: " + "; ".join(ignored))


def _on_dataset() -> None:  # own datasets train with `auto` by default
    st.session_state["train_arch"] = settings.default_arch(st.session_state["train_dataset"])
    _on_arch()


def _on_arch() -> None:
    st.session_state.update(settings.arch_defaults(st.session_state["train_arch"]))


def config_form() -> TrainConfig:
    """The training settings; changing the architecture loads its presets; the URL mirrors them."""
    _init_settings()
    c1, c2 = st.columns(2)
    dataset = c1.selectbox("Dataset", state.dataset_names(), format_func=state.dataset_title, key="train_dataset",
                           on_change=_on_dataset, persist_state=KEEP)
    arch = c2.selectbox("Architecture", list(ARCHITECTURES), format_func=lambda a: ARCHITECTURES[a].title,
                        key="train_arch", on_change=_on_arch, persist_state=KEEP)
    st.caption(ARCHITECTURES[arch].description)
    c1, c2, c3, c4 = st.columns(4)
    epochs = c1.number_input("Epochs", 1, 200, key="train_epochs", persist_state=KEEP)
    batch = c2.select_slider("Batch size", settings.BATCH_SIZES, key="train_batch", persist_state=KEEP)
    lr = c3.select_slider("Learning rate", settings.LEARNING_RATES, key="train_lr", persist_state=KEEP)
    optimizer = c4.selectbox("Optimizer", OPTIMIZERS, key="train_opt", persist_state=KEEP)
    c1, c2, c3 = st.columns(3)
    val = c1.slider("Validation split", 0.0, 0.5, step=0.05, key="train_val", persist_state=KEEP)
    seed = c2.number_input("Seed", 0, 2**31 - 1, key="train_seed", persist_state=KEEP)
    subset = c3.number_input("Training samples (0 = all)", 0, 10**7, step=1000, key="train_subset",
                             help="Train on a seeded subset for a quick look.", persist_state=KEEP)
    cfg = TrainConfig(dataset=dataset, arch=arch, epochs=int(epochs), batch_size=int(batch), learning_rate=lr,
                      optimizer=optimizer, validation_split=val, seed=int(seed),
                      max_train_samples=int(subset) or None,
                      data_path=state.folder_path(dataset))
    st.query_params.from_dict(settings.to_query(cfg))  # the address bar now reproduces this set-up
    st.caption("Share this page's address to share these settings.")
    return cfg


def progress(snap: dict) -> None:
    """Status line, progress bar, throughput and ETA."""
    status = snap.get("status", "starting")
    epochs, steps = snap.get("epochs_total") or 1, snap.get("steps_per_epoch") or 1
    epoch, batch = snap.get("epoch", 0), snap.get("batch", 0)
    done = ((max(epoch, 1) - 1) * steps + batch) / (epochs * steps)
    st.progress(min(done, 1.0), text=f"**{status}** · epoch {epoch}/{epochs} · batch {batch}/{steps}")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("samples/s", f"{snap.get('samples_per_s', 0):,.0f}")
    c2.metric("ETA", f"{snap.get('eta_s', 0):.0f} s" if status == "training" else "–")
    c3.metric("loss", f"{snap['loss'][-1]:.4f}" if snap["loss"] else "–")
    c4.metric("accuracy", f"{snap['accuracy'][-1]:.2%}" if snap["accuracy"] else "–")


def live() -> None:
    """Redraws from the store; the training thread never touches Streamlit."""
    job = jobs.current()
    snap = job.store.snapshot()
    st.subheader(f"{job.config.dataset} · {job.config.arch}")
    progress(snap)
    if snap.get("status") == "queued":
        st.warning(f"Busy: another training is running on this server (at most {jobs.max_concurrent()} at a "
                   "time). Yours is queued and starts as soon as a slot frees up.")
    if job.alive:
        st.button("Stop", type="primary", icon=":material/stop:", on_click=job.stop.set,
                  disabled=job.stop.is_set(), help="Ends training after the current batch and keeps the model.")
    if snap["steps"]:
        st.plotly_chart(charts.batch_curves(snap), key="batch_chart")
        st.caption(f"{snap['n_batches']:,} batches · at most {charts.MAX_POINTS} points drawn, smoothed")
    if snap["epochs"]:
        st.plotly_chart(charts.epoch_curves({"run": snap["epochs"]}), key="epoch_chart")
    if busy and not job.alive:
        st.rerun()  # finished: redraw the whole page (sidebar, result) once, without the timer


def result(job: jobs.Job) -> None:
    """Outcome of the last run: test metrics, model summary, or the error."""
    if job.error:
        st.error(f"Training failed: {job.error}")
        return
    if job.run is None:
        if job.store.snapshot(since=-1).get("status") == "cancelled":
            st.info("Stopped while queued: this training never started.")
        return
    m = job.run.meta
    st.success(f"Run **{job.run.id}** {m['status']}: test accuracy **{m['test_accuracy']:.2%}**, "
               f"test loss {m['test_loss']:.4f}, {m.get('epochs_done', 0)} epoch(s) in {m.get('fit_seconds', 0):.0f} s.")
    st.button("Use as the active model", on_click=state.set_active, args=(job.run,), icon=":material/check:")
    with st.expander(f"Model summary · {m.get('params', 0):,} parameters"):
        from core.models import summary_rows
        st.dataframe(summary_rows(state.model(job.run)), hide_index=True, width="stretch")


if busy:
    st.info("Training runs in the background: you can visit other pages and come back.")
    st.fragment(run_every=1.0)(live)()
else:
    cfg = config_form()
    available, why = state.status(cfg.dataset, cfg.data_path)
    if not available:
        st.warning(f"**{state.dataset_title(cfg.dataset)} is not available here.** {why}")
    if st.button("Start training", type="primary", icon=":material/play_arrow:", disabled=not available):
        jobs.start(cfg)
        st.rerun()
    if job is not None:
        live()
        result(job)
