"""Train a segmenter on (photo, mask) file pairs and keep its best epoch.

Progress is reported through plain callables so the caller (e.g. a worker
process writing to a database) needs no Keras knowledge:

* ``on_batch(epoch, batch, batches_per_epoch, loss)`` after every batch,
* ``on_epoch(epoch, logs, preview)`` after every epoch's validation,
* ``should_stop()`` polled after every batch; returning True ends training
  after the current batch (the partial epoch is still validated),
* ``on_start(metrics)`` once before training when fine-tuning: the starting
  model's {"val_loss", "val_iou"} on the validation photos, the score to beat.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from catseg.model.config import FINE_TUNE_WARMUP_EPOCHS, ModelConfig, TrainConfig
from catseg.train.pipeline import PathLike, load_examples, make_dataset

OnBatch = Callable[[int, int, int, float], None]
OnEpoch = Callable[[int, dict[str, float], np.ndarray], None]
ShouldStop = Callable[[], bool]
OnStart = Callable[[dict[str, float]], None]


@dataclass
class TrainResult:
    """What ``train`` produced.

    model: the network with its best epoch's weights restored (compiled).
    history: per-epoch lists, e.g. {"loss": [...], "iou": [...], "val_loss": [...],
        "val_iou": [...], "learning_rate": [...]}.
    best_metrics: logs of the best epoch (highest val_iou) plus "epoch" (0-based).
    stop_reason: "completed", "early_stopping", "time_budget", "requested" or "diverged"
        (the loss stopped being a finite number; the epochs before it are kept).
    starting_metrics: a fine-tune's starting model on the validation photos before
        training, {"val_loss", "val_iou"}; empty when training from random weights.
    """

    model: Any
    model_config: ModelConfig
    train_config: TrainConfig
    history: dict[str, list[float]]
    best_metrics: dict[str, float]
    epochs_run: int
    seconds: float
    stop_reason: str
    extra: dict[str, Any] = field(default_factory=dict)
    starting_metrics: dict[str, float] = field(default_factory=dict)


def make_preview(photo: np.ndarray, true_mask: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Side-by-side uint8 RGB strip: photo | true mask | predicted mask (S, 3S, 3)."""
    def gray_to_rgb(mask: np.ndarray) -> np.ndarray:
        return np.repeat(np.asarray(mask).reshape(photo.shape[:2] + (1,)), 3, axis=-1)

    truth = gray_to_rgb(true_mask.astype(np.uint8) * 255)
    prediction = gray_to_rgb(np.clip(np.asarray(predicted) * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return np.concatenate([photo, truth, prediction], axis=1)


def _make_control_callback(
    train_config: TrainConfig,
    batches_per_epoch: int,
    preview_example: tuple[np.ndarray, np.ndarray],
    on_batch: OnBatch | None,
    on_epoch: OnEpoch | None,
    should_stop: ShouldStop | None,
    warmup_batches: int = 0,
) -> Any:
    """One Keras callback for schedule, time budget, stop requests, best weights and hooks.

    warmup_batches: the learning rate rises linearly to its scheduled value over this many
    first batches (0: no warm-up).

    Kept in one place so the order of these decisions is explicit.
    """
    import keras

    class TrainingControl(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.started = time.monotonic()
            self.best_iou = -math.inf
            self.best_weights: list[np.ndarray] | None = None
            self.best_logs: dict[str, float] = {}
            self.epochs_without_improvement = 0
            self.stop_reason = "completed"
            self.epoch_seconds: list[float] = []
            self.epoch_started = self.started
            self.current_epoch = 0
            self.history: dict[str, list[float]] = {}

        def elapsed(self) -> float:
            return time.monotonic() - self.started

        def _progress(self, epoch: int, batch: int) -> float:
            # The run ends at whichever limit comes first, so the cosine
            # schedule follows whichever is further along: it still anneals
            # fully when a slow machine hits max_seconds before `epochs`.
            by_steps = (epoch * batches_per_epoch + batch) / (train_config.epochs * batches_per_epoch)
            by_time = self.elapsed() / train_config.max_seconds if train_config.max_seconds else 0.0
            return min(1.0, max(by_steps, by_time))

        def _set_learning_rate(self, epoch: int, batch: int) -> None:
            cosine = train_config.learning_rate_schedule == "cosine"
            if not cosine and not warmup_batches:
                return
            factor = 1.0
            if cosine:
                # Floor at 1% of the peak: the last epochs still polish a little.
                factor = 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * self._progress(epoch, batch)))
            step = epoch * batches_per_epoch + batch
            if step < warmup_batches:
                factor *= (step + 1) / warmup_batches
            self.model.optimizer.learning_rate.assign(train_config.learning_rate * factor)

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.current_epoch = epoch
            self.epoch_started = time.monotonic()

        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            self._set_learning_rate(self.current_epoch, batch)

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            loss = float((logs or {}).get("loss", float("nan")))
            if not math.isfinite(loss):
                # Once the loss is NaN or infinite every later step is too: stop, keep the
                # epochs before it, and say why.
                self.stop_reason = "diverged"
                self.model.stop_training = True
                return
            if on_batch is not None:
                on_batch(self.current_epoch, batch, batches_per_epoch, loss)
            if should_stop is not None and should_stop():
                self.stop_reason = "requested"
                self.model.stop_training = True
            elif train_config.max_seconds and self.elapsed() > train_config.max_seconds:
                self.stop_reason = "time_budget"
                self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if self.stop_reason == "diverged":
                return  # its scores are NaN: neither a candidate for the best epoch nor a point on a chart
            logs = {key: float(value) for key, value in (logs or {}).items()}
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            logs["seconds"] = self.elapsed()
            for key, value in logs.items():
                self.history.setdefault(key, []).append(value)
            self.epoch_seconds.append(time.monotonic() - self.epoch_started)

            val_iou = logs.get("val_iou", -math.inf)
            if val_iou > self.best_iou:
                self.best_iou = val_iou
                # Copies in memory: cheaper than a checkpoint file, and nothing to clean up.
                self.best_weights = [np.array(weight) for weight in self.model.get_weights()]
                self.best_logs = dict(logs, epoch=float(epoch))
                self.epochs_without_improvement = 0
            else:
                self.epochs_without_improvement += 1

            if on_epoch is not None:
                photo, true_mask = preview_example
                predicted = self.model.predict_on_batch(photo[None].astype(np.float32) / 255.0)
                # convert_to_numpy: a PyTorch or JAX backend returns device tensors, not arrays.
                predicted = keras.ops.convert_to_numpy(predicted)
                on_epoch(epoch, logs, make_preview(photo, true_mask[..., 0], predicted[0, ..., 0]))

            if self.model.stop_training:
                return
            patience = train_config.early_stopping_patience
            if patience and self.epochs_without_improvement >= patience:
                self.stop_reason = "early_stopping"
                self.model.stop_training = True
            elif train_config.max_seconds:
                # Do not start an epoch that would overrun the budget.
                typical_epoch = float(np.median(self.epoch_seconds[-5:]))
                if self.elapsed() + typical_epoch > train_config.max_seconds:
                    self.stop_reason = "time_budget"
                    self.model.stop_training = True

    return TrainingControl()


def _freeze_batch_norm(model: Any) -> None:
    """Run every BatchNormalization layer (nested models too) in inference mode, untrained."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            # Keras 3: a non-trainable BatchNormalization also stops updating its moving statistics.
            layer.trainable = False
        elif hasattr(layer, "layers"):
            _freeze_batch_norm(layer)


def _check_pairs(name: str, pairs: Sequence[tuple[PathLike, PathLike]]) -> list[tuple[PathLike, PathLike]]:
    pairs = list(pairs)
    if not pairs:
        raise ValueError(
            f"{name} is empty; training needs labelled photos for both training and "
            "validation (see catseg.train.splits.stable_split)."
        )
    return pairs


def train(
    model_config: ModelConfig | None,
    train_config: TrainConfig,
    train_pairs: Sequence[tuple[PathLike, PathLike]],
    val_pairs: Sequence[tuple[PathLike, PathLike]],
    callbacks: Sequence[Any] = (),
    on_batch: OnBatch | None = None,
    on_epoch: OnEpoch | None = None,
    should_stop: ShouldStop | None = None,
    initial_model_directory: Path | str | None = None,
    verbose: int = 0,
    on_start: OnStart | None = None,
) -> TrainResult:
    """Train on ``train_pairs``, pick the epoch with the best validation IoU.

    train_pairs / val_pairs: (photo_path, mask_path) tuples.
    callbacks: extra Keras callbacks, appended after catseg's own.
    initial_model_directory: a saved model version to fine-tune; its
        ModelConfig is used (pass ``model_config=None``, the same config, or the
        same config with another image_size to fine-tune at that size).
    Returns a ``TrainResult`` whose model holds the best epoch's weights (always float32).
    """
    import keras

    from catseg.model.networks import compile_model, dtype_policy, in_precision, resolve_precision
    from catseg.model.u2netp import with_side_outputs

    if not isinstance(train_config, TrainConfig):
        raise ValueError(f"train needs a TrainConfig, got {type(train_config).__name__}.")
    train_pairs = _check_pairs("train_pairs", train_pairs)
    val_pairs = _check_pairs("val_pairs", val_pairs)

    started = time.monotonic()
    precision = resolve_precision(train_config.precision)
    with dtype_policy(precision):
        keras.utils.set_random_seed(train_config.seed)
        model, model_config = _starting_model(model_config, initial_model_directory, train_config, precision)
        # U^2-Net-p learns from all seven of its maps (deep supervision) and is kept with its fused
        # map only; other networks train as they are. Both views share one set of weights.
        fit_model = with_side_outputs(model)
        compile_model(fit_model, train_config.learning_rate, average_momentum=train_config.average_momentum)

        size = model_config.image_size
        train_images, train_masks = load_examples(train_pairs, size)
        val_images, val_masks = load_examples(val_pairs, size)
        train_dataset = make_dataset(
            train_images, train_masks, train_config.batch_size, training=True,
            augment=train_config.augment, seed=train_config.seed,
            close_up_probability=train_config.close_up_probability,
        )
        val_dataset = make_dataset(val_images, val_masks, train_config.batch_size, training=False)
        batches_per_epoch = math.ceil(len(train_images) / train_config.batch_size)

        starting_metrics: dict[str, float] = {}
        if initial_model_directory is not None:
            # Score the starting model on the same photos and metric as every epoch, so a
            # fine-tune shows whether it beat where it started (a few seconds of inference).
            scores = fit_model.evaluate(val_dataset, verbose=0, return_dict=True)
            starting_metrics = {"val_loss": float(scores["loss"]), "val_iou": float(scores["iou"])}
            if on_start is not None:
                on_start(starting_metrics)

        # Adam's first steps move every weight by about the full learning rate, whatever its
        # gradient: harmless on random weights, but on a trained network that jolt undoes what it
        # knows before the run has learnt anything, so a fine-tune eases in.
        warmup_batches = FINE_TUNE_WARMUP_EPOCHS * batches_per_epoch if initial_model_directory is not None else 0
        control = _make_control_callback(
            train_config, batches_per_epoch, (val_images[0], val_masks[0]), on_batch, on_epoch, should_stop,
            warmup_batches,
        )
        # With a weight average, Keras swaps it into the network for validation and for the
        # epoch's end, so the control callback (after it) scores and keeps the average.
        averaging = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if train_config.average_momentum else []
        fit_model.fit(
            train_dataset,
            validation_data=val_dataset,
            epochs=train_config.epochs,
            callbacks=[*averaging, control, *callbacks],
            shuffle=False,  # the dataset shuffles itself; Keras warns otherwise
            verbose=verbose,
        )
        if control.best_weights is not None:
            fit_model.set_weights(control.best_weights)
    # Saved and used for inference as float32: whoever loads it picks the precision.
    model = in_precision(model, "float32")
    return TrainResult(
        model=model,
        model_config=model_config,
        train_config=train_config,
        history=control.history,
        best_metrics=control.best_logs,
        epochs_run=len(control.history.get("loss", [])),
        seconds=time.monotonic() - started,
        stop_reason=control.stop_reason,
        extra={"train_examples": len(train_images), "val_examples": len(val_images)},
        starting_metrics=starting_metrics,
    )


def _starting_model(
    model_config: ModelConfig | None, initial_model_directory: Path | str | None, train_config: TrainConfig,
    precision: str,
) -> tuple[Any, ModelConfig]:
    """(network, its ModelConfig) to train: a new one, or a saved version to fine-tune."""
    from catseg.model.networks import at_input_size, build_model, in_precision
    from catseg.model.versions import load_model_version

    if initial_model_directory is None:
        if not isinstance(model_config, ModelConfig):
            raise ValueError("train needs a ModelConfig (or an initial_model_directory to fine-tune).")
        return build_model(model_config), model_config
    model, saved_config, _card = load_model_version(initial_model_directory)
    if model_config is not None and model_config != saved_config:
        if dataclasses.replace(model_config, image_size=saved_config.image_size) != saved_config:
            raise ValueError(
                f"The model in {initial_model_directory} was built with {saved_config}, not "
                f"{model_config}; fine-tuning keeps the saved architecture (only the input size "
                "may change), so pass model_config=None or the saved config."
            )
        # Same weights on larger (or smaller) photos: a fully convolutional U-Net allows it,
        # and at_input_size says clearly when a network does not.
        model = at_input_size(model, model_config.image_size)
    else:
        model_config = saved_config
    model = in_precision(model, precision)
    if train_config.freeze_batch_norm:
        _freeze_batch_norm(model)
    return model, model_config
