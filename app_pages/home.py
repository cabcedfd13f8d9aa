"""Home: what the app does and where to start; never waits for TensorFlow."""
import streamlit as st

from ui import state, training

st.title("Classifier Lab")
st.markdown(
    "Train image classifiers in your browser and see what they learned and where they fail. "
    "Pick a dataset in the sidebar, **draw a digit** on the Predict page to try the bundled model "
    "at once, browse its **mistakes** by confusion-matrix cell, or **train** your own model and watch "
    "its loss and accuracy live."
)
cols = st.columns(3)
cols[0].page_link("app_pages/predict.py", label="Draw or upload an image", icon=":material/draw:")
cols[1].page_link("app_pages/mistakes.py", label="Explore the mistakes", icon=":material/error:")
cols[2].page_link("app_pages/train.py", label="Train a model", icon=":material/model_training:")

run = state.active_run()
if run is not None:
    st.caption(f"Active model: {run.label}")
for item in training.active():
    run = item["run"]
    st.info(f"Training in progress ({run.dataset} · {run.config.get('arch')}): {item['status']}; see the Runs page.")
