"""The Keras callback that steers a training run, and the optimiser's weight-average momentum it paces.

``make_control_callback`` applies the run's budget schedule (``catseg.train.budget``), keeps the
time budget and stop requests, keeps the best epoch's weights and reports batches and epochs with
a preview picture to the caller's hooks (see ``catseg.train.fitting``).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np

from catseg.model.config import TrainConfig
from catseg.train.budget import PROBE_STEPS, BudgetSchedule, StepTimes

OnBatch = Callable[[int, int, int, float], None]
OnEpoch = Callable[[int, dict[str, float], np.ndarray], None]
ShouldStop = Callable[[], bool]


def make_preview(photo: np.ndarray, true_mask: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Side-by-side uint8 RGB strip: photo | true mask | predicted mask (S, 3S, 3)."""
    def gray_to_rgb(mask: np.ndarray) -> np.ndarray:
        return np.repeat(np.asarray(mask).reshape(photo.shape[:2] + (1,)), 3, axis=-1)

    truth = gray_to_rgb(true_mask.astype(np.uint8) * 255)
    prediction = gray_to_rgb(np.clip(np.asarray(predicted) * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return np.concatenate([photo, truth, prediction], axis=1)


def make_control_callback(
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


def steerable_average_momentum(optimizer: Any, momentum: float) -> Any:
    """Make the optimiser read its weight average's momentum from a variable, returned, that a
    callback can set between steps. Keras reads ``ema_momentum`` inside the traced step, where a
    plain number would stay what it was at the first trace. Put back as a number by
    ``fixed_average_momentum`` before the network is saved."""
    import keras

    variable = keras.Variable(momentum, trainable=False, dtype="float32", name="average_momentum")
    # Past Keras' attribute tracking: the momentum is a setting, not optimiser state to save.
    object.__setattr__(optimizer, "ema_momentum", variable)
    return variable


def fixed_average_momentum(optimizer: Any, variable: Any) -> None:
    import keras

    object.__setattr__(optimizer, "ema_momentum", float(keras.ops.convert_to_numpy(variable)))
