"""Mistakes: confusion matrix that filters a gallery of misclassified test images, with details."""
import numpy as np
import streamlit as st

from core.analysis import metrics
from ui import charts, downloads, fixes, state
from ui.gallery import Gallery

ANY = -1

st.title("Mistakes")
run = state.require_run()
ds = state.dataset(run.dataset, run.config.get("data_path"))
if ds is None:
    st.stop()
model_shape = tuple(run.meta.get("data", {}).get("input_shape") or ds.input_shape)
if model_shape != tuple(ds.input_shape):
    st.error(f"This model expects images of shape {model_shape}, but {ds.name} has {ds.input_shape}.")
    st.stop()

probs = state.test_probs(run, ds)
y, keep = fixes.test_labels(run, ds)  # a run trained with fixes is judged by its fixed test labels
pred = probs.argmax(1)
names = list(ds.class_names)
summary = metrics.summary(probs[keep], y[keep], names)
cm = np.asarray(summary["confusion_matrix"])

c1, c2, c3 = st.columns(3)
c1.metric("test accuracy", f"{summary['accuracy']:.2%}")
c2.metric("mistakes", f"{summary['errors']:,} of {summary['n']:,}")
c3.metric("test loss", f"{summary['loss']:.4f}")
st.caption(f"Model {run.label} on {ds.source}")


def _on_cell() -> None:
    """A click on a confusion-matrix cell sets the class filters."""
    points = st.session_state["cm_chart"].selection.points
    if points:
        true, predicted = points[0]["customdata"]
        st.session_state["m_true"], st.session_state["m_pred"] = int(true), int(predicted)


for key in ("m_true", "m_pred"):  # a class of the previous dataset may not exist in this one
    if st.session_state.get(key) not in range(ANY, len(names)):
        st.session_state[key] = ANY
label = {ANY: "any", **dict(enumerate(names))}
left, right = st.columns([3, 2])
with left:
    st.subheader("Confusion matrix")
    selected = (st.session_state["m_true"], st.session_state["m_pred"])
    st.plotly_chart(charts.confusion(cm, names, selected if ANY not in selected else None), key="cm_chart",
                    on_select=_on_cell, selection_mode="points")
    st.caption("Click a cell to show only those mistakes (rows: true class, columns: predicted).")
with right:
    st.subheader("Accuracy per class")
    st.plotly_chart(charts.per_class_accuracy(names, metrics.per_class(cm)["accuracy"]), key="class_chart")
    f1, f2 = st.columns(2)
    true_c = f1.selectbox("True class", [ANY, *range(len(names))], format_func=label.get, key="m_true")
    pred_c = f2.selectbox("Predicted class", [ANY, *range(len(names))], format_func=label.get, key="m_pred")

st.subheader("Misclassified images")
s1, s2 = st.columns([2, 1])
sort = s1.radio("Order", metrics.SORTS, horizontal=True, key="m_sort",
                format_func=lambda s: {"most confident": "most confident wrong", "random": "random sample"}.get(s, s))
seed = s2.number_input("Sample seed", 0, 10**6, 0, key="m_seed", disabled=sort != "random")
idx = metrics.mistakes(probs, y, true_class=None if true_c == ANY else true_c,
                        pred_class=None if pred_c == ANY else pred_c, sort=sort, seed=int(seed))
idx = idx[keep[idx]]  # test images a fix excluded are not this run's mistakes

gallery = Gallery(run, ds, probs, prefix="m")

# a callable is only run on the click: a rerun (every filter change) doesn't build the CSV; the click reruns
# nothing, so the file's request never races a rerun that registers the button again (Streamlit's docstring warns
# of that race; a fresh clone's test once waited a minute on the button's spinner)
st.download_button("Download these mistakes as CSV", lambda: downloads.to_csv([
    {"test index": int(i), **fixes.who(ds, "test", i), "true label": names[y[i]], "predicted label": names[pred[i]],
     "confidence": round(float(probs[i, pred[i]]), 4), "confidence in true": round(float(probs[i, y[i]]), 4)}
    for i in idx]), file_name=f"mistakes_{run.id}.csv", mime="text/csv", icon=":material/download:",
    on_click="ignore")

if len(idx) == 0:
    st.success("No mistakes with this filter." + (" That cell holds the correctly classified images."
                                                  if true_c == pred_c != ANY else ""))
gallery.show(idx, (true_c, pred_c, sort, seed))
