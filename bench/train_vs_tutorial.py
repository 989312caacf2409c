"""Training throughput: the tutorial's input pipeline vs catseg's, same U-Net.

Both runs use the tutorial's U-Net, batch 4, 256x256, the same 75/25 split
(seed 42) and augmentation, one after the other in this process, and are
timed over the same number of steps after a warm-up (graph tracing and the
first steps are excluded).

The tutorial pipeline is reproduced from the blog: ``make_image_gen`` reads
and resizes every file on every batch (cv2 instead of skimage ``imread``),
applies ``cv2_brightness_augment``, divides by 255 and uses ``mask > 0``.
Its augmentation is the blog's own: two ``ImageDataGenerator`` flows with
the blog's arguments, kept in step by a shared seed (``--tutorial-augment
keras``, the default). Keras 3 no longer exports that class but still ships
its code as ``keras.src.legacy.preprocessing.image.ImageDataGenerator`` (the
Keras 2 implementation, scipy ``affine_transform`` per channel), so this is
the blog's code path. ``--tutorial-augment cv2`` swaps in the same random
affine done with ``cv2.warpAffine`` (much faster than the original), to show
how much of the gap the augmentation alone makes.

catseg's pipeline decodes each file once (``load_examples``) and streams
augmented in-memory tensors with ``make_dataset``.

A third run times the same U-Net on batches already sitting in memory as
tensors (no input pipeline, no augmentation): the fastest any pipeline could
feed this machine's train step. ``ceiling_ratio`` = that speed / the
tutorial's, the largest ``ratio`` this machine allows.

Usage: python bench/train_vs_tutorial.py [--data PATH] [--steps N] [--warmup N]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from catseg.pipeline import load_examples, make_dataset, split_indices  # noqa: E402

IMAGE_SIZE = 256
BATCH_SIZE = 4


def list_pairs(data: Path) -> list[tuple[Path, Path]]:
    photos = sorted((data / "input").glob("*.*"))
    if not photos:
        raise SystemExit(f"No photos in {data / 'input'}; pass --data with the seed-cats folder.")
    return [(photo, data / "mask" / f"mask_{photo.name}") for photo in photos]


# --- The tutorial's pipeline ------------------------------------------------

def cv2_brightness_augment(image: np.ndarray) -> np.ndarray:
    """The blog's brightness jitter (HSV value channel x U(0.5, 1.2))."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    value = hsv[:, :, 2]
    factor = random.uniform(0.5, 1.2)
    value = ((value / 255.0) * factor) * 255.0
    hsv[:, :, 2] = np.array(np.clip(value, 0, 255), dtype=np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def make_image_gen(pairs: list[tuple[Path, Path]], batch_size: int = BATCH_SIZE) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The blog's generator: re-reads and resizes every file on every pass."""
    all_batches = list(pairs)
    out_rgb, out_mask = [], []
    while True:
        np.random.shuffle(all_batches)
        for photo_path, mask_path in all_batches:
            photo = cv2.cvtColor(cv2.imread(str(photo_path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            photo = cv2_brightness_augment(photo)
            mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
            photo = cv2.resize(photo, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
            mask = np.reshape(mask, (mask.shape[0], mask.shape[1], -1))
            mask = mask > 0  # the blog's threshold: JPEG noise counts as cat
            out_rgb.append(photo)
            out_mask.append(mask)
            if len(out_rgb) >= batch_size:
                yield np.stack(out_rgb, 0) / 255.0, np.stack(out_mask, 0)
                out_rgb, out_mask = [], []


def _random_affine(rng: np.random.Generator, size: int) -> np.ndarray:
    """ImageDataGenerator's transform: rotation 15, shift 0.1, shear 0.01, zoom [0.9, 1.25], h-flip."""
    angle = math.radians(rng.uniform(-15, 15))
    shift_x, shift_y = rng.uniform(-0.1, 0.1, size=2) * size
    shear = math.radians(rng.uniform(-0.01, 0.01))
    zoom_x, zoom_y = rng.uniform(0.9, 1.25, size=2)
    flip = -1.0 if rng.random() < 0.5 else 1.0
    centre = (size - 1) / 2.0
    to_centre = np.array([[1, 0, -centre], [0, 1, -centre], [0, 0, 1]])
    back = np.array([[1, 0, centre + shift_x], [0, 1, centre + shift_y], [0, 0, 1]])
    rotation = np.array([[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]])
    shearing = np.array([[1, -math.sin(shear), 0], [0, math.cos(shear), 0], [0, 0, 1]])
    zooming = np.array([[zoom_x * flip, 0, 0], [0, zoom_y, 0], [0, 0, 1]])
    # Maps output pixels to input pixels (used with WARP_INVERSE_MAP).
    return (back @ rotation @ shearing @ zooming @ to_centre)[:2]


# The blog's ImageDataGenerator arguments (AUGMENT_BRIGHTNESS = False).
DG_ARGS = dict(featurewise_center=False, samplewise_center=False, rotation_range=15, width_shift_range=0.1,
               height_shift_range=0.1, shear_range=0.01, zoom_range=[0.9, 1.25], horizontal_flip=True,
               vertical_flip=False, fill_mode="reflect", data_format="channels_last")


def create_keras_aug_gen(in_gen: Iterator, seed: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The blog's create_aug_gen: two ImageDataGenerator flows synchronised by a shared seed."""
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    image_gen = ImageDataGenerator(**DG_ARGS)
    label_gen = ImageDataGenerator(**DG_ARGS)
    np.random.seed(seed if seed is not None else np.random.choice(range(9999)))
    for in_x, in_y in in_gen:
        seed = np.random.choice(range(9999))
        g_x = image_gen.flow(255 * in_x, batch_size=in_x.shape[0], seed=seed, shuffle=True)
        g_y = label_gen.flow(in_y, batch_size=in_x.shape[0], seed=seed, shuffle=True)
        yield next(g_x) / 255.0, next(g_y)


def create_aug_gen(in_gen: Iterator, seed: int = 42) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The same random affine as the blog's flows, done with cv2.warpAffine (faster than the original)."""
    rng = np.random.default_rng(seed)
    for photos, masks in in_gen:
        out_photos = np.empty_like(photos, dtype=np.float32)
        out_masks = np.empty(masks.shape, np.float32)
        for index in range(len(photos)):
            matrix = _random_affine(rng, photos.shape[1])
            flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            size = (photos.shape[2], photos.shape[1])
            # ImageDataGenerator works on 255-scaled float copies; so do we.
            out_photos[index] = cv2.warpAffine((255 * photos[index]).astype(np.float32), matrix, size,
                                               flags=flags, borderMode=cv2.BORDER_REFLECT) / 255.0
            out_masks[index, ..., 0] = cv2.warpAffine(masks[index, ..., 0].astype(np.float32), matrix, size,
                                                      flags=flags, borderMode=cv2.BORDER_REFLECT)
        yield out_photos, out_masks


# --- Timing -----------------------------------------------------------------

def build_compiled_tutorial_model() -> object:
    import keras

    from catseg.models import build_tutorial_unet

    keras.utils.set_random_seed(42)
    model = build_tutorial_unet(IMAGE_SIZE)
    # The blog's optimiser and loss; both runs share them, so only input speed differs.
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def time_training(batches: object, warmup: int, steps: int) -> float:
    """Images per second over ``steps`` train steps after ``warmup`` steps.

    ``batches`` is the tutorial's Python generator or a repeating tf.data
    dataset; both go straight to ``fit``. Tracing happens in the warm-up.
    """
    model = build_compiled_tutorial_model()
    model.fit(batches, steps_per_epoch=warmup, epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * BATCH_SIZE / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "seed-cats")
    parser.add_argument("--steps", type=int, default=60, help="timed training steps per pipeline")
    parser.add_argument("--warmup", type=int, default=8, help="untimed steps (tracing, caches)")
    parser.add_argument("--tutorial-augment", choices=("keras", "cv2"), default="keras",
                        help="the blog's ImageDataGenerator (default) or a cv2 re-implementation")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="TensorFlow intra-op threads")
    arguments = parser.parse_args()

    import tensorflow as tf

    # One pool sized to the cores for the convolutions; inter-op 2 lets the
    # tf.data map overlap with the train step instead of oversubscribing.
    tf.config.threading.set_intra_op_parallelism_threads(arguments.threads)
    tf.config.threading.set_inter_op_parallelism_threads(2)

    pairs = list_pairs(arguments.data)
    train_indices, _ = split_indices(len(pairs), 0.25, seed=42)
    train_pairs = [pairs[index] for index in train_indices]

    random.seed(42)
    np.random.seed(42)
    augmenter = create_keras_aug_gen if arguments.tutorial_augment == "keras" else create_aug_gen
    tutorial = time_training(augmenter(make_image_gen(train_pairs), 42), arguments.warmup, arguments.steps)

    started = time.perf_counter()
    images, masks = load_examples(train_pairs, IMAGE_SIZE)
    load_seconds = time.perf_counter() - started
    dataset = make_dataset(images, masks, BATCH_SIZE, training=True, augment=True, seed=42).repeat()
    catseg = time_training(dataset, arguments.warmup, arguments.steps)

    # 16 augmented batches, materialised once: each element of `in_memory` is a whole batch.
    batches = list(dataset.take(16).as_numpy_iterator())
    in_memory = tf.data.Dataset.from_tensor_slices(
        (np.stack([batch_photos for batch_photos, _ in batches]), np.stack([batch_masks for _, batch_masks in batches]))
    ).repeat()
    ceiling = time_training(in_memory, arguments.warmup, arguments.steps)

    print(json.dumps({
        "tutorial_images_per_second": round(tutorial, 2),
        "catseg_images_per_second": round(catseg, 2),
        "ratio": round(catseg / tutorial, 2),
        "in_memory_images_per_second": round(ceiling, 2),
        "ceiling_ratio": round(ceiling / tutorial, 2),
        "tutorial_augment": arguments.tutorial_augment,
        "steps": arguments.steps,
        "batch_size": BATCH_SIZE,
        "image_size": IMAGE_SIZE,
        "catseg_load_seconds": round(load_seconds, 2),
    }))


if __name__ == "__main__":
    main()
