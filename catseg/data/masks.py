"""Mask maths: which pixels are cat, overlap scores, and polygons to and from masks."""

from __future__ import annotations

import math

import cv2
import numpy as np


def cat_pixels(mask: np.ndarray, full_scale: float | None = None) -> np.ndarray:
    """Which pixels of a mask are cat, as a bool (H, W) array: the one rule for every mask in catseg.

    A pixel is cat when its value is at least half of the mask's full scale. Full scale is
    255 for an 8-bit mask (any value above 1) and 1 for bool masks, 0/1 masks and
    probabilities, so a 0/1 mask is never read as empty; pass `full_scale` when the caller
    knows it (a shrunken 0/255 mask of a tiny cat may hold nothing above 1). Cutting in the
    middle splits the grey edge pixels of JPEG masks evenly: 128..255 of an 8-bit mask is
    cat, 0..127 is background. A colour mask is read by its brightest channel, so a white
    or coloured cat on black works.
    """
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., :3].max(axis=2) if mask.shape[2] >= 3 else mask[..., 0]
    if mask.dtype == bool:
        return mask
    if full_scale is None:
        full_scale = 255 if mask.max(initial=0) > 1 else 1
    half = full_scale / 2
    # Whole numbers compare with a whole number, so an 8-bit mask is never copied to floats.
    return mask >= (math.ceil(half) if np.issubdtype(mask.dtype, np.integer) else half)


def binarise(mask: np.ndarray) -> np.ndarray:
    """A (H, W) uint8 0/255 mask from any mask, by the rule of `cat_pixels`."""
    return np.where(cat_pixels(mask), 255, 0).astype(np.uint8)


def mask_for_photo(mask: np.ndarray, width: int, height: int, name: str = "mask") -> np.ndarray:
    """`binarise(mask)` for a photo of width x height; ValueError naming `name` when the sizes differ."""
    mask = np.asarray(mask)
    if mask.shape[:2] != (height, width):
        raise ValueError(
            f"{name}: the mask is {mask.shape[1]}x{mask.shape[0]} but the photo is {width}x{height}."
        )
    return binarise(mask)


def iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Foreground intersection over union of two masks (any nonzero is foreground).

    Two empty masks agree perfectly, so they score 1.0.
    """
    predicted, truth = np.asarray(predicted) > 0, np.asarray(truth) > 0
    if predicted.shape != truth.shape:
        raise ValueError(f"Masks differ in size: {predicted.shape} and {truth.shape}.")
    union = np.count_nonzero(predicted | truth)
    if union == 0:
        return 1.0
    return np.count_nonzero(predicted & truth) / union


def dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient (F1 of the foreground) of two masks."""
    predicted, truth = np.asarray(predicted) > 0, np.asarray(truth) > 0
    total = np.count_nonzero(predicted) + np.count_nonzero(truth)
    if total == 0:
        return 1.0
    return 2 * np.count_nonzero(predicted & truth) / total


def polygons_to_mask(polygons: list[np.ndarray], width: int, height: int) -> np.ndarray:
    """Fill polygons given in normalised 0..1 coordinates into a (height, width) 0/255 mask.

    Several polygons (several cats, or a cat cut in parts) become one mask: the union of
    their fills, so where two cats overlap the overlap stays cat.
    """
    mask = np.zeros((height, width), dtype=np.uint8)
    # cv2 fills with integer vertices; 4 bits of sub-pixel precision keep edges in place.
    shift = 4
    scaled = []
    for polygon in polygons:
        points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        if len(points) < 3:
            continue
        # Normalised coordinates address pixel edges (0..W); cv2 addresses pixel centres.
        pixels = points * [width, height] - 0.5
        scaled.append(np.round(pixels * (1 << shift)).astype(np.int32))
    # One fill per polygon: a single fillPoly over several uses the even-odd rule, which
    # leaves the overlap of two polygons empty.
    for points in scaled:
        cv2.fillPoly(mask, [points], 255, lineType=cv2.LINE_8, shift=shift)
    return mask


def _contour_points(contour: np.ndarray) -> np.ndarray:
    """A contour's pixel centres as (N, 2) floats; single pixels and thin lines get their corners."""
    points = contour.reshape(-1, 2).astype(np.float64)
    if len(points) < 3:
        x, y, w, h = cv2.boundingRect(contour)
        points = np.array([[x, y], [x + w - 1, y], [x + w - 1, y + h - 1], [x, y + h - 1]], dtype=np.float64)
    return points


def _with_hole(outer: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """One polygon that walks `outer`, steps into `hole`, round it and back (a keyhole).

    Filled as one polygon, the hole's loop stays empty: YOLO polygons can carry holes this way.
    """
    distances = ((outer[:, None, :] - hole[None, :, :]) ** 2).sum(axis=2)
    outer_index, hole_index = np.unravel_index(np.argmin(distances), distances.shape)
    return np.concatenate([outer[: outer_index + 1], hole[hole_index:], hole[: hole_index + 1], outer[outer_index:]])


def mask_to_polygons(mask: np.ndarray, min_area: float = 4.0) -> list[np.ndarray]:
    """A mask's shapes as normalised (N, 2) polygons, one per connected part, holes included.

    Each hole is joined to the outline around it by a zero-width cut, so filling the polygon
    (``polygons_to_mask``) leaves the hole empty; shapes come back within a pixel along
    their edges.
    """
    binary = (np.asarray(mask) > 0).astype(np.uint8)
    height, width = binary.shape
    contours, hierarchy = cv2.findContours(binary, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if hierarchy is None:
        return []
    links = hierarchy[0]  # per contour: next, previous, first child, parent
    polygons = []
    for index, contour in enumerate(contours):
        if links[index][3] >= 0:
            continue  # a hole: joined to the outline around it below
        if cv2.contourArea(contour) < min_area and len(contour) < 3:
            continue
        points = _contour_points(contour)
        child = links[index][2]
        while child >= 0:
            if len(contours[child]) >= 3:
                points = _with_hole(points, _contour_points(contours[child]))
            child = links[child][0]
        # Pixel centres back to normalised edge coordinates (inverse of polygons_to_mask).
        polygons.append(np.clip((points + 0.5) / [width, height], 0.0, 1.0))
    return polygons
