"""Sweeps: launch a grid (or random) sweep on the training engine; its runs ranked, in parallel coordinates."""
import streamlit as st

from core import LabError

from core.train import sweeps
from core.model.architectures import ARCHITECTURES
from core.train.trainer import TrainConfig
from ui import settings, state, training, tuning

st.title("Sweeps")
EPOCHS = [1, 2, 3, 5, 10, 20]
AUGMENT = {"default": None, "on": True, "off": False}


def new_sweep() -> None:
    """The grid: several values per setting; every combination, or N of them at random."""
    with st.form("new_sweep", border=False):
        c1, c2 = st.columns(2)
        names = state.dataset_names()  # built-ins and own datasets, as the Train page lists them
        active = state.active_dataset()
        dataset = c1.selectbox("Dataset", names, format_func=state.dataset_title,
                               index=names.index(active) if active in names else 0, key="sweep_dataset")
        archs = c2.multiselect("Architectures", list(ARCHITECTURES), default=["dense"], key="sweep_archs")
        c1, c2, c3 = st.columns(3)
        lrs = c1.multiselect("Learning rates", settings.LEARNING_RATES, default=[1e-3, 3e-3], key="sweep_lrs")
        batches = c2.multiselect("Batch sizes", settings.BATCH_SIZES, default=[32], key="sweep_batches")
        epochs = c3.multiselect("Epochs", EPOCHS, default=[1], key="sweep_epochs")
        c1, c2, c3, c4 = st.columns(4)
        augment = c1.multiselect("Augmentation", list(AUGMENT), default=["default"], key="sweep_augment",
                                 help="default: the architecture's own choice (on for cnn_augmented)")
        subset = c2.number_input("Training samples (0 = all)", 0, 10**7, 0, step=1000, key="sweep_subset")
        patience = c3.number_input("Early stopping patience (0 = off)", 0, 100, 0, key="sweep_patience")
        n_random = c4.number_input("Random combinations (0 = the whole grid)", 0, sweeps.MAX_RUNS, 0,
                                   key="sweep_random")
        submitted = st.form_submit_button("Start sweep", type="primary", icon=":material/play_arrow:")
    if not submitted:
        return
    grid = {"arch": archs, "learning_rate": lrs, "batch_size": batches, "epochs": epochs,
            "augment": [AUGMENT[a] for a in augment]}
    if not all(grid.values()):
        st.error("Pick at least one value for each setting.")
        return
    grid = {k: v for k, v in grid.items() if len(v) > 1 or k in ("arch", "learning_rate")}  # varied ones show
    fixed = dict(batch_size=batches[0], epochs=epochs[0], augment=AUGMENT[augment[0]])
    base = TrainConfig(dataset=dataset, arch=archs[0], max_train_samples=int(subset) or None,
                       early_stopping_patience=int(patience) or None, data_path=state.folder_path(dataset), **fixed)
    try:
        tuning.launch(base, grid, int(n_random) or None)
    except LabError as e:
        st.error(f"Cannot start this sweep: {e}")
        return
    st.rerun()


with st.expander("New sweep", icon=":material/add:", expanded=not sweeps.list_sweeps(training.engine().runs_dir)):
    st.caption(f"Each combination is one run in the training queue (at most {training.engine().slots} at a "
               "time on this server; more with CLASSIFIER_LAB_MAX_TRAININGS, or on Ray). Runs are ranked by the "
               "validation accuracy of the epoch they keep.")
    new_sweep()

known = sweeps.list_sweeps(training.engine().runs_dir)
if not known:
    st.info("No sweep yet: choose the values to try above and start one.")
    st.stop()
ids = [s["id"] for s in known]
if st.session_state.get(tuning.SWEEP_KEY) not in ids:  # first visit: the address's sweep, else the newest
    st.session_state[tuning.SWEEP_KEY] = st.query_params.get("sweep") if st.query_params.get("sweep") in ids else ids[0]
sizes = {s["id"]: len(s["runs"]) for s in known}
chosen = st.selectbox("Sweep", ids, key=tuning.SWEEP_KEY, format_func=lambda i: f"{i} · {sizes[i]} runs")
st.query_params["sweep"] = chosen
active = bool(sweeps.active(sweeps.load(chosen, training.engine().runs_dir), training.engine()))
if active:
    st.fragment(run_every=2.0)(tuning.sweep_view)(chosen, True)
else:
    tuning.sweep_view(chosen)
