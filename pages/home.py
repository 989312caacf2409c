"""Home: what catseg does, the four steps, and where this dataset stands."""

import streamlit as st

import storage
from catseg.data.consistency import check_data, last_check
from catseg.model.registry import starter_model_available
from storage import dataset, runs
from team_access import require_sign_in
from wording import version_label

# Before anything of the dataset is read: also where Streamlit opens this file without the router.
require_sign_in()

st.title("🐱 catseg: colour-splash cats")
st.markdown(
    "Keep the cat in colour, turn the world grey. Label your own cat photos, train a "
    "segmentation model in the browser, and try it on new photos: no code needed."
)

with storage.begin() as session:
    numbers = dataset.counts(session)
    last_run = runs.latest_run(session)
    best_model = runs.recommended_model_version(session, starter_model_available())


def repair_data() -> None:
    """Runs before the page is drawn, so the warning below already reads the repaired state."""
    with st.spinner("Checking the data folder…"):
        st.session_state["home_repair_result"] = check_data(repair=True).to_dict()


repaired = st.session_state.pop("home_repair_result", None)
if repaired is not None:
    done = f"Removed {repaired['removed']} files and rebuilt {repaired['rebuilt']} thumbnails"
    if repaired["problems_left"]:
        st.info(f"{done}; {repaired['problems_left']} problem(s) need you: `catseg check` lists them.")
    else:
        st.success(f"{done}: the data folder is in step.")
checked = last_check()
if checked is not None and checked.get("problems_left"):
    # Written by `catseg check` (or the Repair button): files and rows out of step.
    st.warning(f"The last data check ({checked['checked_at'][:16].replace('T', ' ')} UTC) found "
               f"{checked['problems_left']} problem(s): stray or temporary files, missing thumbnails, or photos "
               "whose files are missing. **Repair** removes stray files and rebuilds thumbnails; it never deletes "
               "a photo (`catseg check` lists them all).", icon="🩺")
    st.button("Repair", key="home_repair", on_click=repair_data)

photos_step, annotate_step, train_step, try_step = st.columns(4)
with photos_step.container(border=True):
    st.subheader("1 · Photos")
    st.metric("Photos", numbers.images)
    st.caption("Upload photos or import a labelled folder.")
    st.page_link("pages/photo_gallery.py", label="Open Photos", icon="🖼️")
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
    st.caption("Teach the cat model your own photos.")
    st.page_link("pages/training.py", label="Open Train", icon="🏋️")
with try_step.container(border=True):
    st.subheader("4 · Try")
    if best_model is not None:
        st.metric("Best model", version_label(best_model))
        st.caption("Colour-splash new photos.")
    elif starter_model_available():
        st.metric("Model", "starter")
        st.caption("Works right away with the starter cat model; your own model fits your cats better.")
    else:
        st.metric("Best model", "none yet")
        st.caption("Colour-splash new photos.")
    st.page_link("pages/try_photos.py", label="Open Try", icon="✨")
