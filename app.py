"""catseg: the router. Shared page setup and navigation, nothing else."""

import streamlit as st

from catseg.prediction import warm_up_in_background
from catseg.registry import resolve_model

st.set_page_config(page_title="catseg", page_icon="🐱", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/dataset.py", title="Photos", icon="🖼️", url_path="photos"),
    st.Page("pages/labelling.py", title="Annotate", icon="🖌️", url_path="annotate"),
    st.Page("pages/training.py", title="Train", icon="🏋️", url_path="train"),
    st.Page("pages/try_photos.py", title="Try", icon="✨", url_path="try"),
]

# Load the model the Try and Annotate pages use by default while the user finds their way, once per
# server process, so the first prediction does not wait for it.
warm_up_in_background(lambda: resolve_model(None))

st.navigation(PAGES).run()
