"""Fixes: every relabel, exclusion and added image of the active dataset; undo one by one; retrain with them."""
import numpy as np
import streamlit as st

from core import LabError
from core.data import fixes as core_fixes
from core.store import runs
from ui import charts, fixes, state

st.title("Fixes")
ds = state.dataset()
if ds is None:
    st.stop()
overlay = fixes.overlay(ds.name)
try:
    active, undone = core_fixes.placed(ds, overlay)  # where each fix's image is now (own images: by file and hash)
except runs.RunError as e:
    st.error(str(e))
    st.stop()
names = list(ds.class_names)
st.markdown(f"Changes to **{ds.name}** made from Mistakes, Label errors and Predict. The original data is never "
            "touched: fixes live in an append-only log and apply only to runs trained *with fixes* (Runs page: "
            "Retrain with fixes). Each run records the data version it used.")
st.caption(f"{len(active)} active, {len(undone)} undone · {overlay.path}")


def undo(fix_id: str) -> None:
    try:
        overlay.undo(fix_id)
    except LabError as e:
        st.error(f"Could not undo: {e}")


def thumbnail(fix, where):
    if fix.op == "add":
        return fixes.item_image(ds, "train", fix.file)
    if not where.found:
        return None
    return np.asarray((ds.x_train if where.split == "train" else ds.x_test)[where.index])


def describe(fix, where=None) -> str:
    whom = core_fixes.whom(fix, where)
    what = {"relabel": f"relabel {whom} as **{fix.label_name or fix.label}**", "exclude": f"exclude {whom}",
            "add": f"add a drawing to train as **{fix.label_name or fix.label}**"}[fix.op]
    note = core_fixes.NOTES.get(where.state) if where is not None else None
    converted = f" (made on {fix.converted}, converted to its file)" if fix.converted else ""
    return f"{what}{converted} · from {fix.view or '?'} · {fix.when}" + (f"  \n:orange[{note}]" if note else "")


if not active:
    st.info("No active fixes for this dataset: open a mistake's details, a label error or a prediction to make one.")
for fix, where in reversed(active):  # newest first
    c1, c2, c3 = st.columns([1, 6, 1], vertical_alignment="center")
    image = thumbnail(fix, where)
    if image is not None:
        c1.image(charts.enlarge(image, 56))
    c2.markdown(describe(fix, where))
    c3.button("Undo", key=f"undo_{fix.id}", on_click=undo, args=(fix.id,), icon=":material/undo:")
if undone:
    with st.expander(f"Undone ({len(undone)})"):
        for fix in undone:
            st.markdown(describe(fix))
