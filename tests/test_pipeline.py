"""Decoding, letterboxing, augmentation alignment and the split (synthetic data only)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from catseg.predict.letterbox import letterbox
from catseg.train.pipeline import (
    AUGMENT_DRAWS, augment_arrays, augment_example, load_examples, make_dataset,
)


def _disc_example(size: int = 64, centre: tuple[int, int] = (22, 40), radius: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """A white disc on dark noise, and its mask (0/1)."""
    rng = np.random.default_rng(0)
    photo = (rng.random((size, size, 3)) * 40).astype(np.uint8)
    mask = np.zeros((size, size), np.uint8)
    cv2.circle(mask, centre, radius, 1, thickness=-1)
    photo[mask == 1] = 255
    return photo, mask[..., None]


def _iou(first: np.ndarray, second: np.ndarray) -> float:
    union = np.logical_or(first, second).sum()
    return float(np.logical_and(first, second).sum() / union) if union else 1.0


def test_letterbox_keeps_aspect_and_reflects_the_border() -> None:
    wide = np.arange(40 * 80 * 3, dtype=np.uint32).reshape(40, 80, 3).astype(np.uint8)
    boxed = letterbox(wide, 64)
    assert boxed.shape == (64, 64, 3)
    # Long side 80 -> 64, short side 40 -> 32, padded 16 + 16 rows.
    content = cv2.resize(wide, (64, 32), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(boxed[16:48], content)
    # BORDER_REFLECT_101 mirrors without repeating the edge row.
    np.testing.assert_array_equal(boxed[15], content[1])
    np.testing.assert_array_equal(boxed[48], content[-2])
    assert letterbox(np.zeros((50, 3), np.uint8), 32).shape == (32, 32)


def test_load_examples_decodes_letterboxes_and_thresholds(tmp_path: Path) -> None:
    photo = np.zeros((40, 80, 3), np.uint8)
    photo[:, 40:] = (200, 30, 30)  # right half red
    mask = np.zeros((40, 80), np.uint8)
    mask[:, 40:] = 230  # right half "cat", as JPEG-ish grey rather than pure white
    mask[:, :40] = 100  # below the 128 threshold: background despite not being 0
    Image.fromarray(photo).save(tmp_path / "cat.png")
    Image.fromarray(mask).save(tmp_path / "mask_cat.png")

    images, masks = load_examples([(tmp_path / "cat.png", tmp_path / "mask_cat.png")] * 3, 32)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    assert masks.shape == (3, 32, 32, 1) and masks.dtype == np.uint8
    assert set(np.unique(masks)) == {0, 1}
    # Cat pixels are exactly the red pixels, padding included.
    np.testing.assert_array_equal(masks[0, ..., 0] == 1, images[0, ..., 0] > 100)


def test_load_examples_rejects_mismatched_and_missing_files(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((40, 80, 3), np.uint8)).save(tmp_path / "cat.png")
    Image.fromarray(np.zeros((80, 40), np.uint8)).save(tmp_path / "rotated_mask.png")
    with pytest.raises(ValueError, match="does not have the shape"):
        load_examples([(tmp_path / "cat.png", tmp_path / "rotated_mask.png")], 32)
    with pytest.raises(ValueError, match="not found"):
        load_examples([(tmp_path / "cat.png", tmp_path / "missing.png")], 32)
    (tmp_path / "broken.jpg").write_bytes(b"not a picture")
    with pytest.raises(ValueError, match="not a photo we can read"):
        load_examples([(tmp_path / "broken.jpg", tmp_path / "rotated_mask.png")], 32)


def test_augmentation_moves_photo_and_mask_together() -> None:
    import tensorflow as tf

    photo, mask = _disc_example()
    image = tf.constant(photo, tf.float32) / 255.0
    mask_tensor = tf.constant(mask, tf.float32)
    moved = 0
    for seed in range(12):
        augmented_image, augmented_mask = augment_example(image, mask_tensor, tf.constant([seed, 7]))
        augmented_image, augmented_mask = augmented_image.numpy(), augmented_mask.numpy()
        assert augmented_image.shape == (64, 64, 3) and augmented_mask.shape == (64, 64, 1)
        assert set(np.unique(augmented_mask)) <= {0.0, 1.0}, "mask must be re-binarised"
        brightness = augmented_image.mean(axis=-1)
        bright = brightness > (brightness.min() + brightness.max()) / 2
        # The reflected fill can mirror the disc; the mask mirrors with it, so compare all of it.
        assert _iou(bright, augmented_mask[..., 0] > 0.5) > 0.85, f"seed {seed}: photo and mask drifted apart"
        moved += _iou(augmented_mask[..., 0] > 0.5, mask[..., 0] > 0) < 0.9
    assert moved >= 6, "augmentation should actually move the shape for most seeds"


def _two_discs() -> tuple[np.ndarray, np.ndarray]:
    """Two small white discs (a big one left, a small one right) on dark noise: distant cats."""
    photo, mask = _disc_example(size=96, centre=(22, 30), radius=10)
    cv2.circle(mask, (72, 70), 6, 1, thickness=-1)
    photo[mask[..., 0] == 1] = 255
    return photo.astype(np.float32) / 255.0, mask.astype(np.float32)


def test_close_ups_zoom_onto_one_cat_keeping_photo_and_mask_together() -> None:
    photo, mask = _two_discs()
    assert mask.mean() < 0.05
    draws = np.random.default_rng(0).random((40, AUGMENT_DRAWS))
    shares = []
    for numbers in draws:
        image, cat = augment_arrays(photo, mask, numbers, close_up_probability=1.0)
        brightness = image.mean(axis=-1)
        bright = brightness > (brightness.min() + brightness.max()) / 2
        assert _iou(bright, cat[..., 0] > 0.5) > 0.85, "photo and mask drifted apart"
        regions, _ = cv2.connectedComponents((cat[..., 0] > 0.5).astype(np.uint8))
        assert regions - 1 == 1, "a close-up shows one of the two distant cats"
        shares.append(float(cat.mean()))
    shares = np.array(shares)
    assert np.median(shares) > 0.2, f"close-ups should fill the frame, median cat share {np.median(shares):.2f}"
    # Both cats get their close-ups, the larger one more often (odds by area).
    assert 0 < np.sum(shares < 0.2) < np.sum(shares >= 0.2)
    gentle = [augment_arrays(photo, mask, numbers)[1].mean() for numbers in draws]
    assert np.median(gentle) < 0.06  # without close-ups the cats stay small


def test_close_ups_are_off_by_default_and_need_a_cat() -> None:
    photo, mask = _two_discs()
    numbers = np.random.default_rng(1).random(AUGMENT_DRAWS)
    numbers[11] = 0.5
    default = augment_arrays(photo, mask, numbers)
    np.testing.assert_array_equal(default[0], augment_arrays(photo, mask, numbers, close_up_probability=0.4)[0])
    assert not np.array_equal(default[0], augment_arrays(photo, mask, numbers, close_up_probability=0.6)[0])
    empty = np.zeros_like(mask)  # no cat to zoom onto: the usual gentle warp, no error
    np.testing.assert_array_equal(augment_arrays(photo, empty, numbers, close_up_probability=1.0)[0],
                                  augment_arrays(photo, empty, numbers)[0])


def test_augmentation_is_reproducible_from_the_seed() -> None:
    import tensorflow as tf

    photo, mask = _disc_example()
    image = tf.constant(photo, tf.float32) / 255.0
    mask_tensor = tf.constant(mask, tf.float32)
    first = augment_example(image, mask_tensor, tf.constant([3, 4]))
    again = augment_example(image, mask_tensor, tf.constant([3, 4]))
    other = augment_example(image, mask_tensor, tf.constant([5, 6]))
    np.testing.assert_array_equal(first[0].numpy(), again[0].numpy())
    assert not np.array_equal(first[0].numpy(), other[0].numpy())


def test_make_dataset_batches_aligned_examples() -> None:
    examples = [_disc_example(centre=(16 + 4 * index, 30), radius=8 + index) for index in range(6)]
    images = np.stack([photo for photo, _ in examples])
    masks = np.stack([mask for _, mask in examples])

    batches = list(make_dataset(images, masks, batch_size=4, training=True, augment=True, seed=1))
    assert [batch[0].shape[0] for batch in batches] == [4, 2]
    for photos, batch_masks in batches:
        assert photos.dtype.name == "float32" and float(photos.numpy().max()) <= 1.0
        for photo, mask in zip(photos.numpy(), batch_masks.numpy()):
            brightness = photo.mean(axis=-1)
            bright = brightness > (brightness.min() + brightness.max()) / 2
            assert _iou(bright, mask[..., 0] > 0.5) > 0.85

    same = list(make_dataset(images, masks, batch_size=4, training=True, augment=True, seed=1))
    np.testing.assert_array_equal(batches[0][0].numpy(), same[0][0].numpy())

    # Validation data keeps order and pixels untouched.
    photos, batch_masks = next(iter(make_dataset(images, masks, batch_size=6, training=False)))
    np.testing.assert_allclose(photos.numpy(), images / 255.0, atol=1e-6)
    np.testing.assert_array_equal(batch_masks.numpy(), masks.astype(np.float32))


def test_the_pydataset_feeds_any_backend_the_same_aligned_examples() -> None:
    # The PyDataset path (JAX or PyTorch backends, where there is no tf.data) is tested here on
    # TensorFlow: it is plain numpy + OpenCV, so the backend does not change what it yields.
    examples = [_disc_example(centre=(16 + 4 * index, 30), radius=8 + index) for index in range(6)]
    images = np.stack([photo for photo, _ in examples])
    masks = np.stack([mask for _, mask in examples])

    batches = make_dataset(images, masks, batch_size=4, training=True, augment=True, seed=1, kind="pydataset",
                           workers=2)
    assert len(batches) == 2
    first_epoch = [batches[index] for index in range(len(batches))]
    assert [photos.shape[0] for photos, _ in first_epoch] == [4, 2]
    moved = 0
    for photos, batch_masks in first_epoch:
        assert photos.dtype == np.float32 and batch_masks.dtype == np.float32
        assert 0.0 <= photos.min() and photos.max() <= 1.0 and set(np.unique(batch_masks)) <= {0.0, 1.0}
        for photo, mask in zip(photos, batch_masks):
            brightness = photo.mean(axis=-1)
            bright = brightness > (brightness.min() + brightness.max()) / 2
            assert _iou(bright, mask[..., 0] > 0.5) > 0.85, "photo and mask drifted apart"
            moved += min(_iou(mask[..., 0] > 0.5, original[..., 0] > 0) for original in masks) < 0.9
    assert moved >= 3, "training batches should be augmented"

    again = make_dataset(images, masks, batch_size=4, training=True, augment=True, seed=1, kind="pydataset",
                         workers=2)
    np.testing.assert_array_equal(first_epoch[0][0], again[0][0])  # fixed by the seed
    batches.on_epoch_end()
    assert not np.array_equal(first_epoch[0][0], batches[0][0]), "each epoch draws new order and transforms"

    photos, batch_masks = make_dataset(images, masks, batch_size=6, training=False, kind="pydataset")[0]
    np.testing.assert_allclose(photos, images / 255.0, atol=1e-6)  # validation: in order, untouched
    np.testing.assert_array_equal(batch_masks, masks.astype(np.float32))
    with pytest.raises(ValueError, match="masks must have shape"):
        make_dataset(images, masks[..., 0], 2, training=True, kind="pydataset")


def test_make_dataset_uses_the_pydataset_without_tensorflow_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    images = np.zeros((3, 32, 32, 3), np.uint8)
    masks = np.zeros((3, 32, 32, 1), np.uint8)
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    assert isinstance(make_dataset(images, masks, 2, training=True), keras.utils.PyDataset)


def test_make_dataset_rejects_bad_arrays() -> None:
    images = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="masks must have shape"):
        make_dataset(images, np.zeros((2, 32, 32), np.uint8), 2, training=True)
    with pytest.raises(ValueError, match="uint8"):
        make_dataset(images.astype(np.float32), np.zeros((2, 32, 32, 1), np.uint8), 2, training=True)
    with pytest.raises(ValueError, match="Unknown kind"):
        make_dataset(images, np.zeros((2, 32, 32, 1), np.uint8), 2, training=True, kind="numpy")
