"""catseg: the router. Shared page setup, the sign-in gate and navigation, nothing else."""

import streamlit as st

import storage
from catseg.predict.predictor import warm_up_in_background
from catseg.model.registry import resolve_model
from team_access import may_use_the_app, require_sign_in, show_signed_in_user, sign_in_configured, \
    warn_when_open_to_the_network

st.set_page_config(page_title="catseg", page_icon="🐱", layout="wide")
warn_when_open_to_the_network()

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/photo_gallery.py", title="Photos", icon="🖼️", url_path="photos"),
    st.Page("pages/labelling.py", title="Annotate", icon="🖌️", url_path="annotate"),
    st.Page("pages/training.py", title="Train", icon="🏋️", url_path="train"),
    st.Page("pages/try_photos.py", title="Try", icon="✨", url_path="try"),
]

# Navigation is declared even for a visitor who has not signed in (hidden), so that no URL
# falls back to running a page file on its own; the page itself runs only after sign-in.
allowed = may_use_the_app()
page = st.navigation(PAGES, position="sidebar" if allowed else "hidden")
require_sign_in()
if sign_in_configured():
    show_signed_in_user()
# Load the model the Try and Annotate pages use by default while the user finds their way, once per
# server process, so the first prediction does not wait for it.
warm_up_in_background(lambda: resolve_model(None))
try:
    page.run()
except (storage.DatabaseUnavailable, storage.DiskFull) as error:
    st.error(f"{error}\n\nNothing unsaved is lost: try again once it is fixed.", icon="⚠️")
    # Stopping (rather than ending) the run keeps every widget's state, drawings included.
    st.stop()
