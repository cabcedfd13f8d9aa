"""Share: hand the active model out, as a web page that runs in any browser or as files for other runtimes."""
import streamlit as st

from ui import state
from ui.model_export import export_section

st.title("Share a model")
run = state.require_run()
st.caption(f"Model {run.label}. The **Web page** is a folder that runs this classifier in any browser, with no "
           "server: open its index.html, or put it on any static host, and draw, upload or use the camera. The "
           "other formats are for your own code. Pick another model in the sidebar to share that one.")
if not run.usable:
    st.info(f"This model is {run.status}: only a finished or stopped training can be shared.")
export_section(run, expanded=True)
