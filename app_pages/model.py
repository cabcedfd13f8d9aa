"""Model: the active model's layer graph with output shapes and parameter counts."""
import streamlit as st

from core.model.architectures import layer_graph, summary_rows
from ui import state

st.title("Model")
run = state.require_run()
model = state.model(run)
rows = summary_rows(model)
st.caption(f"Model {run.label}: {len(rows)} layers, {model.count_params():,} parameters")
left, right = st.columns([1, 1])
with left:
    st.subheader("Layer graph")
    st.graphviz_chart(layer_graph(model))
with right:
    st.subheader("Layers")
    st.dataframe(rows, hide_index=True, width="stretch")
