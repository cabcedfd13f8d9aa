"""Streamlit app layer: caching, session state, charts and the handle on the training engine."""
