"""Letterbox in and out of the model's square input, and prediction with a tiny Keras model."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from catseg.predict.letterbox import Letterbox, letterbox_geometry, predict_probability_at_scales, prepare_input


def ellipse_photo_and_mask(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(seed)
    photo = generator.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), dtype=np.uint8)
    axes = (max(1, width // 3), max(1, height // 3))
    cv2.ellipse(mask, (width // 2, height // 2), axes, 10, 0, 360, 255, -1)
    return photo, mask


def intersection_over_union(first: np.ndarray, second: np.ndarray) -> float:
    union = np.logical_or(first, second).sum()
    return float(np.logical_and(first, second).sum() / union) if union else 1.0


class EchoModel:
    """Answers with its own input's red channel: a perfect model of a photo that is its mask."""

    def __init__(self, size: int) -> None:
        self.input_shape = (None, size, size, 3)

    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        return batch[..., :1]


@pytest.mark.parametrize("shape", [(4000, 3000), (301, 999), (17, 40), (999, 301)])
def test_round_trip_keeps_the_mask(shape):
    """A mask goes into the model's square input and its answer comes back onto the photo where it was."""
    height, width = shape
    _, mask = ellipse_photo_and_mask(height, width)
    batch, geometry = prepare_input(np.repeat(mask[:, :, None], 3, axis=2), 128)
    assert batch.shape == (1, 128, 128, 3) and batch.dtype == np.float32
    assert 0.0 <= batch.min() and batch.max() <= 1.0 and geometry.size == 128
    restored = predict_probability_at_scales([EchoModel(128)], np.repeat(mask[:, :, None], 3, axis=2))
    assert restored.shape == (height, width) and restored.dtype == np.float32
    assert np.isfinite(restored).all() and restored.min() >= 0 and restored.max() <= 1
    assert intersection_over_union(restored >= 0.5, mask > 0) > 0.97


def test_letterbox_keeps_aspect_ratio_and_centres():
    geometry = letterbox_geometry((301, 999, 3), 256)
    assert (geometry.resized_height, geometry.resized_width) == (77, 256)
    assert geometry.left == 0 and geometry.top == (256 - 77) // 2
    assert abs(geometry.scale - 256 / 999) < 1e-9
    tiny = letterbox_geometry((1, 500), 64)
    assert tiny.resized_height == 1 and tiny.resized_width == 64


def test_letterbox_puts_the_photo_inside_and_mirrors_it_into_the_padding():
    photo = np.zeros((50, 100, 3), dtype=np.uint8)
    photo[:5] = 200  # a bright top edge
    batch, geometry = prepare_input(photo, 64)
    assert geometry == Letterbox(64, 50, 100, 32, 64, 16, 0)
    image = batch[0]
    assert np.allclose(image[16:18], 200 / 255) and np.allclose(image[20:48], 0)
    # Mirrored, not black: the bright edge shows again just above the photo.
    assert np.allclose(image[14:16], 200 / 255) and np.allclose(image[:10], 0)


def test_bad_arguments_raise_value_error():
    photo, _ = ellipse_photo_and_mask(20, 30)
    with pytest.raises(ValueError, match="size"):
        prepare_input(photo, 0)
    with pytest.raises(ValueError, match="RGB"):
        prepare_input(photo[:, :, 0], 32)
    with pytest.raises(ValueError, match="uint8"):
        prepare_input(photo.astype(np.float32), 32)


class FakeModel:
    """Stands in for a Keras model: predicts 'cat' where the red channel is bright."""

    input_shape = (None, 32, 32, 3)

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        self.batch_sizes.append(batch.shape[0])
        return (batch[..., :1] > 0.5).astype(np.float32)


def test_predict_probability_finds_the_bright_region():
    photo = np.zeros((90, 200, 3), dtype=np.uint8)
    photo[:, 120:] = 255
    model = FakeModel()
    probability = predict_probability_at_scales([model], photo)
    assert probability.shape == (90, 200) and probability.dtype == np.float32
    assert intersection_over_union(probability >= 0.5, photo[..., 0] > 0) > 0.95


def test_predict_probability_with_a_tiny_keras_model():
    keras = pytest.importorskip("keras")  # imported here so the rest of the suite stays light
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs)
    model = keras.Model(inputs, outputs)
    photo, _ = ellipse_photo_and_mask(45, 70)
    probability = predict_probability_at_scales([model], photo)
    assert probability.shape == (45, 70) and probability.dtype == np.float32
    assert np.isfinite(probability).all()
    assert probability.min() >= 0.0 and probability.max() <= 1.0
    assert probability.std() > 0  # the random photo gives varying output, not a constant
    any_size_inputs = keras.Input((None, None, 3))
    any_size_model = keras.Model(any_size_inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(any_size_inputs))
    with pytest.raises(ValueError, match="accepts any input size"):
        predict_probability_at_scales([any_size_model], photo)


class LeftHalfModel(FakeModel):
    """Not mirror-symmetric: 'cat' only in the left half of its input."""

    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        output = np.zeros(batch.shape[:3] + (1,), np.float32)
        output[:, :, : batch.shape[2] // 2] = 1.0
        return output


def test_flip_averages_the_photo_and_its_mirror():
    photo = np.zeros((32, 32, 3), dtype=np.uint8)
    plain = predict_probability_at_scales([LeftHalfModel()], photo)
    assert plain[:, :16].min() == 1.0 and plain[:, 16:].max() == 0.0
    averaged = predict_probability_at_scales([LeftHalfModel()], photo, flip=True)
    assert np.allclose(averaged, 0.5)  # left half from the photo, right half from the mirror
    # A mirror-symmetric answer is unchanged by the flip.
    assert np.array_equal(predict_probability_at_scales([FakeModel()], photo, flip=True), predict_probability_at_scales([FakeModel()], photo))


class SizedModel(FakeModel):
    """The red-channel model at another input size, counting its calls."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.input_shape = (None, size, size, 3)


def test_scales_average_maps_of_every_size_back_onto_the_photo():
    photo = np.zeros((90, 200, 3), dtype=np.uint8)
    photo[:, 120:] = 255
    models = [SizedModel(32), SizedModel(64), SizedModel(96)]
    probability = predict_probability_at_scales(models, photo, flip=True)
    assert probability.shape == (90, 200) and probability.dtype == np.float32
    # Each size sees the same photo, so the averaged map lines up with the bright part.
    assert intersection_over_union(probability >= 0.5, photo[..., 0] > 0) > 0.97
    assert [model.batch_sizes for model in models] == [[2], [2], [2]]  # photo + mirror, once per size
    # One model is the plain prediction.
    assert np.allclose(predict_probability_at_scales([SizedModel(32)], photo), predict_probability_at_scales([FakeModel()], photo))


def test_scales_keep_a_not_symmetric_answer_where_each_size_put_it():
    photo = np.zeros((40, 80, 3), dtype=np.uint8)
    small, large = LeftHalfModel(), LeftHalfModel()
    large.input_shape = (None, 64, 64, 3)
    probability = predict_probability_at_scales([small, large], photo)
    # Both sizes call the left half of their input "cat": so does the average.
    assert probability[:, :36].min() > 0.99 and probability[:, 44:].max() < 0.01


def test_scales_need_a_model():
    with pytest.raises(ValueError, match="at least one model"):
        predict_probability_at_scales([], np.zeros((8, 8, 3), np.uint8))
