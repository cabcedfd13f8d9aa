"""Metrics: precision, recall and F1 per class, and how far the model's confidence can be trusted."""
import numpy as np
import streamlit as st

from core.analysis import metrics
from ui import inside, inside_charts

st.title("Metrics")
run, ds, probs = inside.test_set()
y, names = np.asarray(ds.y_test), list(ds.class_names)
cm = metrics.confusion_matrix(y, probs.argmax(1), len(names))
rows = metrics.class_report(cm, names)
cal = metrics.calibration(probs, y)
st.caption(f"Model {run.label} on {ds.source} ({len(y):,} test images)")

c1, c2, c3 = st.columns(3)
c1.metric("accuracy", f"{np.trace(cm) / max(1, cm.sum()):.2%}")
c2.metric("macro F1", f"{np.mean([r['F1'] for r in rows]):.2%}", help="The unweighted mean of the classes' F1")
c3.metric("expected calibration error", f"{cal['ece']:.2%}",
          help="Mean gap between confidence and accuracy over 15 equal-width confidence bins, weighted by images")

st.subheader("Per class")
st.dataframe(rows, hide_index=True, key="class_table", column_config={
    k: st.column_config.NumberColumn(k, format="percent") for k in ("precision", "recall", "F1")})
st.caption("Computed from the confusion matrix (rows true, columns predicted): precision = diagonal / column, "
           "recall = diagonal / row, F1 their harmonic mean. Click a column heading to sort.")

left, right = st.columns(2)
with left:
    st.subheader("Calibration")
    st.plotly_chart(inside_charts.reliability(cal), key="reliability")
    st.caption("Bars: accuracy of the images whose top confidence falls in each bin. On the diagonal the model "
               "is as often right as it is confident; red shows the gap (above the bar: over-confident).")
with right:
    st.subheader("Confidence when right and when wrong")
    st.plotly_chart(inside_charts.confidence_histograms(cal["right_confidence"], cal["wrong_confidence"]),
                    key="confidence_hist")
    st.caption("Confidence of the predicted class. A model that knows when it is unsure keeps its mistakes left.")
