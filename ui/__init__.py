"""Streamlit app layer: caching, session state, charts and background jobs."""
