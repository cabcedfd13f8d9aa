"""App-layer caches for looking inside the active model: its activation sub-model, test-set embeddings,
their 2-D maps, near-duplicates and outliers (per model file version and data version)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import streamlit as st

from core.store import runs
from core.data.datasets import load_dataset
from ui import state


def test_set() -> tuple[runs.Run, object, np.ndarray]:
    """The active run, its dataset and test-set probabilities; or a message on the page and the end of the run."""
    run = state.require_run()
    ds = state.dataset(run.dataset, run.config.get("data_path"))
    if ds is None:
        st.stop()
    return run, ds, state.test_probs(run, ds)


@st.cache_resource(max_entries=4, show_spinner=False)
def _inspector(path: str, mtime: float):
    from core.analysis.activations import inspector

    found = inspector(state._model(path, mtime))
    if found is not None and found.model is not None:  # trace the compiled call now, not on the first drawing
        found(np.zeros(found.model.input_shape[1:], np.uint8))
    return found


def inspector(run: runs.Run):
    """The run's activation Inspector (None when its graph can't be opened); never mutate it."""
    return _inspector(str(run.model_path), run.model_path.stat().st_mtime)


@st.cache_resource(max_entries=8, show_spinner=False)
def _activation_figures(path: str, mtime: float, digest: str, _x: np.ndarray) -> list:
    from ui.inside_charts import activation_figures

    found = _inspector(path, mtime)
    return activation_figures(found.probes, found(_x)[0])


def activation_figures(run: runs.Run, x: np.ndarray) -> list:
    """Every watched layer's figure for this input, made once per model file version and input; never mutate them."""
    # a rerun with the same drawing (a toggle, a fix) neither calls the model nor builds figures again
    x = np.ascontiguousarray(x)
    digest = hashlib.blake2b(x.data, digest_size=16).hexdigest() + f"{x.dtype}{x.shape}"
    return _activation_figures(str(run.model_path), run.model_path.stat().st_mtime, digest, x)


def _key(run: runs.Run, ds) -> tuple:
    """Model file version and data version: a retrained model or another data source recomputes."""
    return str(run.model_path), run.model_path.stat().st_mtime, ds.name, run.config.get("data_path"), ds.source


@st.cache_data(max_entries=4, show_spinner="Computing the test set's embeddings…")
def _embeddings(model_path: str, mtime: float, name: str, path: str | None, source: str):
    from core.analysis.embedding import embeddings, load_test, reduce

    images = load_dataset(name, path=path).x_test
    # a run folder's own: training stored them (no pass over the test set, no TensorFlow import)
    stored = load_test(Path(model_path).parent, images) if Path(model_path).name == "model.keras" else None
    return stored or reduce(embeddings(state._model(model_path, mtime), images))


@st.cache_data(max_entries=8, show_spinner="Projecting to 2-D…")
def _projection(model_path: str, mtime: float, name: str, path: str | None, source: str, method: str):
    from core.analysis.embedding import project

    return project(_embeddings(model_path, mtime, name, path, source).x, method)


@st.cache_data(max_entries=4, show_spinner="Finding near-duplicates and outliers…")
def _neighbours(model_path: str, mtime: float, name: str, path: str | None, source: str) -> tuple[dict, dict]:
    from core.analysis.embedding import near_duplicates, outliers

    emb = _embeddings(model_path, mtime, name, path, source).x
    return near_duplicates(emb), outliers(emb)


def embeddings(run: runs.Run, ds):
    """Test-set embeddings (core.analysis.embedding.Embedded), or None with a message on the page (no hidden layer)."""
    try:
        return _embeddings(*_key(run, ds))
    except ValueError as e:
        st.info(f"**No embedding map for {run.label}.** {state.sentence(e)}")
        return None


def projection(run: runs.Run, ds, method: str) -> np.ndarray:
    return _projection(*_key(run, ds), method)


def neighbours(run: runs.Run, ds) -> tuple[dict, dict]:
    return _neighbours(*_key(run, ds))
