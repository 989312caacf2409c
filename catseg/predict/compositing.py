"""Colour-splash compositing: keep the cat, change the background.

Pure numpy + OpenCV so that it runs anywhere (pages, CLI, tests) without
TensorFlow. Every function works on RGB uint8 photos of shape (H, W, 3).

Guarantees the pages rely on:

* where alpha == 1 the output pixel is the input photo pixel, bit for bit;
* for the "grey" effect, where alpha == 0 the output has R == G == B;
* blending in float happens only where 0 < alpha < 1 (the feathered edge), so even
  a large phone photo composites quickly enough for a slider.
"""

from __future__ import annotations

import numbers
from typing import Any
from dataclasses import dataclass

import cv2
import numpy as np

from catseg.annotate.colours import parse_css_colour
from catseg.data.masks import binarise, cat_pixels

EFFECTS = ("grey", "blur", "colour", "picture", "transparent")

# The downscaled copy used for the blur effect has its blur sigma at about this
# many pixels: large enough that bilinear upscaling shows no blockiness, small
# enough that the Gaussian stays cheap.
_WORKING_BLUR_SIGMA_PX = 4.0


def parse_colour(colour: tuple[int, int, int] | list[int] | str) -> tuple[int, int, int]:
    """Return an (R, G, B) tuple of ints from a tuple/list or an opaque colour string such as '#rrggbb'."""
    if isinstance(colour, str):
        parsed = parse_css_colour(colour)
        if parsed is None or parsed[1] < 1:
            raise ValueError(f"colour {colour!r} is not a '#rrggbb' hex colour")
        colour = parsed[0]
    try:
        values = tuple(colour)
    except TypeError:
        raise ValueError(f"colour must be (R, G, B) or '#rrggbb', got {colour!r}") from None
    if len(values) != 3 or not all(
        isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 <= value <= 255
        for value in values
    ):
        raise ValueError(f"colour must be three integers 0..255 (R, G, B), got {colour!r}")
    return (int(values[0]), int(values[1]), int(values[2]))


def check_threshold(threshold: Any) -> float:
    """The threshold as a float; ValueError unless it is a number between 0 and 1 (the one wording of it)."""
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise ValueError(f"threshold must be a number between 0 and 1, got {threshold!r}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    return float(threshold)


def check_feather(feather_px: Any) -> int:
    """The soft edge's width as an int; ValueError unless it is a whole number of pixels, 0 or more."""
    if isinstance(feather_px, bool) or not isinstance(feather_px, numbers.Integral):
        raise ValueError(f"feather_px must be a whole number of pixels, got {feather_px!r}")
    if feather_px < 0:
        raise ValueError(f"feather_px must be 0 (hard edge) or more, got {feather_px}")
    return int(feather_px)


@dataclass(frozen=True)
class SplashSettings:
    """How to turn a photo plus a cat probability map into a picture.

    effect: one of EFFECTS.
    threshold: probability at or above which a pixel counts as cat (0..1).
    feather_px: width in pixels of the soft edge on each side of the mask
        boundary; 0 gives a hard edge.
    colour: background colour for the "colour" effect, (R, G, B) or '#rrggbb'
        (stored as an (R, G, B) tuple).
    blur_sigma: Gaussian sigma of the "blur" effect as a fraction of the
        photo's longer side (0.015 -> 60 px on a 4000 px photo), so the look
        does not depend on the photo's resolution.
    """

    effect: str = "grey"
    threshold: float = 0.5
    feather_px: int = 0
    colour: tuple[int, int, int] = (255, 255, 255)
    blur_sigma: float = 0.015

    def __post_init__(self) -> None:
        if self.effect not in EFFECTS:
            raise ValueError(f"unknown effect {self.effect!r}; choose one of {', '.join(EFFECTS)}")
        check_threshold(self.threshold)
        check_feather(self.feather_px)
        if isinstance(self.blur_sigma, bool) or not isinstance(self.blur_sigma, numbers.Real):
            raise ValueError(f"blur_sigma must be a number, got {self.blur_sigma!r}")
        if not 0.0 < float(self.blur_sigma) <= 0.2:
            raise ValueError(
                "blur_sigma is a fraction of the photo's longer side and must be in (0, 0.2] "
                f"(e.g. 0.015), got {self.blur_sigma}"
            )
        # Normalise so equal settings compare/hash equal (e.g. for caching).
        object.__setattr__(self, "colour", parse_colour(self.colour))
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "feather_px", int(self.feather_px))
        object.__setattr__(self, "blur_sigma", float(self.blur_sigma))


def _check_photo(photo: np.ndarray) -> None:
    if not isinstance(photo, np.ndarray):
        raise ValueError(f"photo must be a numpy array, got {type(photo).__name__}")
    if photo.ndim != 3 or photo.shape[2] != 3:
        raise ValueError(
            f"photo must be an RGB image of shape (H, W, 3), got shape {photo.shape}; "
            "convert greyscale/RGBA images to RGB first"
        )
    if photo.dtype != np.uint8:
        raise ValueError(f"photo must be uint8 (0..255), got dtype {photo.dtype}")
    if photo.shape[0] == 0 or photo.shape[1] == 0:
        raise ValueError("photo is empty (zero width or height)")


def _as_alpha(alpha: np.ndarray, photo_shape: tuple[int, ...]) -> np.ndarray:
    """Validate alpha and return it as float32 (H, W) or uint8 (H, W) (0..255)."""
    if not isinstance(alpha, np.ndarray):
        raise ValueError(f"alpha must be a numpy array, got {type(alpha).__name__}")
    if alpha.ndim == 3 and alpha.shape[2] == 1:
        alpha = alpha[:, :, 0]
    if alpha.shape != tuple(photo_shape[:2]):
        raise ValueError(
            f"mask/alpha shape {alpha.shape} does not match the photo size {tuple(photo_shape[:2])}; "
            "resize the mask to the photo first"
        )
    if alpha.dtype == np.bool_:
        return alpha.view(np.uint8) * np.uint8(255)
    if alpha.dtype == np.uint8:
        return alpha
    if not np.issubdtype(alpha.dtype, np.floating):
        raise ValueError(f"alpha must be float in [0, 1] or a uint8 0/255 mask, got dtype {alpha.dtype}")
    alpha = alpha.astype(np.float32, copy=False)
    lowest, highest = float(alpha.min()), float(alpha.max())
    # Written this way round so NaN fails the check too.
    if not (lowest >= 0.0 and highest <= 1.0):
        raise ValueError(f"alpha must lie in [0, 1] (no NaN), got values from {lowest} to {highest}")
    return alpha


def _alpha_masks(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (foreground uint8 0/1 mask, boolean mask of partial pixels)."""
    full = np.uint8(255) if alpha.dtype == np.uint8 else np.float32(1.0)
    foreground = alpha >= full
    partial = (alpha > 0) & ~foreground
    return foreground.view(np.uint8), partial


def _alpha_as_float(values: np.ndarray) -> np.ndarray:
    if values.dtype == np.uint8:
        return values.astype(np.float32) / np.float32(255.0)
    return values.astype(np.float32, copy=False)


def mask_from_alpha(alpha: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Return a uint8 0/255 mask (for saving as PNG) from float alpha/probability cut at `threshold`.

    uint8 input is a mask already (e.g. a JPEG mask): cut by the one mask rule (``catseg.data.masks.cat_pixels``).
    """
    if not isinstance(alpha, np.ndarray) or alpha.ndim != 2:
        raise ValueError("alpha must be a 2-D numpy array (H, W)")
    if alpha.dtype == np.uint8:
        return binarise(alpha)
    return np.where(alpha >= threshold, np.uint8(255), np.uint8(0))


def alpha_from_probability(probability: np.ndarray, threshold: float = 0.5, feather_px: int = 0) -> np.ndarray:
    """Turn a cat probability map (H, W) into an alpha matte (H, W) float32.

    The hard mask is probability >= threshold. With feather_px > 0, alpha ramps
    linearly across a band of feather_px on each side of the hard mask's edge;
    pixels farther than feather_px from the edge stay exactly 0 or 1, and
    thresholding the result at 0.5 gives back the hard mask.
    """
    if not isinstance(probability, np.ndarray):
        raise ValueError(f"probability must be a numpy array, got {type(probability).__name__}")
    if probability.ndim == 3 and probability.shape[2] == 1:
        probability = probability[:, :, 0]
    if probability.ndim != 2 or probability.size == 0:
        raise ValueError(f"probability must be a non-empty (H, W) array, got shape {probability.shape}")
    if not (np.issubdtype(probability.dtype, np.floating) or probability.dtype == np.bool_):
        raise ValueError(
            f"probability must be float in [0, 1], got dtype {probability.dtype}; "
            "divide a 0..255 mask by 255 first"
        )
    threshold, feather_px = check_threshold(threshold), check_feather(feather_px)
    hard = (probability >= threshold).view(np.uint8)
    if feather_px == 0:
        return hard.astype(np.float32)
    # Distances from each pixel centre to the nearest pixel on the other side;
    # subtracting half a pixel measures to the boundary between the two pixels.
    # The 5x5 mask is much faster than the precise one and accurate to a few
    # percent, which is invisible in a soft edge.
    inside = cv2.distanceTransform(hard, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(np.uint8(1) - hard, cv2.DIST_L2, 5)
    signed = np.where(hard.view(np.bool_), inside - 0.5, 0.5 - outside)
    alpha = signed * np.float32(0.5 / feather_px) + np.float32(0.5)
    np.clip(alpha, 0.0, 1.0, out=alpha)
    return alpha.astype(np.float32, copy=False)


def cover_resize(picture: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale picture to cover (height, width) without distortion, centre-cropping the overflow."""
    if not isinstance(picture, np.ndarray) or picture.ndim not in (2, 3) or picture.size == 0:
        raise ValueError("background picture must be a non-empty image array")
    if picture.ndim == 2:
        picture = cv2.cvtColor(picture, cv2.COLOR_GRAY2RGB)
    elif picture.shape[2] == 4:
        picture = np.ascontiguousarray(picture[:, :, :3])
    elif picture.shape[2] != 3:
        raise ValueError(f"background picture must be RGB (h, w, 3), got shape {picture.shape}")
    if picture.dtype != np.uint8:
        raise ValueError(f"background picture must be uint8, got dtype {picture.dtype}")
    source_height, source_width = picture.shape[:2]
    scale = max(height / source_height, width / source_width)
    # Round up so the scaled picture always covers the target; crop the rest.
    scaled_height = max(height, int(np.ceil(source_height * scale - 1e-6)))
    scaled_width = max(width, int(np.ceil(source_width * scale - 1e-6)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(picture, (scaled_width, scaled_height), interpolation=interpolation)
    top = (scaled_height - height) // 2
    left = (scaled_width - width) // 2
    return np.ascontiguousarray(scaled[top : top + height, left : left + width])


def _shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Downscale to size (width, height) with anti-aliasing, fast on big photos.

    cv2.INTER_AREA alone is slow on large photos at non-integer factors; halving
    with pyrDown first (a proper low-pass) and finishing with INTER_AREA costs
    a fraction of that.
    """
    width, height = size
    while image.shape[1] >= 2 * width and image.shape[0] >= 2 * height:
        image = cv2.pyrDown(image)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _blurred_background(photo: np.ndarray, alpha: np.ndarray, sigma_fraction: float) -> np.ndarray:
    """Strong Gaussian blur of the background, computed on a downscaled copy.

    The blur is normalised by background weight (1 - alpha) so the cat's own
    colours do not smear into the background as a halo around it.
    """
    height, width = photo.shape[:2]
    sigma_px = sigma_fraction * max(height, width)
    factor = max(1.0, sigma_px / _WORKING_BLUR_SIGMA_PX)
    small_size = (max(1, round(width / factor)), max(1, round(height / factor)))
    small_photo = _shrink(photo, small_size).astype(np.float32)
    background_weight = 1.0 - _shrink(_alpha_as_float(alpha), small_size)
    small_sigma = sigma_px / factor
    weighted = cv2.GaussianBlur(small_photo * background_weight[:, :, None], (0, 0), small_sigma)
    weight = cv2.GaussianBlur(background_weight, (0, 0), small_sigma)
    plain = cv2.GaussianBlur(small_photo, (0, 0), small_sigma)
    # Deep inside the cat there is no background nearby; fall back to the plain blur.
    enough = weight > 1e-3
    blurred = np.where(enough[:, :, None], weighted / np.maximum(weight, 1e-3)[:, :, None], plain)
    blurred = np.clip(blurred + 0.5, 0, 255).astype(np.uint8)
    return cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR)


def _make_background(
    photo: np.ndarray, alpha: np.ndarray, settings: SplashSettings, background: np.ndarray | None
) -> np.ndarray:
    height, width = photo.shape[:2]
    if settings.effect == "grey":
        grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    if settings.effect == "blur":
        return _blurred_background(photo, alpha, settings.blur_sigma)
    if settings.effect == "colour":
        # cv2.merge of flat planes is several times faster than np.full with an RGB tuple.
        return cv2.merge([np.full((height, width), value, dtype=np.uint8) for value in settings.colour])
    if settings.effect == "picture":
        if background is None:
            raise ValueError("the 'picture' effect needs a background picture; pass background=...")
        return cover_resize(background, height, width)
    raise ValueError(f"unknown effect {settings.effect!r}")  # pragma: no cover - settings validate


def composite(
    photo: np.ndarray,
    alpha: np.ndarray,
    settings: SplashSettings,
    background: np.ndarray | None = None,
) -> np.ndarray:
    """Make the colour-splash picture.

    photo: (H, W, 3) uint8 RGB. alpha: (H, W) float32 in [0, 1], or a uint8
    0/255 mask (bool also accepted). background: RGB picture for the
    "picture" effect (any size; it is scaled to cover and centre-cropped).
    Returns uint8 (H, W, 3) RGB, or (H, W, 4) RGBA for "transparent".
    """
    _check_photo(photo)
    if not isinstance(settings, SplashSettings):
        raise ValueError("settings must be a SplashSettings")
    # OpenCV needs contiguous memory (a view like photo[:, :, ::-1] is not).
    photo = np.ascontiguousarray(photo)
    alpha = _as_alpha(alpha, photo.shape)

    if settings.effect == "transparent":
        if alpha.dtype == np.uint8:
            alpha_channel = alpha
        else:
            alpha_channel = cv2.convertScaleAbs(alpha, alpha=255.0)  # rounds and saturates
        rgba = cv2.cvtColor(photo, cv2.COLOR_RGB2RGBA)
        rgba[:, :, 3] = alpha_channel
        return rgba

    output = _make_background(photo, alpha, settings, background)
    foreground, partial = _alpha_masks(alpha)
    # np.flatnonzero is an order of magnitude faster than np.nonzero's row/column pair on big frames.
    edge_indices = np.flatnonzero(partial)
    if edge_indices.size:
        # Blend in float only on the soft edge; everything else is an exact copy.
        flat_output = output.reshape(-1, 3)
        weights = _alpha_as_float(alpha.reshape(-1)[edge_indices])[:, None]
        mixed = photo.reshape(-1, 3)[edge_indices] * weights + flat_output[edge_indices] * (1.0 - weights)
        flat_output[edge_indices] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    # cv2.copyTo writes in place into `output`, far faster than np.copyto(where=...).
    cv2.copyTo(photo, foreground, output)
    return output


def overlay_mask(
    photo: np.ndarray,
    mask: np.ndarray,
    colour: tuple[int, int, int] | str = (255, 0, 160),
    opacity: float = 0.45,
    outline: bool = True,
) -> np.ndarray:
    """Tint the masked area of a photo so a mask can be checked by eye.

    mask: bool, uint8 or float probability, read by the one mask rule
    (``catseg.data.masks.cat_pixels``: JPEG masks work). With outline=True the mask edge
    is drawn at full colour so thin misses are visible too. Returns (H, W, 3) uint8 RGB.
    """
    _check_photo(photo)
    photo = np.ascontiguousarray(photo)
    rgb = parse_colour(colour)
    if isinstance(opacity, bool) or not isinstance(opacity, numbers.Real) or not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, got {opacity!r}")
    if not isinstance(mask, np.ndarray):
        raise ValueError(f"mask must be a numpy array, got {type(mask).__name__}")
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[:, :, 0]
    if mask.shape != photo.shape[:2]:
        raise ValueError(
            f"mask shape {mask.shape} does not match the photo size {photo.shape[:2]}; resize the mask first"
        )
    binary = cat_pixels(mask).view(np.uint8)
    tint = cv2.merge([np.full(photo.shape[:2], value, dtype=np.uint8) for value in rgb])
    tinted = cv2.addWeighted(photo, 1.0 - float(opacity), tint, float(opacity), 0.0)
    output = photo.copy()
    cv2.copyTo(tinted, binary, output)
    if outline:
        contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        thickness = max(1, round(max(photo.shape[:2]) / 400))
        cv2.drawContours(output, contours, -1, rgb, thickness, lineType=cv2.LINE_AA)
    return output
