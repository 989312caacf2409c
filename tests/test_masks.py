"""The one mask rule (catseg.data.masks.cat_pixels) and the masks made with it."""

import numpy as np
import pytest

from catseg.data.masks import binarise, cat_pixels, mask_for_photo


def test_a_pixel_is_cat_from_half_of_full_scale() -> None:
    assert cat_pixels(np.array([[0, 127, 128, 255]], np.uint8)).tolist() == [[False, False, True, True]]
    assert cat_pixels(np.array([[0, 1]], np.uint8)).tolist() == [[False, True]], "a 0/1 mask is not empty"
    assert cat_pixels(np.array([[0.49, 0.5]], np.float32)).tolist() == [[False, True]]
    assert cat_pixels(np.array([[False, True]])).tolist() == [[False, True]]
    colour = np.zeros((1, 2, 3), np.uint8)
    colour[0, 1] = (200, 0, 0)  # a red cat on black: the brightest channel counts
    assert cat_pixels(colour).tolist() == [[False, True]]
    # A shrunken 0/255 mask of a tiny cat may hold only small values; its known scale keeps them background.
    assert not cat_pixels(np.array([[0, 1]], np.uint8), full_scale=255).any()


def test_binarise_and_mask_for_photo_give_0_255_at_the_photo_size() -> None:
    assert binarise(np.array([[10, 200]], np.uint8)).tolist() == [[0, 255]]
    assert mask_for_photo(np.array([[0.2, 0.9, 1.0]]), 3, 1).dtype == np.uint8
    with pytest.raises(ValueError, match="cat.png: the mask is 2x1 but the photo is 3x1"):
        mask_for_photo(np.zeros((1, 2)), 3, 1, "cat.png")
