"""Colour-splash compositing on drawn photos: exact foreground, grey background, soft edges."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from catseg.predict.compositing import (
    EFFECTS,
    SplashSettings,
    alpha_from_probability,
    composite,
    cover_resize,
    mask_from_alpha,
    overlay_mask,
)

HEIGHT, WIDTH = 120, 160


def random_photo(height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> np.ndarray:
    """Random colours everywhere, so a grey pixel can only come from the effect."""
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def ellipse_mask(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    cv2.ellipse(mask, (width // 2, height // 2), (width // 4, height // 3), 20, 0, 360, 255, -1)
    return mask


def distance_to_edge(mask: np.ndarray) -> np.ndarray:
    """Distance of every pixel centre to the mask boundary (exact Euclidean)."""
    hard = (mask > 0).astype(np.uint8)
    inside = cv2.distanceTransform(hard, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    outside = cv2.distanceTransform(1 - hard, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.where(hard > 0, inside, outside) - 0.5


def test_grey_background_is_grey_and_cat_is_untouched():
    photo, mask = random_photo(), ellipse_mask()
    alpha = alpha_from_probability(mask / 255.0, 0.5, 0)
    output = composite(photo, alpha, SplashSettings(effect="grey"))
    assert output.shape == photo.shape and output.dtype == np.uint8
    foreground, background = mask > 0, mask == 0
    assert np.array_equal(output[foreground], photo[foreground])
    red, green, blue = output[..., 0], output[..., 1], output[..., 2]
    assert np.array_equal(red[background], green[background])
    assert np.array_equal(green[background], blue[background])
    expected_grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    assert np.array_equal(red[background], expected_grey[background])
    # The photo has random colours, so the background really changed.
    assert not np.array_equal(output[background], photo[background])


def test_uint8_and_bool_masks_give_the_same_result_as_float_alpha():
    photo, mask = random_photo(), ellipse_mask()
    settings = SplashSettings(effect="grey")
    from_float = composite(photo, (mask / 255.0).astype(np.float32), settings)
    assert np.array_equal(composite(photo, mask, settings), from_float)
    assert np.array_equal(composite(photo, mask > 0, settings), from_float)


def test_hard_alpha_is_the_threshold():
    probability = np.linspace(0, 1, 101, dtype=np.float32).reshape(1, 101)
    alpha = alpha_from_probability(probability, 0.3, 0)
    assert alpha.dtype == np.float32
    assert np.array_equal(alpha[0], (probability[0] >= 0.3).astype(np.float32))


@pytest.mark.parametrize("feather_px", [1, 3, 8])
def test_feather_changes_only_pixels_near_the_edge(feather_px):
    photo, mask = random_photo(), ellipse_mask()
    probability = mask / 255.0
    hard_alpha = alpha_from_probability(probability, 0.5, 0)
    soft_alpha = alpha_from_probability(probability, 0.5, feather_px)
    assert soft_alpha.dtype == np.float32 and soft_alpha.shape == mask.shape
    assert soft_alpha.min() >= 0.0 and soft_alpha.max() <= 1.0
    distance = distance_to_edge(mask)
    alpha_changed = soft_alpha != hard_alpha
    assert alpha_changed.any()
    assert distance[alpha_changed].max() <= feather_px + 1
    # Far from the edge alpha stays exactly 0 or 1.
    far = distance > feather_px + 1
    assert np.array_equal(soft_alpha[far], hard_alpha[far])
    # The soft edge is centred on the hard one: cutting at 0.5 gives the hard mask back.
    assert np.array_equal(soft_alpha >= 0.5, hard_alpha == 1)

    settings_hard = SplashSettings(effect="grey")
    settings_soft = SplashSettings(effect="grey", feather_px=feather_px)
    hard_output = composite(photo, hard_alpha, settings_hard)
    soft_output = composite(photo, soft_alpha, settings_soft)
    pixel_changed = np.any(soft_output != hard_output, axis=2)
    assert pixel_changed.any()
    assert distance[pixel_changed].max() <= feather_px + 1
    # Where the soft alpha is still exactly 1 the photo is kept bit for bit.
    fully_inside = soft_alpha == 1
    assert np.array_equal(soft_output[fully_inside], photo[fully_inside])


def test_feather_ramp_is_monotonic_across_the_edge():
    probability = np.zeros((1, 60), dtype=np.float32)
    probability[0, 30:] = 1.0
    alpha = alpha_from_probability(probability, 0.5, 10)[0]
    assert np.all(np.diff(alpha) >= 0)
    assert alpha[0] == 0.0 and alpha[-1] == 1.0
    assert 0.0 < alpha[25] < 0.5 < alpha[34] < 1.0
    # The ramp is centred on the boundary between pixels 29 and 30: symmetric around 0.5.
    assert np.allclose(alpha[:30][::-1] + alpha[30:], 1.0, atol=1e-6)
    assert np.isclose(alpha[30], 0.5 + 0.5 / 20)


def test_soft_edge_blends_photo_and_grey_with_rounding():
    photo = random_photo(1, 4)
    alpha = np.array([[0.0, 0.25, 0.5, 1.0]], dtype=np.float32)
    output = composite(photo, alpha, SplashSettings(effect="grey"))
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)[:, :, None].astype(np.float64)
    expected = np.floor(photo * alpha[:, :, None] + grey * (1 - alpha[:, :, None]) + 0.5)
    assert np.abs(output.astype(np.float64) - expected).max() <= 0.5
    assert np.array_equal(output[0, 3], photo[0, 3])


def test_transparent_gives_rgba_with_mask_as_alpha():
    photo, mask = random_photo(), ellipse_mask()
    output = composite(photo, mask / 255.0, SplashSettings(effect="transparent"))
    assert output.shape == (HEIGHT, WIDTH, 4) and output.dtype == np.uint8
    assert np.array_equal(output[..., :3], photo)
    assert np.all(output[..., 3][mask > 0] == 255)
    assert np.all(output[..., 3][mask == 0] == 0)


def test_transparent_rounds_soft_alpha():
    photo = random_photo(2, 2)
    alpha = np.array([[0.0, 0.5], [0.2, 1.0]], dtype=np.float32)
    output = composite(photo, alpha, SplashSettings(effect="transparent"))
    assert output[..., 3].tolist() == [[0, 128], [51, 255]]


@pytest.mark.parametrize("effect", ["grey", "blur", "colour", "picture"])
@pytest.mark.parametrize("feather_px", [0, 4])
def test_every_effect_keeps_the_cat_exact(effect, feather_px):
    photo, mask = random_photo(), ellipse_mask()
    background = random_photo(50, 300, seed=7)
    settings = SplashSettings(effect=effect, feather_px=feather_px, colour=(10, 200, 30))
    alpha = alpha_from_probability(mask / 255.0, settings.threshold, settings.feather_px)
    output = composite(photo, alpha, settings, background=background)
    assert output.shape == photo.shape and output.dtype == np.uint8
    inside = alpha == 1
    assert inside.sum() > 1000
    assert np.array_equal(output[inside], photo[inside])
    outside = alpha == 0
    assert not np.array_equal(output[outside], photo[outside])


def test_colour_effect_paints_the_background():
    photo, mask = random_photo(), ellipse_mask()
    output = composite(photo, mask, SplashSettings(effect="colour", colour="#0a14ff"))
    assert np.all(output[mask == 0] == (10, 20, 255))


def test_blur_background_is_smooth_and_close_to_local_average():
    photo = np.zeros((200, 300, 3), dtype=np.uint8)
    photo[::2] = 255  # stripes: a strong blur must wash them out to mid grey
    mask = np.zeros((200, 300), dtype=np.uint8)
    output = composite(photo, mask, SplashSettings(effect="blur", blur_sigma=0.02))
    assert abs(float(output.mean()) - 127.5) < 3
    assert output.std() < 5


def test_picture_background_covers_without_distortion():
    # A tall background under a wide photo: scaled to cover, centre-cropped.
    background = np.zeros((400, 100, 3), dtype=np.uint8)
    background[:, :, 0] = (np.arange(400) % 256).astype(np.uint8)[:, None]
    background[:, 40:60, 1] = 255  # a centred vertical band must stay centred and keep its width ratio
    covered = cover_resize(background, 60, 200)
    assert covered.shape == (60, 200, 3)
    band_columns = np.flatnonzero(covered[30, :, 1] > 128)
    assert abs(band_columns.mean() - 99.5) < 2
    assert abs(len(band_columns) - 40) <= 2  # 20 px scaled by 2 -> 40 px
    # Vertically the same factor 2 applies, so only the middle 30 source rows (185..215) remain.
    assert abs(int(covered[0, 100, 0]) - 185) <= 2
    assert abs(int(covered[-1, 100, 0]) - 214) <= 2
    photo, mask = random_photo(60, 200), ellipse_mask(60, 200)
    output = composite(photo, mask, SplashSettings(effect="picture"), background=background)
    assert np.array_equal(output[mask == 0], covered[mask == 0])
    assert np.array_equal(output[mask > 0], photo[mask > 0])


def test_mask_from_alpha_and_overlay():
    mask = ellipse_mask()
    assert np.array_equal(mask_from_alpha(mask / 255.0), mask)
    jpeg_like = np.where(mask > 0, 200, 40).astype(np.uint8)
    assert np.array_equal(mask_from_alpha(jpeg_like), mask)
    photo = random_photo()
    overlay = overlay_mask(photo, mask, outline=False)
    assert overlay.shape == photo.shape
    assert np.array_equal(overlay[mask == 0], photo[mask == 0])
    expected = np.round(photo[mask > 0] * 0.55 + np.array((255, 0, 160)) * 0.45)
    assert np.abs(overlay[mask > 0].astype(int) - expected).max() <= 1


@pytest.mark.parametrize(
    "arguments",
    [
        {"threshold": 1.5},
        {"threshold": -0.1},
        {"effect": "sepia"},
        {"feather_px": -1},
        {"feather_px": 2.5},
        {"colour": (300, 0, 0)},
        {"colour": "#12345"},
        {"blur_sigma": 25},
    ],
)
def test_bad_settings_raise_value_error(arguments):
    with pytest.raises(ValueError):
        SplashSettings(**arguments)


def test_settings_are_frozen_and_normalised():
    settings = SplashSettings(colour="#FFFFFF")
    assert settings == SplashSettings()
    with pytest.raises(AttributeError):
        settings.effect = "blur"  # type: ignore[misc]


def test_bad_inputs_raise_value_error():
    photo, mask = random_photo(), ellipse_mask()
    with pytest.raises(ValueError, match="does not match"):
        composite(photo, mask[:-1], SplashSettings())
    with pytest.raises(ValueError, match="background picture"):
        composite(photo, mask, SplashSettings(effect="picture"))
    with pytest.raises(ValueError, match="RGB"):
        composite(photo[..., 0], mask, SplashSettings())
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        composite(photo, mask * 2.0, SplashSettings())
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        composite(photo, np.full(mask.shape, np.nan, dtype=np.float32), SplashSettings())
    with pytest.raises(ValueError):
        alpha_from_probability(mask / 255.0, 1.5, 0)
    with pytest.raises(ValueError):
        alpha_from_probability(mask / 255.0, 0.5, -2)
    with pytest.raises(ValueError, match="float"):
        alpha_from_probability(mask, 0.5, 0)  # 0..255 mask passed as probability


@pytest.mark.parametrize("effect", EFFECTS)
def test_empty_and_full_masks(effect):
    photo = random_photo()
    background = random_photo(10, 10, seed=3)
    for value in (0.0, 1.0):
        probability = np.full((HEIGHT, WIDTH), value, dtype=np.float32)
        alpha = alpha_from_probability(probability, 0.5, 5)
        assert np.all(alpha == value)
        output = composite(photo, alpha, SplashSettings(effect=effect, feather_px=5), background=background)
        if value == 1.0:
            assert np.array_equal(output[..., :3], photo)
