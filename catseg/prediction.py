"""Apply a model version to photos: load it once, predict, colour-splash, and encode or write the results.

Used by the Try page, the CLI (`predict`, `splash`) and the benches; `catseg.registry`
finds the model folder first. Photos are read through `catseg.images.decode_photo`, the one
intake path, so EXIF orientation and colour conversion are the same as in the dataset.
TensorFlow is imported only when a model is loaded.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from catseg.compositing import SplashSettings, alpha_from_probability, composite, mask_from_alpha
from catseg import images
from catseg.inference import model_input_size, predict_probability_at_scales
from storage.files import atomic_write

OUTPUT_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
JPEG_QUALITY = 92
# Test-time scales: besides its own input size, the network also runs on larger views of the
# photo (rounded to a multiple of 32) and the maps are averaged, which scored better than one view.
# These were picked on the starter's own training hold-out and then checked on unseen photos.
# A model card may name its own ("test_time_scales"), picked the same way for that model.
TEST_TIME_SCALES = (1.0, 1.25, 1.5)


def scaled_input_sizes(size: int, scales: Iterable[float]) -> tuple[int, ...]:
    """The distinct input sizes for `scales` x `size`, multiples of 32, the model's own first."""
    sizes = [size]
    for scale in scales:
        if not (isinstance(scale, (int, float)) and 0 < scale <= 4):
            raise ValueError(f"A test-time scale must be a number above 0 and at most 4, got {scale!r}.")
        scaled_size = max(32, round(size * scale / 32) * 32)
        if scaled_size not in sizes:
            sizes.append(scaled_size)
    return tuple(sizes)


def _quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter would bury the CLI's one-line messages.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class Predictor:
    """A loaded model version that turns RGB photos into full-resolution cat probabilities.

    Load once, call `probability` many times; the attributes are read-only.
    """

    __slots__ = ("_directory", "_models", "_model_config", "_card", "_size", "_flip", "_precision")

    def __init__(self, directory: Path | str, scales: Iterable[float] | None = None, flip: bool | None = None,
                 precision: str | None = None) -> None:
        """`scales`: test-time scales; by default the card's own, else TEST_TIME_SCALES.
        `flip`: also run the mirror image; by default the card's "test_time_flip", else True.
        `precision`: "float32", "mixed_bfloat16" or "auto" (bfloat16 where the processor has
        bfloat16 instructions, float32 elsewhere); by default the card's "test_time_precision",
        else "auto"."""
        from catseg.config import PRECISIONS
        from catseg.models import CARD_FILENAME, at_input_size, in_precision, load_model_version, resolve_precision

        _quiet_tensorflow()
        directory = Path(directory)
        model, model_config, card = load_model_version(directory)
        # A card may keep its network in float32 ("test_time_precision"), e.g. weights trained
        # in float32 whose soft maps lose IoU in bfloat16.
        if precision is None:
            precision = card.get("test_time_precision") or "auto"
            if precision not in PRECISIONS:
                raise ValueError(f"{directory / CARD_FILENAME} is damaged: its test_time_precision {precision!r} "
                                 f"is not one of {', '.join(PRECISIONS)}.")
        precision = resolve_precision(precision)
        model = in_precision(model, precision)
        if scales is None:
            scales = card.get("test_time_scales") or TEST_TIME_SCALES
        size = model_input_size(model)
        models = [model]
        for scaled_size in scaled_input_sizes(size, scales)[1:]:
            try:
                models.append(at_input_size(model, scaled_size))
            except ValueError:
                break  # a network tied to its input size runs at that size only
        # A card may turn the mirror view off ("test_time_flip"), e.g. to stay within a time budget.
        if flip is None:
            flip = bool(card.get("test_time_flip", True))
        for name, value in (("_directory", directory), ("_models", tuple(models)), ("_model_config", model_config),
                            ("_card", card), ("_size", size), ("_flip", flip), ("_precision", precision)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Predictor is read-only; load another model version instead")

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def model_config(self):
        return self._model_config

    @property
    def card(self) -> dict:
        return self._card

    @property
    def input_size(self) -> int:
        """Side of the square model input; photos are letterboxed to it as in training."""
        return self._size

    def probability(self, photo: np.ndarray) -> np.ndarray:
        """Cat probability (H, W) float32 in [0, 1] at the photo's full resolution."""
        # Letterbox, like the training pipeline (catseg.pipeline.letterbox), so the model
        # sees undistorted cats at inference too. Averaging the photo and its mirror at each
        # test-time scale costs more model calls at these small input sizes, and gains
        # mean IoU on unseen photos (see the starter's model card).
        return predict_probability_at_scales(self._models, photo, flip=self._flip)

    @property
    def input_sizes(self) -> tuple[int, ...]:
        """Every input size the photo is run at (test-time scales), the model's own first."""
        return tuple(model_input_size(model) for model in self._models)

    @property
    def flips(self) -> bool:
        """True when each size also runs the mirror image."""
        return self._flip

    @property
    def precision(self) -> str:
        """The arithmetic the network runs in: "float32" or "mixed_bfloat16"."""
        return self._precision


def splash(
    photo: np.ndarray, probability: np.ndarray, settings: SplashSettings, background: np.ndarray | None = None
) -> np.ndarray:
    """The colour-splash picture of a photo from its probability map (RGBA for "transparent")."""
    alpha = alpha_from_probability(probability, settings.threshold, settings.feather_px)
    return composite(photo, alpha, settings, background)


# --- probability maps kept for restyling -----------------------------------------------

def probability_to_uint8(probability: np.ndarray) -> np.ndarray:
    """Store a probability map in a quarter of the memory (steps of 1/255; thresholds barely move)."""
    return cv2.convertScaleAbs(probability, alpha=255.0)


def probability_from_uint8(stored: np.ndarray) -> np.ndarray:
    """The probability map back from `probability_to_uint8`'s bytes, as float32 in [0, 1]."""
    return stored.astype(np.float32) * np.float32(1.0 / 255.0)


def shrink_for_preview(photo: np.ndarray, stored_probability: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(photo, uint8 probability, scale) at most max_side pixels long, so restyling stays fast on big photos."""
    height, width = photo.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale == 1.0:
        return photo, stored_probability, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return (
        cv2.resize(photo, size, interpolation=cv2.INTER_AREA),
        cv2.resize(stored_probability, size, interpolation=cv2.INTER_AREA),
        scale,
    )


# --- files -----------------------------------------------------------------------------

def read_photo(path: Path | str) -> np.ndarray:
    """Read a photo file as upright RGB uint8 (EXIF applied); ValueError naming the file if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    return images.read_photo(path)


def _output_format(path: Path) -> str:
    format_name = OUTPUT_FORMATS.get(path.suffix.lower())
    if format_name is None:
        raise ValueError(f"{path}: write the result as .jpg, .jpeg or .png")
    return format_name


def encode_picture(picture: np.ndarray, format_name: str, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG or PNG bytes of an RGB/RGBA/grey uint8 array (OpenCV: faster than Pillow on big photos)."""
    if picture.ndim == 3:
        conversion = cv2.COLOR_RGBA2BGRA if picture.shape[2] == 4 else cv2.COLOR_RGB2BGR
        picture = cv2.cvtColor(picture, conversion)
    if format_name == "JPEG":
        if picture.ndim == 3 and picture.shape[2] == 4:
            raise ValueError("a transparent result can only be written as PNG")
        parameters = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        extension = ".jpg"
    else:
        # A light compression level: PNG files a little larger, written several times faster.
        parameters = [cv2.IMWRITE_PNG_COMPRESSION, 1]
        extension = ".png"
    written, buffer = cv2.imencode(extension, picture, parameters)
    if not written:
        raise ValueError(f"could not encode the picture as {format_name}")
    return buffer.tobytes()


def encode_result(picture: np.ndarray) -> tuple[bytes, str, str]:
    """(bytes, suffix, mime type) for a result: PNG when it has an alpha channel, else JPEG."""
    if picture.ndim == 3 and picture.shape[2] == 4:
        return encode_picture(picture, "PNG"), ".png", "image/png"
    return encode_picture(picture, "JPEG"), ".jpg", "image/jpeg"


def splash_file(
    predictor: Predictor,
    input_path: Path | str,
    output_path: Path | str,
    settings: SplashSettings,
    background: np.ndarray | None = None,
) -> Path:
    """Read a photo, predict, composite and write the result; returns the path written.

    The format follows the output suffix (.jpg/.jpeg or .png); the "transparent" effect
    always writes PNG (the suffix is changed to .png).
    """
    output_path = Path(output_path)
    if settings.effect == "transparent":
        output_path = output_path.with_suffix(".png")
    format_name = _output_format(output_path)
    if settings.effect == "picture" and background is None:
        raise ValueError("the 'picture' effect needs a background picture")
    photo = read_photo(input_path)
    picture = splash(photo, predictor.probability(photo), settings, background)
    atomic_write(output_path, encode_picture(picture, format_name))
    return output_path


def write_mask(predictor: Predictor, input_path: Path | str, output_path: Path | str, threshold: float = 0.5) -> Path:
    """Predict a photo's mask and write it as a full-resolution one-channel PNG (0/255)."""
    output_path = Path(output_path)
    if output_path.suffix.lower() != ".png":
        raise ValueError(f"{output_path}: masks are written as .png (lossless)")
    SplashSettings(threshold=threshold)  # validates the threshold with the usual message
    photo = read_photo(input_path)
    mask = mask_from_alpha(predictor.probability(photo), threshold)
    atomic_write(output_path, encode_picture(mask, "PNG"))
    return output_path


def zip_results(results: Iterable[tuple[str, bytes]]) -> bytes:
    """One .zip of (file name, bytes) results; JPEG/PNG are already compressed, so stored as is."""
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in results:
            stem, dot, suffix = name.rpartition(".")
            unique, counter = name, 1
            while unique in used:  # two results may share a name
                counter += 1
                unique = f"{stem}-{counter}{dot}{suffix}"
            used.add(unique)
            archive.writestr(unique, data)
    return buffer.getvalue()
