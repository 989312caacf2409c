"""Tests for catseg.annotate.canvas_edits: canvas drawings painted into full-resolution masks, and the mask tools.

The Fabric objects come from tests/canvas_json.py: verbatim Fabric 7.4 JSON and builders of
the same shape.
"""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from canvas_json import FREEDRAW_JSON, FREEDRAW_POINTS, TRANSFORMED, freedraw_object, polygon_object, rect_object
from catseg.annotate.canvas_view import CanvasView
from catseg.annotate.fabric_shapes import object_outline
from catseg.annotate.canvas_edits import (
    ADD_COLOUR,
    ERASE_COLOUR,
    apply_edit,
    boxes_from_objects,
    clear,
    edit_from_canvas,
    fill_holes,
    largest_components,
    strokes_to_mask,
)

# ---------------------------------------------------------------- helpers


def centreline(points, samples_per_segment=64):
    """The curve the brush draws through the points: midpoint-to-midpoint quadratics."""
    t = np.linspace(0, 1, samples_per_segment)[:, None]
    first = np.array(points[0], float)
    start = (first + np.array(points[1], float)) / 2
    # First a straight piece to the first midpoint (Fabric's "Q p0 mid01").
    out = [(1 - t) * first + t * start]
    for index in range(1, len(points) - 1):
        control = np.array(points[index], float)
        end = (np.array(points[index], float) + np.array(points[index + 1], float)) / 2
        out.append((1 - t) ** 2 * start + 2 * (1 - t) * t * control + t ** 2 * end)
        start = end
    # The brush ends with a straight line from the last midpoint to the last point.
    out.append((1 - t) * start + t * np.array(points[-1], float))
    return np.vstack(out)


def distance_to_curve(pixels_xy, curve):
    """Distance from each pixel centre to a densely sampled curve (both photo px)."""
    best = np.full(len(pixels_xy), np.inf)
    for chunk in np.array_split(curve, max(1, len(curve) // 256)):
        d = np.linalg.norm(pixels_xy[:, None, :] - chunk[None, :, :], axis=2).min(axis=1)
        best = np.minimum(best, d)
    return best


def check_stroke_band(mask, view, canvas_points, stroke_width, tolerance=2.0, samples=30000, seed=0):
    """Pixels within radius - tol of the mapped curve are set, beyond radius + tol are not."""
    curve = view.canvas_to_photo(centreline(canvas_points))
    radius = stroke_width * view.scale / 2
    rng = np.random.default_rng(seed)
    low = np.floor(curve.min(axis=0) - radius - 10).astype(int)
    high = np.ceil(curve.max(axis=0) + radius + 10).astype(int)
    low = np.maximum(low, 0)
    high = np.minimum(high, [mask.shape[1], mask.shape[0]])
    xs = rng.integers(low[0], high[0], samples)
    ys = rng.integers(low[1], high[1], samples)
    distance = distance_to_curve(np.column_stack((xs + 0.5, ys + 0.5)), curve)
    values = mask[ys, xs]
    inside = distance <= radius - tolerance
    outside = distance >= radius + tolerance
    assert inside.sum() > 50 and outside.sum() > 50
    assert values[inside].all(), f"{(~values[inside]).sum()} pixels on the stroke were missed"
    assert not values[outside].any(), f"{values[outside].sum()} pixels away from the stroke were set"
    # Along the centre itself (what a 1-px shift would break first for thin strokes).
    centre_pixels = np.floor(curve).astype(int)
    ok = (centre_pixels[:, 0] < mask.shape[1]) & (centre_pixels[:, 1] < mask.shape[0])
    assert mask[centre_pixels[ok, 1], centre_pixels[ok, 0]].all()


def exif_rotated_photo():
    """A landscape JPEG saved with EXIF Orientation=6, decoded upright (portrait)."""
    landscape = np.zeros((300, 400, 3), np.uint8)
    landscape[..., 1] = 90
    landscape[20:80, 30:110] = (255, 0, 0)  # red block near the stored top-left
    image = Image.fromarray(landscape)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif, quality=95)
    buffer.seek(0)
    upright = ImageOps.exif_transpose(Image.open(buffer))
    return np.asarray(upright.convert("RGB"))


# ---------------------------------------------------------------- freedraw


def test_verbatim_fabric_freedraw_maps_onto_its_points():
    view = CanvasView.fit(301, 999, 700, 600)
    add, remove = strokes_to_mask({"version": "7.4.0", "objects": [FREEDRAW_JSON]}, view, (999, 301))
    assert not remove.any()
    check_stroke_band(add, view, FREEDRAW_POINTS, 12)


@pytest.mark.parametrize("size", [(4000, 3000), (301, 999)])
def test_freedraw_stroke_maps_to_full_resolution(size):
    width, height = size
    view = CanvasView.fit(width, height, 700, 600)
    w, h = view.canvas_width, view.canvas_height
    canvas_points = [(0.15 * w, 0.2 * h), (0.4 * w, 0.25 * h), (0.55 * w, 0.6 * h),
                     (0.35 * w, 0.8 * h), (0.8 * w, 0.85 * h)]
    canvas_points = [(round(x, 2), round(y, 2)) for x, y in canvas_points]
    stroke = freedraw_object(canvas_points, 8)
    add, remove = strokes_to_mask([stroke], view, (height, width, 3))
    assert add.shape == (height, width) and add.dtype == bool
    assert not remove.any()
    check_stroke_band(add, view, canvas_points, 8)


def test_exif_rotated_portrait_stroke_hits_the_upright_pixels():
    photo = exif_rotated_photo()
    height, width = photo.shape[:2]
    assert (height, width) == (400, 300)  # portrait after transposing
    red = (photo[..., 0] > 180) & (photo[..., 1] < 90)
    ys, xs = np.nonzero(red)
    # Orientation 6 = rotate 90 clockwise: the stored top-left block is now top-right.
    assert xs.mean() > width / 2 and ys.mean() < height / 2
    view = CanvasView.fit(width, height, 250, 250)
    # Find the block on the canvas background, as a user would, and scribble on it.
    background = view.render_background(photo)
    bys, bxs = np.nonzero((background[..., 0] > 180) & (background[..., 1] < 90))
    cx, cy = bxs.mean() + 0.5, bys.mean() + 0.5
    canvas_points = [(cx - 6, cy - 3), (cx, cy + 2), (cx + 6, cy - 2), (cx + 7, cy + 4)]
    add, _ = strokes_to_mask([freedraw_object(canvas_points, 4)], view, photo.shape)
    check_stroke_band(add, view, canvas_points, 4)
    assert red[add].mean() > 0.95
    # A view built from the stored (landscape) size is refused for the upright photo.
    stored_view = CanvasView.fit(height, width, 250, 250)
    with pytest.raises(ValueError):
        strokes_to_mask([freedraw_object(canvas_points, 4)], stored_view, photo.shape)


# ---------------------------------------------------------------- polygons, rects


@pytest.mark.parametrize("size", [(4000, 3000), (301, 999)])
def test_polygon_fills_the_right_region(size):
    width, height = size
    view = CanvasView.fit(width, height, 700, 600)
    w, h = view.canvas_width, view.canvas_height
    triangle = [(0.2 * w, 0.2 * h), (0.9 * w, 0.3 * h), (0.4 * w, 0.9 * h)]
    add, _ = strokes_to_mask([polygon_object(triangle, stroke_width=2)], view, (height, width))
    photo_triangle = view.canvas_to_photo(np.array(triangle))
    rng = np.random.default_rng(2)
    xs, ys = rng.integers(0, width, 40000), rng.integers(0, height, 40000)
    contour = photo_triangle.astype(np.float32).reshape(-1, 1, 2)
    signed = np.array([cv2.pointPolygonTest(contour, (float(x) + 0.5, float(y) + 0.5), True)
                       for x, y in zip(xs, ys)])
    band = 2 * view.scale / 2 + 2  # half the outline stroke plus 2 px
    assert add[ys[signed > 2], xs[signed > 2]].all()
    assert not add[ys[signed < -band], xs[signed < -band]].any()


def test_rect_is_a_box_not_paint():
    view = CanvasView.fit(4000, 3000, 800)
    objects = [rect_object(20, 30, 100, 50, stroke_width=3)]
    add, remove = strokes_to_mask(objects, view, (3000, 4000))
    assert not add.any() and not remove.any()
    # Fabric centres a left/top-origin rect at left + (width + stroke) / 2: its edge is
    # at 21.5..121.5 x 31.5..81.5 canvas px, i.e. x5 in photo px.
    assert boxes_from_objects(objects, view) == [(107, 157, 608, 408)]


def test_transformed_fabric_objects_paint_and_box_where_fabric_puts_them():
    view = CanvasView.fit(600, 400, 600)  # 1:1, so canvas px are photo px
    for case in TRANSFORMED:
        obj, scene = case["json"], np.array(case["scene"])
        if obj["type"] == "Rect":
            (box,) = boxes_from_objects([obj], view)
            expected = (math.floor(scene[:, 0].min()), math.floor(scene[:, 1].min()),
                        math.ceil(scene[:, 0].max()), math.ceil(scene[:, 1].max()))
            assert np.allclose(box, expected, atol=1)
            continue
        add, _ = strokes_to_mask([obj], view, (400, 600))
        inside = scene[(scene[:, 0] >= 0) & (scene[:, 0] < 600) & (scene[:, 1] >= 0) & (scene[:, 1] < 400)]
        assert add[inside[:, 1].astype(int), inside[:, 0].astype(int)].all()


def test_moved_stroke_is_drawn_where_it_was_moved():
    view = CanvasView.fit(400, 300, 400)
    stroke = freedraw_object([(50, 50), (80, 60), (110, 50)], 6)
    moved = dict(stroke, left=stroke["left"] + 100, top=stroke["top"] + 120)
    add, _ = strokes_to_mask([moved], view, (300, 400))
    check_stroke_band(add, view, [(150, 170), (180, 180), (210, 170)], 6)


# ---------------------------------------------------------------- zoom


@pytest.mark.parametrize("zoom", [2, 4])
@pytest.mark.parametrize("size", [(4000, 3000), (301, 999)])
def test_zoomed_strokes_near_a_corner_map_exactly(size, zoom):
    width, height = size
    # Centre almost on the bottom-left corner: the region is pushed back inside (see test_canvas.py).
    view = CanvasView.zoomed(width, height, 10, height - 5, zoom, 700, 600)
    w, h = view.canvas_width, view.canvas_height
    canvas_points = [(0.3 * w, 0.3 * h), (0.5 * w, 0.45 * h), (0.7 * w, 0.35 * h)]
    # 20 canvas px: still several photo px wide at 4x on the small photo.
    add, _ = strokes_to_mask([freedraw_object(canvas_points, 20)], view, (height, width))
    check_stroke_band(add, view, canvas_points, 20)
    # Exact place: the brush curve passes through the midpoint of the first two
    # points, canvas (0.4w, 0.375h); in the photo that is region origin + offset * scale.
    expected_x = view.x0 + 0.4 * w * (view.x1 - view.x0) / w
    expected_y = view.y0 + 0.375 * h * (view.y1 - view.y0) / h
    on_path = object_outline(freedraw_object(canvas_points, 6))["polylines"][0][0]
    assert np.linalg.norm(view.canvas_to_photo(on_path) - [expected_x, expected_y], axis=1).min() < 0.01
    assert add[int(expected_y), int(expected_x)]
    assert not add[: view.y0].any() and not add[:, view.x1:].any()


def test_zoomed_strokes_are_clipped_to_the_visible_region():
    view = CanvasView.zoomed(800, 600, 400, 300, 2, 400)
    # A stroke dragged off the canvas edge must not paint the hidden part of the photo.
    stroke = freedraw_object([(350, 100), (420, 110), (520, 120)], 10)
    add, _ = strokes_to_mask([stroke], view, (600, 800))
    assert add.any()
    assert not add[:, view.x1:].any()


# ---------------------------------------------------------------- erase and edits


def test_erase_stroke_removes_pixels_from_existing_mask():
    view = CanvasView.fit(1000, 800, 500)
    current = np.zeros((800, 1000), np.uint8)
    current[200:600, 200:800] = 255
    erase = freedraw_object([(80, 200), (250, 200), (420, 200)], 10, colour=ERASE_COLOUR)
    add, remove = strokes_to_mask([erase], view, (800, 1000))
    assert not add.any() and remove.any()
    edited = apply_edit(current, add, remove)
    assert edited.dtype == np.uint8 and set(np.unique(edited)) <= {0, 255}
    assert edited[400, 500] == 0  # on the erase stroke
    assert edited[250, 500] == 255 and edited[550, 500] == 255  # kept above and below
    assert (edited[remove] == 0).all()
    assert (edited[~remove] == current[~remove]).all()


def test_later_strokes_win_where_they_overlap():
    view = CanvasView.fit(400, 300, 400)
    first_erase = freedraw_object([(50, 100), (150, 100), (250, 100)], 20, colour=ERASE_COLOUR)
    then_paint = freedraw_object([(150, 50), (150, 100), (150, 150)], 10, colour=ADD_COLOUR)
    full = np.full((300, 400), 255, np.uint8)
    add, remove = strokes_to_mask([first_erase, then_paint], view, (300, 400))
    edited = apply_edit(full, add, remove)
    assert edited[100, 150] == 255  # repainted after the erase
    assert edited[100, 60] == 0  # erased, never repainted


def test_other_colours_and_kinds_are_ignored():
    view = CanvasView.fit(400, 300, 400)
    other = freedraw_object([(50, 50), (80, 60), (110, 50)], 6, colour="#123456")
    text = {"type": "IText", "text": "cat", "left": 10, "top": 10, "fill": ADD_COLOUR}
    add, remove = strokes_to_mask({"objects": [other, text]}, view, (300, 400))
    assert not add.any() and not remove.any()


def test_apply_edit_from_nothing_and_fill_holes():
    add = np.zeros((50, 50), bool)
    add[10:40, 10:40] = True
    add[20:30, 20:30] = False  # a hole
    add[0:3, 45:50] = True  # a crumb
    edited = apply_edit(None, add, np.zeros_like(add))
    filled = fill_holes(edited)
    assert filled[25, 25] == 255 and edited[25, 25] == 0
    assert filled[5, 5] == 0
    kept = largest_components(filled, keep=1)
    assert kept[1, 47] == 0 and kept[25, 25] == 255


def test_edit_from_canvas_reads_verbatim_fabric_json():
    view = CanvasView.fit(600, 400, 600)
    rect = next(case["json"] for case in TRANSFORMED if case["json"]["type"] == "Rect")
    current = clear((400, 600))
    current[390:, 590:] = 255
    edit = edit_from_canvas({"version": "7.4.0", "objects": [FREEDRAW_JSON, rect]}, view, current)
    add, _ = strokes_to_mask([FREEDRAW_JSON], view, (400, 600))
    assert edit.painted and edit.boxes == tuple(boxes_from_objects([rect], view))
    assert np.array_equal(edit.mask > 0, add | (current > 0)), "the box paints nothing"
    nothing = edit_from_canvas(None, view, None)
    assert not nothing.painted and not nothing.boxes and nothing.mask.shape == (400, 600)
    assert nothing.mask.max() == 0


def test_bad_drawings_and_masks_raise_value_error():
    view = CanvasView.fit(320, 240, 320)
    with pytest.raises(ValueError, match="rebuild the view"):
        strokes_to_mask([], view, (100, 100))
    with pytest.raises(ValueError):
        strokes_to_mask("not objects", view, (240, 320))
    with pytest.raises(ValueError):
        strokes_to_mask([{"no": "type"}], view, (240, 320))
    broken = freedraw_object([(1, 1), (5, 5), (9, 1)], 4)
    broken["path"] = [["M", 1, 1], ["A", 1, 2, 3]]
    with pytest.raises(ValueError):
        strokes_to_mask([broken], view, (240, 320))
    with pytest.raises(ValueError):
        apply_edit(np.zeros((10, 10), np.uint8), np.zeros((10, 11), bool), np.zeros((10, 11), bool))
    with pytest.raises(ValueError):
        largest_components(np.zeros((5, 5), np.uint8), keep=0)
