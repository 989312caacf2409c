"""Try: colour-splash photos with a trained model; the controls restyle without predicting again."""

import hashlib

import streamlit as st

import storage
from catseg.predict.compositing import EFFECTS, SplashSettings, overlay_mask
from catseg.data.decoding import SUPPORTED_SUFFIXES, PhotoRejected, decode_photo
from catseg.predict.predictor import (
    Predictor,
    encode_result,
    shared_predictor,
    probability_from_uint8,
    probability_to_uint8,
    shrink_for_preview,
    splash,
    zip_results,
)
from catseg.model.registry import ModelSummary, model_summary, resolve_model, starter_model_available
from storage import dataset, runs
from team_access import require_sign_in
from wording import version_label

# Before anything of the dataset is read: also where Streamlit opens this file without the router.
require_sign_in()

# Sliders restyle a preview at most this long; downloads are always full resolution.
PREVIEW_SIDE = 1600
EFFECT_LABELS = {"grey": "Grey", "blur": "Blur", "colour": "Colour", "picture": "Picture", "transparent": "Transparent"}
PHOTO_TYPES = [suffix.lstrip(".") for suffix in SUPPORTED_SUFFIXES]
STARTER_LABEL = "Starter cat model (comes with catseg)"


@st.cache_data(max_entries=16, show_spinner=False)
def decoded_upload(digest: str, _data: bytes, name: str):
    """The upright RGB photo of an upload (keyed by content, so a rerun does not decode again)."""
    return decode_photo(_data, name).pixels


@st.cache_data(max_entries=16, show_spinner=False)
def stored_photo(home: str, photo_id: int, created_at: str):
    with storage.begin() as session:
        return dataset.load_photo(session, photo_id)


@st.cache_data(max_entries=64, show_spinner=False)
def probability_map(model_key: str, photo_key: str, _predictor: Predictor, _photo):
    """The model's probability map for one photo, stored as uint8: predicted once per (model, photo)."""
    return probability_to_uint8(_predictor.probability(_photo))


def card_markdown(summary: ModelSummary) -> str:
    """A model's card for people: its network, training data, scores on unseen photos, known limits."""
    size = summary.image_size or "?"
    lines = [f"A {summary.architecture} network working at {size} × {size} pixels."]
    if summary.training_data:
        lines.append("\n**Trained on**\n")
        lines += [f"- {item.name}: {item.photos} photos ({item.licence})" for item in summary.training_data]
    if summary.unseen_scores:
        lines.append("\n**Scores on photos it never saw** (mean foreground IoU per photo; 1.0 is perfect)\n")
        lines += [f"- {item.name}: {item.iou_mean:.3f} over {item.photos} photos" for item in summary.unseen_scores]
    if summary.limits:
        lines.append("\n**Known limits**\n")
        lines += [f"- {limit}" for limit in summary.limits]
    return "\n".join(lines)


def full_result(photo, stored_probability, settings: SplashSettings, background):
    """Full-resolution result bytes, made only when a download asks for them."""
    return encode_result(splash(photo, probability_from_uint8(stored_probability), settings, background))[0]


st.title("Try")

with storage.begin() as session:
    versions = runs.list_model_versions(session)
    recommended = runs.recommended_model_version(session, starter_model_available())
    below_starter = runs.versions_below_starter(session)
    dataset_photos = dataset.list_photos(session, "all", limit=10_000)

# Choices are a version id as text or "starter"; the best trained version is preselected, else the
# starter (also when every version is a fine-tune that ended below it).
model_labels = {
    str(version.id): version_label(version) + (" · below the starter" if version.id in below_starter else "")
    for version in versions
}
if starter_model_available():
    model_labels["starter"] = STARTER_LABEL
if not model_labels:
    st.info(
        "No trained model yet. Add photos, paint masks over the cats on the Annotate page, "
        "train a model on the Train page, and then colour-splash your photos here."
    )
    photos_link, annotate_link, train_link = st.columns(3)
    photos_link.page_link("pages/photo_gallery.py", label="Open Photos", icon="🖼️")
    annotate_link.page_link("pages/labelling.py", label="Open Annotate", icon="🖌️")
    train_link.page_link("pages/training.py", label="Open Train", icon="🏋️")
    st.stop()

model_choices = list(model_labels)
default_choice = (str(recommended.id) if recommended is not None
                  else "starter" if "starter" in model_labels else model_choices[0])
model_column, score_column = st.columns([4, 1], vertical_alignment="bottom")
model_choice = model_column.selectbox(
    "Model", model_choices, index=model_choices.index(default_choice), format_func=model_labels.get,
    key="try_model",
)
try:
    model_directory = resolve_model(model_choice)
    summary = model_summary(model_directory)
except ValueError as error:
    st.error(str(error))
    st.stop()
if model_choice == "starter":
    score_column.metric("IoU on unseen photos", f"{summary.unseen_iou:.2f}" if summary.unseen_iou is not None else "–",
                        help="Mean foreground IoU on cat photos it never saw in training (see its model card).")
    with st.expander("About the starter model", icon="🐈"):
        st.markdown(card_markdown(summary))
    if not versions:
        st.caption("This is the starter model that comes with catseg. Train your own on the Train page "
                   "to fit your cats better.")
    elif recommended is None:
        st.caption("Preselected because your trained versions, fine-tuned from it, ended below it on "
                   "their own validation photos. More labelled photos or a longer run may change that.")
else:
    score_column.metric("Validation IoU", f"{summary.validation_iou:.3f}" if summary.validation_iou is not None else "–")

source_uploads, source_dataset = st.columns(2)
uploads = source_uploads.file_uploader(
    "Photos to try", type=PHOTO_TYPES, accept_multiple_files=True, key="try_uploads",
)
labels = {photo.id: f"#{photo.id} {photo.original_name}" for photo in dataset_photos}
chosen_ids = source_dataset.multiselect(
    "…or photos from your dataset", list(labels), format_func=labels.get, key="try_dataset_photos",
)

# The five effects need a wide row of their own to stay readable.
effect_column, mask_column = st.columns([3, 1], vertical_alignment="bottom")
effect = effect_column.segmented_control(
    "Background", list(EFFECTS), format_func=EFFECT_LABELS.get, default="grey", required=True, key="try_effect",
)
show_mask = mask_column.toggle("Show mask on original", key="try_show_mask")
threshold_column, feather_column, colour_column = st.columns(3)
threshold = threshold_column.slider("Threshold", 0.05, 0.95, 0.5, 0.05, key="try_threshold",
                                    help="How sure the model must be that a pixel is cat.")
feather = feather_column.slider("Soft edge (px)", 0, 40, 2, key="try_feather",
                                help="Width of the blend between cat and background, in photo pixels.")
colour = "#ffffff"
background = None
if effect == "colour":
    colour = colour_column.color_picker("Background colour", "#ffffff", key="try_colour")
if effect == "picture":
    background_upload = st.file_uploader("Background picture", type=PHOTO_TYPES, key="try_background")
    if background_upload is not None:
        try:
            background = decoded_upload(
                hashlib.sha256(background_upload.getvalue()).hexdigest(), background_upload.getvalue(),
                background_upload.name,
            )
        except PhotoRejected as error:
            st.error(str(error))

# Every photo to show: (name, cache key, RGB pixels). Bad uploads are reported and skipped.
photos = []
for upload in uploads or []:
    data = upload.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    try:
        photos.append((upload.name, f"upload:{digest}", decoded_upload(digest, data, upload.name)))
    except PhotoRejected as error:
        st.error(str(error))
if chosen_ids:
    home = str(storage.data_home())
    for photo in dataset_photos:
        if photo.id in chosen_ids:
            created = photo.created_at.isoformat()
            photos.append((photo.original_name, f"dataset:{home}:{photo.id}:{created}",
                           stored_photo(home, photo.id, created)))

if not photos:
    st.caption("Upload photos or pick some from your dataset to see them colour-splashed.")
    st.stop()
if effect == "picture" and background is None:
    st.info("Upload a background picture for the “Picture” effect.")
    st.stop()

try:
    with st.spinner("Loading the model…"):
        predictor = shared_predictor(model_directory, progress=st.write)
except (ValueError, OSError) as error:
    st.error(f"Model {model_labels[model_choice]} could not be loaded ({error}); pick another one or train again.")
    st.stop()

model_key = str(model_directory)
probabilities = []
# A progress bar only for several photos; cached maps come back at once.
progress = st.progress(0.0, text="Finding the cats…") if len(photos) > 1 else None
with st.spinner("Finding the cats…"):
    for done, (name, photo_key, photo) in enumerate(photos, start=1):
        probabilities.append(probability_map(model_key, photo_key, predictor, photo))
        if progress is not None:
            progress.progress(done / len(photos), text=f"{done}/{len(photos)}: {name}")
if progress is not None:
    progress.empty()

settings = SplashSettings(effect=effect, threshold=threshold, feather_px=feather, colour=colour)
suffix = ".png" if effect == "transparent" else ".jpg"
mime = "image/png" if effect == "transparent" else "image/jpeg"
for number, ((name, _, photo), stored) in enumerate(zip(photos, probabilities)):
    small_photo, small_probability, scale = shrink_for_preview(photo, stored, PREVIEW_SIDE)
    preview_settings = SplashSettings(effect=effect, threshold=threshold, feather_px=round(feather * scale),
                                      colour=colour)
    probability = probability_from_uint8(small_probability)
    result = splash(small_photo, probability, preview_settings, background)
    original = overlay_mask(small_photo, probability >= threshold) if show_mask else small_photo
    st.subheader(name)
    left, right = st.columns(2)
    left.image(original, caption="Original" + (" with mask" if show_mask else ""), width="stretch")
    right.image(result, caption=EFFECT_LABELS[effect], width="stretch")
    stem = name.rsplit(".", 1)[0]
    # Downloads do not rerun the page (on_click="ignore"): a rerun replaces the button's deferred
    # file while the browser may still be asking for the old one, and the click downloads nothing.
    right.download_button(
        f"Download {stem}{suffix}",
        data=lambda photo=photo, stored=stored: full_result(photo, stored, settings, background),
        file_name=f"{stem}-splash{suffix}", mime=mime, key=f"try_download_{number}", icon="⬇️",
        on_click="ignore",
    )

if len(photos) > 1:
    st.download_button(
        f"Download all {len(photos)} results (.zip)",
        data=lambda: zip_results(
            (f"{name.rsplit('.', 1)[0]}-splash{suffix}", full_result(photo, stored, settings, background))
            for (name, _, photo), stored in zip(photos, probabilities)
        ),
        file_name="catseg-splash.zip", mime="application/zip", key="try_download_zip", type="primary", icon="🗜️",
        on_click="ignore",
    )
