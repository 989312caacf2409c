"""Run the segmentation model on photos of any size.

The model sees square (size x size) inputs scaled to [0, 1]. A photo is
brought to that size without distortion ("letterbox": scale the long side to
size, pad the rest). The predicted probability is then cropped and resized back
to the photo's full resolution.

TensorFlow is never imported here: the network is passed in (a ``catseg.predict.runtime.RuntimeNetwork``, or a
Keras model in training and the benches); both answer to ``input_shape`` and ``predict_on_batch``.
Training letterboxes its photos and masks with the same ``letterbox``, so the
model sees at inference what it saw in training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

# One photo check for the whole library, so error messages read the same everywhere.
from catseg.predict.compositing import _check_photo



@dataclass(frozen=True)
class Letterbox:
    """Where the photo sits inside the square model input.

    The photo (photo_height x photo_width) was resized to
    (resized_height x resized_width) and placed at (top, left) inside a
    size x size square; the rest is padding.
    """

    size: int
    photo_height: int
    photo_width: int
    resized_height: int
    resized_width: int
    top: int
    left: int

    @property
    def scale(self) -> float:
        """Model pixels per photo pixel (the same along both sides)."""
        return max(self.resized_height, self.resized_width) / max(self.photo_height, self.photo_width)


def _check_size(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"model input size must be a positive whole number of pixels, got {size!r}")
    return int(size)


def letterbox_geometry(photo_shape: Sequence[int], size: int) -> Letterbox:
    """Compute where a photo of photo_shape (H, W[, C]) goes in a size x size input."""
    size = _check_size(size)
    photo_height, photo_width = int(photo_shape[0]), int(photo_shape[1])
    if photo_height < 1 or photo_width < 1:
        raise ValueError(f"photo is empty (shape {tuple(photo_shape)})")
    scale = size / max(photo_height, photo_width)
    # At least one pixel, so very thin photos still map to something.
    resized_height = min(size, max(1, round(photo_height * scale)))
    resized_width = min(size, max(1, round(photo_width * scale)))
    # Centre the photo so the padding (and any border effect of the model) is symmetric.
    top = (size - resized_height) // 2
    left = (size - resized_width) // 2
    return Letterbox(size, photo_height, photo_width, resized_height, resized_width, top, left)


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """An (H, W) or (H, W, C) image brought to size x size as the model sees it, in training and here.

    The long side is scaled to size and the photo centred (``letterbox_geometry``); the photo is
    mirrored into the padding (BORDER_REFLECT_101), so the model sees no hard border.
    """
    return _place(image, letterbox_geometry(np.shape(image), size))


def _place(image: np.ndarray, geometry: Letterbox) -> np.ndarray:
    shrinking = geometry.resized_height < geometry.photo_height or geometry.resized_width < geometry.photo_width
    # INTER_AREA averages when shrinking (no aliasing); INTER_LINEAR is the right choice to enlarge.
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(
        np.ascontiguousarray(image), (geometry.resized_width, geometry.resized_height), interpolation=interpolation
    )
    bottom = geometry.size - geometry.resized_height - geometry.top
    right = geometry.size - geometry.resized_width - geometry.left
    if bottom or right or geometry.top or geometry.left:
        resized = cv2.copyMakeBorder(resized, geometry.top, bottom, geometry.left, right, cv2.BORDER_REFLECT_101)
    return resized


def prepare_input(photo: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Return (batch float32 (1, size, size, 3) in [0, 1], geometry) for one RGB uint8 photo (see ``letterbox``)."""
    _check_photo(photo)
    geometry = letterbox_geometry(photo.shape, size)
    batch = _place(photo, geometry).astype(np.float32)[None] * np.float32(1.0 / 255.0)
    return batch, geometry


def _crop_to_photo(probability: np.ndarray, geometry: Letterbox) -> np.ndarray:
    """The part of a (size, size) map that covers the photo (the padding cut off)."""
    return probability[
        geometry.top : geometry.top + geometry.resized_height,
        geometry.left : geometry.left + geometry.resized_width,
    ]


def _resize_probability(probability: np.ndarray, height: int, width: int) -> np.ndarray:
    if probability.shape != (height, width):
        probability = cv2.resize(np.ascontiguousarray(probability), (width, height), interpolation=cv2.INTER_LINEAR)
    restored = np.array(probability, dtype=np.float32).reshape(height, width)
    # Linear interpolation of values in [0, 1] stays in [0, 1]; clip guards a model without sigmoid.
    return np.clip(restored, 0.0, 1.0, out=restored)


def model_input_size(model: Any) -> int:
    """Return the square input size of a Keras model with input (None, size, size, 3)."""
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, list):  # multi-input models report a list of shapes
        shape = shape[0] if len(shape) == 1 else None
    if shape is None or len(shape) != 4 or shape[3] != 3:
        raise ValueError(f"model must take RGB images shaped (None, size, size, 3), its input shape is {shape}")
    height, width = shape[1], shape[2]
    if height is None or width is None:
        raise ValueError("the model accepts any input size; wire it to one first "
                         "(catseg.model.networks.at_input_size)")
    if height != width:
        raise ValueError(f"the model input must be square, got {height}x{width}")
    return int(height)


def _model_probabilities(model: Any, batch: np.ndarray) -> np.ndarray:
    """Run the model on a batch and return (N, size, size) float32 probabilities."""
    # predict_on_batch: ONNX Runtime's networks (catseg.predict.runtime) and Keras models both answer to it;
    # Keras runs it as one compiled graph and skips predict()'s per-call data set-up.
    output = np.asarray(model.predict_on_batch(batch)).astype(np.float32, copy=False)
    if output.ndim == 4 and output.shape[3] == 1:
        output = output[:, :, :, 0]
    if output.ndim != 3 or output.shape[0] != batch.shape[0]:
        raise ValueError(
            f"model output has shape {output.shape}; expected (N, size, size, 1) sigmoid probabilities"
        )
    size = batch.shape[1]
    if output.shape[1:] != (size, size):
        # A model whose output resolution differs from its input: bring it to the input grid.
        output = np.stack([cv2.resize(item, (size, size), interpolation=cv2.INTER_LINEAR) for item in output])
    if not np.all(np.isfinite(output)):
        raise ValueError("model produced NaN/inf probabilities; the model weights are probably broken")
    return output


def _one_probability(model: Any, batch: np.ndarray, flip: bool) -> np.ndarray:
    """(size, size) probability for a batch of one, averaged with its mirror image if ``flip``."""
    if flip:
        both = _model_probabilities(model, np.concatenate([batch, batch[:, :, ::-1]]))
        return 0.5 * (both[0] + both[1][:, ::-1])
    return _model_probabilities(model, batch)[0]


def predict_probability_at_scales(models: Sequence[Any], photo: np.ndarray, flip: bool = False) -> np.ndarray:
    """Average the cat probability (H, W) of one network run at several input sizes.

    ``models`` are the same network taking different square sizes (see
    ``catseg.model.networks.at_input_size``). Each sees the photo letterboxed to its own
    size; the photo part of each map is brought to the photo part of the largest
    one, averaged there and resized to full resolution once. Larger sizes give
    small cats more pixels, smaller ones give large cats more context.
    """
    if not models:
        raise ValueError("predict_probability_at_scales needs at least one model")
    crops = []
    for model in models:
        batch, geometry = prepare_input(photo, model_input_size(model))
        crops.append(_crop_to_photo(_one_probability(model, batch, flip), geometry))
    height, width = max(crop.shape for crop in crops)
    average = np.mean([_resize_probability(crop, height, width) for crop in crops], axis=0)
    photo_height, photo_width = photo.shape[:2]
    return _resize_probability(average, photo_height, photo_width)
