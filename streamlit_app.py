"""Classifier Lab: the entrypoint only sets up, draws the shared sidebar and routes to pages."""
import streamlit as st

from core import LabError
from ui import state

st.set_page_config(page_title="Classifier Lab", page_icon=":material/neurology:", layout="wide")
state.warm_tensorflow()

page = st.navigation([  # in the order of the loop: data → train → improve → understand → share
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/data.py", title="Data", icon=":material/dataset:"),
    st.Page("app_pages/my_data.py", title="My data", icon=":material/add_photo_alternate:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/runs.py", title="Runs", icon=":material/history:"),
    st.Page("app_pages/sweeps.py", title="Sweeps", icon=":material/tune:"),
    st.Page("app_pages/mistakes.py", title="Mistakes", icon=":material/error:"),
    st.Page("app_pages/label_errors.py", title="Label errors", icon=":material/label_off:"),
    st.Page("app_pages/fixes.py", title="Fixes", icon=":material/build:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("app_pages/predict.py", title="Predict", icon=":material/draw:"),
    st.Page("app_pages/embedding_map.py", title="Embedding map", icon=":material/scatter_plot:"),
    st.Page("app_pages/metrics.py", title="Metrics", icon=":material/analytics:"),
    st.Page("app_pages/model.py", title="Model", icon=":material/account_tree:"),
    st.Page("app_pages/share.py", title="Share", icon=":material/share:"),
], expanded=True)  # every page in view: past ten Streamlit would hide the rest behind "View more"
state.sidebar()
try:
    page.run()
except LabError as e:  # a setting or input core cannot use: its one line, never a traceback
    st.error(str(e), icon=":material/error:")
