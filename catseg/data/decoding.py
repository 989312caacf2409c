"""The one photo decoder: decode, orient, normalise, and reject bad files clearly.

Every photo that enters the dataset (upload, folder import, zip import; see
``catseg.data.intake``), every photo that the Try page or the CLI receives and every file
training reads goes through :func:`decode_photo`, so they all agree on orientation (EXIF
applied) and colour (8-bit RGB).
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ORIENTATION_TAG = 0x0112  # EXIF "Orientation": 1 means upright as stored

# Pillow's own bomb check only warns below 2x its limit; we check the header ourselves
# so the message can name the file and the numbers.
Image.MAX_IMAGE_PIXELS = None

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "MPO")
SUPPORTED_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
# 64 megapixels is larger than any phone photo yet small enough that decoding one
# (about 200 MB as RGB) stays safe on a small machine.
MAX_PIXELS = 64_000_000
MAX_SIDE = 16_384
MIN_SIDE = 16
MAX_FILE_BYTES = 100 * 1024 * 1024


class PhotoRejected(ValueError):
    """A file that cannot become a photo; the message names the file and says why."""


@dataclass(frozen=True)
class DecodedPhoto:
    """An upright 8-bit RGB photo and what is known of its source file."""

    pixels: np.ndarray  # (height, width, 3) uint8, EXIF orientation applied
    source_format: str  # "JPEG", "PNG", ...
    was_converted: bool  # True when orientation, mode or depth had to change

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def is_image_name(name: str) -> bool:
    """True when the file name has a photo suffix we read."""
    return name.lower().endswith(SUPPORTED_SUFFIXES)


def check_dimensions(name: str, width: int, height: int) -> None:
    """Reject sizes that are absurd or would exhaust memory, before decoding."""
    if width * height > MAX_PIXELS:
        raise PhotoRejected(
            f"{name}: {width}x{height} is {width * height / 1e6:.0f} megapixels; "
            f"the limit is {MAX_PIXELS / 1e6:.0f} megapixels. Downscale it and try again."
        )
    if max(width, height) > MAX_SIDE:
        raise PhotoRejected(
            f"{name}: {width}x{height} has a side longer than {MAX_SIDE} pixels."
        )
    if min(width, height) < MIN_SIDE:
        raise PhotoRejected(
            f"{name}: {width}x{height} is too small; each side needs at least {MIN_SIDE} pixels."
        )


def _to_rgb8(image: Image.Image) -> Image.Image:
    """Bring any Pillow mode (L, LA, P, RGBA, CMYK, I;16, I, F, ...) to 8-bit RGB."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit and 32-bit integer greys: scale by the real range of the format.
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or array.max() > 255 else 255.0
        grey = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "F":
        array = np.asarray(image, dtype=np.float64)
        top = 1.0 if array.max() <= 1.0 else 255.0
        grey = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        # Transparent pixels become white rather than whatever colour hides behind alpha.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def decode_photo(data: bytes, name: str = "photo", draft_size: int | None = None) -> DecodedPhoto:
    """Decode bytes into an upright 8-bit RGB photo, or raise PhotoRejected naming `name`.

    draft_size: when the pixels are shrunk to this many a side anyway (training), a JPEG
    is decoded at the smallest of 1/2 .. 1/8 scale that still covers it: much faster for
    large phone photos.
    """
    if len(data) == 0:
        raise PhotoRejected(f"{name}: the file is empty (0 bytes).")
    if len(data) > MAX_FILE_BYTES:
        raise PhotoRejected(
            f"{name}: the file is {len(data) / 1e6:.0f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB."
        )
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise PhotoRejected(
            f"{name}: not a photo we can read (JPEG, PNG, WebP, BMP or TIFF expected)."
        ) from None
    except Exception as error:  # Pillow raises many types for broken headers
        raise PhotoRejected(f"{name}: the file is damaged ({error}).") from None
    if image.format not in SUPPORTED_FORMATS:
        raise PhotoRejected(
            f"{name}: {image.format} files are not supported (JPEG, PNG, WebP, BMP or TIFF expected)."
        )
    check_dimensions(name, *image.size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if draft_size and image.format == "JPEG":
                image.draft("RGB", (draft_size, draft_size))
            image.load()
            upright = ImageOps.exif_transpose(image)
    except OSError as error:
        # Truncated files land here ("image file is truncated", "broken data stream").
        raise PhotoRejected(f"{name}: the file is damaged or cut short ({error}).") from None
    except Exception as error:
        raise PhotoRejected(f"{name}: the file could not be decoded ({error}).") from None
    check_dimensions(name, *upright.size)
    rgb = _to_rgb8(upright)
    # Asked of the EXIF tag, not of exif_transpose's result: Pillow returns a copy even when
    # nothing turned, which would store every JPEG re-encoded instead of as it came.
    turned = image.getexif().get(ORIENTATION_TAG, 1) not in (None, 1)
    was_converted = turned or image.mode != "RGB"
    return DecodedPhoto(
        pixels=np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)),
        source_format=str(image.format),
        was_converted=was_converted,
    )


def encode_png(pixels: np.ndarray) -> bytes:
    """Lossless PNG bytes of an RGB, RGBA or one-channel uint8 array."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def encode_jpeg(pixels: np.ndarray, quality: int = 92) -> bytes:
    """JPEG bytes of an RGB uint8 array."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def read_photo(path: str | os.PathLike[str], draft_size: int | None = None) -> np.ndarray:
    """The upright RGB pixels of a photo file (``decode_photo``); PhotoRejected naming the file."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise PhotoRejected(f"{path}: file not found.") from None
    return decode_photo(data, str(path), draft_size).pixels


def thumbnail(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """A downscaled copy whose longer side is at most `max_side` (aspect kept)."""
    height, width = pixels.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return pixels
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.fromarray(pixels)
    image.draft(image.mode, size)
    resample = Image.Resampling.NEAREST if pixels.ndim == 2 else Image.Resampling.BILINEAR
    return np.asarray(image.resize(size, resample, reducing_gap=2.0))
