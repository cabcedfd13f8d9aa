"""The Label errors page's training-data search: start k fold runs, follow them, list what cleanlab finds."""
from __future__ import annotations

import streamlit as st

from core import LabError
from core.store import runs

from core.train import label_search
from core.model.architectures import ARCHITECTURES
from core.train.trainer import TrainConfig
from ui import charts, fixes, training

SHOW = 30


@st.cache_data(max_entries=4, show_spinner="Ranking with confident learning…")
def _issues(run_ids: tuple[str, ...], runs_dir: str, class_names: tuple[str, ...]) -> list[dict]:
    return label_search.issues(*label_search.collect(run_ids, runs_dir), class_names)


def _form(ds, data_path: str | None) -> None:
    """How to search: folds, a small architecture, epochs, with or without the fixes made so far."""
    with st.form("label_search_form", border=True):
        c1, c2, c3, c4 = st.columns(4)
        folds = c1.number_input("Folds", 2, 10, label_search.DEFAULTS["folds"], key="ls_folds")
        arch = c2.selectbox("Architecture", list(ARCHITECTURES), index=list(ARCHITECTURES).index("dense"), key="ls_arch")
        epochs = c3.number_input("Epochs", 1, 50, label_search.DEFAULTS["epochs"], key="ls_epochs")
        with_fixes = c4.checkbox("With fixes so far", True, key="ls_fixes")
        if st.form_submit_button("Find label errors in the training data", type="primary", icon=":material/search:"):
            base = TrainConfig(dataset=ds.name, arch=arch, epochs=int(epochs), folds=int(folds), fixes=with_fixes,
                               data_path=data_path)
            try:
                label_search.start(training.engine(), base)
            except (LabError, OSError) as e:
                st.error(f"Cannot start the search: {e}")
            else:
                st.session_state.pop("ls_new", None)
                st.rerun()


def _progress(record: dict) -> bool:
    """Each fold run's progress; True once all have finished."""
    rows = label_search.progress(record, training.engine().runs_dir)
    done = sum(r["status"] in runs.FINISHED for r in rows)
    st.progress(done / max(1, len(rows)), text=f"{done} of {len(rows)} fold models trained "
                f"({record['arch']}, {record['epochs']} epochs, {'with' if record['fixes'] else 'without'} fixes; "
                f"started {record['created']})")
    st.dataframe(rows, hide_index=True, key="ls_runs")
    return done == len(rows)


def section(ds, data_path: str | None = None) -> None:
    """Out-of-sample probabilities from k fold runs, then cleanlab: likely wrong labels in the training split."""
    names = list(ds.class_names)
    record = label_search.latest(ds.name, training.engine().runs_dir)
    if record is None or st.session_state.get("ls_new"):
        _form(ds, data_path)
        if record is None:
            return
    active = {a["run_id"] for a in training.engine().active()}
    if active & set(record["runs"]):
        st.fragment(run_every=2.0)(_progress)(record)  # redraws only this part while folds train
        st.button("Refresh results", key="ls_refresh", help="The list appears when every fold has finished")
        return
    if not _progress(record):
        st.warning("Some fold runs did not finish (failed, stopped or deleted): start a new search.")
        _form(ds, data_path)
        return
    st.button("New search", key="ls_new_button", on_click=st.session_state.__setitem__, args=("ls_new", True))
    try:
        found = _issues(tuple(record["runs"]), str(training.engine().runs_dir), tuple(names))
    except runs.RunError as e:
        st.error(str(e))
        return
    st.metric("suspected label errors in the training data", f"{len(found):,}")
    for k, item in enumerate(found[:SHOW]):
        key = str(item.get("index", item.get("file")))
        if k % 6 == 0:
            cols = st.columns(6)
        with cols[k % 6]:
            image = fixes.item_image(ds, "train", key)
            if image is not None:
                st.image(charts.enlarge(image, 112), width="stretch",
                         caption=f"#{key} given: {item['given_name']} → {item['suggested_name']} "
                                 f"({item['confidence_in_suggested']:.0%})")
            fixes.quick_controls(ds.name, "train", int(key) if key.isdigit() else key, item["suggested"], names,
                                 "label errors", ns="ls")
