"""Home: what catseg does, the four steps, and where this dataset stands."""

import streamlit as st

import storage
from storage import dataset

st.title("🐱 catseg: colour-splash cats")
st.markdown(
    "Keep the cat in colour, turn the world grey. Label your own cat photos, train a "
    "segmentation model in the browser, and try it on new photos: no code needed."
)

with storage.begin() as session:
    numbers = dataset.counts(session)

photos_step, annotate_step, train_step, try_step = st.columns(4)
with photos_step.container(border=True):
    st.subheader("1 · Photos")
    st.metric("Photos", numbers.images)
    st.caption("Upload photos or import a labelled folder.")
    st.page_link("pages/dataset.py", label="Open Photos", icon="🖼️")
with annotate_step.container(border=True):
    st.subheader("2 · Annotate")
    st.metric("Labelled", f"{numbers.labelled} of {numbers.images}")
    st.caption("Paint a mask over each cat.")
with train_step.container(border=True):
    st.subheader("3 · Train")
    st.caption("Train a U-Net on the labelled photos.")
with try_step.container(border=True):
    st.subheader("4 · Try")
    st.caption("Colour-splash new photos.")
