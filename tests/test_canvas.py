"""Tests for catseg.annotate.canvas_view: how the photo is shown on the canvas, and where Fabric puts drawn objects."""

from __future__ import annotations

import numpy as np
import pytest

from canvas_json import FREEDRAW_JSON, FREEDRAW_POINTS, TRANSFORMED, freedraw_object
from catseg.annotate.canvas_view import CanvasView
from catseg.annotate.fabric_shapes import object_outline, rect_corners

# ---------------------------------------------------------------- canvas view


def test_fit_keeps_aspect_and_never_enlarges():
    view = CanvasView.fit(4000, 3000, 800)
    assert (view.canvas_width, view.canvas_height) == (800, 600)
    assert view.scale == pytest.approx(5.0)
    portrait = CanvasView.fit(301, 999, 700, 600)
    assert portrait.canvas_height == 600
    assert portrait.canvas_width == round(301 * 600 / 999)
    small = CanvasView.fit(120, 90, 800)
    assert (small.canvas_width, small.canvas_height) == (120, 90)


def test_fit_enlarges_small_photos_when_asked():
    view = CanvasView.fit(120, 90, 480, 700, enlarge=True)
    assert (view.canvas_width, view.canvas_height) == (480, 360)
    assert view.scale == pytest.approx(0.25)


@pytest.mark.parametrize("size", [(4000, 3000), (301, 999)])
def test_canvas_to_photo_maps_corners_and_scales_linearly(size):
    width, height = size
    view = CanvasView.fit(width, height, 700, 600)
    corners = np.array([[0, 0], [view.canvas_width, view.canvas_height]], float)
    assert np.allclose(view.canvas_to_photo(corners), [[0, 0], [width, height]])
    points = np.random.default_rng(1).uniform(0, 500, (50, 2))
    expected = points * [width / view.canvas_width, height / view.canvas_height]
    assert np.allclose(view.canvas_to_photo(points), expected)


def test_render_background_and_mask_line_up_with_mapping():
    photo = np.zeros((999, 301, 3), np.uint8)
    photo[500:560, 100:180] = (255, 255, 255)
    view = CanvasView.fit(301, 999, 700, 600)
    background = view.render_background(photo)
    assert background.shape == (view.canvas_height, view.canvas_width, 3)
    assert background.dtype == np.uint8
    # The centre of the white block lands where canvas_to_photo says it is.
    ys, xs = np.nonzero(background[..., 0] > 128)
    centre = view.canvas_to_photo([[xs.mean() + 0.5, ys.mean() + 0.5]])[0]
    assert centre == pytest.approx([140, 530], abs=1.5)
    overlay = view.render_mask(photo[..., 0])
    assert overlay.shape == (view.canvas_height, view.canvas_width)
    assert np.array_equal(overlay > 0, background[..., 0] > 127) or (
        np.logical_xor(overlay > 0, background[..., 0] > 127).sum() < 10
    )


@pytest.mark.parametrize("zoom", [2, 4])
@pytest.mark.parametrize("size", [(4000, 3000), (301, 999)])
def test_zoomed_view_near_a_corner_is_pushed_back_inside(size, zoom):
    width, height = size
    view = CanvasView.zoomed(width, height, 10, height - 5, zoom, 700, 600)
    fit = CanvasView.fit(width, height, 700, 600)
    assert (view.canvas_width, view.canvas_height) == (fit.canvas_width, fit.canvas_height)
    assert view.x0 == 0 and view.y1 == height
    assert view.x1 - view.x0 == round(width / zoom)
    assert view.y1 - view.y0 == round(height / zoom)
    # Canvas point (0.4w, 0.375h) is region origin + offset * scale in the photo.
    w, h = view.canvas_width, view.canvas_height
    expected = [view.x0 + 0.4 * w * (view.x1 - view.x0) / w, view.y0 + 0.375 * h * (view.y1 - view.y0) / h]
    assert view.canvas_to_photo([(0.4 * w, 0.375 * h)])[0] == pytest.approx(expected)


def test_bad_views_raise_value_error():
    with pytest.raises(ValueError):
        CanvasView.fit(0, 100, 500)
    with pytest.raises(ValueError):
        CanvasView.zoomed(400, 300, 10, 10, 0, 400)
    with pytest.raises(ValueError):
        CanvasView.zoomed(400, 300, 10, 10, 2.5, 400)
    view = CanvasView.fit(320, 240, 320)
    with pytest.raises(ValueError, match="rebuild the view"):
        view.render_background(np.zeros((100, 100, 3), np.uint8))


# ---------------------------------------------------------------- Fabric geometry


def test_python_freedraw_helper_matches_fabric():
    built = freedraw_object(FREEDRAW_POINTS, 12)
    for key in ("left", "top", "width", "height"):
        assert built[key] == pytest.approx(FREEDRAW_JSON[key], abs=1e-3)
    assert [c[0] for c in built["path"]] == [c[0] for c in FREEDRAW_JSON["path"]]
    for ours, fabrics in zip(built["path"], FREEDRAW_JSON["path"]):
        assert np.allclose(ours[1:], fabrics[1:], atol=1e-3)


def test_verbatim_freedraw_outline_starts_and_ends_at_its_points():
    outline = object_outline(FREEDRAW_JSON)
    (points, closed), = outline["polylines"]
    assert not closed and not outline["fill"] and outline["stroke"] == 12
    # The brush nudges its end points by a thousandth of the stroke width.
    assert np.allclose(points[0], FREEDRAW_POINTS[0], atol=0.02)
    assert np.allclose(points[-1], FREEDRAW_POINTS[-1], atol=0.02)


def test_transformed_fabric_objects_are_placed_where_fabric_puts_them():
    for case in TRANSFORMED:
        obj, scene = case["json"], np.array(case["scene"])
        if obj["type"] == "Rect":
            assert object_outline(obj) is None, "a box is not a painted region"
            # Within Fabric's 4-decimal rounding of the scene corners.
            assert np.abs(rect_corners(obj) - scene).max() < 0.05
            continue
        outline = object_outline(obj)
        drawn = np.vstack([points for points, _ in outline["polylines"]])
        # Every reference point is on what we draw (within Fabric's 4-decimal rounding).
        nearest = np.linalg.norm(scene[:, None, :] - drawn[None, :, :], axis=2).min(axis=1)
        assert nearest.max() < 0.05, (obj["type"], nearest.max())


def test_unknown_path_commands_raise_value_error():
    broken = freedraw_object([(1, 1), (5, 5), (9, 1)], 4)
    broken["path"] = [["M", 1, 1], ["A", 1, 2, 3]]
    with pytest.raises(ValueError):
        object_outline(broken)
