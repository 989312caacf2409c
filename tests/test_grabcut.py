"""Tests for catseg.annotate.grabcut: cutting the cat out of a synthetic photo from a box around it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from catseg.annotate.grabcut import cut_out_boxes, grabcut_from_box
from catseg.data.masks import iou


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


def box_around(truth, margin):
    ys, xs = np.nonzero(truth)
    return (xs.min() - margin, ys.min() - margin, xs.max() + margin + 1, ys.max() + margin + 1)


def test_grabcut_from_box_finds_the_ellipse():
    photo, truth = synthetic_cat_photo()
    box = box_around(truth, 8)
    mask = grabcut_from_box(photo, box, iterations=5, max_side=512)
    assert mask.shape == truth.shape and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 255}
    assert iou(mask, truth) > 0.8
    # Downscaled run still lines up at full resolution (no shift from the resize).
    small = grabcut_from_box(photo, box, iterations=5, max_side=160)
    assert iou(small, truth) > 0.8


def test_cut_out_boxes_replaces_only_the_inside_of_each_box():
    photo, truth = synthetic_cat_photo()
    x0, y0, x1, y1 = box_around(truth, 6)
    mask = np.zeros(truth.shape, np.uint8)
    mask[0:10, 0:10] = 255  # outside the box: kept
    mask[y0 + 2:y0 + 6, x0 + 2:x0 + 6] = 255  # stale paint inside the box: decided again
    cut = cut_out_boxes(photo, mask, [(x0, y0, x1, y1)])
    assert cut[0:10, 0:10].min() == 255
    assert np.array_equal(cut[y0:y1, x0:x1], grabcut_from_box(photo, (x0, y0, x1, y1))[y0:y1, x0:x1])
    assert mask[y0 + 3, x0 + 3] == 255 and cut[y0 + 3, x0 + 3] == 0, "the input mask is left alone"
    assert np.array_equal(cut_out_boxes(photo, mask, []), mask)


def test_bad_boxes_raise_value_error():
    photo, _ = synthetic_cat_photo()
    with pytest.raises(ValueError, match="empty"):
        grabcut_from_box(photo, (50, 50, 50, 80))
    with pytest.raises(ValueError, match="outside"):
        grabcut_from_box(photo, (1000, 1000, 1200, 1300))
    with pytest.raises(ValueError):
        grabcut_from_box(photo[..., 0], (10, 10, 100, 100))
    with pytest.raises(ValueError):
        grabcut_from_box(photo, (10, 10, 100))
