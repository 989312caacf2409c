"""Where the canvas's drawn objects lie: Fabric.js 7.4 geometry of the three kinds the Annotate tools draw.

A Path (the brush and eraser), a Polygon (the polygon tools) and a Rect (the box tool), each
possibly moved, scaled, rotated, flipped or skewed afterwards with the canvas's edit toggle, as
Fabric serialises them; ``object_outline`` and ``rect_corners`` reproduce Fabric's own geometry
in canvas pixels (``catseg.annotate.canvas_view.CanvasView`` maps those to photo pixels).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from catseg.annotate.colours import parse_css_colour

_ORIGIN_FRACTION = {"left": -0.5, "top": -0.5, "center": 0.0, "right": 0.5, "bottom": 0.5}


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
