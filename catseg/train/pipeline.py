"""Decode photos and masks once, then feed them to Keras through tf.data.

Geometry matches inference: photos and masks go through ``catseg.predict.letterbox.letterbox``
(long side resized to ``image_size``, short side reflect-padded). Masks follow the one
mask rule (``catseg.data.masks.cat_pixels``) and are kept as 0/1 uint8.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np

from catseg.data.decoding import read_photo
from catseg.predict.letterbox import letterbox
from catseg.data.masks import binarise, cat_pixels

PathLike = str | os.PathLike[str]

# Augmentation strengths. Kept moderate: the masks are hand-drawn outlines,
# and strong warps of a few dozen photos mostly teach the network about reflections.
_MAX_ROTATION_DEGREES = 15.0
_ZOOM_RANGE = (0.8, 1.25)  # > 1 zooms in (crop), < 1 zooms out (reflected border)
_MAX_SHIFT_FRACTION = 0.1
_BRIGHTNESS_DELTA = 0.15
_CONTRAST_RANGE = (0.75, 1.3)
_SATURATION_RANGE = (0.7, 1.3)
_CHANNEL_GAIN_DELTA = 0.08
# Close-ups: zoom onto the cat until its box spans this share of the frame (more than 1
# cuts it by the frame, as in a pet portrait), never more than _MAX_CLOSE_UP_ZOOM.
_CLOSE_UP_SPAN = (0.8, 1.4)
_MAX_CLOSE_UP_ZOOM = 3.0
_CLOSE_UP_JITTER = 0.15  # of the cat's box size, so the cat is not always dead centre


def _load_pair(photo_path: PathLike, mask_path: PathLike, size: int) -> tuple[np.ndarray, np.ndarray]:
    photo = read_photo(photo_path, size)
    mask = binarise(read_photo(mask_path, size))
    # Compare aspect ratios, not sizes: draft decoding may shrink each by a different factor.
    photo_ratio = photo.shape[1] / photo.shape[0]
    mask_ratio = mask.shape[1] / mask.shape[0]
    if abs(photo_ratio - mask_ratio) > 0.02 * max(photo_ratio, mask_ratio):
        raise ValueError(
            f"Mask {mask_path} ({mask.shape[1]}x{mask.shape[0]}) does not have the shape of "
            f"photo {photo_path} ({photo.shape[1]}x{photo.shape[0]}); redraw the mask on this photo."
        )
    # Shrinking averages the 0/255 mask: a pixel is cat where at least half of what it covers is.
    mask = cat_pixels(letterbox(mask, size), full_scale=255)
    return letterbox(photo, size), mask.astype(np.uint8)[..., None]


def load_examples(
    pairs: Sequence[tuple[PathLike, PathLike]],
    image_size: int,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode each (photo, mask) file once into letterboxed arrays.

    Returns ``images`` uint8 (N, S, S, 3) RGB and ``masks`` uint8 (N, S, S, 1)
    with values 0 (background) and 1 (cat). Files are decoded in a thread pool
    (Pillow and OpenCV release the GIL while decoding/resizing).
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be a whole number >= 8, got {image_size!r}.")
    pairs = list(pairs)
    for pair in pairs:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"Each example must be a (photo_path, mask_path) pair, got {pair!r}.")
    images = np.zeros((len(pairs), image_size, image_size, 3), np.uint8)
    masks = np.zeros((len(pairs), image_size, image_size, 1), np.uint8)
    if not pairs:
        return images, masks
    workers = workers or min(8, (os.cpu_count() or 1) + 2, len(pairs))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(lambda pair: _load_pair(pair[0], pair[1], image_size), pairs)
        for index, (photo, mask) in enumerate(results):
            images[index] = photo
            masks[index] = mask
    return images, masks


def _tf() -> Any:
    import tensorflow as tf

    return tf


# augment_arrays takes this many uniform [0, 1) numbers: 5 for the geometry, 6 for the
# colours, 1 for whether to make a close-up.
AUGMENT_DRAWS = 12


def _affine_matrix(uniform: np.ndarray, image_size: int, cat_box: tuple[float, float, float, float] | None = None,
                   ) -> np.ndarray:
    """Random flip + zoom + rotation + shift as a 2x3 float32 matrix from 5 uniform numbers.

    cat_box: (left, top, right, bottom) of the cat in pixels to make a close-up of it: the
    zoom then fills the frame with the cat (uniform[2] picks how tightly) and the shift
    centres it (uniform[3:5] jitter the centre), instead of the usual gentle zoom and shift.
    The matrix maps *output* pixel coordinates to *input* coordinates
    (cv2's WARP_INVERSE_MAP convention).
    """
    flip = -1.0 if uniform[0] < 0.5 else 1.0
    angle = (uniform[1] * 2.0 - 1.0) * np.deg2rad(_MAX_ROTATION_DEGREES)
    centre = (image_size - 1) / 2.0
    if cat_box is None:
        # Sample zoom in log space so zooming in and out are equally likely.
        log_low, log_high = np.log(_ZOOM_RANGE[0]), np.log(_ZOOM_RANGE[1])
        zoom = np.exp(log_low + uniform[2] * (log_high - log_low))
        shift_x = (uniform[3] * 2.0 - 1.0) * _MAX_SHIFT_FRACTION * image_size
        shift_y = (uniform[4] * 2.0 - 1.0) * _MAX_SHIFT_FRACTION * image_size
    else:
        left, top, right, bottom = cat_box
        box_width, box_height = right - left, bottom - top
        span = _CLOSE_UP_SPAN[0] + uniform[2] * (_CLOSE_UP_SPAN[1] - _CLOSE_UP_SPAN[0])
        zoom = float(np.clip(span * image_size / max(box_width, box_height, 1.0), 1.0, _MAX_CLOSE_UP_ZOOM))
        cat_x = (left + right) / 2.0 + (uniform[3] * 2.0 - 1.0) * _CLOSE_UP_JITTER * box_width
        cat_y = (top + bottom) / 2.0 + (uniform[4] * 2.0 - 1.0) * _CLOSE_UP_JITTER * box_height
        # Keep the zoomed window inside the photo: mirrored borders would show mirrored cats.
        half_window = (image_size / zoom) / 2.0
        shift_x = float(np.clip(cat_x, half_window, image_size - half_window)) - centre
        shift_y = float(np.clip(cat_y, half_window, image_size - half_window)) - centre
    cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
    # input = R(angle)/zoom * F * (output - centre) + centre + shift
    a0, a1 = cos * flip, -sin
    b0, b1 = sin * flip, cos
    a2 = centre - a0 * centre - a1 * centre + shift_x
    b2 = centre - b0 * centre - b1 * centre + shift_y
    return np.array([[a0, a1, a2], [b0, b1, b2]], np.float32)


def _interpolate(value_range: tuple[float, float], unit: float) -> float:
    """Map ``unit`` in [-1, 1] onto ``value_range``."""
    low, high = value_range
    return low + (unit + 1.0) * 0.5 * (high - low)


def _cat_box(mask: np.ndarray, unit: float) -> tuple[float, float, float, float] | None:
    """(left, top, right, bottom) in pixels of one cat of a boolean mask; None when it has none.

    One connected region, picked by `unit` in [0, 1) with odds by area: a photo of ten
    distant cats gives a close-up of one of them (most often a large one).
    """
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count < 2:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    chosen = 1 + min(int(np.searchsorted(np.cumsum(areas) / areas.sum(), unit, side="right")), count - 2)
    left, top = stats[chosen, cv2.CC_STAT_LEFT], stats[chosen, cv2.CC_STAT_TOP]
    return (float(left), float(top), float(left + stats[chosen, cv2.CC_STAT_WIDTH]),
            float(top + stats[chosen, cv2.CC_STAT_HEIGHT]))


def augment_arrays(image: np.ndarray, mask: np.ndarray, draws: np.ndarray,
                   close_up_probability: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Warp photo and mask identically, then colour-jitter the photo (numpy, any Keras backend).

    image: float32 (S, S, 3) in [0, 1]; mask: float32 (S, S, 1) in {0, 1};
    draws: AUGMENT_DRAWS uniform numbers in [0, 1) that fix every random choice.
    close_up_probability: share of examples zoomed onto the cat until it fills the frame.
    Returns float32 arrays of the same shapes; the mask is re-binarised.
    """
    image = np.asarray(image, np.float32)
    draws = np.asarray(draws, np.float64)
    image_size = image.shape[0]
    mask = np.asarray(mask, np.float32).reshape(image.shape[:2] + (1,))
    close_up = draws[11] < close_up_probability
    # Given a close-up, draws[11] / close_up_probability is again uniform in [0, 1): it picks the cat.
    cat_box = _cat_box(mask[..., 0] > 0.5, draws[11] / close_up_probability) if close_up else None
    # One warp of the stacked 4-channel array keeps photo and mask aligned; cv2 releases
    # the GIL, so tf.data's parallel map and PyDataset's worker threads both scale.
    stacked = np.concatenate([image, mask], axis=-1)
    warped = cv2.warpAffine(
        stacked, _affine_matrix(draws[:5], image_size, cat_box), (image.shape[1], image.shape[0]),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT_101,
    )
    image = warped[..., :3]
    mask = (warped[..., 3:] >= 0.5).astype(np.float32)

    # Colour jitter as one 3x3 colour matrix + offset (white-balance gains, then saturation,
    # then contrast, then brightness are all linear): a single matmul instead of HSV round
    # trips, so augmentation stays well below the cost of a train step.
    jitter = draws[5:11] * 2.0 - 1.0
    brightness = jitter[0] * _BRIGHTNESS_DELTA
    contrast = _interpolate(_CONTRAST_RANGE, jitter[1])
    saturation = _interpolate(_SATURATION_RANGE, jitter[2])
    # Per-channel gains shift the white balance: a cheap stand-in for hue jitter.
    channel_gains = 1.0 + jitter[3:6] * _CHANNEL_GAIN_DELTA
    saturate = saturation * np.eye(3) + (1.0 - saturation) * np.full((3, 3), 1.0 / 3.0)
    colour_matrix = contrast * saturate * channel_gains[None, :]  # rows: output channels
    # Contrast pivots around the mean gray level, which saturation preserves.
    mean_gray = float(np.sum(image.mean(axis=(0, 1)) * channel_gains) / 3.0)
    offset = (1.0 - contrast) * mean_gray + brightness
    image = image.reshape(-1, 3) @ colour_matrix.T.astype(np.float32) + np.float32(offset)
    image = np.clip(image.reshape(warped.shape[:2] + (3,)), 0.0, 1.0)
    return image.astype(np.float32, copy=False), mask


def augment_example(image: Any, mask: Any, seed: Any, close_up_probability: float = 0.0) -> tuple[Any, Any]:
    """``augment_arrays`` inside a tf.data graph, its random numbers drawn from ``seed``.

    image: float32 (S, S, 3) in [0, 1]; mask: float32 (S, S, 1) in {0, 1};
    seed: int32/int64 tensor of shape (2,) (stateless randomness, so the
    result is reproducible). Returns the same shapes; the mask is re-binarised.
    """
    tf = _tf()
    image_size = image.shape[0]
    draws = tf.random.stateless_uniform([AUGMENT_DRAWS], seed=tf.cast(seed, tf.int64), minval=0.0, maxval=1.0)
    image, mask = tf.numpy_function(
        lambda photo, cat_mask, numbers: augment_arrays(photo, cat_mask, numbers, close_up_probability),
        [image, tf.cast(mask, tf.float32), draws], (tf.float32, tf.float32), stateful=False,
    )
    image.set_shape((image_size, image_size, 3))
    mask.set_shape((image_size, image_size, 1))
    return image, mask


def to_model_input(images: Any) -> Any:
    """uint8 RGB (..., 3) -> float32 in [0, 1], the input every catseg model expects."""
    tf = _tf()
    return tf.cast(images, tf.float32) / 255.0


def _checked_arrays(images: np.ndarray, masks: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images)
    masks = np.asarray(masks)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 of shape (N, S, S, 3), got {images.dtype} {images.shape}.")
    if masks.shape != images.shape[:3] + (1,):
        raise ValueError(f"masks must have shape {images.shape[:3] + (1,)}, got {masks.shape}.")
    if images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be square, got {images.shape[1]}x{images.shape[2]}.")
    if len(images) == 0:
        raise ValueError("No examples to make a dataset from; label some photos first.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}.")
    return images, masks


BATCH_KINDS = ("auto", "tf.data", "pydataset")


@dataclass(frozen=True)
class _Batching:
    """How make_dataset turns examples into batches."""

    batch_size: int
    training: bool
    augment: bool  # only ever True with training
    seed: int
    close_up_probability: float


def make_dataset(
    images: np.ndarray,
    masks: np.ndarray,
    batch_size: int,
    training: bool,
    augment: bool = True,
    seed: int = 42,
    close_up_probability: float = 0.0,
    kind: str = "auto",
    workers: int | None = None,
) -> Any:
    """Batches of (float32 photos in [0, 1], float32 0/1 masks) for ``model.fit``.

    training=True shuffles every epoch (and augments if ``augment``);
    training=False keeps the order and never augments. Each pass draws new
    random transforms, but the sequence is fixed by ``seed``.
    close_up_probability: share of augmented examples zoomed onto the cat (``augment_arrays``).
    kind: "tf.data" (a ``tf.data.Dataset``), "pydataset" (a ``keras.utils.PyDataset``, for
        any Keras backend; ``workers`` threads) or "auto": tf.data on the TensorFlow
        backend, else the PyDataset. Both give the same kind of batches.
    """
    import keras

    if kind not in BATCH_KINDS:
        raise ValueError(f"Unknown kind {kind!r}; choose one of {', '.join(BATCH_KINDS)}.")
    images, masks = _checked_arrays(images, masks, batch_size)
    if kind == "auto":
        # JAX and PyTorch installs (a GPU machine, say) often have no TensorFlow for tf.data.
        kind = "tf.data" if keras.backend.backend() == "tensorflow" else "pydataset"
    batching = _Batching(batch_size, training, training and augment, seed, close_up_probability)
    if kind == "pydataset":
        return _example_batches(images, masks, batching, workers)
    return _tf_dataset(images, masks, batching)


def _tf_dataset(images: np.ndarray, masks: np.ndarray, batching: _Batching) -> Any:
    tf = _tf()

    def to_float(image: Any, mask: Any) -> tuple[Any, Any]:
        return to_model_input(image), tf.cast(mask > 0, tf.float32)

    # Indices flow through tf.data and each example is read from the numpy arrays on demand:
    # from_tensor_slices would copy every photo into a TensorFlow constant and the shuffle
    # buffer would hold another copy, which matters once a dataset has many photos.
    image_shape, mask_shape = images.shape[1:], masks.shape[1:]

    def fetch(index: Any) -> tuple[Any, Any]:
        image, mask = tf.numpy_function(
            lambda i: (images[i], masks[i]), [index], (tf.uint8, tf.uint8), stateful=False
        )
        image.set_shape(image_shape)
        mask.set_shape(mask_shape)
        return image, mask

    dataset = tf.data.Dataset.range(len(images))
    if batching.training:
        dataset = dataset.shuffle(len(images), seed=batching.seed, reshuffle_each_iteration=True)
    dataset = dataset.map(fetch, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    if batching.augment:
        # A seed pair per example, redrawn every epoch but reproducible from `seed`.
        seeds = tf.data.Dataset.random(seed=batching.seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(
            lambda example, example_seed: augment_example(*example, example_seed, batching.close_up_probability),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return dataset.batch(batching.batch_size).prefetch(tf.data.AUTOTUNE)


def _example_batches(images: np.ndarray, masks: np.ndarray, batching: _Batching, workers: int | None) -> Any:
    """The batches as a ``keras.utils.PyDataset``.

    Every example's random numbers come from (seed, epoch, position in the epoch), so a
    run is reproducible however the worker threads interleave.
    """
    import keras

    batch_size, seed = batching.batch_size, batching.seed

    class ExampleBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=workers or min(8, os.cpu_count() or 1), use_multiprocessing=False)
            self.epoch = 0
            self.order = self._order()

        def _order(self) -> np.ndarray:
            if not batching.training:
                return np.arange(len(images))
            return np.random.default_rng([seed, self.epoch]).permutation(len(images))

        def __len__(self) -> int:
            return -(-len(images) // batch_size)

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            chosen = self.order[index * batch_size:(index + 1) * batch_size]
            photos = images[chosen].astype(np.float32) / 255.0
            cat_masks = (masks[chosen] > 0).astype(np.float32)
            if batching.augment:
                for offset in range(len(chosen)):
                    position = index * batch_size + offset
                    draws = np.random.default_rng([seed, self.epoch, position]).random(AUGMENT_DRAWS)
                    photos[offset], cat_masks[offset] = augment_arrays(
                        photos[offset], cat_masks[offset], draws, batching.close_up_probability)
            return photos, cat_masks

        def on_epoch_end(self) -> None:
            # Keras calls this once the epoch's batches are all taken, before the next starts.
            self.epoch += 1
            self.order = self._order()

    return ExampleBatches()
