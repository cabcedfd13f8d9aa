"""Likely label errors: in the training data (k-fold + cleanlab) and in the test set (the active model)."""
import numpy as np
import streamlit as st

from core.analysis import metrics
from core.data.fixes import item_ref
from ui import charts, downloads, fixes, label_search, state

SHOW = 30

st.title("Likely label errors")
ds = state.dataset()
if ds is None:
    st.stop()
st.header("In all your images (train and test)" if ds.has_files else "In the training data")
st.markdown(f"Every {'image' if ds.has_files else 'training image'} gets probabilities from a model that never saw "
            "it (k models, each trained without one fold, on the training engine), then confident learning "
            "(cleanlab) ranks the images "
            "whose given label those models most doubt. Fix them with one click; fixes apply when you retrain "
            "with fixes (Runs page).")
label_search.section(ds, state.folder_path())

st.header("In the test set")
st.markdown("Test images the model confidently puts in **another** class than their given label, "
            "ranked by how little probability the model gives the given label (confident learning: each "
            "class's threshold is the model's mean confidence on images labelled with it). Many are "
            "model errors; some are mislabelled or ambiguous images worth a second look.")
run = state.require_run()
ds = state.dataset(run.dataset, run.config.get("data_path"))
if ds is None:
    st.stop()
probs = state.test_probs(run, ds)
names = list(ds.class_names)
issues = metrics.label_issues(probs, ds.y_test, len(names))
n = len(issues["index"])
st.caption(f"Model {run.label} on {ds.source}")
c1, c2 = st.columns(2)
c1.metric("flagged test images", f"{n:,}", help="Confident in a class other than the given label")
c2.metric("share of the test set", f"{n / max(1, len(ds.y_test)):.1%}")

rows = [{"test index": int(i), **fixes.who(ds, "test", i), "given label": names[g], "suggested label": names[s],
         "confidence in given": round(float(cg), 4), "confidence in suggested": round(float(cs), 4)}
        for i, g, s, cg, cs in zip(issues["index"], issues["given"], issues["suggested"],
                                   issues["self_confidence"], issues["suggested_confidence"])]
st.download_button("Download all as CSV", downloads.to_csv(rows), file_name=f"label_issues_{run.id}.csv",
                   mime="text/csv", icon=":material/download:", disabled=not rows)
with st.expander("Per-class thresholds"):
    st.dataframe([{"class": c, "threshold": round(float(t), 4)} for c, t in zip(names, issues["thresholds"])],
                 hide_index=True)

st.subheader(f"Top {min(SHOW, n)}")
for k, row in enumerate(rows[:SHOW]):
    i = row["test index"]
    if k % 6 == 0:
        cols = st.columns(6)  # a row of columns per 6 images, so rows stay aligned when captions wrap
    with cols[k % 6]:
        st.image(charts.enlarge(np.asarray(ds.x_test[i]), 112), width="stretch",
                 caption=f"{ds.test_files[i] if ds.has_files else f'#{i}'} given: {row['given label']} → "
                         f"{row['suggested label']} ({row['confidence in suggested']:.0%})")
        key, digest = item_ref(ds, "test", i)
        fixes.quick_controls(ds.name, "test", key, int(issues["suggested"][k]), names, "label errors", ns="le",
                             digest=digest)
