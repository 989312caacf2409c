"""Tests for catseg.annotation: canvas-to-photo mapping, rasterising, GrabCut.

Synthetic data only. The Fabric JSON below was produced by the Fabric.js 7.4
bundled in streamlit-drawable-canvas 0.13 (run under node), so these tests
pin the exact serialisation the page receives.
"""

from __future__ import annotations

import io
import json
import math

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from catseg import annotation
from catseg.annotation import (
    ADD_COLOUR,
    ADD_FILL_COLOUR,
    BOX_COLOUR,
    ERASE_COLOUR,
    CanvasView,
    apply_edit,
    boxes_from_objects,
    fill_holes,
    grabcut_from_box,
    grabcut_refine,
    image_data_to_masks,
    largest_components,
    strokes_to_mask,
)

# Verbatim Fabric 7.4 toObject() of a freedraw stroke (PencilBrush, width 12)
# through the canvas points FREEDRAW_POINTS.
FREEDRAW_POINTS = [(12.5, 40), (30, 42), (55.25, 60), (80, 61), (81, 90), (60, 110)]
FREEDRAW_JSON = json.loads(
    '{"type":"Path","version":"7.4.0","originX":"center","originY":"center","left":46.5755,"top'
    '":75,"width":68.1751,"height":70.024,"fill":null,"stroke":"#ff00a0","strokeWidth":12,"stro'
    'keDashArray":null,"strokeLineCap":"round","strokeDashOffset":0,"strokeLineJoin":"round","s'
    'trokeUniform":false,"strokeMiterLimit":10,"scaleX":1,"scaleY":1,"angle":0,"flipX":false,"f'
    'lipY":false,"opacity":1,"shadow":null,"visible":true,"backgroundColor":"","fillRule":"nonz'
    'ero","paintFirst":"fill","globalCompositeOperation":"source-over","skewX":0,"skewY":0,"pat'
    'h":[["M",12.488,39.988],["Q",12.5,40,21.25,41],["Q",30,42,42.625,51],["Q",55.25,60,67.625,'
    '60.5],["Q",80,61,80.5,75.5],["Q",81,90,70.5,100],["L",59.988,110.012]]}'
)

# Verbatim Fabric 7.4 objects after being moved/scaled/rotated/flipped/skewed
# in edit mode, each with its origin re-expressed (right/left, center/bottom),
# and "scene": where Fabric itself puts the path's end points, the polygon's
# points, or the rect's corners (tl, tr, br, bl), in canvas px.
TRANSFORMED = json.loads(
    '[{"json":{"type":"Path","version":"7.4.0","originX":"right","originY":"center","left":87.5'
    '287,"top":146.572,"width":92.2023,"height":36.5376,"fill":null,"stroke":"#ff00a0","strokeW'
    'idth":15,"strokeDashArray":null,"strokeLineCap":"round","strokeDashOffset":0,"strokeLineJo'
    'in":"round","strokeUniform":false,"strokeMiterLimit":4,"scaleX":0.665,"scaleY":1.8748,"ang'
    'le":-22.4442,"flipX":false,"flipY":true,"opacity":1,"shadow":null,"visible":true,"backgrou'
    'ndColor":"","fillRule":"nonzero","paintFirst":"fill","globalCompositeOperation":"source-ov'
    'er","skewX":18.9338,"skewY":-14.1109,"path":[["M",119.07340019213427,158.75702920065356],['
    '"Q",119.08840019213427,158.74202920065358,111.42598682382423,166.56054801380287],["Q",103.'
    '76357345551419,174.3790668269522,109.60926605603157,172.9346037227356],["Q",115.4549586565'
    '4897,171.490140618519,108.36356608819382,176.455244273625],["Q",101.27217351983867,181.420'
    '34792873096,89.76930488588721,172.70721710645932],["Q",78.26643625193574,163.9940862841877'
    ',66.67670633256282,165.40333138331928],["Q",55.08697641318988,166.81257648245088,40.269357'
    '51795273,157.0918042315598],["Q",25.451738622715567,147.3710319806687,28.432517896142087,1'
    '45.32828046024235],["L",31.428297169568612,143.270528939816]]},"scene":[[87.5825,175.7013]'
    ',[77.9711,159.9426],[73.4054,147.9725],[70.7039,141.3116],[58.8074,144.3467],[45.3705,152.'
    '9373],[29.9844,162.6868],[27.1463,181.6852],[30.4069,186.0401]]},{"json":{"type":"Path","v'
    'ersion":"7.4.0","originX":"left","originY":"center","left":71.1127,"top":37.7029,"width":5'
    '4.2112,"height":44.7798,"fill":null,"stroke":"#ff00a0","strokeWidth":15,"strokeDashArray":'
    'null,"strokeLineCap":"round","strokeDashOffset":0,"strokeLineJoin":"round","strokeUniform"'
    ':true,"strokeMiterLimit":4,"scaleX":1.5119,"scaleY":1.7008,"angle":57.1611,"flipX":false,"'
    'flipY":false,"opacity":1,"shadow":null,"visible":true,"backgroundColor":"","fillRule":"non'
    'zero","paintFirst":"fill","globalCompositeOperation":"source-over","skewX":0,"skewY":0,"pa'
    'th":[["M",74.37505213035273,49.411154838332976],["Q",74.36005213035273,49.396154838332976,'
    '63.413333179621645,57.890749901016584],["Q",52.46661422889056,66.38534496370019,51.1258327'
    '5238323,61.87106930505067],["Q",49.78505127587591,57.35679364640115,48.35405635338,66.6251'
    '3125763512],["Q",46.92306143088409,75.89346886886909,59.87329344026433,80.44285052243751],'
    '["Q",72.82352544964456,84.99223217600593,64.28097697407054,90.38000320334916],["Q",55.7384'
    '2849849651,95.76777423069241,68.00608505634875,88.27154205333045],["Q",80.273741614201,80.'
    '7753098759685,91.09953669183867,79.91317973235303],["L",101.94033176947634,79.036049588737'
    '54]]},"scene":[[129.0197,57.2037],[107.9151,51.0997],[92.1529,39.1619],[83.0869,40.0256],['
    '72.7857,67.4027],[62.1993,82.1668],[68.2664,84.9542],[99.1444,106.581],[109.2859,119.5432]'
    ']},{"json":{"type":"Polygon","version":"7.4.0","originX":"right","originY":"center","left"'
    ':184.2425,"top":180.851,"width":30.979,"height":33.8271,"fill":"rgba(255, 0, 160, 0.3)","s'
    'troke":"#ff00a0","strokeWidth":3,"strokeDashArray":null,"strokeLineCap":"butt","strokeDash'
    'Offset":0,"strokeLineJoin":"miter","strokeUniform":false,"strokeMiterLimit":4,"scaleX":2.1'
    '265,"scaleY":1.6137,"angle":43.0194,"flipX":false,"flipY":true,"opacity":1,"shadow":null,"'
    'visible":true,"backgroundColor":"","fillRule":"nonzero","paintFirst":"fill","globalComposi'
    'teOperation":"source-over","skewX":0,"skewY":0,"points":[{"x":157.29056815490617,"y":182.5'
    '7897950828962},{"x":140.91103145429446,"y":171.70565232713972},{"x":152.90109786805746,"y"'
    ':148.75186844205106},{"x":168.65534118314054,"y":150.31926504351165},{"x":171.890021931328'
    '8,"y":155.59859984349396}]},"scene":[[177.8322,137.5392],[140.3954,126.6037],[133.7667,171'
    '.0798],[159.9863,192.0871],[170.8275,190.5516]]},{"json":{"rx":0,"ry":0,"type":"Rect","ver'
    'sion":"7.4.0","originX":"right","originY":"bottom","left":322.0643,"top":164.0291,"width":'
    '110.665,"height":49.2126,"fill":"rgba(0,0,0,0)","stroke":"#ffd400","strokeWidth":4,"stroke'
    'DashArray":null,"strokeLineCap":"butt","strokeDashOffset":0,"strokeLineJoin":"miter","stro'
    'keUniform":true,"strokeMiterLimit":4,"scaleX":0.923,"scaleY":2.4982,"angle":-62.3512,"flip'
    'X":false,"flipY":false,"opacity":1,"shadow":null,"visible":true,"backgroundColor":"","fill'
    'Rule":"nonzero","paintFirst":"fill","globalCompositeOperation":"source-over","skewX":0,"sk'
    'ewY":0},"scene":[[163.0573,198.3036],[210.4591,107.82],[319.3646,164.8726],[271.9627,255.3'
    '562]]}]'
)


# ---------------------------------------------------------------- helpers


def _midpoint(a, b):
    return ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)


def freedraw_object(points, width, colour=ADD_COLOUR):
    """A Path object as 0.13's freedraw brush emits it (Fabric PencilBrush + Path)."""
    nudge = width / 1000
    first, second = points[0], points[1]
    sx, sy = 1, 0
    if len(points) > 2:
        sx = -1 if points[2][0] < second[0] else (0 if points[2][0] == second[0] else 1)
        sy = -1 if points[2][1] < second[1] else (0 if points[2][1] == second[1] else 1)
    path = [["M", first[0] - sx * nudge, first[1] - sy * nudge]]
    current, following = first, second
    index = 1
    for index in range(1, len(points)):
        if current != following:
            path.append(["Q", current[0], current[1], *_midpoint(current, following)])
        current = points[index]
        if index + 1 < len(points):
            following = points[index + 1]
    if len(points) > 2:
        before = points[index - 1]
        sx = 1 if current[0] > before[0] else (0 if current[0] == before[0] else -1)
        sy = 1 if current[1] > before[1] else (0 if current[1] == before[1] else -1)
    path.append(["L", current[0] + sx * nudge, current[1] + sy * nudge])
    # Fabric's bounding box treats Q as the cubic (P0, P1, P1, P2); sample it densely.
    samples = [np.array(path[0][1:])]
    start = samples[0]
    for command in path[1:]:
        if command[0] == "Q":
            control, end = np.array(command[1:3]), np.array(command[3:5])
            t = np.linspace(0, 1, 2001)[:, None]
            samples.append((1 - t) ** 3 * start + 3 * (1 - t) ** 2 * t * control
                           + 3 * (1 - t) * t ** 2 * control + t ** 3 * end)
            start = end
        else:
            start = np.array(command[1:3])
            samples.append(start[None, :])
    every = np.vstack(samples)
    low, high = every.min(axis=0), every.max(axis=0)
    centre = (low + high) / 2
    return {
        "type": "Path", "version": "7.4.0", "originX": "center", "originY": "center",
        "left": float(centre[0]), "top": float(centre[1]),
        "width": float(high[0] - low[0]), "height": float(high[1] - low[1]),
        "fill": None, "stroke": colour, "strokeWidth": width, "strokeDashArray": None,
        "strokeLineCap": "round", "strokeDashOffset": 0, "strokeLineJoin": "round",
        "strokeUniform": False, "strokeMiterLimit": 10, "scaleX": 1, "scaleY": 1, "angle": 0,
        "flipX": False, "flipY": False, "opacity": 1, "shadow": None, "visible": True,
        "backgroundColor": "", "fillRule": "nonzero", "paintFirst": "fill",
        "globalCompositeOperation": "source-over", "skewX": 0, "skewY": 0, "path": path,
    }


def polygon_object(points, stroke_width=2, colour=ADD_COLOUR, fill=ADD_FILL_COLOUR):
    """A Polygon as 0.13's polygon tool emits it: absolute points, origin at the bbox centre."""
    array = np.array(points, float)
    low, high = array.min(axis=0), array.max(axis=0)
    return {
        "type": "Polygon", "version": "7.4.0", "originX": "center", "originY": "center",
        "left": float((low[0] + high[0]) / 2), "top": float((low[1] + high[1]) / 2),
        "width": float(high[0] - low[0]), "height": float(high[1] - low[1]),
        "fill": fill, "stroke": colour, "strokeWidth": stroke_width, "strokeLineCap": "butt",
        "strokeLineJoin": "miter", "strokeUniform": False, "strokeMiterLimit": 4,
        "scaleX": 1, "scaleY": 1, "angle": 0, "flipX": False, "flipY": False, "opacity": 1,
        "visible": True, "skewX": 0, "skewY": 0,
        "points": [{"x": float(x), "y": float(y)} for x, y in points],
    }


def rect_object(left, top, width, height, stroke_width=3):
    """A Rect as 0.13's rect tool emits it (origin left/top, strokeUniform)."""
    return {
        "rx": 0, "ry": 0, "type": "Rect", "version": "7.4.0", "originX": "left", "originY": "top",
        "left": left, "top": top, "width": width, "height": height, "fill": "rgba(0,0,0,0)",
        "stroke": BOX_COLOUR, "strokeWidth": stroke_width, "strokeUniform": True,
        "scaleX": 1, "scaleY": 1, "angle": 0, "flipX": False, "flipY": False,
        "skewX": 0, "skewY": 0, "visible": True,
    }


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


@pytest.mark.parametrize("size", [(4000, 3000), (301, 999)])
def test_canvas_photo_round_trip_and_corners(size):
    width, height = size
    view = CanvasView.fit(width, height, 700, 600)
    corners = np.array([[0, 0], [view.canvas_width, view.canvas_height]], float)
    assert np.allclose(view.canvas_to_photo(corners), [[0, 0], [width, height]])
    points = np.random.default_rng(1).uniform(0, 500, (50, 2))
    assert np.allclose(view.photo_to_canvas(view.canvas_to_photo(points)), points)


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


# ---------------------------------------------------------------- freedraw


def test_python_freedraw_helper_matches_fabric():
    built = freedraw_object(FREEDRAW_POINTS, 12)
    for key in ("left", "top", "width", "height"):
        assert built[key] == pytest.approx(FREEDRAW_JSON[key], abs=1e-3)
    assert [c[0] for c in built["path"]] == [c[0] for c in FREEDRAW_JSON["path"]]
    for ours, fabrics in zip(built["path"], FREEDRAW_JSON["path"]):
        assert np.allclose(ours[1:], fabrics[1:], atol=1e-3)


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


def test_transformed_fabric_objects_map_exactly():
    view = CanvasView.fit(600, 400, 600)  # 1:1, so canvas px are photo px
    for case in TRANSFORMED:
        obj, scene = case["json"], np.array(case["scene"])
        if obj["type"] == "Rect":
            (box,) = boxes_from_objects([obj], view)
            expected = (math.floor(scene[:, 0].min()), math.floor(scene[:, 1].min()),
                        math.ceil(scene[:, 0].max()), math.ceil(scene[:, 1].max()))
            assert np.allclose(box, expected, atol=1)
            continue
        outline = annotation.object_outline(obj)
        drawn = np.vstack([points for points, _ in outline["polylines"]])
        # Every reference point is on what we draw (within Fabric's 4-decimal rounding).
        nearest = np.linalg.norm(scene[:, None, :] - drawn[None, :, :], axis=2).min(axis=1)
        assert nearest.max() < 0.05, (obj["type"], nearest.max())
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
def test_zoomed_view_maps_near_a_corner(size, zoom):
    width, height = size
    # Centre almost on the bottom-left corner: the region must be pushed back inside.
    view = CanvasView.zoomed(width, height, 10, height - 5, zoom, 700, 600)
    fit = CanvasView.fit(width, height, 700, 600)
    assert (view.canvas_width, view.canvas_height) == (fit.canvas_width, fit.canvas_height)
    assert view.x0 == 0 and view.y1 == height
    assert view.x1 - view.x0 == round(width / zoom)
    assert view.y1 - view.y0 == round(height / zoom)
    w, h = view.canvas_width, view.canvas_height
    canvas_points = [(0.3 * w, 0.3 * h), (0.5 * w, 0.45 * h), (0.7 * w, 0.35 * h)]
    # 20 canvas px: still several photo px wide at 4x on the small photo.
    add, _ = strokes_to_mask([freedraw_object(canvas_points, 20)], view, (height, width))
    check_stroke_band(add, view, canvas_points, 20)
    # Exact place: the brush curve passes through the midpoint of the first two
    # points, canvas (0.4w, 0.375h); in the photo that is region origin + offset * scale.
    expected_x = view.x0 + 0.4 * w * (view.x1 - view.x0) / w
    expected_y = view.y0 + 0.375 * h * (view.y1 - view.y0) / h
    on_path = annotation.object_outline(freedraw_object(canvas_points, 6))["polylines"][0][0]
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


def test_other_colours_and_text_are_ignored():
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


# ---------------------------------------------------------------- image_data fallback


def test_image_data_maps_up_nearest_neighbour_without_shift():
    view = CanvasView.fit(1000, 800, 200)  # scale 5
    rgba = np.zeros((view.canvas_height, view.canvas_width, 4), np.uint8)
    rgba[10:20, 30:50] = (255, 0, 160, 255)
    rgba[60:70, 100:120] = (0, 229, 255, 255)
    rgba[100:110, 100:110] = (20, 20, 20, 255)  # not an edit colour
    add, remove = image_data_to_masks(rgba, view, (800, 1000))
    expected_add = np.zeros((800, 1000), bool)
    expected_add[50:100, 150:250] = True
    expected_remove = np.zeros((800, 1000), bool)
    expected_remove[300:350, 500:600] = True
    assert np.array_equal(add, expected_add)
    assert np.array_equal(remove, expected_remove)


def test_image_data_in_a_zoomed_view():
    view = CanvasView.zoomed(800, 600, 790, 590, 4, 400)  # region 200x150 at the bottom-right
    assert (view.x0, view.y0) == (600, 450)
    rgba = np.zeros((view.canvas_height, view.canvas_width, 4), np.uint8)
    rgba[0:2, 0:2] = (255, 0, 160, 255)  # scale 0.5: 2 canvas px = 1 photo px
    add, _ = image_data_to_masks(rgba, view, (600, 800))
    assert np.argwhere(add).tolist() == [[450, 600]]


# ---------------------------------------------------------------- GrabCut


def synthetic_cat_photo(seed=3):
    rng = np.random.default_rng(seed)
    height, width = 240, 320
    background = np.empty((height, width, 3), np.float32)
    background[...] = (60, 120, 70)
    background += rng.normal(0, 18, (height, width, 3))
    stripes = (np.arange(width) // 12 % 2)[None, :, None] * np.array([25, 10, 0])
    background += stripes
    truth = np.zeros((height, width), np.uint8)
    cv2.ellipse(truth, (170, 125), (80, 55), 20, 0, 360, 255, -1)
    cat = np.empty_like(background)
    cat[...] = (200, 150, 90)
    cat += rng.normal(0, 18, (height, width, 3))
    cat += ((np.arange(height) // 7 % 2)[:, None, None] * np.array([-30, -25, -10]))
    photo = np.where(truth[..., None] > 0, cat, background)
    return np.clip(photo, 0, 255).astype(np.uint8), truth > 0


def iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


def test_grabcut_from_box_finds_the_ellipse():
    photo, truth = synthetic_cat_photo()
    ys, xs = np.nonzero(truth)
    box = (xs.min() - 8, ys.min() - 8, xs.max() + 9, ys.max() + 9)
    mask = grabcut_from_box(photo, box, iterations=5, max_side=512)
    assert mask.shape == truth.shape and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 255}
    assert iou(mask > 0, truth) > 0.8
    # Downscaled run still lines up at full resolution (no shift from the resize).
    small = grabcut_from_box(photo, box, iterations=5, max_side=160)
    assert iou(small > 0, truth) > 0.8


def test_grabcut_refine_improves_a_rough_mask():
    photo, truth = synthetic_cat_photo()
    rough = cv2.dilate(truth.astype(np.uint8) * 255, np.ones((15, 15), np.uint8))
    refined = grabcut_refine(photo, rough)
    assert iou(refined > 0, truth) > iou(rough > 0, truth)
    assert iou(refined > 0, truth) > 0.8


# ---------------------------------------------------------------- bad input


def test_bad_inputs_raise_value_error():
    photo, _ = synthetic_cat_photo()
    view = CanvasView.fit(320, 240, 320)
    with pytest.raises(ValueError, match="empty"):
        grabcut_from_box(photo, (50, 50, 50, 80))
    with pytest.raises(ValueError, match="outside"):
        grabcut_from_box(photo, (1000, 1000, 1200, 1300))
    with pytest.raises(ValueError):
        grabcut_from_box(photo[..., 0], (10, 10, 100, 100))
    with pytest.raises(ValueError):
        grabcut_from_box(photo, (10, 10, 100))
    with pytest.raises(ValueError, match="empty"):
        grabcut_refine(photo, np.zeros((240, 320), np.uint8))
    with pytest.raises(ValueError):
        CanvasView.fit(0, 100, 500)
    with pytest.raises(ValueError):
        CanvasView.zoomed(400, 300, 10, 10, 0, 400)
    with pytest.raises(ValueError):
        CanvasView.zoomed(400, 300, 10, 10, 2.5, 400)
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
        image_data_to_masks(np.zeros((10, 10, 4), np.uint8), view, (240, 320))
    with pytest.raises(ValueError):
        apply_edit(np.zeros((10, 10), np.uint8), np.zeros((10, 11), bool), np.zeros((10, 11), bool))
    with pytest.raises(ValueError):
        view.render_background(np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(ValueError):
        largest_components(np.zeros((5, 5), np.uint8), keep=0)
