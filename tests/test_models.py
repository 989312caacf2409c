"""Configs, builders, loss and saved model versions (tiny synthetic inputs only)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from catseg.model.config import ModelConfig, TrainConfig
from catseg.model.networks import (
    PretrainedWeightsUnavailable,
    at_input_size,
    build_mobilenet_unet,
    build_model,
    build_tutorial_unet,
    build_unet,
    compile_model,
    dtype_policy,
    in_precision,
)
from catseg.model.versions import load_model_version, read_learnt_photos, save_model_version

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_importing_catseg_does_not_import_tensorflow() -> None:
    code = (
        "import sys; import catseg.model.config, catseg.model.networks, catseg.model.losses, catseg.train.pipeline, catseg.train.fitting; "
        "heavy = [name for name in ('tensorflow', 'keras') if name in sys.modules]; "
        "assert not heavy, heavy"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]


def test_configs_round_trip_through_json() -> None:
    model_config = ModelConfig(architecture="tutorial", image_size=256, base_filters=8)
    train_config = TrainConfig(epochs=3, batch_size=4, max_seconds=None)
    assert ModelConfig.from_dict(json.loads(json.dumps(model_config.to_dict()))) == model_config
    assert TrainConfig.from_dict(json.loads(json.dumps(train_config.to_dict()))) == train_config
    assert ModelConfig.from_dict({}) == ModelConfig()


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: ModelConfig(architecture="resnet"), "Unknown architecture"),
        (lambda: ModelConfig(image_size=100), "multiple of 32"),
        (lambda: ModelConfig(architecture="unet", pretrained=True), "only applies"),
        (lambda: TrainConfig(validation_fraction=1.0), "strictly between"),
        (lambda: TrainConfig(batch_size=0), "batch_size"),
        (lambda: TrainConfig(learning_rate_schedule="step"), "learning_rate_schedule"),
        (lambda: TrainConfig(freeze_batch_norm="yes"), "freeze_batch_norm must be true or false"),
        (lambda: TrainConfig(close_up_probability=1.5), "close_up_probability must be between 0.0 and 1.0"),
        (lambda: ModelConfig.from_dict({"colour": "red"}), "does not know"),
    ],
)
def test_configs_reject_bad_values_with_clear_messages(factory, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factory()


@pytest.mark.parametrize(
    ("builder", "size"),
    [
        (lambda size: build_tutorial_unet(size), 64),
        (lambda size: build_unet(size, base_filters=8), 64),
        (lambda size: build_unet(size, base_filters=8, depth=3, separable=True, dropout=0.1), 64),
        (lambda size: build_mobilenet_unet(size, weights=None), 96),
    ],
)
def test_builders_map_photos_to_same_size_probabilities(builder, size: int) -> None:
    model = builder(size)
    photos = np.random.default_rng(0).random((2, size, size, 3), dtype=np.float32)
    probabilities = np.asarray(model(photos, training=False))
    assert probabilities.shape == (2, size, size, 1)
    assert probabilities.min() >= 0.0 and probabilities.max() <= 1.0


def test_at_input_size_runs_the_same_weights_at_another_size() -> None:
    model = build_unet(64, base_filters=8)
    larger = at_input_size(model, 96)
    assert larger.input_shape == (None, 96, 96, 3)
    assert larger.weights[0] is model.weights[0]  # shared, not copied
    rebuilt = build_unet(96, base_filters=8)
    rebuilt.set_weights(model.get_weights())
    photos = np.random.default_rng(1).random((1, 96, 96, 3), dtype=np.float32)
    assert np.allclose(np.asarray(larger(photos, training=False)), np.asarray(rebuilt(photos, training=False)))
    with pytest.raises(ValueError, match="multiple of 32"):
        at_input_size(model, 100)
    # MobileNetV2's encoder is tied to the size it was built with: a clear error, not a crash.
    with pytest.raises(ValueError, match="cannot take 128-pixel photos"):
        at_input_size(build_mobilenet_unet(96, weights=None), 128)


def test_tutorial_unet_matches_the_blog_network() -> None:
    model = build_tutorial_unet(256)
    # Counting the blog's layers by hand (8-16-32-64-128, symmetric decoder) gives 485,817 weights.
    assert model.count_params() == 485_817
    assert not any("batch_normalization" in layer.name for layer in model.layers)


def test_build_model_dispatches_on_architecture() -> None:
    assert build_model(ModelConfig(architecture="unet", image_size=64, base_filters=8)).name == "unet"
    assert build_model(ModelConfig(architecture="tutorial", image_size=64)).name == "tutorial_unet"
    with pytest.raises(ValueError, match="ModelConfig"):
        build_model({"architecture": "unet"})  # type: ignore[arg-type]


def test_save_and_load_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    model_config = ModelConfig(architecture="unet", image_size=64, base_filters=8)
    train_config = TrainConfig(epochs=1, batch_size=2, max_seconds=None)
    model = compile_model(build_model(model_config), learning_rate=1e-3)
    photos = np.random.default_rng(1).random((2, 64, 64, 3), dtype=np.float32)
    # A training step moves batch-norm statistics away from their defaults,
    # so the round trip really has to carry them.
    model.fit(photos, (photos[..., :1] > 0.5).astype(np.float32), epochs=1, verbose=0)
    expected = np.asarray(model(photos, training=False))

    target = tmp_path / "versions" / "v1"
    save_model_version(model, model_config, train_config, {"val_iou": np.float32(0.75), "bad": float("nan")}, target)
    # The network, its card, and one ONNX file per view size (64 and 96 px for a card without views).
    assert sorted(path.name for path in target.iterdir()) == ["card.json", "model-64.onnx", "model-96.onnx",
                                                              "model.keras"]
    assert [path.name for path in target.parent.iterdir()] == ["v1"], "temporary folder left behind"

    loaded, loaded_config, card = load_model_version(target)
    np.testing.assert_allclose(np.asarray(loaded(photos, training=False)), expected, atol=1e-6)
    assert loaded_config == model_config
    assert TrainConfig.from_dict(card["train_config"]) == train_config
    assert card["metrics"] == {"val_iou": pytest.approx(0.75), "bad": None}

    with pytest.raises(FileExistsError):
        save_model_version(model, model_config, train_config, {}, target)


def test_in_precision_clones_a_saved_network_to_bfloat16_and_back(tmp_path: Path) -> None:
    import keras

    model_config = ModelConfig(architecture="unet", image_size=32, base_filters=4)
    target = save_model_version(build_model(model_config), model_config, TrainConfig(), {}, tmp_path / "v1")
    photos = np.random.default_rng(2).random((2, 32, 32, 3), dtype=np.float32)
    # Loaded while bfloat16 is the global policy, as a fine-tune loads its start: the network
    # itself then reports bfloat16, but its layers still compute in float32 as saved.
    with dtype_policy("mixed_bfloat16"):
        loaded = load_model_version(target)[0]
    assert keras.mixed_precision.global_policy().name == "float32"  # the policy found is put back
    expected = np.asarray(loaded.predict_on_batch(photos))

    fast = in_precision(loaded, "mixed_bfloat16")
    assert fast is not loaded
    policies = {layer.name: layer.dtype_policy.name for layer in fast.layers if layer.weights}
    assert policies.pop("cat_probability") == "float32"  # probabilities keep full precision
    assert set(policies.values()) == {"mixed_bfloat16"}
    fast_output = np.asarray(fast.predict_on_batch(photos))
    assert fast_output.dtype == np.float32
    assert np.abs(fast_output - expected).max() < 0.05 and not np.array_equal(fast_output, expected)
    assert in_precision(fast, "mixed_bfloat16") is fast

    back = in_precision(fast, "float32")
    assert {layer.dtype_policy.name for layer in back.layers if layer.weights} == {"float32"}
    np.testing.assert_array_equal(np.asarray(back.predict_on_batch(photos)), expected)  # same weights, not copies of copies
    assert in_precision(loaded, "float32") is loaded


def test_a_version_keeps_the_content_hashes_of_the_photos_it_learnt(tmp_path: Path) -> None:
    model_config = ModelConfig(architecture="unet", image_size=32, base_filters=4)
    model = build_model(model_config)
    learnt = {f"{number:064x}" for number in (3, 1, 2)}
    target = save_model_version(model, model_config, TrainConfig(), {}, tmp_path / "v1", learnt_photos=learnt)
    assert read_learnt_photos(target) == learnt
    assert (target / "learnt_photos.txt").read_text().splitlines() == sorted(learnt)
    # A version saved before catseg recorded them, or from random weights with no photos, learnt none.
    assert read_learnt_photos(save_model_version(model, model_config, TrainConfig(), {}, tmp_path / "v2")) == set()
    (target / "learnt_photos.txt").write_text("not a hash\n")
    with pytest.raises(ValueError, match="damaged.*not a SHA-256 content hash"):
        read_learnt_photos(target)


def test_loading_a_folder_without_a_card_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a catseg model version"):
        load_model_version(tmp_path)


def test_missing_imagenet_weights_raise_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from keras.src.utils import file_utils

    def offline_get_file(*args, **kwargs):
        # What Keras raises when the download fails.
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3]")

    monkeypatch.setattr(file_utils, "get_file", offline_get_file)
    with pytest.raises(PretrainedWeightsUnavailable, match="ImageNet weights .* could not be downloaded") as caught:
        build_model(ModelConfig(architecture="mobilenet_unet", image_size=96, pretrained=True))
    assert "another architecture" in str(caught.value)


def test_bce_dice_loss_is_serialisable_and_prefers_correct_masks() -> None:
    import keras

    from catseg.model.losses import bce_dice_loss

    loss = bce_dice_loss(dice_weight=0.5)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert restored.get_config() == loss.get_config()

    truth = np.zeros((1, 8, 8, 1), np.float32)
    truth[:, 2:6, 2:6] = 1.0
    good = np.clip(truth, 0.05, 0.95)
    bad = 1.0 - good
    assert float(loss(truth, good)) < float(loss(truth, bad))
    assert float(restored(truth, good)) == pytest.approx(float(loss(truth, good)))
