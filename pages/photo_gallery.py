"""Photos: add photos or labelled folders, look through them, delete what does not belong."""

import streamlit as st

import storage
from catseg.predict.compositing import overlay_mask
from catseg.data.importing import import_uploads
from catseg.data.decoding import SUPPORTED_SUFFIXES
from storage import dataset
from team_access import current_author, require_sign_in

# Before anything of the dataset is read: also where Streamlit opens this file without the router.
require_sign_in()

COLUMNS = 6
PER_PAGE = 24
FILTER_LABELS = {"all": "All", "labelled": "Labelled", "unlabelled": "Unlabelled"}


def show_import_report(report) -> None:
    """A summary people can read at a glance, details one click away: every file is in one list."""
    parts = [f"**{report.added}** added ({report.added_labelled} with masks)"]
    if report.duplicates:
        parts.append(f"**{len(report.duplicates)}** already in the dataset")
    if report.rejected:
        parts.append(f"**{len(report.rejected)}** rejected")
    if report.skipped:
        parts.append(f"**{len(report.skipped)}** skipped")
    summary = f"{report.files_seen} files: " + ", ".join(parts) + "."
    (st.warning if report.rejected else st.success)(summary)
    if report.stopped:
        st.error(f"The import stopped at {report.stopped} The photos added before it are kept.")
    if report.rejected:
        with st.expander("Why files were rejected", expanded=len(report.rejected) <= 5):
            for _, reason in report.rejected:
                st.markdown(f"- {reason}")
    if report.skipped:
        with st.expander("Skipped (not photos we read)", expanded=len(report.skipped) <= 5):
            st.markdown("\n".join(f"- `{name}`: {why}" for name, why in report.skipped))
    noted = [(name, note) for name, note in report.added_files if note]
    if noted:
        with st.expander("Added with a note"):
            st.markdown("\n".join(f"- `{name}`: {note}" for name, note in noted))
    if report.duplicates:
        with st.expander("Duplicates (not added again)"):
            st.markdown("\n".join(f"- {name}" for name in report.duplicates))


st.title("Photos")

with storage.begin() as session:
    numbers = dataset.counts(session)
photos_metric, labelled_metric, unlabelled_metric = st.columns(3)
photos_metric.metric("Photos", numbers.images)
labelled_metric.metric("Labelled", numbers.labelled)
unlabelled_metric.metric("Still to label", numbers.unlabelled)

with st.expander("Add photos", expanded=numbers.images == 0, icon="➕"):
    st.markdown(
        "Drop photos (JPEG, PNG, WebP, BMP, TIFF) or a **.zip** of a labelled folder: the tutorial "
        "layout (`input/` + `mask/`), YOLOv8 segmentation (`images/` + `labels/`), COCO "
        "(`annotations.json` beside its images) or plain photos. "
        "The same photo is never added twice."
    )
    uploads = st.file_uploader(
        "Photos or zip files",
        type=[suffix.lstrip(".") for suffix in SUPPORTED_SUFFIXES] + ["zip"],
        accept_multiple_files=True,
        key="dataset_uploads",
    )
    if st.button("Add to dataset", type="primary", disabled=not uploads, key="dataset_add"):
        progress = st.progress(0.0, text="Adding photos…")
        report = import_uploads(
            [(upload.name, upload.getvalue()) for upload in uploads],
            on_progress=lambda done, total, name: progress.progress(done / total, text=f"{done}/{total}: {name}"),
            created_by=current_author(),
        )
        progress.empty()
        st.session_state["dataset_last_report"] = report
        st.rerun()
    if "dataset_last_report" in st.session_state:
        show_import_report(st.session_state["dataset_last_report"])

if numbers.images == 0:
    st.info("No photos yet: add some above, or import a folder with `catseg import PATH`.")
    st.stop()

filter_column, page_column, delete_column = st.columns([3, 2, 2], vertical_alignment="bottom")
which = filter_column.segmented_control(
    "Show", options=list(FILTER_LABELS), format_func=FILTER_LABELS.get, default="all",
    required=True, key="dataset_filter",
)
with storage.begin() as session:
    shown = dataset.count_filtered(session, which)
pages = max(1, -(-shown // PER_PAGE))
page = page_column.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, key="dataset_page")

with storage.begin() as session:
    summaries = dataset.list_photos(session, which, offset=(page - 1) * PER_PAGE, limit=PER_PAGE)
    images = dataset.gallery_images(session, summaries)

selected = [s.id for s in summaries if st.session_state.get(f"dataset_select_{s.id}")]
if delete_column.button(f"Delete {len(selected)} selected", disabled=not selected, icon="🗑️", key="dataset_delete"):
    st.session_state["dataset_confirm_delete"] = selected

to_delete = st.session_state.get("dataset_confirm_delete")
if to_delete:
    st.warning(f"Delete {len(to_delete)} photo(s) with their masks? This cannot be undone.")
    yes, no, _ = st.columns([1, 1, 6])
    if yes.button("Yes, delete", type="primary", key="dataset_delete_yes"):
        with storage.begin() as session:
            deleted = dataset.delete_photos(session, to_delete)
        for photo_id in to_delete:
            st.session_state.pop(f"dataset_select_{photo_id}", None)
        del st.session_state["dataset_confirm_delete"]
        st.toast(f"Deleted {deleted} photo(s).")
        st.rerun()
    if no.button("Cancel", key="dataset_delete_no"):
        del st.session_state["dataset_confirm_delete"]
        st.rerun()

if not summaries:
    st.info(f"No {FILTER_LABELS[which].lower()} photos.")
for row_start in range(0, len(summaries), COLUMNS):
    for column, summary, (thumbnail, mask_thumbnail) in zip(
        st.columns(COLUMNS), summaries[row_start: row_start + COLUMNS], images[row_start: row_start + COLUMNS]
    ):
        with column:
            picture = overlay_mask(thumbnail, mask_thumbnail) if mask_thumbnail is not None else thumbnail
            st.image(picture, width="stretch")
            label = summary.mask_source or "no mask"
            st.checkbox(f"#{summary.id} {summary.original_name[:24]} · {label}", key=f"dataset_select_{summary.id}")
