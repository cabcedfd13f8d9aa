"""The Label errors page's search of the data: start k fold runs, follow them, list what cleanlab finds (an own
dataset: all its images, each named by its file)."""
from __future__ import annotations

import streamlit as st

from core import LabError
from core.store import runs

from core.train import label_search
from core.model.architectures import ARCHITECTURES
from core.train.trainer import TrainConfig
from ui import charts, downloads, fixes, training

SHOW = 30


@st.cache_data(max_entries=4, show_spinner="Ranking with confident learning…")
def _issues(run_ids: tuple[str, ...], runs_dir: str, class_names: tuple[str, ...]) -> list[dict]:
    return label_search.issues(label_search.collect(run_ids, runs_dir), class_names)


def _form(ds, data_path: str | None) -> None:
    """How to search: folds, the dataset's default recipe, epochs, with or without the fixes made so far."""
    start = label_search.defaults(ds.name)  # epochs: the default architecture's
    with st.form("label_search_form", border=True):
        c1, c2, c3, c4 = st.columns(4)
        folds = c1.number_input("Folds", 2, 10, start["folds"], key="ls_folds")
        arch = c2.selectbox("Architecture", list(ARCHITECTURES), index=list(ARCHITECTURES).index(start["arch"]),
                            key="ls_arch")
        epochs = c3.number_input("Epochs", 1, 50, start["epochs"], key="ls_epochs")
        with_fixes = c4.checkbox("With fixes so far", True, key="ls_fixes")
        what = "all the images" if ds.has_files else "the training data"
        if st.form_submit_button(f"Find label errors in {what}", type="primary", icon=":material/search:"):
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
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    c1.metric(f"suspected label errors in {'all the images' if ds.has_files else 'the training data'}",
              f"{len(found):,}", help="Images the fold models put in another class, and those confident learning "
              "flags; most doubted first")
    c1.caption(f"{sum(f['flagged'] for f in found):,} of them flagged by confident learning (cleanlab).")
    c2.download_button("Download all as CSV", downloads.to_csv(found), file_name=f"label_search_{ds.name}.csv",
                       mime="text/csv", icon=":material/download:", disabled=not found, key="ls_csv")
    for k, item in enumerate(found[:SHOW]):
        # own images: by file (and hash: found again after a rename), in their split; built-ins by index
        key, split = item.get("index", item.get("file")), item.get("split", "train")
        split = "train" if split == "added" else split
        if k % 6 == 0:
            cols = st.columns(6)
        with cols[k % 6]:
            image = fixes.item_image(ds, split, key, item.get("hash"))
            if image is not None:
                st.image(charts.enlarge(image, 112), width="stretch",
                         caption=f"{key if item.get('hash') else f'#{key}'} given: {item['given_name']} → "
                                 f"{item['suggested_name']} ({item['confidence_in_suggested']:.0%})")
            fixes.quick_controls(ds.name, split, key, item["suggested"], names, "label errors", ns="ls",
                                 digest=item.get("hash"))
