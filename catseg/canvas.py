"""How the photo is shown on the drawing canvas, and where the canvas's drawn objects lie.

The Annotate page shows a photo (or a zoomed part of it) on a streamlit-drawable-canvas
0.13 canvas, which is Fabric.js 7.4 and hands back the Fabric JSON of what was drawn.
CanvasView maps canvas pixels to photo pixels and back; object_outline and rect_corners
reproduce Fabric's own geometry for the three kinds of object the page's tools create:
a Path (the brush and eraser), a Polygon (the polygon tools) and a Rect (the box tool),
each possibly moved, scaled, rotated, flipped or skewed afterwards with the canvas's
edit toggle.

Coordinates: "canvas px" and "photo px" are continuous, with pixel (i, j) covering
[i, i+1) x [j, j+1); that is the convention of both Fabric and cv2.resize, so no
half-pixel shift creeps in. Regions are half-open (x0 <= x < x1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from catseg.colours import parse_css_colour
from catseg.masks import cat_pixels

_ORIGIN_FRACTION = {"left": -0.5, "top": -0.5, "center": 0.0, "right": 0.5, "bottom": 0.5}


@dataclass(frozen=True)
class CanvasView:
    """A region of the photo (photo px, half-open) drawn stretched onto the canvas.

    The photo is the upright (EXIF-transposed) full-resolution image.
    """

    photo_width: int
    photo_height: int
    x0: int
    y0: int
    x1: int
    y1: int
    canvas_width: int
    canvas_height: int

    def __post_init__(self) -> None:
        if self.photo_width < 1 or self.photo_height < 1:
            raise ValueError(
                f"The photo is {self.photo_width}x{self.photo_height} px; "
                "it must be at least 1x1."
            )
        if not (0 <= self.x0 < self.x1 <= self.photo_width
                and 0 <= self.y0 < self.y1 <= self.photo_height):
            raise ValueError(
                f"The shown region ({self.x0}, {self.y0})-({self.x1}, {self.y1}) "
                f"is not inside the {self.photo_width}x{self.photo_height} photo."
            )
        if self.canvas_width < 1 or self.canvas_height < 1:
            raise ValueError(
                f"The canvas is {self.canvas_width}x{self.canvas_height} px; "
                "it must be at least 1x1."
            )

    @classmethod
    def fit(
        cls,
        photo_width: int,
        photo_height: int,
        max_canvas_width: int,
        max_canvas_height: int | None = None,
        enlarge: bool = False,
    ) -> CanvasView:
        """The whole photo, aspect kept, shrunk to fit the limits (enlarged to fill them if `enlarge`).

        Enlarging helps labelling small photos: strokes still map back exactly, only finer.
        """
        photo_width, photo_height = _positive_size(photo_width, photo_height)
        if max_canvas_width < 1 or (max_canvas_height is not None and max_canvas_height < 1):
            raise ValueError(
                f"The canvas limits {max_canvas_width}x{max_canvas_height} must be "
                "at least 1 px."
            )
        factor = max_canvas_width / photo_width if enlarge else min(1.0, max_canvas_width / photo_width)
        if max_canvas_height is not None:
            factor = min(factor, max_canvas_height / photo_height)
        return cls(
            photo_width=photo_width,
            photo_height=photo_height,
            x0=0,
            y0=0,
            x1=photo_width,
            y1=photo_height,
            canvas_width=max(1, round(photo_width * factor)),
            canvas_height=max(1, round(photo_height * factor)),
        )

    @classmethod
    def zoomed(
        cls,
        photo_width: int,
        photo_height: int,
        centre_x: float,
        centre_y: float,
        zoom: int,
        max_canvas_width: int,
        max_canvas_height: int | None = None,
    ) -> CanvasView:
        """1/zoom of the photo around (centre_x, centre_y), on the fit() canvas size.

        The region is moved (not shrunk) to stay inside the photo, so a centre
        near a corner still shows a full-size region.
        """
        if isinstance(zoom, bool) or not isinstance(zoom, (int, np.integer)) or zoom < 1:
            raise ValueError(f"Zoom must be a whole number >= 1 (2 or 4), got {zoom!r}.")
        base = cls.fit(photo_width, photo_height, max_canvas_width, max_canvas_height)
        if not (math.isfinite(centre_x) and math.isfinite(centre_y)):
            raise ValueError(f"The zoom centre ({centre_x}, {centre_y}) is not a number.")
        region_width = max(1, round(base.photo_width / zoom))
        region_height = max(1, round(base.photo_height / zoom))
        x0 = round(centre_x - region_width / 2)
        y0 = round(centre_y - region_height / 2)
        x0 = min(max(x0, 0), base.photo_width - region_width)
        y0 = min(max(y0, 0), base.photo_height - region_height)
        return cls(
            photo_width=base.photo_width,
            photo_height=base.photo_height,
            x0=x0,
            y0=y0,
            x1=x0 + region_width,
            y1=y0 + region_height,
            canvas_width=base.canvas_width,
            canvas_height=base.canvas_height,
        )

    @property
    def scale_x(self) -> float:
        """Photo px per canvas px, horizontally."""
        return (self.x1 - self.x0) / self.canvas_width

    @property
    def scale_y(self) -> float:
        """Photo px per canvas px, vertically."""
        return (self.y1 - self.y0) / self.canvas_height

    @property
    def scale(self) -> float:
        """Photo px per canvas px (geometric mean of both axes; they differ by rounding only)."""
        return math.sqrt(self.scale_x * self.scale_y)

    @property
    def photo_shape(self) -> tuple[int, int]:
        """(height, width) of the full photo, the shape of the masks."""
        return (self.photo_height, self.photo_width)

    def canvas_to_photo(self, points: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Map (N, 2) canvas (x, y) to photo (x, y), continuous coordinates."""
        points = _as_points(points)
        return np.column_stack(
            (self.x0 + points[:, 0] * self.scale_x, self.y0 + points[:, 1] * self.scale_y)
        )

    def render_background(self, photo: np.ndarray) -> np.ndarray:
        """The shown region of an RGB photo, resized to (canvas_height, canvas_width, 3) uint8.

        Pass it to st_canvas as a PIL image with the canvas's width/height and
        background_image_fit="stretch"; it then lands 1:1 on canvas pixels.
        """
        photo = np.asarray(photo)
        if photo.ndim != 3 or photo.shape[2] not in (3, 4):
            raise ValueError(f"The photo must be an RGB image (H, W, 3); got shape {photo.shape}.")
        self.check_photo_shape(photo.shape[:2])
        region = photo[self.y0:self.y1, self.x0:self.x1, :3]
        if region.dtype != np.uint8:
            region = np.clip(region, 0, 255).astype(np.uint8)
        return _resize(region, self.canvas_width, self.canvas_height)

    def render_mask(self, mask: np.ndarray) -> np.ndarray:
        """The shown region of a full-resolution mask as (canvas_height, canvas_width) uint8 0/255."""
        mask = as_bool_mask(mask, "mask")
        self.check_photo_shape(mask.shape)
        region = mask[self.y0:self.y1, self.x0:self.x1].astype(np.float32)
        # Area-average then threshold: thin parts survive the shrink as they would look.
        resized = _resize(region, self.canvas_width, self.canvas_height)
        return np.where(resized >= 0.5, 255, 0).astype(np.uint8)

    def check_photo_shape(self, shape: Sequence[int]) -> None:
        """ValueError unless shape starts with this view's photo (height, width)."""
        if tuple(shape[:2]) != self.photo_shape:
            raise ValueError(
                f"The image is {shape[1]}x{shape[0]} px but this canvas view is for a "
                f"{self.photo_width}x{self.photo_height} photo; rebuild the view for this photo."
            )


def as_bool_mask(mask: Any, name: str) -> np.ndarray:
    """A (H, W) mask's cat pixels as bool, by the one mask rule (masks.cat_pixels).

    ValueError naming `name` for anything but a 2-D mask of numbers or bools.
    """
    array = np.asarray(mask)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) mask; got shape {array.shape}.")
    if array.dtype != bool and not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must be numeric or bool; got {array.dtype}.")
    return cat_pixels(array)


# --------------------------------------------------------------------------
# Fabric.js geometry of the drawn objects (as Fabric 7.4 serialises them)
# --------------------------------------------------------------------------


def object_outline(obj: Mapping[str, Any], samples_per_canvas_px: float = 1.0) -> dict[str, Any] | None:
    """Canvas-px geometry of a drawn Path or Polygon: {'polylines', 'fill', 'stroke'}.

    'polylines' is a list of ((N, 2) points, closed); 'fill' says whether the closed
    ones are regions; 'stroke' is the stroke width in canvas px (0 without a stroke).
    None for any other kind (a Rect is a box, see rect_corners, not a painted region).
    """
    kind = obj["type"].lower()
    if kind not in ("path", "polygon"):
        return None
    matrix = _object_matrix(obj)
    stroke_width = _number(obj, "strokeWidth", 1.0)
    if parse_css_colour(obj.get("stroke")) is None:
        stroke_width = 0.0
    stroke = stroke_width if obj.get("strokeUniform") else stroke_width * _stroke_scale(matrix)
    if kind == "polygon":
        raw_points = obj.get("points")
        if not isinstance(raw_points, list) or not raw_points:
            raise ValueError(f"A canvas {obj['type']} has no points; clear the canvas and draw again.")
        try:
            points = np.array([[float(point["x"]), float(point["y"])] for point in raw_points])
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"A canvas {obj['type']} has bad points; clear the canvas and draw again.") from None
        # Fabric draws polygon points relative to the centre of their bounding box.
        path_offset = (points.min(axis=0) + points.max(axis=0)) / 2
        # A polygon is a region whatever its fill.
        return {"polylines": [(_apply(matrix, points - path_offset), True)], "fill": True, "stroke": stroke}
    # Curves are sampled finely enough in local units for the canvas-px density asked.
    local_density = samples_per_canvas_px * max(_stroke_scale(matrix), 1e-6)
    subpaths, path_offset = _flatten_path(obj.get("path"), local_density)
    fill = parse_css_colour(obj.get("fill"))
    return {"polylines": [(_apply(matrix, points - path_offset), closed) for points, closed in subpaths],
            "fill": fill is not None and fill[1] > 0 and any(closed for _, closed in subpaths),
            "stroke": stroke}


def rect_corners(obj: Mapping[str, Any]) -> np.ndarray:
    """The four corners (canvas px, (4, 2)) of a Rect's own edge, the middle of its outline."""
    width, height = _number(obj, "width", 0.0), _number(obj, "height", 0.0)
    corners = np.array([[-width, -height], [width, -height], [width, height], [-width, height]]) / 2
    return _apply(_object_matrix(obj), corners)


def _number(obj: Mapping[str, Any], key: str, default: float) -> float:
    value = obj.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(
            f"Canvas object {obj.get('type', '?')!r} has a bad {key!r}: {value!r}. "
            "Clear the canvas and draw again."
        )
    return float(value)


def _origin_fraction(value: Any) -> float:
    if isinstance(value, str):
        if value not in _ORIGIN_FRACTION:
            raise ValueError(f"Unknown Fabric origin {value!r}.")
        return _ORIGIN_FRACTION[value]
    return float(value) - 0.5


def _scale_skew_matrix(obj: Mapping[str, Any], with_flip: bool = True) -> np.ndarray:
    """Fabric's calcDimensionsMatrix: scale (with flips), then skewX, then skewY.

    Skew is kept because the canvas's edit toggle skews an object when its side handle is
    dragged with Shift held.
    """
    scale_x = _number(obj, "scaleX", 1.0)
    scale_y = _number(obj, "scaleY", 1.0)
    if with_flip and obj.get("flipX"):
        scale_x = -scale_x
    if with_flip and obj.get("flipY"):
        scale_y = -scale_y
    matrix = np.diag([scale_x, scale_y, 1.0])
    skew_x = _number(obj, "skewX", 0.0)
    skew_y = _number(obj, "skewY", 0.0)
    if skew_x:
        matrix = matrix @ np.array([[1, math.tan(math.radians(skew_x)), 0], [0, 1, 0], [0, 0, 1]])
    if skew_y:
        matrix = matrix @ np.array([[1, 0, 0], [math.tan(math.radians(skew_y)), 1, 0], [0, 0, 1]])
    return matrix


def _transformed_dimensions(obj: Mapping[str, Any]) -> tuple[float, float]:
    """Fabric's _getTransformedDimensions: the object's box size on the canvas, stroke included."""
    width = _number(obj, "width", 0.0)
    height = _number(obj, "height", 0.0)
    stroke_width = _number(obj, "strokeWidth", 1.0)
    if obj.get("strokeUniform"):
        inner_stroke, outer_stroke = 0.0, stroke_width
    else:
        inner_stroke, outer_stroke = stroke_width, 0.0
    width += inner_stroke
    height += inner_stroke
    if _number(obj, "skewX", 0.0) == 0 and _number(obj, "skewY", 0.0) == 0:
        size_x = width * _number(obj, "scaleX", 1.0)
        size_y = height * _number(obj, "scaleY", 1.0)
    else:
        matrix = _scale_skew_matrix(obj, with_flip=False)[:2, :2]
        corners = np.array([[-width, -height], [width, -height], [-width, height], [width, height]]) / 2
        moved = corners @ matrix.T
        size_x, size_y = np.ptp(moved, axis=0)
    return size_x + outer_stroke, size_y + outer_stroke


def _object_matrix(obj: Mapping[str, Any]) -> np.ndarray:
    """Fabric's calcOwnMatrix (3x3): object-local coordinates to canvas px."""
    left = _number(obj, "left", 0.0)
    top = _number(obj, "top", 0.0)
    angle = math.radians(_number(obj, "angle", 0.0))
    shift_x = -_origin_fraction(obj.get("originX", "left"))
    shift_y = -_origin_fraction(obj.get("originY", "top"))
    centre_x, centre_y = left, top
    if shift_x or shift_y:
        size_x, size_y = _transformed_dimensions(obj)
        offset_x, offset_y = shift_x * size_x, shift_y * size_y
        # The origin point is on the rotated box, so the offset to the centre rotates too.
        cos, sin = math.cos(angle), math.sin(angle)
        centre_x = left + offset_x * cos - offset_y * sin
        centre_y = top + offset_x * sin + offset_y * cos
    cos, sin = math.cos(angle), math.sin(angle)
    placement = np.array([[cos, -sin, centre_x], [sin, cos, centre_y], [0, 0, 1]])
    return placement @ _scale_skew_matrix(obj)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def _stroke_scale(matrix: np.ndarray) -> float:
    """How much the object's transform widens its stroke (exact for uniform scale)."""
    return math.sqrt(abs(float(np.linalg.det(matrix[:2, :2]))))


def _cubic_extrema_bounds(p0, p1, p2, p3) -> list[tuple[float, float]]:
    """Fabric's getBoundsOfCurve: end points plus axis extrema of a cubic Bezier."""
    points = [tuple(p0), tuple(p3)]
    ts: list[float] = []
    for axis in range(2):
        a0, a1, a2, a3 = p0[axis], p1[axis], p2[axis], p3[axis]
        b = 6 * a0 - 12 * a1 + 6 * a2
        a = -3 * a0 + 9 * a1 - 9 * a2 + 3 * a3
        c = 3 * a1 - 3 * a0
        if abs(a) < 1e-12:
            if abs(b) >= 1e-12:
                t = -c / b
                if 0 < t < 1:
                    ts.append(t)
            continue
        disc = b * b - 4 * c * a
        if disc < 0:
            continue
        root = math.sqrt(disc)
        for t in ((-b + root) / (2 * a), (-b - root) / (2 * a)):
            if 0 < t < 1:
                ts.append(t)
    for t in ts:
        points.append(tuple(_cubic_at(np.array([p0, p1, p2, p3], dtype=float), np.array([t]))[0]))
    return points


def _cubic_at(control: np.ndarray, t: np.ndarray) -> np.ndarray:
    t = t[:, None]
    u = 1 - t
    return (u**3) * control[0] + 3 * (u**2) * t * control[1] + 3 * u * (t**2) * control[2] + (t**3) * control[3]


def _quadratic_at(control: np.ndarray, t: np.ndarray) -> np.ndarray:
    t = t[:, None]
    u = 1 - t
    return (u**2) * control[0] + 2 * u * t * control[1] + (t**2) * control[2]


_PATH_ARGUMENTS = {"M": 2, "L": 2, "Q": 4, "C": 6, "Z": 0, "z": 0}


def _flatten_path(
    commands: Any, samples_per_unit: float
) -> tuple[list[tuple[np.ndarray, bool]], np.ndarray]:
    """Flatten Fabric path commands into polylines, and find Fabric's pathOffset.

    Returns ([(points (N, 2), closed), ...], path_offset). Fabric stores paths
    absolute with only M/L/Q/C/Z; its bounding box (whose centre is the
    pathOffset every point is drawn relative to) treats a Q as the cubic with
    both controls on the Q control, so that quirk is copied here.
    """
    if not isinstance(commands, list):
        raise ValueError("A canvas path has no command list; clear the canvas and draw again.")
    subpaths: list[tuple[np.ndarray, bool]] = []
    bound_points: list[tuple[float, float]] = []
    current = np.zeros(2)
    start = np.zeros(2)
    polyline: list[np.ndarray] = []

    def finish(closed: bool) -> None:
        if polyline:
            subpaths.append((np.vstack(polyline), closed))
        polyline.clear()

    for command in commands:
        if not isinstance(command, (list, tuple)) or not command or not isinstance(command[0], str):
            raise ValueError(f"Bad path command {command!r}; clear the canvas and draw again.")
        letter, args = command[0], command[1:]
        if letter not in _PATH_ARGUMENTS:
            raise ValueError(
                f"Path command {letter!r} is not supported (Fabric 7 exports absolute "
                "M/L/Q/C/Z only); clear the canvas and draw again."
            )
        if len(args) != _PATH_ARGUMENTS[letter] or not all(
            isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) for a in args
        ):
            raise ValueError(f"Bad path command {command!r}; clear the canvas and draw again.")
        values = np.array(args, dtype=float).reshape(-1, 2) if args else np.zeros((0, 2))
        if letter == "M":
            finish(False)
            current = values[0]
            start = values[0]
            polyline.append(current[None, :])
        elif letter in ("L", "Q", "C"):
            if not polyline:
                polyline.append(current[None, :])
            if letter == "L":
                bound_points += [tuple(start), tuple(values[0])]
                polyline.append(values[0][None, :])
            else:
                control = np.vstack([current, values])
                cubic = control if letter == "C" else (current, values[0], values[0], values[1])
                bound_points += _cubic_extrema_bounds(*cubic)
                length = float(np.sum(np.linalg.norm(np.diff(control, axis=0), axis=1)))
                steps = int(min(256, max(2, math.ceil(length * samples_per_unit))))
                curve_at = _cubic_at if letter == "C" else _quadratic_at
                polyline.append(curve_at(control, np.arange(1, steps + 1) / steps))
            current = values[-1]
        else:  # Z
            finish(True)
            current = start
    finish(False)
    if bound_points:
        bounds = np.array(bound_points, dtype=float)
        path_offset = (bounds.min(axis=0) + bounds.max(axis=0)) / 2
    else:
        path_offset = np.zeros(2)
    return subpaths, path_offset


def _positive_size(width: Any, height: Any) -> tuple[int, int]:
    try:
        width_int, height_int = int(width), int(height)
    except (TypeError, ValueError):
        raise ValueError(f"The photo size must be whole numbers, got {width!r}x{height!r}.") from None
    if width_int != width or height_int != height or width_int < 1 or height_int < 1:
        raise ValueError(f"The photo size must be whole numbers >= 1, got {width!r}x{height!r}.")
    return width_int, height_int


def _as_points(points: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    array = np.asarray(points, dtype=float)
    if array.ndim == 1 and array.shape[0] == 2:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"Points must be an (N, 2) array of (x, y); got shape {array.shape}.")
    return array


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    source_height, source_width = image.shape[:2]
    if (source_width, source_height) == (width, height):
        return image.copy()
    shrinking = width < source_width and height < source_height
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)
