"""Home: what catseg does, the four steps, and where this dataset stands."""

import streamlit as st

import storage
from catseg.predictor import starter_model_available
from storage import dataset, runs

st.title("🐱 catseg: colour-splash cats")
st.markdown(
    "Keep the cat in colour, turn the world grey. Label your own cat photos, train a "
    "segmentation model in the browser, and try it on new photos: no code needed."
)

with storage.begin() as session:
    numbers = dataset.counts(session)
    last_run = runs.latest_run(session)
    best_model = runs.recommended_model_version(session, starter_model_available())

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
    st.page_link("pages/labelling.py", label="Open Annotate", icon="🖌️")
with train_step.container(border=True):
    st.subheader("3 · Train")
    if last_run is None:
        st.metric("Last run", "none yet")
    else:
        score = f" · IoU {last_run.best_val_iou:.2f}" if last_run.best_val_iou is not None else ""
        st.metric("Last run", f"#{last_run.id} {last_run.status}{score}")
    st.caption("Train a U-Net on the labelled photos.")
    st.page_link("pages/training.py", label="Open Train", icon="🏋️")
with try_step.container(border=True):
    st.subheader("4 · Try")
    if best_model is not None:
        st.metric("Best model", best_model.label)
        st.caption("Colour-splash new photos.")
    elif starter_model_available():
        st.metric("Model", "starter")
        st.caption("Works right away with the starter cat model; your own model fits your cats better.")
    else:
        st.metric("Best model", "none yet")
        st.caption("Colour-splash new photos.")
    st.page_link("pages/try_photos.py", label="Open Try", icon="✨")
