"""Training loop behaviour on tiny drawn shapes (a bright disc on dark noise)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from catseg.model.config import ModelConfig, TrainConfig
from catseg.model.versions import load_model_version, save_model_version
from catseg.train.fitting import train

SIZE = 64
MODEL_CONFIG = ModelConfig(architecture="tutorial", image_size=SIZE)


def _write_disc_pairs(folder: Path, count: int, seed: int) -> list[tuple[Path, Path]]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for index in range(count):
        photo = (rng.random((SIZE, SIZE, 3)) * 90).astype(np.uint8)
        mask = np.zeros((SIZE, SIZE), np.uint8)
        centre = tuple(int(value) for value in rng.integers(18, SIZE - 18, size=2))
        cv2.circle(mask, centre, int(rng.integers(9, 16)), 255, thickness=-1)
        photo[mask > 0] = rng.integers(170, 255, size=3)
        photo_path, mask_path = folder / f"cat.{index}.png", folder / f"mask_cat.{index}.png"
        Image.fromarray(photo).save(photo_path)
        Image.fromarray(mask).save(mask_path)
        pairs.append((photo_path, mask_path))
    return pairs


@pytest.fixture(scope="module")
def disc_pairs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, list]:
    folder = tmp_path_factory.mktemp("discs")
    return _write_disc_pairs(folder / "train", 24, seed=0), _write_disc_pairs(folder / "val", 8, seed=1)


def _untrained_val_iou(val_pairs: list) -> float:
    import keras

    from catseg.model.networks import build_model, compile_model
    from catseg.train.pipeline import load_examples, make_dataset

    keras.utils.set_random_seed(42)
    model = compile_model(build_model(MODEL_CONFIG), 1e-3)
    images, masks = load_examples(val_pairs, SIZE)
    return float(model.evaluate(make_dataset(images, masks, 8, training=False), verbose=0, return_dict=True)["iou"])


def test_two_epochs_on_discs_improve_iou_and_report_best_metrics(disc_pairs) -> None:
    train_pairs, val_pairs = disc_pairs
    epochs_seen, previews = [], []
    result = train(
        MODEL_CONFIG,
        TrainConfig(epochs=2, batch_size=4, learning_rate=2e-3, augment=False, max_seconds=None),
        train_pairs,
        val_pairs,
        on_epoch=lambda epoch, logs, preview: (epochs_seen.append(epoch), previews.append(preview)),
    )
    before = _untrained_val_iou(val_pairs)
    assert result.epochs_run == 2 and epochs_seen == [0, 1]
    assert result.stop_reason == "completed"
    assert set(result.history) >= {"loss", "iou", "val_loss", "val_iou", "learning_rate"}
    assert result.best_metrics["val_iou"] == max(result.history["val_iou"])
    assert result.best_metrics["val_iou"] > max(0.3, before + 0.1), (before, result.history["val_iou"])
    assert previews[0].shape == (SIZE, 3 * SIZE, 3) and previews[0].dtype == np.uint8


def test_training_runs_on_the_pydataset_path_too(disc_pairs, monkeypatch: pytest.MonkeyPatch) -> None:
    # What a JAX or PyTorch backend gets (no tf.data there); fit runs it here on TensorFlow.
    import keras

    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    train_pairs, val_pairs = disc_pairs
    result = train(
        MODEL_CONFIG,
        TrainConfig(epochs=2, batch_size=4, learning_rate=2e-3, augment=True, close_up_probability=0.5,
                    max_seconds=None),
        train_pairs,
        val_pairs,
    )
    assert result.epochs_run == 2 and len(result.history["val_iou"]) == 2
    assert np.isfinite(result.history["loss"]).all()
    assert result.history["learning_rate"][1] < result.history["learning_rate"][0]  # cosine schedule applied


def test_best_epoch_weights_are_restored(disc_pairs) -> None:
    from catseg.train.pipeline import load_examples, make_dataset

    train_pairs, val_pairs = disc_pairs
    result = train(
        MODEL_CONFIG,
        TrainConfig(epochs=3, batch_size=4, learning_rate=5e-3, augment=True, max_seconds=None),
        train_pairs,
        val_pairs,
    )
    from catseg.model.networks import compile_model, in_precision, resolve_precision

    # The returned network is float32; its epoch was scored in the run's own arithmetic.
    model = compile_model(in_precision(result.model, resolve_precision("auto")), 1e-3)
    images, masks = load_examples(val_pairs, SIZE)
    evaluated = model.evaluate(make_dataset(images, masks, 4, training=False), verbose=0, return_dict=True)
    assert evaluated["iou"] == pytest.approx(result.best_metrics["val_iou"], abs=1e-4)


def test_should_stop_ends_training_after_the_current_batch(disc_pairs) -> None:
    train_pairs, val_pairs = disc_pairs
    batches = []
    polls = iter([False, False, True])
    result = train(
        MODEL_CONFIG,
        TrainConfig(epochs=5, batch_size=4, max_seconds=None),  # 6 batches per epoch
        train_pairs,
        val_pairs,
        on_batch=lambda epoch, batch, per_epoch, loss: batches.append((epoch, batch, per_epoch)),
        should_stop=lambda: next(polls, True),
    )
    assert batches == [(0, 0, 6), (0, 1, 6), (0, 2, 6)]
    assert result.stop_reason == "requested"
    assert result.epochs_run == 1


def test_fine_tuning_starts_from_a_saved_version(disc_pairs, tmp_path: Path) -> None:
    train_pairs, val_pairs = disc_pairs
    config = TrainConfig(epochs=1, batch_size=8, augment=False, max_seconds=None)
    first = train(MODEL_CONFIG, config, train_pairs, val_pairs)
    save_model_version(first.model, first.model_config, config, first.best_metrics, tmp_path / "v1")
    saved_weights = load_model_version(tmp_path / "v1")[0].get_weights()

    assert first.starting_metrics == {}  # random weights: nothing to beat
    started_with = []
    tuned = train(None, TrainConfig(epochs=1, batch_size=8, learning_rate=1e-6, augment=False, max_seconds=None),
                  train_pairs, val_pairs, initial_model_directory=tmp_path / "v1", on_start=started_with.append)
    assert tuned.model_config == MODEL_CONFIG
    # The starting model is scored once, before training, with the epochs' own metric and photos:
    # here it is the first run's best epoch, so it matches that epoch's validation IoU.
    assert started_with == [tuned.starting_metrics]
    assert tuned.starting_metrics["val_iou"] == pytest.approx(first.best_metrics["val_iou"], abs=1e-4)
    # A tiny learning rate barely moves the weights: training really started from the saved ones.
    for saved, tuned_weight in zip(saved_weights, tuned.model.get_weights()):
        np.testing.assert_allclose(saved, tuned_weight, atol=1e-3)

    with pytest.raises(ValueError, match="fine-tuning keeps the saved architecture"):
        train(ModelConfig(architecture="unet", image_size=SIZE), config, train_pairs, val_pairs,
              initial_model_directory=tmp_path / "v1")


class StepClock:
    """A clock that moves only while a training step runs, `step_seconds` per step: a machine of that speed."""

    def __init__(self, step_seconds: float) -> None:
        self.now = 0.0
        self.step_seconds = step_seconds

    def __call__(self) -> float:
        return self.now

    def callback(self, seen: list):
        """A Keras callback (after catseg's own) that runs the clock through each step and notes
        (learning rate, average momentum) as the step starts."""
        import keras

        clock = self

        class Tick(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                optimizer = self.model.optimizer
                momentum = float(keras.ops.convert_to_numpy(optimizer.ema_momentum)) if optimizer.use_ema else None
                seen.append((float(keras.ops.convert_to_numpy(optimizer.learning_rate)), momentum))
                clock.now += clock.step_seconds

        return Tick()


def _fine_tune_on_a_machine(start: Path, pairs, step_seconds: float, max_seconds: float, **changes):
    from catseg.model.config import FINE_TUNE_TRAINING

    train_pairs, val_pairs = pairs
    clock, seen = StepClock(step_seconds), []
    config = dataclasses.replace(FINE_TUNE_TRAINING, batch_size=8, augment=False, max_seconds=max_seconds,
                                 precision="float32", **changes)
    result = train(None, config, train_pairs, val_pairs, initial_model_directory=start, clock=clock,
                   callbacks=[clock.callback(seen)])
    return result, seen


def test_a_fine_tunes_schedule_has_the_same_shape_on_a_four_times_faster_machine(disc_pairs, tmp_path: Path) -> None:
    from catseg.train.budget import PROBE_STEPS
    from catseg.model.config import FINE_TUNE_AVERAGE_SPAN, FINE_TUNE_WARMUP_FRACTION

    train_pairs, val_pairs = disc_pairs  # 24 photos: 3 steps of 8 an epoch
    first = train(MODEL_CONFIG, TrainConfig(epochs=1, batch_size=8, augment=False, max_seconds=None),
                  train_pairs, val_pairs)
    save_model_version(first.model, first.model_config, first.train_config, first.best_metrics, tmp_path / "v1")
    runs = {name: _fine_tune_on_a_machine(tmp_path / "v1", disc_pairs, step_seconds, max_seconds=36.0)
            for name, step_seconds in (("slow", 1.0), ("fast", 0.25))}
    (slow, slow_seen), (fast, fast_seen) = runs["slow"], runs["fast"]
    # The budget buys 12 epochs of 3 one-second steps, or 4 times the steps; each run ends where it planned.
    assert (slow.extra["steps"], fast.extra["steps"]) == (36, 144)
    assert slow.epochs_run == 12 and fast.epochs_run == 48 and slow.stop_reason == fast.stop_reason == "time_budget"
    # Every plan, from the first timed steps on, foresaw that end.
    assert {total for _, total in slow.extra["planned_steps"]} == {36}
    assert {total for _, total in fast.extra["planned_steps"]} == {144}
    peak = slow.train_config.learning_rate
    for run, seen, steps in ((slow, slow_seen, 36), (fast, fast_seen, 144)):
        rates = [rate for rate, _ in seen]
        # Before the first plan the warm-up is spread over the epoch limit: the rate stays low.
        first_plan = run.extra["planned_steps"][0][0]
        assert first_plan <= PROBE_STEPS + 1
        assert all(rate < 0.05 * peak for rate in rates[:first_plan])
        # The rate peaks where the warm-up ends, a share of the run, and anneals to about 1 % by its end.
        top = int(np.argmax(rates))
        assert abs(top / steps - FINE_TUNE_WARMUP_FRACTION) <= 2 / steps, (top, steps)
        assert rates[top] > 0.85 * peak
        assert rates[-1] < 0.02 * peak
        after_peak = rates[top:]
        assert all(earlier >= later for earlier, later in zip(after_peak, after_peak[1:]))
        assert rates[steps // 2] == pytest.approx(peak * 0.505, rel=0.06)  # cosine at half way
        # The weight average spans the same share of either run.
        momentum = seen[-1][1]
        assert 1 / (1 - momentum) == pytest.approx(FINE_TUNE_AVERAGE_SPAN * steps, rel=1e-3)
    # From random weights: no warm-up, the cosine over the planned steps alone.
    clock, seen = StepClock(1.0), []
    scratch = train(MODEL_CONFIG, TrainConfig(epochs=200, batch_size=8, augment=False, max_seconds=18.0,
                                              precision="float32"),
                    train_pairs, val_pairs, clock=clock, callbacks=[clock.callback(seen)])
    assert scratch.extra["steps"] == 18 and seen[0][0] == pytest.approx(1e-3)
    assert seen[-1][0] < 0.05e-3


def test_a_budget_that_ends_inside_the_first_epoch_plans_for_the_steps_it_buys(disc_pairs, tmp_path: Path) -> None:
    train_pairs, val_pairs = disc_pairs
    first = train(MODEL_CONFIG, TrainConfig(epochs=1, batch_size=8, augment=False, max_seconds=None),
                  train_pairs, val_pairs)
    save_model_version(first.model, first.model_config, first.train_config, first.best_metrics, tmp_path / "v1")
    many = [pair for _ in range(3) for pair in train_pairs]  # 72 photos: 9 steps an epoch
    result, seen = _fine_tune_on_a_machine(tmp_path / "v1", (many, val_pairs), 1.0, max_seconds=6.5)
    # Time is up after the 7th step; the plan said so after the probe, and the partial epoch is still scored.
    assert result.extra["steps"] == 7 and result.extra["planned_steps"] == [(4, 7)]
    assert result.epochs_run == 1 and result.stop_reason == "time_budget"
    assert seen[-1][0] < 0.1 * result.train_config.learning_rate  # annealed over the 7 steps, not 1800


def test_fine_tuning_keeps_batch_norm_fixed_unless_asked(disc_pairs, tmp_path: Path) -> None:
    import keras

    train_pairs, val_pairs = disc_pairs
    unet = ModelConfig(architecture="unet", image_size=SIZE, base_filters=4)
    config = TrainConfig(epochs=1, batch_size=8, augment=False, max_seconds=None)
    first = train(unet, config, train_pairs, val_pairs)
    save_model_version(first.model, first.model_config, config, first.best_metrics, tmp_path / "v1")

    def batch_norm_weights(model) -> list[np.ndarray]:
        layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
        assert layers, "the U-Net should have batch-norm layers"
        return [np.array(weight) for layer in layers for weight in layer.get_weights()]

    saved = batch_norm_weights(load_model_version(tmp_path / "v1")[0])
    frozen = train(None, config, train_pairs, val_pairs, initial_model_directory=tmp_path / "v1")
    for before, after in zip(saved, batch_norm_weights(frozen.model)):
        np.testing.assert_array_equal(before, after)
    assert frozen.model.count_params() == first.model.count_params()

    updating = train(None, dataclasses.replace(config, freeze_batch_norm=False), train_pairs, val_pairs,
                     initial_model_directory=tmp_path / "v1")
    assert any(not np.allclose(before, after) for before, after in zip(saved, batch_norm_weights(updating.model)))


def test_training_needs_validation_photos(disc_pairs) -> None:
    train_pairs, _ = disc_pairs
    with pytest.raises(ValueError, match="val_pairs is empty"):
        train(MODEL_CONFIG, TrainConfig(epochs=1, max_seconds=None), train_pairs, [])


def test_u2netp_learns_from_all_seven_maps_and_is_kept_with_the_fused_one(disc_pairs) -> None:
    train_pairs, val_pairs = disc_pairs
    config = TrainConfig(epochs=1, batch_size=8, augment=False, max_seconds=None)
    result = train(ModelConfig(architecture="u2netp", image_size=32), config, train_pairs[:8], val_pairs)
    assert result.model.output_shape == (None, 32, 32, 1)  # the saved network predicts the fused map
    assert 0.0 <= result.best_metrics["val_iou"] <= 1.0
    assert np.isfinite(result.history["loss"]).all()


def test_a_u2netp_fine_tune_can_keep_its_encoder_and_learn_on_smaller_photos(disc_pairs, tmp_path: Path) -> None:
    train_pairs, val_pairs = disc_pairs
    config = TrainConfig(epochs=1, batch_size=8, augment=False, max_seconds=None, precision="float32")
    first = train(ModelConfig(architecture="u2netp", image_size=64), config, train_pairs[:8], val_pairs)
    save_model_version(first.model, first.model_config, config, first.best_metrics, tmp_path / "v1")
    tuned = train(None, dataclasses.replace(config, learning_rate=1e-2, frozen_encoder_stages=4, fine_tune_scale=0.5),
                  train_pairs[:8], val_pairs, initial_model_directory=tmp_path / "v1")
    assert tuned.extra["image_size"] == 32 and first.extra["image_size"] == 64
    # The hold-out is scored where the model predicts, at 64: the starting score is the first run's best.
    assert tuned.starting_metrics["val_iou"] == pytest.approx(first.best_metrics["val_iou"], abs=1e-4)
    assert len(tuned.history["val_iou"]) == 1 and tuned.best_metrics["val_iou"] == tuned.history["val_iou"][0]
    assert tuned.model.input_shape == (None, 64, 64, 3)  # saved at, and predicting at, its own size
    saved = {layer.name: layer.get_weights() for layer in load_model_version(tmp_path / "v1")[0].layers}
    changed = {layer.name for layer in tuned.model.layers
               if any(not np.array_equal(a, b) for a, b in zip(saved[layer.name], layer.get_weights()))}
    encoder = {name for name in saved if name.startswith(("stage1_", "stage2_", "stage3_", "stage4_")) and saved[name]}
    assert encoder and not changed & encoder  # the first four stages kept
    assert {"stage5_in_conv", "stage1d_in_conv", "fuse"} <= changed  # the rest learnt


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_a_run_in_either_precision_returns_a_float32_network(disc_pairs, precision: str) -> None:
    import keras

    train_pairs, val_pairs = disc_pairs
    config = TrainConfig(epochs=1, batch_size=8, augment=False, max_seconds=None, precision=precision)
    result = train(ModelConfig(architecture="unet", image_size=SIZE, base_filters=4), config, train_pairs, val_pairs)
    assert result.model.dtype_policy.name == "float32"
    assert all(layer.dtype_policy.name == "float32" for layer in result.model.layers)
    assert keras.mixed_precision.global_policy().name == "float32"  # the run leaves the process as it found it
    assert 0.0 <= result.best_metrics["val_iou"] <= 1.0


def test_auto_precision_picks_bfloat16_only_where_the_processor_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from catseg.model import networks

    monkeypatch.setattr(networks, "native_bfloat16", lambda: True)
    assert networks.resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(networks, "native_bfloat16", lambda: False)
    assert networks.resolve_precision("auto") == "float32"
    assert networks.resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    with pytest.raises(ValueError, match="Unknown precision"):
        TrainConfig(precision="float16")
    with pytest.raises(ValueError, match="Unknown precision 'float16'"):
        networks.resolve_precision("float16")


def test_a_run_whose_loss_turns_nan_stops_as_diverged_and_keeps_the_epochs_before(disc_pairs) -> None:
    import keras

    class BreakTheWeightsInEpochTwo(keras.callbacks.Callback):
        """Stands in for a learning rate too high: a weight becomes NaN, so the loss does."""

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            if self.epoch == 1 and batch == 0:
                weights = self.model.get_weights()
                weights[-1] = np.full_like(weights[-1], np.nan)  # the last layer: nothing after it can hide a NaN
                self.model.set_weights(weights)

    train_pairs, val_pairs = disc_pairs
    config = TrainConfig(epochs=4, batch_size=8, augment=False, max_seconds=None, precision="float32")
    seen = []
    result = train(MODEL_CONFIG, config, train_pairs, val_pairs, callbacks=[BreakTheWeightsInEpochTwo()],
                   on_batch=lambda epoch, batch, per_epoch, loss: seen.append(loss))
    assert result.stop_reason == "diverged", (seen, result.history)
    assert result.epochs_run == 1 and result.best_metrics["epoch"] == 0  # only the finished, finite epoch counts
    assert seen and all(np.isfinite(seen))  # a NaN loss is never reported as a point on the chart
    assert all(np.isfinite(weight).all() for weight in result.model.get_weights())  # epoch 1's weights are back


def test_with_a_weight_average_the_average_is_scored_kept_and_returned(disc_pairs, tmp_path: Path) -> None:
    from catseg.model.networks import compile_model
    from catseg.train.pipeline import load_examples, make_dataset

    train_pairs, val_pairs = disc_pairs
    config = TrainConfig(epochs=3, batch_size=4, learning_rate=5e-3, augment=False, max_seconds=None,
                         precision="float32")  # bfloat16 epochs would score a hair off the float32 result
    plain = train(MODEL_CONFIG, config, train_pairs, val_pairs)
    averaged = train(MODEL_CONFIG, dataclasses.replace(config, average_momentum=0.9), train_pairs, val_pairs)

    images, masks = load_examples(val_pairs, SIZE)
    evaluated = compile_model(averaged.model, 1e-3).evaluate(
        make_dataset(images, masks, 4, training=False), verbose=0, return_dict=True)
    # The epoch's score is the average's, and the network handed back is that same average.
    assert evaluated["iou"] == pytest.approx(averaged.best_metrics["val_iou"], abs=1e-4)
    assert averaged.history["val_iou"] != pytest.approx(plain.history["val_iou"], abs=1e-4)
    assert any(not np.allclose(a, b) for a, b in zip(plain.model.get_weights(), averaged.model.get_weights()))
