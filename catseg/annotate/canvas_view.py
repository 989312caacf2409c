"""How the photo is shown on the drawing canvas, and where the canvas's drawn objects lie.

The Annotate page shows a photo (or a zoomed part of it) on a streamlit-drawable-canvas
0.13 canvas, which is Fabric.js 7.4 and hands back the Fabric JSON of what was drawn.
CanvasView maps canvas pixels to photo pixels and back; where the drawn objects lie in
canvas pixels is ``catseg.annotate.fabric_shapes``.

Coordinates: "canvas px" and "photo px" are continuous, with pixel (i, j) covering
[i, i+1) x [j, j+1); that is the convention of both Fabric and cv2.resize, so no
half-pixel shift creeps in. Regions are half-open (x0 <= x < x1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from catseg.data.masks import cat_pixels

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
