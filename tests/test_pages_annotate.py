"""AppTest: the Annotate page (navigation, saving, tools, undo, zoom, pre-fill), edit_from_canvas and cut_out_boxes.

AppTest cannot draw, so drawings are put straight into the canvas widget's state in the
shape streamlit-drawable-canvas 0.13 keeps there ({"drawing": {"raw": FABRIC_JSON}}).
The Fabric objects are built like the ones Fabric 7.4 sends (see tests/canvas_json.py).
"""

from __future__ import annotations


import cv2
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import storage
from catseg.data import intake
from catseg.annotate.canvas_view import CanvasView
from catseg.annotate.canvas_edits import ADD_COLOUR, BOX_COLOUR, ERASE_COLOUR, edit_from_canvas
from catseg.annotate.grabcut import cut_out_boxes
from storage import dataset
from page_probe import probe_page
from conftest import REPOSITORY_ROOT, drawn_cat, encode

APP = str(REPOSITORY_ROOT / "app.py")
WIDTH, HEIGHT = 301, 223  # odd on purpose: canvas and photo pixels do not line up


pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


# --- Fabric objects as the canvas sends them -----------------------------------------------

def stroke(points: list[tuple[float, float]], colour: str = ADD_COLOUR, width: float = 10) -> dict:
    """A freedraw Path through canvas points (straight segments), origin at its bounds' centre."""
    array = np.array(points, dtype=float)
    low, high = array.min(axis=0), array.max(axis=0)
    commands = [["M", *points[0]]] + [["L", *point] for point in points[1:]]
    return {"type": "Path", "version": "7.4.0", "originX": "center", "originY": "center",
            "left": float((low[0] + high[0]) / 2), "top": float((low[1] + high[1]) / 2),
            "width": float(high[0] - low[0]), "height": float(high[1] - low[1]),
            "fill": None, "stroke": colour, "strokeWidth": width, "strokeLineCap": "round",
            "strokeLineJoin": "round", "scaleX": 1, "scaleY": 1, "angle": 0, "path": commands}


def box(left: float, top: float, width: float, height: float) -> dict:
    """A rect drawn with the Box tool (stroke 2 px, as the page sets it)."""
    return {"type": "Rect", "version": "7.4.0", "originX": "left", "originY": "top", "left": float(left),
            "top": float(top), "width": float(width), "height": float(height), "fill": "rgba(0, 0, 0, 0)", "stroke": BOX_COLOUR,
            "strokeWidth": 2, "scaleX": 1, "scaleY": 1, "angle": 0}


def to_canvas(obj: dict, view: CanvasView) -> dict:
    """An object drawn in photo pixels, moved to the canvas pixels of `view` (which may enlarge)."""
    factor = 1.0 / view.scale
    scaled = dict(obj)
    for field in ("left", "top", "width", "height", "strokeWidth"):
        if field in scaled:
            scaled[field] = scaled[field] * factor
    if "path" in scaled:
        scaled["path"] = [[command[0], *(value * factor for value in command[1:])] for command in scaled["path"]]
    if "points" in scaled:
        scaled["points"] = [{"x": point["x"] * factor, "y": point["y"] * factor} for point in scaled["points"]]
    return scaled


def draw(app: AppTest, *objects: dict, in_photo_pixels: bool = True) -> AppTest:
    """Put objects on the page's canvas, as a mouse-up would, and rerun.

    Objects are given in photo pixels (the 1x view enlarges small photos) unless told otherwise.
    """
    context = app.session_state["annotate_context"]
    view = context["view"]
    whole_photo = (view.x0, view.y0, view.x1, view.y1) == (0, 0, view.photo_width, view.photo_height)
    if in_photo_pixels and whole_photo:  # zoomed tests draw in canvas pixels themselves
        objects = tuple(to_canvas(obj, context["view"]) for obj in objects)
    app.session_state[context["canvas_key"]] = {
        "drawing": {"raw": {"version": "7.4.0", "objects": list(objects)}, "data": None}, "backgroundFit": None}
    return app.run()


def view_of(app: AppTest) -> CanvasView:
    return app.session_state["annotate_context"]["view"]


# --- helpers ---------------------------------------------------------------------------------

def add_photos(count: int, labelled: tuple[int, ...] = ()) -> list[int]:
    """Add drawn cats (301x223); the indexes in `labelled` get their true mask as 'imported'."""
    ids = []
    with storage.begin() as session:
        for index in range(count):
            photo, mask = drawn_cat(WIDTH, HEIGHT, seed=index)
            ids.append(intake.add_photo(session, encode(photo), f"cat{index}.png",
                                         mask=mask if index in labelled else None).id)
    return ids


def stored(photo_id: int) -> np.ndarray | None:
    with storage.begin() as session:
        return dataset.load_mask(session, photo_id)


def stored_source(photo_id: int) -> str | None:
    with storage.begin() as session:
        return dataset.list_photos_by_ids(session, [photo_id])[0].mask_source


def open_annotate() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    app.switch_page("pages/labelling.py")
    app.run()
    assert not app.exception, app.exception
    return app


def current_photo(app: AppTest) -> int:
    return app.session_state["annotate_photo_id"]


def progress_text(app: AppTest) -> str:
    return app.get("progress")[0].proto.text


def click(app: AppTest, key: str) -> AppTest:
    app.button(key=key).click().run()
    assert not app.exception, app.exception
    return app


# --- the page ---------------------------------------------------------------------------------

def test_empty_dataset_points_to_the_photos_page(catseg_home):
    app = open_annotate()
    assert app.title[0].value == "Annotate"
    assert "no photos to label yet" in app.info[0].value
    assert app.get("page_link")[0].proto.label == "Open Photos"
    assert not app.button


def test_navigation_and_progress(catseg_home):
    first, second, third, fourth = add_photos(4, labelled=(1,))
    app = open_annotate()
    assert current_photo(app) == first, "opens on the first unlabelled photo"
    assert progress_text(app) == "1 of 4 labelled"
    assert app.button(key="annotate_previous").disabled
    click(app, "annotate_next")
    assert current_photo(app) == second
    click(app, "annotate_previous")
    assert current_photo(app) == first
    click(app, "annotate_next_unlabelled")
    assert current_photo(app) == third, "the labelled photo is skipped"
    click(app, "annotate_next_unlabelled")
    assert current_photo(app) == fourth
    assert app.button(key="annotate_next").disabled
    click(app, "annotate_next_unlabelled")
    assert current_photo(app) == first, "wraps round to the start"
    app.selectbox(key="annotate_jump").set_value(third).run()
    assert current_photo(app) == third
    assert app.selectbox(key="annotate_jump").label == "Photo 3 of 4"


def test_query_parameter_opens_that_photo(catseg_home):
    ids = add_photos(3)
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    app.switch_page("pages/labelling.py")
    app.query_params["photo"] = str(ids[2])
    app.run()
    assert not app.exception
    assert current_photo(app) == ids[2]


def test_brush_stroke_saves_at_full_resolution_and_save_and_next_moves_on(catseg_home):
    first, second, third = add_photos(3, labelled=(1,))
    app = open_annotate()
    view = view_of(app)
    assert view.canvas_width == 560 and view.scale < 1  # small photos are enlarged to fill the canvas
    draw(app, stroke([(40, 50), (200, 50)], width=10))
    assert app.button(key="annotate_save").disabled is False
    click(app, "annotate_save_next")
    assert current_photo(app) == third, "Save and next skips the labelled photo"
    assert progress_text(app) == "2 of 3 labelled"
    mask = stored(first)
    assert mask.shape == (HEIGHT, WIDTH)
    assert mask[50, 40:201].min() == 255 and mask[45:56, 120].min() == 255
    assert mask[60:, :].max() == 0 and mask[:40, :].max() == 0
    assert stored_source(first) == "painted"
    assert "Saved photo" in app.success[0].value


def test_unsaved_strokes_block_navigation_until_saved_or_discarded(catseg_home):
    first, second = add_photos(2)
    app = open_annotate()
    draw(app, stroke([(10, 10), (60, 60)]))
    assert "Unsaved changes" in app.warning[0].value
    for key in ("annotate_next", "annotate_next_unlabelled", "annotate_undo", "annotate_prefill"):
        assert key not in [b.key for b in app.button] or app.button(key=key).disabled
    assert app.selectbox(key="annotate_jump").disabled
    click(app, "annotate_discard")
    assert not app.warning
    assert not app.button(key="annotate_next").disabled
    assert stored(first) is None
    # A tool change moves the strokes off the canvas into the pending mask: still unsaved.
    draw(app, stroke([(10, 10), (60, 60)]))
    key_before = app.session_state["annotate_context"]["canvas_key"]
    app.segmented_control(key="annotate_tool").set_value("eraser").run()
    assert app.session_state["annotate_context"]["canvas_key"] != key_before
    assert "Unsaved changes" in app.warning[0].value
    click(app, "annotate_save")
    assert stored(first)[35, 35] == 255


def test_eraser_fill_holes_clear_and_undo(catseg_home):
    (photo_id,) = add_photos(1)
    ring = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.circle(ring, (150, 110), 60, 255, -1)
    cv2.circle(ring, (150, 110), 25, 0, -1)
    with storage.begin() as session:
        intake.save_mask(session, photo_id, ring, "imported")
    app = open_annotate()

    # Eraser: a cyan stroke across the ring's left side removes it there.
    draw(app, stroke([(90, 100), (120, 100)], colour=ERASE_COLOUR, width=6))
    click(app, "annotate_save")
    after_erase = stored(photo_id)
    assert after_erase[100, 95:116].max() == 0 and after_erase[110, 200] == 255
    assert stored_source(photo_id) == "painted"

    click(app, "annotate_fill_holes")
    assert stored(photo_id)[110, 150] == 0, "Fill holes is pending until saved"
    click(app, "annotate_save")
    filled = stored(photo_id)
    assert filled[110, 150] == 255 and filled[100, 100] == 0

    click(app, "annotate_clear")
    click(app, "annotate_save")
    assert stored(photo_id).max() == 0

    click(app, "annotate_undo")
    assert np.array_equal(stored(photo_id), filled)
    click(app, "annotate_undo")
    assert np.array_equal(stored(photo_id), after_erase)
    click(app, "annotate_undo")
    assert np.array_equal(stored(photo_id), ring)
    click(app, "annotate_undo")
    assert stored(photo_id) is None
    assert "unlabelled again" in app.success[0].value
    assert app.button(key="annotate_undo").disabled, "nothing left to undo"


def test_grabcut_box_replaces_inside_the_box(catseg_home):
    (photo_id,) = add_photos(1)
    _, truth = drawn_cat(WIDTH, HEIGHT, seed=0)
    app = open_annotate()
    ys, xs = np.nonzero(truth)
    draw(app, box(xs.min() - 8, ys.min() - 8, xs.max() - xs.min() + 16, ys.max() - ys.min() + 16))
    assert not app.error
    assert "Unsaved changes" in app.warning[0].value
    click(app, "annotate_save")
    mask = stored(photo_id) > 0
    overlap = (mask & (truth > 0)).sum() / (mask | (truth > 0)).sum()
    assert overlap > 0.9
    assert stored_source(photo_id) == "grabcut"


def test_zoomed_strokes_map_back_exactly(catseg_home):
    (photo_id,) = add_photos(1)
    app = open_annotate()
    app.segmented_control(key="annotate_zoom").set_value(4).run()
    app.slider(key="annotate_zoom_x").set_value(25).run()
    app.slider(key="annotate_zoom_y").set_value(75).run()
    view = view_of(app)
    assert view.x1 - view.x0 == round(WIDTH / 4) and view.x0 < WIDTH / 4 < view.x1
    draw(app, stroke([(20, 30), (200, 30)], width=8))
    click(app, "annotate_save")
    mask = stored(photo_id)
    (start_x, row), (end_x, _) = view.canvas_to_photo([(20, 30), (200, 30)])
    row = int(row)
    assert mask[row, int(start_x) + 1:int(end_x)].min() == 255
    assert mask.sum() // 255 < 0.05 * mask.size, "only the thin stroke, not the region"
    assert mask[:view.y0].max() == 0 and mask[:, view.x1 + 1:].max() == 0


def test_canvas_width_fits_the_screen_and_keeps_unsaved_strokes(catseg_home):
    (photo_id,) = add_photos(1)
    app = open_annotate()
    # The default fits a 1280-px window with the sidebar open (a wider canvas scrolls sideways).
    assert view_of(app).canvas_width == 560
    draw(app, stroke([(10, 10), (60, 60)]))
    key_before = app.session_state["annotate_context"]["canvas_key"]
    app.select_slider(key="annotate_canvas_width").set_value(900).run()
    view = view_of(app)
    assert (view.canvas_width, view.canvas_height) == (900, round(900 * HEIGHT / WIDTH))
    assert app.session_state["annotate_context"]["canvas_key"] != key_before
    # The stroke drawn on the smaller canvas is still there, unsaved, in photo pixels.
    assert "Unsaved changes" in app.warning[0].value
    click(app, "annotate_save")
    assert stored(photo_id)[35, 35] == 255 and stored(photo_id)[150, 250] == 0


def test_bad_drawings_are_messages_not_tracebacks(catseg_home):
    add_photos(1)
    app = open_annotate()
    draw(app, box(5, 5, 1, 1))
    assert not app.exception
    assert "GrabCut could not use that box" in app.error[0].value
    draw(app, {**stroke([(5, 5), (9, 9)]), "scaleX": "wide"})
    assert not app.exception
    assert "That drawing could not be used" in app.error[0].value


# --- pre-fill and imports ---------------------------------------------------------------------

def test_prefill_is_absent_without_a_model(catseg_home, no_starter):
    add_photos(1)
    app = open_annotate()
    assert "annotate_prefill" not in [button.key for button in app.button]


def test_prefill_with_a_tiny_model_then_save(catseg_home):
    from conftest import register_tiny_model

    first, second = add_photos(2)
    register_tiny_model()
    app = open_annotate()
    click(app, "annotate_prefill")
    assert "Unsaved changes" in app.warning[0].value
    click(app, "annotate_save")
    _, truth = drawn_cat(WIDTH, HEIGHT, seed=0)
    mask = stored(first) > 0
    assert (mask & (truth > 0)).sum() / (mask | (truth > 0)).sum() > 0.85
    assert stored_source(first) == "model"

    # Corrected after pre-fill: saved as painted.
    click(app, "annotate_next")
    click(app, "annotate_prefill")
    draw(app, stroke([(5, 5), (30, 5)]))
    click(app, "annotate_save")
    assert stored_source(second) == "painted"
    assert stored(second)[5, 15] == 255


def test_prefill_uses_the_starter_while_no_model_is_trained(catseg_home):
    add_photos(1)
    app = open_annotate()
    assert "starter" in app.button(key="annotate_prefill").help
    click(app, "annotate_prefill")
    assert not app.exception
    assert "Unsaved changes" in app.warning[0].value


def test_page_opens_without_tensorflow(catseg_home):
    """In a fresh interpreter: no TensorFlow until pre-fill is clicked (how fast it opens is a bench's job)."""
    from conftest import register_tiny_model

    add_photos(2)
    register_tiny_model()  # a model exists, so the pre-fill button is shown but not clicked
    storage.dispose_all()
    report = probe_page(catseg_home, "pages/labelling.py")
    report["prefill"] = "annotate_prefill" in report["buttons"]
    assert report["exception"] == []
    assert report["prefill"]
    assert not report["tensorflow"]


def test_prefill_runs_without_tensorflow(catseg_home):
    """Pre-fill predicts on ONNX Runtime: TensorFlow stays out of the process."""
    add_photos(1)
    storage.dispose_all()
    report = probe_page(catseg_home, "pages/labelling.py",
                        then="app.button(key='annotate_prefill').click().run()\n"
                             "assert 'Unsaved changes' in app.warning[0].value, [w.value for w in app.warning]\n")
    assert report["exception"] == []
    assert not report["tensorflow"]


# --- edit_from_canvas, then cut_out_boxes ----------------------------------------------------

def test_edit_from_canvas_strokes_then_boxes():
    photo, truth = drawn_cat(WIDTH, HEIGHT, seed=3)
    view = CanvasView.fit(WIDTH, HEIGHT, 150)
    current = np.zeros((HEIGHT, WIDTH), np.uint8)
    current[0:10, 0:10] = 255
    painted = edit_from_canvas({"objects": [stroke([(100, 100), (140, 100)], width=4),
                                            stroke([(0, 2), (3, 2)], colour=ERASE_COLOUR, width=4)]},
                               view, current)
    assert painted.painted and not painted.boxes
    assert painted.mask[200, 210] == 255 and painted.mask[4, 2] == 0 and painted.mask[9, 9] == 255

    nothing = edit_from_canvas(None, view, None)
    assert not nothing.painted and not nothing.boxes
    assert nothing.mask.shape == (HEIGHT, WIDTH) and nothing.mask.max() == 0

    ys, xs = np.nonzero(truth)
    photo_box = np.array([(xs.min() - 6, ys.min() - 6), (xs.max() + 6, ys.max() + 6)], float)
    (left, top), (right, bottom) = (photo_box - [view.x0, view.y0]) / [view.scale_x, view.scale_y]
    drawing = {"objects": [box(left, top, right - left, bottom - top)]}
    reported = edit_from_canvas(drawing, view, current)
    assert len(reported.boxes) == 1 and not reported.painted
    assert np.array_equal(reported.mask, current), "a box alone paints nothing"
    cut = cut_out_boxes(photo, reported.mask, reported.boxes)
    x0, y0, x1, y1 = reported.boxes[0]
    inside_truth = truth[y0:y1, x0:x1] > 0
    inside_cut = cut[y0:y1, x0:x1] > 0
    assert (inside_cut & inside_truth).sum() / (inside_cut | inside_truth).sum() > 0.9
    assert cut[0:10, 0:10].min() == 255, "the mask outside the box is kept"


def test_two_tabs_on_one_photo_ask_before_one_overwrites_the_other(catseg_home):
    """Tab A starts editing, tab B saves a newer mask: A's save asks (overwrite / load theirs), nothing lost."""
    (photo_id,) = add_photos(1, labelled=(0,))
    first_tab, second_tab = open_annotate(), open_annotate()
    draw(first_tab, stroke([(40, 50), (200, 50)], width=10))  # A edits on top of the imported mask
    click(second_tab, "annotate_clear")
    click(second_tab, "annotate_save")  # B saves an empty mask meanwhile
    assert stored(photo_id).max() == 0

    click(first_tab, "annotate_save")
    assert stored(photo_id).max() == 0, "A's save must not erase B's work without asking"
    assert any("Someone else saved a newer mask" in warning.value for warning in first_tab.warning)
    assert first_tab.session_state["annotate_pending"] is not None  # A's strokes are kept while A decides
    click(first_tab, "annotate_conflict_overwrite")
    mask = stored(photo_id)
    assert mask[50, 40:201].min() == 255  # A's stroke, on top of the mask A started from
    assert "Saved the mask" in first_tab.success[0].value

    # The other answer: B, whose view is now stale, edits and chooses to load A's mask instead.
    draw(second_tab, stroke([(40, 150), (200, 150)], width=10))
    click(second_tab, "annotate_save")
    assert any("Someone else saved a newer mask" in warning.value for warning in second_tab.warning)
    click(second_tab, "annotate_conflict_load")
    assert second_tab.session_state.get("annotate_pending") is None
    np.testing.assert_array_equal(stored(photo_id), mask)  # nothing was written
    with storage.begin() as session:
        assert dataset.mask_revision_count(session, photo_id) == 3  # imported, B's empty one, A's


# --- at scale ------------------------------------------------------------------------------

def test_a_stroke_reads_only_the_shown_photo_and_its_neighbours(catseg_home, monkeypatch):
    """Each stroke reruns the page: no query may list the photos, and the saved mask is not decoded again."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    ids = add_photos(12, labelled=tuple(range(0, 12, 2)))
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    app.switch_page("pages/labelling.py")
    app.query_params["photo"] = str(ids[6])  # labelled: its saved mask is under the strokes
    app.run()
    assert current_photo(app) == ids[6] and app.session_state["annotate_context"]["saved_mask"] is not None

    rows_per_query = []
    images_read = []

    def count_rows(state):
        result = state.invoke_statement().freeze()
        rows_per_query.append(len(result.data))
        return result()

    real_read_image = dataset.read_image
    monkeypatch.setattr(dataset, "read_image", lambda *arguments: images_read.append(arguments) or
                        real_read_image(*arguments))
    event.listen(Session, "do_orm_execute", count_rows)
    try:
        draw(app, stroke([(40, 50), (200, 50)], width=10))
    finally:
        event.remove(Session, "do_orm_execute", count_rows)
    assert not app.exception, app.exception
    assert "Unsaved changes" in app.warning[0].value
    assert rows_per_query, "the stroke's rerun asks the database where the photo sits"
    assert max(rows_per_query) == 1, f"a query returned {max(rows_per_query)} rows: it lists photos"
    assert images_read == [], "the photo and its saved mask are decoded once, not on every stroke"
    jump = app.selectbox(key="annotate_jump")
    assert jump.disabled and jump.options == [f"#{ids[6]} · cat6.png · imported"]
    assert jump.label == "Photo 7 of 12"

    click(app, "annotate_discard")
    assert len(app.selectbox(key="annotate_jump").options) == 12, "with nothing unsaved, every photo can be picked"


def test_a_mask_saved_under_a_reused_revision_id_is_the_one_shown(catseg_home):
    """SQLite gives the newest revision id again after an undo: the page must not show the undone mask from its cache."""
    (photo_id,) = add_photos(1)
    app = open_annotate()
    draw(app, stroke([(40, 50), (200, 50)], width=10))
    click(app, "annotate_save")
    with storage.begin() as session:
        first_revision = dataset.current_mask_revision(session, photo_id).id
    click(app, "annotate_undo")
    draw(app, stroke([(40, 150), (200, 150)], width=10))
    click(app, "annotate_save")
    with storage.begin() as session:
        second_revision = dataset.current_mask_revision(session, photo_id).id
    shown = app.session_state["annotate_context"]["saved_mask"]
    assert np.array_equal(shown, stored(photo_id))
    assert shown[150, 100] == 255 and shown[50, 100] == 0
    if storage.database_url().startswith("sqlite"):
        assert second_revision == first_revision, "the case this test is about"


def test_the_jump_list_follows_photos_and_masks_added_or_removed_elsewhere(catseg_home):
    """The list of every photo is cached; saves, undos, new and deleted photos elsewhere show at the next rerun,
    also where SQLite gives a removed newest id to the next row."""
    first, second = add_photos(2)
    app = open_annotate()

    def labels() -> list[str]:
        return app.selectbox(key="annotate_jump").options

    def add(seed: int) -> int:
        with storage.begin() as session:
            return intake.add_photo(session, encode(drawn_cat(WIDTH, HEIGHT, seed=seed)[0]), f"cat{seed}.png").id

    assert labels() == [f"#{first} · cat0.png · no mask", f"#{second} · cat1.png · no mask"]
    _, mask = drawn_cat(WIDTH, HEIGHT, seed=1)
    with storage.begin() as session:  # another labeller
        intake.save_mask(session, second, mask, "painted")
    app.run()
    assert labels()[1] == f"#{second} · cat1.png · painted"
    with storage.begin() as session:
        dataset.undo_mask(session, second)
    with storage.begin() as session:
        intake.save_mask(session, first, mask, "grabcut")  # as many masks as before, maybe the same newest id
    app.run()
    assert labels() == [f"#{first} · cat0.png · grabcut", f"#{second} · cat1.png · no mask"]
    third = add(2)
    app.run()
    assert labels()[-1] == f"#{third} · cat2.png · no mask" and len(labels()) == 3
    with storage.begin() as session:
        dataset.delete_photos(session, [third])
    fourth = add(3)  # as many photos as before, maybe the same newest id
    app.run()
    assert labels()[-1] == f"#{fourth} · cat3.png · no mask" and len(labels()) == 3
    with storage.begin() as session:
        dataset.delete_photos(session, [second])
    app.run()
    assert [label.split(" ·")[0] for label in labels()] == [f"#{first}", f"#{fourth}"]
    assert progress_text(app) == "1 of 2 labelled"


def test_a_jump_list_read_while_the_dataset_changed_is_not_kept(catseg_home, monkeypatch):
    """Listed under one version but read at another: shown once, then listed again rather than served from the cache."""
    add_photos(2)
    app = open_annotate()
    versions = iter(["before", "meanwhile", "before", "before"])  # page's key, the list's own look, then steady
    listings = []
    real_photo_choices = dataset.photo_choices
    monkeypatch.setattr(dataset, "photos_version", lambda session: next(versions))
    monkeypatch.setattr(dataset, "photo_choices", lambda session: listings.append(1) or real_photo_choices(session))
    app.run()
    assert not app.exception, app.exception
    assert len(app.selectbox(key="annotate_jump").options) == 2 and len(listings) == 1
    app.run()
    assert len(listings) == 2, "the list read while the dataset changed was not cached under 'before'"
