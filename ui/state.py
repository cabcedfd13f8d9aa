"""App-layer state: cached models and predictions, the active dataset and model, the sidebar."""
from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

import numpy as np
import streamlit as st

from core.model import compat

from core.store import runs
from core.data.datasets import DatasetUnavailable, dataset_status, load_dataset
from core.data import identity
from core.data.registry import dataset_names, spec

DATASET_KEY, MODEL_KEY = "active_dataset", "active_model"


# Importing TensorFlow takes a core and, while its shared library loads, the GIL for a second or more:
# begun at once it held up the first page by ~1 s on a busy 2-core machine (bench/bench_startup.py), so
# it waits until that page has been sent. A page that needs TensorFlow sooner simply imports it itself.
WARM_DELAY_S = 2.0


@st.cache_resource
def warm_tensorflow() -> threading.Thread:
    """Import TensorFlow once per server in the background, so no page waits for it later."""
    def _import():
        time.sleep(WARM_DELAY_S)
        import keras  # noqa: F401  (imports tensorflow)

        import core.model.layers  # noqa: F401
        # Streamlit runs gc.collect(2) after every script run, the Train page's redraw each second too:
        # over TensorFlow's ~400k objects that is ~0.1–0.2 s of CPU with the GIL held, which a training
        # on the same cores loses (issue #12). They live as long as the server: out of the collector's sight.
        gc.collect()
        gc.freeze()
    thread = threading.Thread(target=_import, name="warm-tensorflow", daemon=True)
    thread.start()
    return thread


def active_dataset() -> str:
    return st.session_state.get(DATASET_KEY, "mnist")


def folder_path(name: str | None = None) -> str | None:
    """Always None: the web app reads no server path typed by a user (own images come from My data)."""
    return None


def dataset_title(name: str) -> str:
    """A dataset's title for select boxes (own datasets: their name)."""
    try:
        return spec(name).title
    except DatasetUnavailable:
        return name


def set_dataset(name: str) -> None:
    """Make a dataset the active one; applied by the sidebar before its widgets (safe from anywhere)."""
    st.session_state["pending_dataset"] = name


@st.cache_data(ttl=60, max_entries=16, show_spinner=False)
def status(name: str, path: str | None) -> tuple[bool, str]:
    """Availability line for the sidebar; cached briefly so reruns don't re-probe."""
    return dataset_status(name, path)


def dataset(name: str | None = None, path: str | None = None):
    """The dataset (core caches decoded arrays); None with an on-page message if unavailable."""
    name = name or active_dataset()
    path = path if name != active_dataset() else path or folder_path()
    try:
        with st.spinner(f"Loading {dataset_title(name)}…"):
            return load_dataset(name, path=path)
    except DatasetUnavailable as e:
        st.warning(f"**{dataset_title(name)} is not available here.** {e}")
        return None


def model_choices(name: str | None = None) -> list[runs.Run]:
    """Usable saved runs for the dataset, newest first, then the bundled default."""
    name = name or active_dataset()
    saved = [r for r in runs.list_runs() if r.usable and r.dataset == name]
    return saved + [r for r in runs.bundled_models() if r.dataset == name]


def active_run() -> runs.Run | None:
    """The selected model, or the newest usable one for the active dataset."""
    choices = model_choices()
    chosen = st.session_state.get(MODEL_KEY)
    for run in choices:
        if str(run.path) == chosen:
            return run
    return choices[0] if choices else None


def require_run() -> runs.Run:
    """The active run, or a hint on the page and the end of this script run."""
    run = active_run()
    if run is None:
        st.info("No model for this dataset yet: train one on the Train page, or pick MNIST or Fashion-MNIST "
                "in the sidebar to use a bundled model.")
        st.stop()
    return run


def set_active(run: runs.Run) -> None:
    """Make a run the active model; applied by the sidebar before its widgets (safe from anywhere)."""
    st.session_state["pending_active"] = (run.dataset, str(run.path))


def _apply_pending() -> None:
    pending = st.session_state.pop("pending_active", None)
    if pending:
        st.session_state[DATASET_KEY], st.session_state[MODEL_KEY] = pending
    if "pending_dataset" in st.session_state:
        st.session_state[DATASET_KEY] = st.session_state.pop("pending_dataset")


@st.cache_resource(max_entries=4, show_spinner="Loading model…")
def _model(path: str, mtime: float):
    from core.analysis.inference import predict

    model = compat.load_model(Path(path))
    try:  # trace the compiled one-image predict now, behind the spinner, not on the first drawing
        predict(model, np.zeros((1, *model.input_shape[1:]), np.uint8))  # (0.5–1.3 s, bench_predict.py)
    except Exception:  # noqa: BLE001  a model that can't predict says so where it is used
        pass
    return model


def _unusable(run: runs.Run, e: Exception):
    """A model file that won't load (damaged, deleted meanwhile): say so on the page and end the run."""
    st.error(f"**Model {run.label} cannot be used.** {e} Pick another model in the sidebar.")
    st.stop()


def model(run: runs.Run):
    """The run's Keras model, loaded once per file version; never mutate it."""
    try:
        return _model(str(run.model_path), run.model_path.stat().st_mtime)
    except (runs.RunError, OSError) as e:
        _unusable(run, e)


@st.cache_data(max_entries=8, show_spinner="Predicting the test set…")
def _test_probs(model_path: str, mtime: float, name: str, path: str | None, test_images: str) -> np.ndarray:
    from core.analysis.inference import predict, stored_test_probs

    ds = load_dataset(name, path=path)
    probs = stored_test_probs(Path(model_path), ds)
    if probs is not None:
        return probs  # saved by training on exactly this test split
    model = _model(model_path, mtime)
    shape, n_out = compat.model_io(model)
    problem = compat.fit_problem(shape, n_out, ds.input_shape, ds.num_classes, name)
    if problem:  # e.g. a run folder whose model.keras was replaced: say so rather than crash in Keras
        raise runs.RunError(sentence(problem))
    return predict(model, ds.x_test)


def sentence(text: str) -> str:
    """'the model …' -> 'The model ….' for a message on the page."""
    text = str(text).strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def test_probs(run: runs.Run, ds) -> np.ndarray:
    """Test-set probabilities of a model on a dataset, computed once per test set and cached (an own dataset's
    test images change when files are added or removed: the cache is keyed by which they are)."""
    test_images = identity.split_version(ds)["test"] if ds.has_files else ds.source
    try:
        return _test_probs(str(run.model_path), run.model_path.stat().st_mtime, ds.name,
                           run.config.get("data_path"), test_images)
    except (runs.RunError, OSError) as e:
        _unusable(run, e)


def sidebar() -> None:
    """Active dataset and model, and where the data comes from; shown on every page."""
    _apply_pending()
    with st.sidebar:
        names = dataset_names()
        if st.session_state.get(DATASET_KEY) not in names:  # first visit, or an own dataset was deleted
            st.session_state[DATASET_KEY] = "mnist"
        st.selectbox("Dataset", names, key=DATASET_KEY, format_func=dataset_title)
        name = active_dataset()
        ok, line = status(name, None)
        (st.caption if ok else st.warning)(line if ok else f"Not available: {line}")
        choices = model_choices(name)
        if choices:
            labels = {str(r.path): r.label for r in choices}
            st.session_state[MODEL_KEY] = str(active_run().path)  # keeps a valid choice when the list changes
            st.selectbox("Model", list(labels), key=MODEL_KEY, format_func=labels.get)
        else:
            st.info("No model for this dataset yet: train one on the Train page.")
