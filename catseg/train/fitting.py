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

from catseg.train.budget import PROBE_STEPS, BudgetSchedule, StepTimes
from catseg.model.config import FINE_TUNE_WARMUP_FRACTION, ModelConfig, TrainConfig, training_image_size
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
    extra: photo counts, the "image_size" photos were trained at, "steps" made, "planned_steps" ((steps done, total planned) at each
        plan) and "step_times" (catseg.train.budget.StepTimes, None when no epoch finished).
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
    schedule: BudgetSchedule,
    average_momentum: Any = None,
    clock: Callable[[], float] = time.monotonic,
    scoring: tuple[Any, Any] | None = None,
) -> Any:
    """One Keras callback for schedule, time budget, stop requests, best weights and hooks.

    schedule: the run's planned steps and its learning rate and average's pace over them; the
        callback times every step and epoch for it and re-plans after the probe steps and
        after every epoch.
    average_momentum: the variable the optimiser reads its weight average's momentum from,
        set from the schedule before every step; None keeps the compiled momentum.
    clock: seconds, monotonic (tests pass their own).
    scoring: (network, validation batches) that score each epoch instead of Keras' validation,
        when the network trains at another size than it predicts at: the same weights at the
        model's own size. The preview comes from that network too.

    Kept in one place so the order of these decisions is explicit.
    """
    import keras

    class TrainingControl(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.started = clock()
            self.best_iou = -math.inf
            self.best_weights: list[np.ndarray] | None = None
            self.best_logs: dict[str, float] = {}
            self.epochs_without_improvement = 0
            self.stop_reason = "completed"
            self.epoch_started = self.started
            self.step_started = self.started
            self.first_step_seconds = 0.0
            self.current_epoch = 0
            self.steps = 0  # steps finished since the run's start
            self.history: dict[str, list[float]] = {}

        def elapsed(self) -> float:
            return clock() - self.started

        def _apply_schedule(self) -> None:
            if schedule.cosine or schedule.warmup_fraction:
                factor = schedule.learning_rate_factor(self.steps)
                self.model.optimizer.learning_rate.assign(train_config.learning_rate * factor)
            if average_momentum is not None:
                average_momentum.assign(schedule.average_momentum())

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.current_epoch = epoch
            self.epoch_started = clock()

        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            self._apply_schedule()
            self.step_started = clock()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            seconds = clock() - self.step_started
            if self.steps == 0:
                self.first_step_seconds = seconds
            schedule.measured_step(self.steps, seconds)
            self.steps += 1
            if len(schedule.step_seconds) == PROBE_STEPS:
                # The first steps are timed: plan the run's length, and so its schedule, from them.
                schedule.replan(self.steps, self.elapsed())
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
            if scoring is not None:
                scores = scoring[0].evaluate(scoring[1], verbose=0, return_dict=True)
                logs["val_loss"], logs["val_iou"] = float(scores["loss"]), float(scores["iou"])
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            logs["seconds"] = self.elapsed()
            for key, value in logs.items():
                self.history.setdefault(key, []).append(value)

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
                preview_model = scoring[0] if scoring is not None else self.model
                predicted = preview_model.predict_on_batch(photo[None].astype(np.float32) / 255.0)
                # convert_to_numpy: a PyTorch or JAX backend returns device tensors, not arrays.
                predicted = keras.ops.convert_to_numpy(predicted)
                on_epoch(epoch, logs, make_preview(photo, true_mask[..., 0], predicted[0, ..., 0]))
            # The whole epoch, its validation and hooks included: what the next one will cost.
            epoch_seconds = clock() - self.epoch_started
            if self.steps == batches_per_epoch:
                epoch_seconds -= self.first_step_seconds - schedule.typical_step() if schedule.step_seconds else 0.0
            schedule.epoch_seconds.append(epoch_seconds)

            if self.model.stop_training:
                return
            patience = train_config.early_stopping_patience
            if patience and self.epochs_without_improvement >= patience:
                self.stop_reason = "early_stopping"
                self.model.stop_training = True
            elif train_config.max_seconds:
                # Do not start an epoch that would overrun the budget; the schedule plans for the same end.
                schedule.replan(self.steps, self.elapsed())
                if self.elapsed() + schedule.typical_epoch() > train_config.max_seconds:
                    self.stop_reason = "time_budget"
                    self.model.stop_training = True

        def step_times(self, batch_size: int, held_out_photos: int) -> StepTimes | None:
            """The run's measured costs per photo (see catseg.train.budget.StepTimes); None before any were timed."""
            if not schedule.step_seconds or not schedule.epoch_seconds:
                return None
            step = schedule.typical_step()
            beyond_steps = max(0.0, schedule.typical_epoch() - batches_per_epoch * step)
            return StepTimes(step / batch_size, beyond_steps / max(1, held_out_photos),
                             max(0.0, self.first_step_seconds - step))

    return TrainingControl()


def _steerable_average_momentum(optimizer: Any, momentum: float) -> Any:
    """Make the optimiser read its weight average's momentum from a variable, returned, that a
    callback can set between steps. Keras reads ``ema_momentum`` inside the traced step, where a
    plain number would stay what it was at the first trace. Put back as a number by
    ``_fixed_average_momentum`` before the network is saved."""
    import keras

    variable = keras.Variable(momentum, trainable=False, dtype="float32", name="average_momentum")
    # Past Keras' attribute tracking: the momentum is a setting, not optimiser state to save.
    object.__setattr__(optimizer, "ema_momentum", variable)
    return variable


def _fixed_average_momentum(optimizer: Any, variable: Any) -> None:
    import keras

    object.__setattr__(optimizer, "ema_momentum", float(keras.ops.convert_to_numpy(variable)))


def _freeze_batch_norm(model: Any) -> None:
    """Run every BatchNormalization layer (nested models too) in inference mode, untrained."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            # Keras 3: a non-trainable BatchNormalization also stops updating its moving statistics.
            layer.trainable = False
        elif hasattr(layer, "layers"):
            _freeze_batch_norm(layer)


def freeze_encoder(model: Any, stages: int) -> int:
    """Keep the first `stages` encoder stages of a U^2-Net-p (layers named ``stage1_`` ..) fixed; returns
    how many layers it froze (0 for a network without such stages).

    No gradient then flows into those stages at all: they are the full- and half-resolution
    blocks, where most of a step's backward pass is spent.
    """
    frozen = 0
    prefixes = tuple(f"stage{stage}_" for stage in range(1, stages + 1))
    for layer in model.layers:
        if layer.name.startswith(prefixes) and layer.weights:
            layer.trainable = False
            frozen += 1
    return frozen


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
    clock: Callable[[], float] = time.monotonic,
) -> TrainResult:
    """Train on ``train_pairs``, pick the epoch with the best validation IoU.

    train_pairs / val_pairs: (photo_path, mask_path) tuples.
    callbacks: extra Keras callbacks, appended after catseg's own.
    initial_model_directory: a saved model version to fine-tune; its
        ModelConfig is used (pass ``model_config=None``, the same config, or the
        same config with another image_size to fine-tune at that size).
    clock: seconds, monotonic: what the time budget and the schedule's plan are measured with
        (tests pass their own).
    Returns a ``TrainResult`` whose model holds the best epoch's weights (always float32).
    """
    import keras

    from catseg.model.networks import at_input_size, compile_model, dtype_policy, in_precision, resolve_precision
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
        fit_model = scoring_model = with_side_outputs(model)
        size = training_image_size(model_config, train_config, fine_tune=initial_model_directory is not None)
        if size != model_config.image_size:
            # The same layers, so the same weights, on smaller photos; `model` keeps its own size,
            # and the hold-out is scored there, where the model will predict.
            fit_model = at_input_size(scoring_model, size)
            compile_model(scoring_model, train_config.learning_rate)
        fine_tune = initial_model_directory is not None
        averaging = bool(train_config.average_momentum or train_config.average_span)
        compile_model(fit_model, train_config.learning_rate,
                      average_momentum=train_config.average_momentum or (0.99 if averaging else 0.0))

        train_images, train_masks = load_examples(train_pairs, size)
        val_images, val_masks = load_examples(val_pairs, model_config.image_size)
        train_dataset = make_dataset(
            train_images, train_masks, train_config.batch_size, training=True,
            augment=train_config.augment, seed=train_config.seed,
            close_up_probability=train_config.close_up_probability,
        )
        val_dataset = make_dataset(val_images, val_masks, train_config.batch_size, training=False)
        batches_per_epoch = math.ceil(len(train_images) / train_config.batch_size)

        starting_metrics: dict[str, float] = {}
        validation_seconds = 0.0
        if fine_tune:
            # Score the starting model on the same photos and metric as every epoch, so a
            # fine-tune shows whether it beat where it started (a few seconds of inference).
            scoring_started = clock()
            scores = scoring_model.evaluate(val_dataset, verbose=0, return_dict=True)
            validation_seconds = clock() - scoring_started
            starting_metrics = {"val_loss": float(scores["loss"]), "val_iou": float(scores["iou"])}
            if on_start is not None:
                on_start(starting_metrics)

        # Adam's first steps move every weight by about the full learning rate, whatever its
        # gradient: harmless on random weights, but on a trained network that jolt undoes what it
        # knows before the run has learnt anything, so a fine-tune eases in.
        schedule = BudgetSchedule(
            step_limit=train_config.epochs * batches_per_epoch, steps_per_epoch=batches_per_epoch,
            max_seconds=train_config.max_seconds, warmup_fraction=FINE_TUNE_WARMUP_FRACTION if fine_tune else 0.0,
            cosine=train_config.learning_rate_schedule == "cosine", average_span=train_config.average_span,
            validation_seconds=validation_seconds,
        )
        momentum = (_steerable_average_momentum(fit_model.optimizer, schedule.average_momentum())
                    if train_config.average_span else None)
        control = _make_control_callback(
            train_config, batches_per_epoch, (val_images[0], val_masks[0]), on_batch, on_epoch, should_stop,
            schedule, momentum, clock, (scoring_model, val_dataset) if scoring_model is not fit_model else None,
        )
        # With a weight average, Keras swaps it into the network for validation and for the
        # epoch's end, so the control callback (after it) scores and keeps the average.
        swapping = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if averaging else []
        try:
            fit_model.fit(
                train_dataset,
                validation_data=val_dataset if scoring_model is fit_model else None,
                epochs=train_config.epochs,
                callbacks=[*swapping, control, *callbacks],
                shuffle=False,  # the dataset shuffles itself; Keras warns otherwise
                verbose=verbose,
            )
        finally:
            if momentum is not None:
                _fixed_average_momentum(fit_model.optimizer, momentum)
        if control.best_weights is not None:
            fit_model.set_weights(control.best_weights)
        step_times = control.step_times(train_config.batch_size, len(val_images))
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
        extra={"train_examples": len(train_images), "val_examples": len(val_images), "image_size": size,
               "steps": control.steps,
               "planned_steps": schedule.plans, "step_times": step_times},
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
    freeze_encoder(model, train_config.frozen_encoder_stages)
    return model, model_config
