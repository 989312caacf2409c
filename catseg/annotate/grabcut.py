"""GrabCut from a box: cut the cat out of the photo given a rectangle drawn around it."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from catseg.annotate.canvas_edits import fill_holes, largest_components


def cut_out_boxes(photo: np.ndarray, mask: np.ndarray, boxes: Sequence[Sequence[int]]) -> np.ndarray:
    """mask with the inside of each box (x0, y0, x1, y1, photo px) replaced by grabcut_from_box's answer.

    A box says "the cat is in here, decide again", so stale paint inside it goes while
    the mask outside it (another cat, earlier fixes) stays. Returns uint8 0/255.
    """
    mask = np.array(mask, dtype=np.uint8)
    for x0, y0, x1, y1 in boxes:
        cut = grabcut_from_box(photo, (x0, y0, x1, y1))
        mask[y0:y1, x0:x1] = cut[y0:y1, x0:x1]
    return mask


def grabcut_from_box(
    photo: np.ndarray,
    box: Sequence[float],
    iterations: int = 5,
    max_side: int = 384,
    clean: bool = True,
    ring_fraction: float = 0.15,
) -> np.ndarray:
    """Segment the object inside box (x0, y0, x1, y1, photo px) with GrabCut.

    Runs on a copy at most max_side px on its long side, for speed, and
    returns a full-resolution uint8 0/255 mask. clean=True fills holes and
    keeps the main part (plus parts at least a tenth as big).

    Besides "outside the box is background" (plain GC_INIT_WITH_RECT), two
    soft priors help when the box is tight or fills the photo (where plain
    GrabCut has no background to learn from and keeps the whole box):
    a ring ring_fraction of the box deep along its inside edge starts as
    probable background, and a small ellipse at its centre as sure cat.

    The cut is then re-decided per pixel from GrabCut's colour models plus a
    "cat is centred in its box" prior, edge-smoothed with a guided filter
    (see _box_posterior); bench/grabcut_seed.py measures both steps on the seed cats.
    """
    photo = _check_photo(photo)
    height, width = photo.shape[:2]
    if len(box) != 4 or not all(isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(v) for v in box):
        raise ValueError(f"The box must be four numbers (x0, y0, x1, y1); got {box!r}.")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}.")
    if not 0 <= ring_fraction < 0.5:
        raise ValueError(f"ring_fraction must be in [0, 0.5), got {ring_fraction}.")
    x0, y0, x1, y1 = (float(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"The box {tuple(box)} is empty; drag a rectangle around the cat.")
    cx0, cy0 = max(0.0, x0), max(0.0, y0)
    cx1, cy1 = min(float(width), x1), min(float(height), y1)
    if cx1 - cx0 < 2 or cy1 - cy0 < 2:
        raise ValueError(
            f"The box {tuple(box)} is (almost) outside the {width}x{height} photo; "
            "draw it around the cat."
        )
    small, factor = _downscale(photo, max_side)
    small_height, small_width = small.shape[:2]
    sx0 = min(max(0, math.floor(cx0 * factor)), small_width - 1)
    sy0 = min(max(0, math.floor(cy0 * factor)), small_height - 1)
    sx1 = max(min(small_width, math.ceil(cx1 * factor)), sx0 + 1)
    sy1 = max(min(small_height, math.ceil(cy1 * factor)), sy0 + 1)
    box_width, box_height = sx1 - sx0, sy1 - sy0
    if box_width < 4 or box_height < 4:
        raise ValueError(f"The box {tuple(box)} is too small; draw it around the whole cat.")
    grabcut_mask = np.full((small_height, small_width), cv2.GC_BGD, np.uint8)
    grabcut_mask[sy0:sy1, sx0:sx1] = cv2.GC_PR_BGD
    ring_x = max(1, round(ring_fraction * box_width)) if ring_fraction > 0 else 0
    ring_y = max(1, round(ring_fraction * box_height)) if ring_fraction > 0 else 0
    grabcut_mask[sy0 + ring_y:sy1 - ring_y, sx0 + ring_x:sx1 - ring_x] = cv2.GC_PR_FGD
    centre = ((sx0 + sx1) // 2, (sy0 + sy1) // 2)
    cv2.ellipse(grabcut_mask, centre, (max(1, box_width // 8), max(1, box_height // 8)),
                0, 0, 360, int(cv2.GC_FGD), -1)
    background_model = np.zeros((1, 65), np.float64)
    foreground_model = np.zeros((1, 65), np.float64)
    # Fixed seed: the same box gives the same mask on every rerun of the page.
    cv2.setRNGSeed(0)
    cv2.grabCut(small, grabcut_mask, None, background_model, foreground_model,
                int(iterations), cv2.GC_INIT_WITH_MASK)
    posterior = _box_posterior(small, grabcut_mask, background_model, foreground_model,
                               (sx0, sy0, sx1, sy1))
    if posterior.shape != (height, width):
        posterior = cv2.resize(posterior, (width, height), interpolation=cv2.INTER_LINEAR)
    foreground = posterior >= 0.5
    # The upscale can bleed a fraction of a pixel; nothing outside the box is the object.
    inside = np.zeros((height, width), bool)
    inside[math.floor(cy0):math.ceil(cy1), math.floor(cx0):math.ceil(cx1)] = True
    foreground &= inside
    result = np.where(foreground, 255, 0).astype(np.uint8)
    if clean and foreground.any():
        result = fill_holes(largest_components(result, keep=1, min_fraction=0.1))
    return result


def _check_photo(photo: np.ndarray) -> np.ndarray:
    photo = np.asarray(photo)
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise ValueError(
            f"GrabCut needs an RGB uint8 photo (H, W, 3); got {photo.dtype} {photo.shape}."
        )
    if min(photo.shape[:2]) < 4:
        raise ValueError(f"The photo ({photo.shape[1]}x{photo.shape[0]}) is too small for GrabCut.")
    return photo


def _downscale(photo: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    if max_side < 16:
        raise ValueError(f"max_side must be at least 16 px, got {max_side}.")
    height, width = photo.shape[:2]
    factor = min(1.0, max_side / max(height, width))
    if factor >= 1.0:
        return photo, 1.0
    small = cv2.resize(photo, (max(1, round(width * factor)), max(1, round(height * factor))),
                       interpolation=cv2.INTER_AREA)
    return small, factor


def _gmm_log_likelihood(model: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """log p(colour) under one of cv2.grabCut's 5-component colour GMMs, per pixel.

    model is the (1, 65) array grabCut fills: 5 weights, 5 RGB means, 5 3x3
    covariances. pixels is (N, 3) float64.
    """
    values = np.asarray(model, np.float64).ravel()
    components = 5
    weights = values[:components]
    means = values[components:4 * components].reshape(components, 3)
    covariances = values[4 * components:].reshape(components, 3, 3)
    terms = np.full((components, pixels.shape[0]), -np.inf)
    for k in range(components):
        if weights[k] <= 0:
            continue
        # The same small diagonal load grabCut adds to a singular covariance.
        covariance = covariances[k] + np.eye(3) * 0.01
        _, log_det = np.linalg.slogdet(covariance)
        offset = pixels - means[k]
        distance = np.einsum("ni,ij,nj->n", offset, np.linalg.inv(covariance), offset)
        terms[k] = math.log(weights[k]) - 0.5 * log_det - 0.5 * distance
    peak = terms.max(axis=0)
    peak[~np.isfinite(peak)] = 0.0
    return peak + np.log(np.exp(terms - peak).sum(axis=0) + 1e-300)


def _guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter (grey guide), from box filters: smooths source
    but keeps the guide's edges."""
    size = (2 * radius + 1, 2 * radius + 1)
    mean_guide = cv2.boxFilter(guide, -1, size)
    mean_source = cv2.boxFilter(source, -1, size)
    covariance = cv2.boxFilter(guide * source, -1, size) - mean_guide * mean_source
    variance = cv2.boxFilter(guide * guide, -1, size) - mean_guide * mean_guide
    slope = covariance / (variance + eps)
    intercept = mean_source - slope * mean_guide
    return cv2.boxFilter(slope, -1, size) * guide + cv2.boxFilter(intercept, -1, size)


def _box_posterior(
    small: np.ndarray,
    grabcut_mask: np.ndarray,
    background_model: np.ndarray,
    foreground_model: np.ndarray,
    box: tuple[int, int, int, int],
) -> np.ndarray:
    """P(cat) per pixel of small, float32: GrabCut's colour models plus a
    "the cat is centred in its box" prior, smoothed along the photo's edges.

    GrabCut's own cut uses colour only, so when the box leaves little
    background (a cat filling the frame) its foreground model soaks up the
    floor or the blanket and the cut keeps most of the box. Here the colour
    log-likelihood ratio is added to a prior that is even at the ellipse
    inscribed in the box and falls off outside it; colours the models cannot
    tell apart then go to the side the position favours, while clearly
    cat-coloured (or background-coloured) pixels keep their label. A guided
    filter (grey photo as guide) replaces the graph cut's smoothing.
    """
    small_height, small_width = small.shape[:2]
    pixels = small.reshape(-1, 3).astype(np.float64)
    ratio = (_gmm_log_likelihood(foreground_model, pixels)
             - _gmm_log_likelihood(background_model, pixels)).reshape(small_height, small_width)
    ratio = np.clip(ratio, -8.0, 8.0)
    sx0, sy0, sx1, sy1 = box
    ys, xs = np.mgrid[0:small_height, 0:small_width].astype(np.float64) + 0.5
    u = (xs - (sx0 + sx1) / 2) / ((sx1 - sx0) / 2)
    v = (ys - (sy0 + sy1) / 2) / ((sy1 - sy0) / 2)
    logit = ratio + 4.0 * (1.0 - np.sqrt(u * u + v * v))
    posterior = (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
    posterior[grabcut_mask == cv2.GC_FGD] = 1.0
    posterior[grabcut_mask == cv2.GC_BGD] = 0.0
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    radius = max(2, round(0.02 * max(small_height, small_width)))
    return _guided_filter(grey, posterior, radius, 1e-3)

