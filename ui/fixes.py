"""App side of data fixes: the buttons every view shares, a run's fixed labels, retrain with fixes."""
from __future__ import annotations

import dataclasses

import numpy as np
import streamlit as st

from core import LabError
from core.data import fixes, identity

from core.store import runs
from core.model.architectures import ARCHITECTURES
from core.train.trainer import TrainConfig
from ui import training

VERBS = {"relabel": "Relabelled", "exclude": "Excluded", "add": "Added"}


def overlay(dataset: str) -> fixes.Overlay:
    return fixes.Overlay(dataset, runs.default_runs_dir())


def readable(dataset: str) -> tuple[fixes.Overlay, list]:
    """The dataset's overlay and its lines; none where the runs folder can't be read (the page that writes there,
    Train's Start, says what is wrong with it), so a view shows the files as they are."""
    log = overlay(dataset)
    try:
        return log, log.lines()
    except LabError:
        return log, []


def train_option(dataset: str) -> dict:
    """The Train form's "with this dataset's fixes" toggle, shown when it has any (e.g. made on My data before a
    first training): TrainConfig fields pinning the fixes so far, or {} to train on the files as they are."""
    log, lines = readable(dataset)
    active = len(log.state(len(lines))[0]) if lines else 0
    if not active:
        return {}
    on = st.toggle(f"With this dataset's {active} fix(es) (relabels, exclusions, added images)", value=True,
                   key=f"train_fixes_{dataset}", help="Kept in the dataset's fix overlay (Fixes page); the files "
                   "stay as they are.")
    return {"fixes": True, "fixes_upto": len(lines)} if on else {}


def _done(fix: fixes.Fix) -> None:
    what = f"{fix.key}" if fix.hash else f"{fix.split} image {fix.key}"  # own images by file, built-ins by index
    what = what if fix.op != "add" else "the image to the training set"
    st.toast(f"{VERBS[fix.op]} {what}" + (f" as {fix.label_name}" if fix.label_name else "")
             + " — see the Fixes page; it applies when you retrain with fixes.", icon=":material/check:")


def _record(dataset: str, *args, **kw) -> None:
    try:
        _done(overlay(dataset).record(*args, **kw))
    except LabError as e:
        st.error(f"Could not save the fix: {e}")


def fix_controls(ds, split: str, i: int, given: int, view: str, suggested: int | None = None,
                 ns: str = "fix") -> None:
    """'Relabel as …' and 'Exclude' for image i of a split; stored in the dataset's overlay, originals untouched."""
    names = list(ds.class_names)
    key, digest = fixes.item_ref(ds, split, i)  # own images by file and content hash, built-ins by index
    others = [c for c in range(len(names)) if c != given]
    default = others.index(suggested) if suggested in others else 0
    c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
    new = c1.selectbox("Relabel as", others, index=default, format_func=lambda c: names[c], key=f"{ns}_label_{key}")
    c2.button("Relabel", key=f"{ns}_relabel_{key}", icon=":material/edit:", on_click=_record,
              args=(ds.name, "relabel", split, key, new, names[new]), kwargs={"view": view, "hash": digest})
    c3.button("Exclude", key=f"{ns}_exclude_{key}", icon=":material/block:", on_click=_record,
              args=(ds.name, "exclude", split, key), kwargs={"view": view, "hash": digest})


def add_controls(dataset: str, image: np.ndarray, names, top: int, view: str = "predict") -> None:
    """'Add to the training set as …' for a preprocessed image (what the model sees)."""
    def add(label: int) -> None:
        try:
            _done(overlay(dataset).add_image(image, label, names[label], view=view))
        except LabError as e:
            st.error(f"Could not add the image: {e}")

    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    label = c1.selectbox("Add to the training set as", range(len(names)), index=top, format_func=lambda c: names[c],
                         key="add_label")
    c2.button("Add", key="add_image", icon=":material/add_photo_alternate:", on_click=add, args=(label,))


@st.cache_data(max_entries=8, show_spinner=False)
def _run_labels(dataset: str, path: str | None, version: str, meta_fixes: dict, runs_dir: str):
    from core.data.datasets import load_dataset

    prep = fixes.for_run(load_dataset(dataset, path=path), {"data_version": {"fixes": meta_fixes}}, runs_dir)
    return np.asarray(prep.dataset.y_test), prep.test_keep


def test_labels(run: runs.Run, ds) -> tuple[np.ndarray, np.ndarray]:
    """The test labels a run was evaluated on (its overlay's relabels) and which test images counted."""
    meta_fixes = (run.meta.get("data_version") or {}).get("fixes")
    if not meta_fixes:
        return np.asarray(ds.y_test), np.ones(len(ds.y_test), bool)
    return _run_labels(ds.name, run.config.get("data_path"), fixes.version_id(run.meta["data_version"]),
                       meta_fixes, str(runs.default_runs_dir()))


def can_retrain(run: runs.Run) -> bool:
    return run.config.get("arch") in ARCHITECTURES and run.config.get("fold") is None  # not imported models


def retrain_with_fixes(run: runs.Run) -> str | None:
    """Queue the run's configuration again on its dataset with every fix so far; the new run id."""
    cfg = TrainConfig.from_dict({**run.config, "runs_dir": str(training.engine().runs_dir)})
    upto = len(overlay(run.dataset).lines())
    try:
        new = training.submit(dataclasses.replace(cfg, fixes=True, fixes_upto=upto, fold=None, folds=None))
    except ValueError as e:
        st.error(f"Cannot retrain: {e}")
        return None
    st.session_state["retrained"] = (run.id, new)
    return new


def quick_controls(dataset: str, split: str, key, suggested: int | None, names, view: str, ns: str,
                   digest: str | None = None) -> None:
    """One-click fixes under a thumbnail: relabel as the suggested class (none: no suggestion), or exclude (own
    images: by file and content hash)."""
    if suggested is not None:
        st.button(f"Relabel as {names[suggested]}", key=f"{ns}_relabel_{key}", icon=":material/edit:",
                  on_click=_record, args=(dataset, "relabel", split, key, suggested, names[suggested]),
                  kwargs={"view": view, "hash": digest}, width="stretch")
    st.button("Exclude", key=f"{ns}_exclude_{key}", icon=":material/block:", on_click=_record,
              args=(dataset, "exclude", split, key), kwargs={"view": view, "hash": digest}, width="stretch")


def item_image(ds, split: str, key, digest: str | None = None) -> np.ndarray | None:
    """An image's pixels by how a fix or a search row names it: an index (built-ins), a file and content hash
    (own datasets; found again after a rename), or an image a fix added (a file in the overlay's folder)."""
    where = identity.locator(ds).place(split, key, digest)
    if where.found:
        return np.asarray((ds.x_train if where.split == "train" else ds.x_test)[where.index])
    from PIL import Image

    try:
        with Image.open(overlay(ds.name).dir / str(key)) as im:
            return np.asarray(im.convert("L" if len(ds.input_shape) == 2 else "RGB"))
    except (OSError, ValueError):
        return None


def who(ds, split: str, i: int) -> dict:
    """CSV columns naming an own image ({"file", "hash"}); none for built-ins, whose index column says it."""
    if not ds.has_files:
        return {}
    key, digest = fixes.item_ref(ds, split, i)
    return {"file": key, "hash": digest}


def file_caption(ds, split: str, i: int) -> str:
    """An own image's path inside its dataset folder, for the line under it ("" for built-ins, known by index)."""
    return f"{ds.train_files[i] if split == 'train' else ds.test_files[i]} · " if ds.has_files else ""
