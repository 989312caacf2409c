"""Annotate: paint, erase, outline or box the cat on each photo and save a full-resolution mask.

Everything drawn stays a pending (unsaved) edit of this photo until Save; each save is a
new mask revision, so "Undo last save" can always step back one.
"""

import numpy as np
import streamlit as st
from PIL import Image

import storage
from catseg.annotate import canvas_edits
from catseg.annotate import grabcut
from catseg.data import intake
from catseg.annotate.canvas_view import CanvasView
from catseg.predict.compositing import overlay_mask
from catseg.predict.predictor import shared_predictor
from catseg.model.registry import resolve_model, starter_model_directory
from storage import dataset
from team_access import current_author, require_sign_in

# Before anything of the dataset is read: also where Streamlit opens this file without the router.
require_sign_in()

# The canvas scrolls sideways when it is wider than its column, hiding part of the photo, and
# the page cannot see the window's width: 560 px fits a 1280-px window with the sidebar open,
# and people with wider screens pick a larger canvas.
CANVAS_WIDTHS = [480, 560, 720, 900, 1200]
DEFAULT_CANVAS_WIDTH = 560
MAX_CANVAS_HEIGHT = 700
ZOOMS = [1, 2, 4]
TOOLS = {
    "brush": "🖌️ Brush",
    "eraser": "🧽 Eraser",
    "polygon_add": "⬠ Polygon add",
    "polygon_remove": "⬠ Polygon remove",
    "box": "▭ Box → GrabCut",
}
TOOL_HINTS = {
    "brush": "Paint over the cat.",
    "eraser": "Paint over what is not cat.",
    "polygon_add": "Click around the cat; click the first corner again to close the outline.",
    "polygon_remove": "Click around what is not cat; click the first corner again to close it.",
    "box": "Drag a box around the whole cat; GrabCut cuts it out when you let go.",
}
PENDING = "annotate_pending"  # {"photo_id", "mask", "source"}: the edited, unsaved mask
CONTEXT = "annotate_context"  # what the last run showed, for the callbacks of the next one
COUNTER = "annotate_edit_counter"  # part of the canvas key: bumping it clears the canvas
MESSAGE = "annotate_message"  # (kind, text) shown once after a callback
QUERY_WRITTEN = "annotate_query_written"
# {"photo_id", "revision_id"}: the saved mask this tab's edits started from. A save over a newer
# revision (another labeller's, or this user's other tab) asks first, so nobody's work is erased silently.
BASE_REVISION = "annotate_base_revision"
CONFLICT = "annotate_conflict"  # {"photo_id", "then_next", "saved_at"}: a save that is waiting for that answer


# --- state helpers ------------------------------------------------------------------------

def say(kind: str, text: str) -> None:
    """Show a message on the next run (callbacks run before the page is drawn)."""
    st.session_state[MESSAGE] = (kind, text)


def clear_canvas() -> None:
    st.session_state[COUNTER] = st.session_state.get(COUNTER, 0) + 1


def pending_for(photo_id: int) -> dict | None:
    pending = st.session_state.get(PENDING)
    return pending if pending is not None and pending["photo_id"] == photo_id else None


def set_pending(photo_id: int, mask: np.ndarray, source: str) -> None:
    st.session_state[PENDING] = {"photo_id": photo_id, "mask": mask, "source": source}


def combined_source(previous: str | None, action: str) -> str:
    """Any hand edit makes the mask "painted"; an automatic tool names it until someone paints."""
    return "painted" if action == "painted" or previous == "painted" else action


def drawing_in_state(canvas_key: str):
    """The canvas's latest Fabric JSON, straight from its widget state (None before any drawing).

    Read from session state rather than from the last st_canvas return value so a button
    clicked right after a stroke still sees that stroke.
    """
    state = st.session_state.get(canvas_key)
    if not isinstance(state, dict):
        return None
    return (state.get("drawing") or {}).get("raw")


def saved_mask_and_revision(photo_id: int) -> tuple[np.ndarray | None, int | None]:
    """The photo's saved mask (None while it has none) and the id of that mask revision."""
    with storage.begin() as session:
        revision = dataset.current_mask_revision(session, photo_id)
        if revision is None:
            return None, None
        revision_id, saved_at = revision.id, revision.created_at.isoformat()
    return mask_pixels(revision_id, saved_at), revision_id


def working_state(context: dict) -> tuple[np.ndarray, str | None, bool]:
    """(mask with every unsaved edit, its source, whether anything is unsaved) for the shown photo."""
    view: CanvasView = context["view"]
    pending = pending_for(context["photo_id"])
    # The saved mask this page showed (and the strokes were drawn on): no database needed, so
    # strokes can be kept while the database is out of reach.
    base = pending["mask"] if pending else context["saved_mask"]
    # Boxes are cut out as soon as they are drawn (main script), so only strokes are left here.
    edit = canvas_edits.edit_from_canvas(drawing_in_state(context["canvas_key"]), view, base)
    source = pending["source"] if pending else None
    if edit.painted:
        source = combined_source(source, "painted")
    return edit.mask, source, bool(pending) or edit.painted


def find_summary(session, photo_id: int | None) -> dataset.PhotoSummary | None:
    """The photo's summary; None when there is no such photo (deleted, or a link to none)."""
    found = dataset.list_photos_by_ids(session, [photo_id]) if photo_id is not None else []
    return found[0] if found else None


def linked_photo_id(text: str) -> int | None:
    """The photo id a ?photo= link asks for; None when the text is not one (no id has 19 digits)."""
    return int(text) if text.isdecimal() and len(text) < 19 else None


def jump_label(photo_id: int, name: str, mask_source: str | None) -> str:
    return f"#{photo_id} · {name[:40]} · {mask_source or 'no mask'}"


# --- callbacks (run before the page is drawn, with the previous run's context) -----------

def guarded(action):
    """Run a callback; a failure becomes a message on the page, never a traceback."""
    def run(*arguments):
        context = st.session_state.get(CONTEXT)
        if context is None:
            return
        try:
            action(context, *arguments)
        except (ValueError, OSError) as error:
            say("error", str(error))
    return run


@guarded
def fold_canvas(context: dict) -> None:
    """Move the canvas strokes into the pending mask before the canvas is redrawn (zoom, tool...)."""
    view: CanvasView = context["view"]
    edit = canvas_edits.edit_from_canvas(drawing_in_state(context["canvas_key"]), view, None)
    if edit.painted:
        mask, source, _ = working_state(context)
        set_pending(context["photo_id"], mask, source or "painted")
        clear_canvas()


@guarded
def go_to(context: dict, photo_id: int) -> None:
    st.session_state.pop(PENDING, None)
    st.session_state["annotate_photo_id"] = photo_id
    clear_canvas()


@guarded
def jump(context: dict) -> None:
    st.session_state.pop(PENDING, None)
    st.session_state["annotate_photo_id"] = st.session_state["annotate_jump"]
    clear_canvas()


@guarded
def save(context: dict, then_next: bool, overwrite: bool = False) -> None:
    mask, source, dirty = working_state(context)
    photo_id = context["photo_id"]
    if not dirty:
        say("info", "Nothing to save: draw on the photo first.")
        return
    base = st.session_state.get(BASE_REVISION) or {}
    # Unsaved edits live in this tab until a save commits; a save that fails keeps them as the
    # pending mask (the canvas itself is redrawn empty) so that Save works again later.
    set_pending(photo_id, mask, source or "painted")
    clear_canvas()
    with storage.begin() as session:
        newest = dataset.current_mask_revision(session, photo_id)
        newest_id = newest.id if newest is not None else None
        if not overwrite and base.get("photo_id") == photo_id and newest_id != base.get("revision_id"):
            # Every edit (canvas strokes too) is kept as the pending mask while the user decides.
            saved_at = newest.created_at.strftime("%H:%M") if newest is not None else None
            st.session_state[CONFLICT] = {"photo_id": photo_id, "then_next": then_next, "saved_at": saved_at}
            return
        intake.save_mask(session, photo_id, mask, source or "painted", created_by=current_author())
    st.session_state.pop(PENDING, None)
    st.session_state.pop(CONFLICT, None)
    clear_canvas()
    if not then_next:
        say("success", f"Saved the mask of photo #{photo_id}.")
        return
    with storage.begin() as session:
        following = dataset.next_unlabelled_id(session, photo_id)
    if following is None:
        say("success", f"Saved photo #{photo_id}. Every photo is labelled now 🎉")
    else:
        st.session_state["annotate_photo_id"] = following
        say("success", f"Saved photo #{photo_id}; here is the next unlabelled one.")


@guarded
def fill_holes(context: dict) -> None:
    mask, source, _ = working_state(context)
    set_pending(context["photo_id"], canvas_edits.fill_holes(mask), combined_source(source, "painted"))
    clear_canvas()


@guarded
def clear_mask(context: dict) -> None:
    view: CanvasView = context["view"]
    set_pending(context["photo_id"], canvas_edits.clear(view.photo_shape), "painted")
    clear_canvas()


@guarded
def drop_unsaved(context: dict, message: str) -> None:
    """Forget this photo's unsaved edits (and any save waiting for an answer): the saved mask shows."""
    st.session_state.pop(PENDING, None)
    st.session_state.pop(CONFLICT, None)
    clear_canvas()
    say("info", message)


@guarded
def undo(context: dict) -> None:
    with storage.begin() as session:
        previous = dataset.undo_mask(session, context["photo_id"])
    st.session_state.pop(PENDING, None)
    clear_canvas()
    say("success", "Restored the previous mask." if previous is not None
        else "Removed the only saved mask: this photo is unlabelled again.")


# --- cached loading ------------------------------------------------------------------------

@st.cache_data(max_entries=4, show_spinner=False)
def photo_pixels(photo_id: int, added_at: str) -> np.ndarray:
    """The full-resolution upright photo; added_at tells a re-used id from the old photo."""
    with storage.begin() as session:
        return dataset.load_photo(session, photo_id)


@st.cache_data(max_entries=4, show_spinner=False)
def mask_pixels(revision_id: int, saved_at: str) -> np.ndarray:
    """A saved mask, decoded once: every stroke reruns the page, and the saved mask under it stays the same.

    saved_at tells a re-used revision id (SQLite gives the newest id again after an undo) from the old revision.
    """
    with storage.begin() as session:
        return dataset.load_mask_revision(session, revision_id)


@st.cache_data(max_entries=2, show_spinner=False)
def every_jump_label(version: str) -> tuple[str, dict[int, str]]:
    """(the photos version it was listed at, {photo id: label}) of every photo, for the jump list.

    Cached by `dataset.photos_version`, so opening the page or moving on lists thousands of photos
    only after photos or masks were added or removed.
    """
    with storage.begin() as session:
        choices = dataset.photo_choices(session)
        listed_at = dataset.photos_version(session)
    return listed_at, {photo_id: jump_label(photo_id, name, source) for photo_id, name, source in choices}


def available_model() -> str | None:
    """The folder of the model pre-fill would use, or None while there is none."""
    try:
        return str(resolve_model(None))  # the best trained model, else the starter
    except ValueError:
        return None


# --- the page --------------------------------------------------------------------------------

st.title("Annotate")
if MESSAGE in st.session_state:
    kind, text = st.session_state.pop(MESSAGE)
    {"error": st.error, "success": st.success, "info": st.info, "warning": st.warning}[kind](text)

# Each stroke reruns this page, so it reads the shown photo and where it sits, never every photo
# (only the jump list below does, and only while nothing is unsaved): a stroke takes no longer
# with 5,000 photos than with 300.
# A link such as /annotate?photo=12 picks the photo; the page writes the parameter back
# itself, so only a value it did not write (a link from elsewhere) moves it.
requested = st.query_params.get("photo")
link_is_new = requested is not None and requested != st.session_state.get(QUERY_WRITTEN)
with storage.begin() as session:
    current = find_summary(session, linked_photo_id(requested)) if link_is_new else None
    if current is None:
        current = find_summary(session, st.session_state.get("annotate_photo_id"))
    if current is None:
        current = find_summary(session, dataset.first_photo_to_label(session))
    place = dataset.photo_place(session, current.id) if current is not None else None
if current is None:
    st.info("There are no photos to label yet. Add some on the Photos page first.")
    st.page_link("pages/photo_gallery.py", label="Open Photos", icon="🖼️")
    st.stop()
if link_is_new and current.id != linked_photo_id(requested):
    st.warning(f"There is no photo #{requested}; showing another one.")

photo_id = current.id
st.session_state["annotate_photo_id"] = photo_id
st.query_params["photo"] = str(photo_id)
st.session_state[QUERY_WRITTEN] = str(photo_id)

navigation_area = st.container()
tool = st.segmented_control("Tool", list(TOOLS), format_func=TOOLS.get, default="brush", required=True,
                            key="annotate_tool", on_change=fold_canvas)
actions_area = st.container()
canvas_column, controls_column = st.columns([3, 1], gap="medium")

with controls_column:
    brush_size = st.slider("Brush size (screen px)", 2, 80, 20, key="annotate_brush_size", on_change=fold_canvas,
                           disabled=tool not in ("brush", "eraser"))
    zoom = st.segmented_control("Zoom", ZOOMS, format_func=lambda z: f"{z}x", default=1, required=True,
                                key="annotate_zoom", on_change=fold_canvas)
    zoom_x = st.slider("Zoom centre, across (% of the photo)", 0, 100, 50, key="annotate_zoom_x",
                       on_change=fold_canvas, disabled=zoom == 1)
    zoom_y = st.slider("Zoom centre, down (% of the photo)", 0, 100, 50, key="annotate_zoom_y",
                       on_change=fold_canvas, disabled=zoom == 1)
    canvas_width = st.select_slider(
        "Canvas width (px)", CANVAS_WIDTHS, value=DEFAULT_CANVAS_WIDTH, key="annotate_canvas_width",
        on_change=fold_canvas, help="The widest that shows the whole photo without a sideways scroll bar.")
    show_mask = st.toggle("Show mask", value=True, key="annotate_show_mask", on_change=fold_canvas)
    opacity = st.slider("Mask opacity", 0.0, 1.0, 0.45, 0.05, key="annotate_opacity", on_change=fold_canvas,
                        disabled=not show_mask)

if zoom == 1:
    # Small photos are enlarged to fill the canvas: edges are easier to follow.
    view = CanvasView.fit(current.width, current.height, canvas_width, MAX_CANVAS_HEIGHT, enlarge=True)
else:
    view = CanvasView.zoomed(current.width, current.height, current.width * zoom_x / 100,
                             current.height * zoom_y / 100, zoom, canvas_width, MAX_CANVAS_HEIGHT)
# A new size or region is a new drawing surface (strokes were folded into the mask first).
canvas_key = (f"annotate_canvas_{photo_id}_{zoom}_{view.x0}_{view.y0}_{view.canvas_width}x{view.canvas_height}_"
              f"{st.session_state.get(COUNTER, 0)}")
context = {"photo_id": photo_id, "view": view, "canvas_key": canvas_key}
st.session_state[CONTEXT] = context

try:
    photo = photo_pixels(photo_id, current.created_at.isoformat())
    saved_mask, saved_revision_id = saved_mask_and_revision(photo_id)
except (ValueError, OSError) as error:
    photo = saved_mask = saved_revision_id = None
    load_error = f"Photo #{photo_id} could not be read ({error}). Delete it on the Photos page or pick another."
context["saved_mask"] = saved_mask
pending = pending_for(photo_id)
base_mask = pending["mask"] if pending else saved_mask if saved_mask is not None else canvas_edits.clear(view.photo_shape)
drawing = drawing_in_state(canvas_key)
try:
    edit = canvas_edits.edit_from_canvas(drawing, view, base_mask)
except ValueError as error:
    # A drawing the page cannot read is dropped with a word, not a traceback.
    say("error", f"That drawing could not be used: {error}")
    clear_canvas()
    st.rerun()

if edit.boxes and photo is not None:
    # A box is cut out as soon as it is drawn; the answer becomes the pending mask to correct.
    with canvas_column, st.spinner("GrabCut is cutting out the cat…"):
        try:
            cut_out = grabcut.cut_out_boxes(photo, edit.mask, edit.boxes)
        except ValueError as error:
            say("error", f"GrabCut could not use that box: {error}")
        else:
            previous = pending["source"] if pending else None
            if edit.painted:
                previous = combined_source(previous, "painted")
            set_pending(photo_id, cut_out, combined_source(previous, "grabcut"))
    clear_canvas()
    st.rerun()

dirty = pending is not None or edit.painted
base_revision = st.session_state.get(BASE_REVISION) or {}
if not dirty or base_revision.get("photo_id") != photo_id:
    # With nothing unsaved, this tab shows the newest saved mask: edits from here start from it.
    st.session_state[BASE_REVISION] = {"photo_id": photo_id, "revision_id": saved_revision_id}
conflict = st.session_state.get(CONFLICT)
if conflict is not None and conflict["photo_id"] != photo_id:
    conflict = None

with navigation_area:
    st.progress(place.labelled / place.count, text=f"{place.labelled} of {place.count} labelled")
    previous_column, next_column, unlabelled_column, jump_column = st.columns([1, 1, 1.4, 3],
                                                                                vertical_alignment="bottom")
    previous_column.button("Previous", icon="⬅️", key="annotate_previous", width="stretch",
                           disabled=dirty or place.previous_id is None,
                           on_click=go_to, args=(place.previous_id or photo_id,))
    next_column.button("Next", icon="➡️", key="annotate_next", width="stretch",
                       disabled=dirty or place.next_id is None,
                       on_click=go_to, args=(place.next_id or photo_id,))
    unlabelled_column.button("Next unlabelled", icon="⏭️", key="annotate_next_unlabelled", width="stretch",
                             disabled=dirty or place.next_unlabelled_id is None,
                             on_click=go_to, args=(place.next_unlabelled_id,))
    if dirty:
        # Locked until the changes are saved or discarded, so it holds only this photo: a stroke
        # never lists every photo.
        jump_labels = {photo_id: jump_label(photo_id, current.original_name, current.mask_source)}
    else:
        with storage.begin() as session:
            version = dataset.photos_version(session)
        listed_at, jump_labels = every_jump_label(version)
        if listed_at != version:
            # Someone changed the dataset while it was listed: never show that list for the older version.
            every_jump_label.clear()
    st.session_state["annotate_jump"] = photo_id
    jump_column.selectbox(f"Photo {place.position + 1} of {place.count}", list(jump_labels), key="annotate_jump",
                          on_change=jump, disabled=dirty, format_func=jump_labels.get)
    if conflict is not None:
        when = f" at {conflict['saved_at']}" if conflict["saved_at"] else ""
        st.warning(f"Someone else saved a newer mask of this photo{when}, after you started editing it. "
                   "Overwrite it with yours, or load theirs (your unsaved changes are dropped)? "
                   "Nothing is saved until you choose.", icon="👥")
        overwrite_column, theirs_column = st.columns(2)
        overwrite_column.button("Overwrite with my mask", key="annotate_conflict_overwrite", on_click=save,
                                args=(conflict["then_next"], True), width="stretch")
        theirs_column.button("Load their mask", key="annotate_conflict_load", on_click=drop_unsaved,
                             args=("Loaded the newer saved mask; your unsaved changes were dropped.",),
                             width="stretch")
    elif dirty:
        st.warning("Unsaved changes on this photo: **Save** them or **Discard changes** before moving on.",
                   icon="✏️")

if photo is None:
    st.error(load_error)
    st.stop()

model_directory = available_model()
with actions_area:
    with storage.begin() as session:
        revisions = dataset.mask_revision_count(session, photo_id)
    fill_column, clear_column, undo_column, discard_column, save_column, save_next_column = st.columns(6)
    fill_column.button("Fill holes", key="annotate_fill_holes", on_click=fill_holes, width="stretch",
                       help="Fill every gap enclosed by the mask.")
    clear_column.button("Clear mask", key="annotate_clear", on_click=clear_mask, width="stretch",
                        help="Start this photo's mask from nothing (stored only when you save).")
    undo_column.button("Undo last save", key="annotate_undo", on_click=undo, width="stretch",
                       disabled=revisions == 0 or dirty,
                       help="Back to the mask saved before the last save." if not dirty
                       else "Save or discard your changes first.")
    discard_column.button("Discard changes", key="annotate_discard", on_click=drop_unsaved,
                          args=("Unsaved changes discarded.",), width="stretch", disabled=not dirty)
    save_column.button("Save", type="primary", icon="💾", key="annotate_save", on_click=save, args=(False,),
                       width="stretch", disabled=not dirty)
    save_next_column.button("Save and next", type="primary", key="annotate_save_next", on_click=save,
                            args=(True,), width="stretch", disabled=not dirty,
                            help="Save, then open the next unlabelled photo.")

if model_directory is not None:
    with controls_column:
        st.divider()
        model_name = "the starter cat model" if model_directory == str(starter_model_directory()) else "your best model"
        prefill = st.button("Pre-fill from model", icon="🤖", key="annotate_prefill", width="stretch",
                            disabled=dirty, help=f"Start from {model_name}'s mask and correct it."
                            if not dirty else "Save or discard your changes first.")
        if prefill:
            try:
                with st.spinner("The model is looking for the cat…"):
                    probability = shared_predictor(model_directory, progress=st.write).probability(photo)
            except (ValueError, OSError) as error:
                st.error(f"The model could not be used: {error}")
            else:
                set_pending(photo_id, np.where(probability >= 0.5, 255, 0).astype(np.uint8), "model")
                clear_canvas()
                st.rerun()

with canvas_column:
    # Imported here: the component registers itself with the running app when imported.
    from streamlit_drawable_canvas import st_canvas

    background = view.render_background(photo)
    if show_mask and np.any(base_mask):
        background = overlay_mask(background, view.render_mask(base_mask), colour=canvas_edits.ADD_COLOUR,
                                  opacity=float(opacity))
    erasing = tool in ("eraser", "polygon_remove")
    stroke_colour = canvas_edits.BOX_COLOUR if tool == "box" else (
        canvas_edits.ERASE_COLOUR if erasing else canvas_edits.ADD_COLOUR)
    fill_colour = canvas_edits.BOX_FILL_COLOUR if tool == "box" else (
        canvas_edits.ERASE_FILL_COLOUR if erasing else canvas_edits.ADD_FILL_COLOUR)
    st.caption(TOOL_HINTS[tool])
    st_canvas(
        fill_color=fill_colour,
        stroke_width=brush_size if tool in ("brush", "eraser") else 2,
        stroke_color=stroke_colour,
        background_image=Image.fromarray(background),
        update_streamlit=True,
        width=view.canvas_width,
        height=view.canvas_height,
        drawing_mode={"brush": "freedraw", "eraser": "freedraw", "box": "rect"}.get(tool, "polygon"),
        initial_drawing=None,
        key=canvas_key,
    )
    source = pending["source"] if pending else (current.mask_source or "no mask yet")
    if not pending and current.mask_saved_by:
        source += f", saved by {current.mask_saved_by}"
    region = "" if zoom == 1 else f" · showing ({view.x0}, {view.y0})–({view.x1}, {view.y1}) at {zoom}x"
    st.caption(f"#{photo_id} {current.original_name} · {current.width}×{current.height} px · "
               f"mask: {source}{' (unsaved)' if dirty else ''}{region}")
