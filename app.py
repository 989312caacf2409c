"""catseg: the router. Shared page setup and navigation, nothing else."""

import streamlit as st

st.set_page_config(page_title="catseg", page_icon="🐱", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/dataset.py", title="Photos", icon="🖼️", url_path="photos"),
]

st.navigation(PAGES).run()
