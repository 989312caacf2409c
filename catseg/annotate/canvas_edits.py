"""What a drawing on the Annotate canvas does to a full-resolution mask.

The page draws in its own colours (the canvas has no eraser, so erasing is drawing in
the eraser's colour); this module reads those colours back, paints the brush, eraser
and polygon objects into masks at the photo's own resolution, reports the GrabCut boxes,
and holds the small mask tools the page's buttons use (clear, fill holes).

The library never imports streamlit; the page passes in plain data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from catseg.annotate.canvas_view import CanvasView, as_bool_mask
from catseg.annotate.fabric_shapes import object_outline, rect_corners
from catseg.annotate.colours import parse_css_colour

# Colours the page gives the canvas. Erasing is drawing in its own colour, recognised
# here and subtracted.
ADD_COLOUR = "#ff00a0"
ERASE_COLOUR = "#00e5ff"
# Rectangles (drawing_mode="rect") are GrabCut boxes, never painted pixels.
BOX_COLOUR = "#ffd400"
# Polygon fills: the same hues, see-through so the cat stays visible.
ADD_FILL_COLOUR = "rgba(255, 0, 160, 0.3)"
ERASE_FILL_COLOUR = "rgba(0, 229, 255, 0.3)"
BOX_FILL_COLOUR = "rgba(0, 0, 0, 0)"

_ADD_RGB = parse_css_colour(ADD_COLOUR)[0]  # type: ignore[index]
_ERASE_RGB = parse_css_colour(ERASE_COLOUR)[0]  # type: ignore[index]

# Fixed-point bits for cv2 drawing: strokes land to 1/8 px, not whole pixels.
_DRAW_SHIFT = 3
_DRAW_ONE = 1 << _DRAW_SHIFT


@dataclass(frozen=True)
class CanvasEdit:
    """What one canvas drawing does to a mask.

    mask: the current mask with the brush, eraser and polygon objects applied,
        full-resolution uint8 0/255.
    painted: brush, eraser or polygon objects were drawn (even if they changed no pixel).
    boxes: the GrabCut boxes drawn, photo px (x0, y0, x1, y1), half-open; not applied to
        mask (grabcut.cut_out_boxes does that).
    """

    mask: np.ndarray
    painted: bool
    boxes: tuple[tuple[int, int, int, int], ...]


def edit_from_canvas(json_data: Any, view: CanvasView, current_mask: np.ndarray | None) -> CanvasEdit:
    """Apply a canvas drawing (CanvasResult.json_data) to current_mask (None: empty)."""
    objects = _objects_list(json_data)
    add_mask, remove_mask = strokes_to_mask(objects, view, view.photo_shape)
    painted = any(_is_shown_paint(obj) and _edit_kind(obj) is not None for obj in objects)
    mask = apply_edit(current_mask, add_mask, remove_mask)
    return CanvasEdit(mask=mask, painted=painted, boxes=tuple(boxes_from_objects(objects, view)))


def strokes_to_mask(
    objects: Any,
    view: CanvasView,
    photo_shape: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """Rasterise the add/erase objects of a canvas at full photo resolution.

    objects: CanvasResult.json_data (or its 'objects' list). Objects stroked in
    ADD_COLOUR add, in ERASE_COLOUR erase; other colours, rects (GrabCut
    boxes) and other kinds are skipped. Later objects win where they overlap, so
    apply_edit(current, add, remove) equals replaying the strokes in order.
    Everything is clipped to the region the view showed.
    Returns (add_mask, remove_mask), both (H, W) bool.
    """
    height, width = _photo_hw(photo_shape, view)
    add_mask = np.zeros((height, width), bool)
    remove_mask = np.zeros((height, width), bool)
    # About two samples per photo pixel along curves: smooth at any zoom.
    density = max(1.0, 2.0 * view.scale)
    for obj in _objects_list(objects):
        if not _is_shown_paint(obj):
            continue
        kind = _edit_kind(obj)
        if kind is None:
            continue
        outline = object_outline(obj, density)
        if outline is None:
            continue
        painted = _paint(view, outline["polylines"], outline["fill"], outline["stroke"])
        if painted is None:
            continue
        (x0, y0, x1, y1), patch = painted
        target, other = (add_mask, remove_mask) if kind == "add" else (remove_mask, add_mask)
        target[y0:y1, x0:x1] |= patch
        other[y0:y1, x0:x1] &= ~patch
    return add_mask, remove_mask


def boxes_from_objects(objects: Any, view: CanvasView) -> list[tuple[int, int, int, int]]:
    """Photo-px boxes (x0, y0, x1, y1), half-open and clipped to the photo, of every Rect drawn.

    The box is the rectangle's own edge (the middle of its outline), as Fabric
    places it; a rotated rect gives its axis-aligned bounding box.
    Rects entirely outside the photo are dropped.
    """
    boxes: list[tuple[int, int, int, int]] = []
    for obj in _objects_list(objects):
        if not _is_box(obj):
            continue
        photo = view.canvas_to_photo(rect_corners(obj))
        x0 = max(0, math.floor(photo[:, 0].min() + 1e-6))
        y0 = max(0, math.floor(photo[:, 1].min() + 1e-6))
        x1 = min(view.photo_width, math.ceil(photo[:, 0].max() - 1e-6))
        y1 = min(view.photo_height, math.ceil(photo[:, 1].max() - 1e-6))
        if x1 > x0 and y1 > y0:
            boxes.append((x0, y0, x1, y1))
    return boxes


def clear(photo_shape: Sequence[int]) -> np.ndarray:
    """An empty (all background) uint8 0/255 mask for a photo of this shape."""
    if len(photo_shape) < 2 or int(photo_shape[0]) < 1 or int(photo_shape[1]) < 1:
        raise ValueError(f"photo_shape must be (height, width) of at least 1x1, got {photo_shape!r}.")
    return np.zeros((int(photo_shape[0]), int(photo_shape[1])), np.uint8)


def apply_edit(
    current_mask: np.ndarray | None,
    add_mask: np.ndarray,
    remove_mask: np.ndarray,
) -> np.ndarray:
    """(current OR add) AND NOT remove, as uint8 0/255. current_mask None means empty."""
    add_mask = as_bool_mask(add_mask, "add_mask")
    remove_mask = as_bool_mask(remove_mask, "remove_mask")
    if add_mask.shape != remove_mask.shape:
        raise ValueError(f"add_mask {add_mask.shape} and remove_mask {remove_mask.shape} differ in size.")
    if current_mask is None:
        current = np.zeros(add_mask.shape, bool)
    else:
        current = as_bool_mask(current_mask, "current_mask")
        if current.shape != add_mask.shape:
            raise ValueError(
                f"The saved mask is {current.shape[1]}x{current.shape[0]} but the edit is "
                f"{add_mask.shape[1]}x{add_mask.shape[0]}; the mask belongs to another photo."
            )
    return np.where((current | add_mask) & ~remove_mask, 255, 0).astype(np.uint8)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Foreground plus every background pocket not connected to the border, uint8 0/255."""
    foreground = as_bool_mask(mask, "mask")
    padded = np.pad(np.where(foreground, 255, 0).astype(np.uint8), 1)
    flood = padded.copy()
    flood_mask = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    # The padding ring is background and touches every border pixel, so one seed reaches all.
    cv2.floodFill(flood, flood_mask, (0, 0), 255, flags=4)
    holes = flood[1:-1, 1:-1] == 0
    return np.where(foreground | holes, 255, 0).astype(np.uint8)


def largest_components(mask: np.ndarray, keep: int = 1, min_fraction: float = 0.0) -> np.ndarray:
    """Keep the `keep` largest 8-connected foreground parts (and any at least
    min_fraction of the largest), as uint8 0/255."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}.")
    foreground = as_bool_mask(mask, "mask").astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    if count <= 1:
        return np.zeros(foreground.shape, np.uint8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(areas)[::-1]
    chosen = set((order[:keep] + 1).tolist())
    if min_fraction > 0:
        chosen |= set((np.nonzero(areas >= min_fraction * areas.max())[0] + 1).tolist())
    lookup = np.zeros(count, np.uint8)
    lookup[list(chosen)] = 255
    return lookup[labels]


def _is_box(obj: Mapping[str, Any]) -> bool:
    return obj["type"].lower() == "rect"


def _is_shown_paint(obj: Mapping[str, Any]) -> bool:
    """Not a GrabCut box and not hidden: an object that may paint or erase."""
    return not _is_box(obj) and obj.get("visible", True) is not False


def _edit_kind(obj: Mapping[str, Any]) -> str | None:
    """'add', 'erase' or None (not an edit) from the object's stroke, else its fill colour."""
    for key in ("stroke", "fill"):
        parsed = parse_css_colour(obj.get(key))
        if parsed is None or parsed[1] <= 0:
            continue
        if parsed[0] == _ADD_RGB:
            return "add"
        if parsed[0] == _ERASE_RGB:
            return "erase"
        return None
    return None


def _objects_list(objects: Any) -> list[Mapping[str, Any]]:
    """Accept the canvas json_data dict, its 'objects' list, or None."""
    if objects is None:
        return []
    if isinstance(objects, Mapping):
        objects = objects.get("objects", [])
        if objects is None:
            return []
    if not isinstance(objects, (list, tuple)):
        raise ValueError(
            "Expected the canvas JSON (a dict with 'objects') or its list of objects, "
            f"got {type(objects).__name__}."
        )
    for index, obj in enumerate(objects):
        if not isinstance(obj, Mapping) or not isinstance(obj.get("type"), str):
            raise ValueError(
                f"Canvas object #{index} is not a Fabric object (a dict with a 'type'); "
                "pass CanvasResult.json_data unchanged."
            )
    return list(objects)


def _photo_hw(photo_shape: Sequence[int], view: CanvasView) -> tuple[int, int]:
    if len(photo_shape) < 2:
        raise ValueError(f"photo_shape must be (height, width[, channels]), got {photo_shape!r}.")
    height, width = int(photo_shape[0]), int(photo_shape[1])
    view.check_photo_shape((height, width))
    return height, width


def _paint(
    view: CanvasView,
    canvas_polylines: list[tuple[np.ndarray, bool]],
    fill: bool,
    stroke_canvas_px: float,
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """(window, bool patch) covering the filled shapes and their stroke bands, in photo px.

    The window is clipped to the region the view shows, so a stroke dragged off the
    canvas edge paints nothing outside it.
    """
    if not canvas_polylines:
        return None
    photo_polylines = [(view.canvas_to_photo(points), closed) for points, closed in canvas_polylines]
    thickness = stroke_canvas_px * view.scale
    window = _window(view, [points for points, _ in photo_polylines], thickness / 2)
    if window is None:
        return None
    x0, y0, x1, y1 = window
    patch = np.zeros((y1 - y0, x1 - x0), np.uint8)
    # cv2 puts pixel centres at integers; the continuous coordinates put them at +0.5.
    fixed = [
        (np.round((points - [x0 + 0.5, y0 + 0.5]) * _DRAW_ONE).astype(np.int32), closed)
        for points, closed in photo_polylines
    ]
    if fill:
        # One fill per shape, so overlapping shapes give their union (not the even-odd rule).
        for points, _ in fixed:
            if len(points) >= 3:
                cv2.fillPoly(patch, [points], 255, cv2.LINE_8, _DRAW_SHIFT)
    if thickness > 0:
        width = max(1, round(thickness))
        for points, closed in fixed:
            # A thick cv2 polyline has round caps and joins, like the canvas brush.
            cv2.polylines(patch, [points], closed, 255, width, cv2.LINE_8, _DRAW_SHIFT)
            if len(points) == 1:
                cv2.circle(patch, tuple(int(v) for v in points[0]), width * _DRAW_ONE // 2,
                           255, -1, cv2.LINE_8, _DRAW_SHIFT)
    return window, patch > 0


def _window(view: CanvasView, photo_points: list[np.ndarray], margin: float) -> tuple[int, int, int, int] | None:
    """The photo-px box around the points plus margin, inside the shown region; None if empty."""
    points = np.vstack(photo_points)
    x0 = max(view.x0, math.floor(points[:, 0].min() - margin) - 1)
    y0 = max(view.y0, math.floor(points[:, 1].min() - margin) - 1)
    x1 = min(view.x1, math.ceil(points[:, 0].max() + margin) + 2)
    y1 = min(view.y1, math.ceil(points[:, 1].max() + margin) + 2)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1
