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

from catseg.model.config import FINE_TUNE_WARMUP_FRACTION, ModelConfig, TrainConfig, training_image_size
from catseg.train.budget import BudgetSchedule
from catseg.train.pipeline import PathLike, load_examples, make_dataset
from catseg.train.steering import (OnBatch, OnEpoch, ShouldStop, fixed_average_momentum, make_control_callback,
                                   steerable_average_momentum)

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
        momentum = (steerable_average_momentum(fit_model.optimizer, schedule.average_momentum())
                    if train_config.average_span else None)
        control = make_control_callback(
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
                fixed_average_momentum(fit_model.optimizer, momentum)
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
