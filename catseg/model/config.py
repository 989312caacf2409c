"""Frozen configuration objects for building and training a segmenter.

A saved model version carries both configs in its ``card.json`` (see
``catseg.model.versions.save_model_version``), so every field must be JSON-safe and
``from_dict(to_dict(config)) == config`` must hold.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, TypeVar

ARCHITECTURES = ("tutorial", "unet", "mobilenet_unet", "u2netp")
LEARNING_RATE_SCHEDULES = ("cosine", "constant")
PRECISIONS = ("auto", "float32", "mixed_bfloat16")
# A fine-tune's recipe (the Train page's, the CLI's and the benches' default when starting from a
# trained model): a third of the from-scratch rate, and every epoch scored and kept as a moving
# average of the weights. The average starts at the starting model and follows the run slowly, so
# a fine-tune on a few dozen photos learns them without the step-to-step noise of small batches
# undoing what the model knew about other cats; without it a short fine-tune at any rate that
# learnt something cost unseen photos more than it gained. Close-up crops, as the starter had in
# training, let the seed-cats close-ups teach it more, and sooner, without costing unseen feral
# photos more (docs/benchmarks.md).
FINE_TUNE_LEARNING_RATE = 3e-4
FINE_TUNE_CLOSE_UP_PROBABILITY = 0.3
# A fine-tune's schedule is shaped by the steps its budget buys (catseg.train.budget), so a slow machine
# gets the same schedule squeezed rather than a run that ends inside its warm-up. Its learning rate
# rises from almost nothing to its peak over this share of the run's steps (a trained network is
# not jolted by the optimiser's first steps), about the share the earlier three warm-up epochs took
# of the runs a fast machine made (docs/benchmarks.md).
FINE_TUNE_WARMUP_FRACTION = 0.15
# ... and its weight average spans this share of the run's steps: the whole run, so the starting
# weights keep a say to the end, however many steps the machine made. A shorter span let a starter
# that takes many fast steps drift on cats its run never showed it (docs/benchmarks.md).
FINE_TUNE_AVERAGE_SPAN = 1.0

_Config = TypeVar("_Config", "ModelConfig", "TrainConfig")


def _from_dict(cls: type[_Config], data: Mapping[str, Any]) -> _Config:
    """Build ``cls`` from a mapping, rejecting keys it does not know."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{cls.__name__} needs a dict, got {type(data).__name__}.")
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(
            f"{cls.__name__} does not know the setting(s) {unknown}; "
            f"known settings are {sorted(known)}. The saved file may come from a "
            "newer catseg version."
        )
    return cls(**dict(data))


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    # bool is an int subclass; True as an epoch count is a bug, not a setting.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r}.")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}.")


def check_precision(setting: str) -> str:
    """`setting` itself when it is one of PRECISIONS; a ValueError that lists them otherwise."""
    if setting not in PRECISIONS:
        raise ValueError(f"Unknown precision {setting!r}; choose one of {', '.join(PRECISIONS)}.")
    return setting


def _check_number(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}.")



def check_image_size(image_size: int, multiple: int) -> None:
    """ValueError unless image_size is a whole multiple of `multiple` (the network halves it that often)."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < multiple:
        raise ValueError(f"image_size must be a whole number >= {multiple}, got {image_size!r}.")
    if image_size % multiple:
        raise ValueError(f"image_size must be a multiple of {multiple}, got {image_size}.")


@dataclass(frozen=True)
class ModelConfig:
    """Which network to build and at which input size.

    architecture: "tutorial" (the original blog's U-Net), "unet" (the default:
        batch-norm U-Net) or "mobilenet_unet" (MobileNetV2 encoder).
    image_size: side of the square model input in pixels; photos are
        letterboxed to it. A multiple of 32 so every architecture can halve it
        five times.
    base_filters: filters of the first "unet" level (doubles per level).
        Ignored by "tutorial" (fixed 8..128) and "mobilenet_unet".
    pretrained: start the MobileNetV2 encoder from ImageNet weights (needs
        them downloaded or in the Keras cache). Only for "mobilenet_unet".
    """

    architecture: str = "unet"
    image_size: int = 128
    base_filters: int = 16
    pretrained: bool = False

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"Unknown architecture {self.architecture!r}; choose one of "
                f"{', '.join(ARCHITECTURES)}."
            )
        _check_int("image_size", self.image_size, 32, 1024)
        if self.image_size % 32:
            raise ValueError(
                f"image_size must be a multiple of 32 (e.g. 128, 160, 192, 256), "
                f"got {self.image_size}."
            )
        _check_int("base_filters", self.base_filters, 4, 256)
        if not isinstance(self.pretrained, bool):
            raise ValueError(f"pretrained must be true or false, got {self.pretrained!r}.")
        if self.pretrained and self.architecture != "mobilenet_unet":
            raise ValueError(
                "pretrained=True only applies to architecture 'mobilenet_unet'; "
                f"{self.architecture!r} always starts from random weights."
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; inverse of ``from_dict``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        """Rebuild from ``to_dict`` output; missing keys take the defaults."""
        return _from_dict(cls, data)


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    The defaults are the Train page's: fine-tuning the starter model (the page's
    default start) for a 5-minute budget, U-Net 128 px / 16 filters when training
    from random weights, batch 4, Adam 1e-3 with a time-aware cosine decay,
    augmentation on. Adam 1e-3 rather than a faster rate, which learnt less in the
    same short budget. From random weights this recipe falls short of the quality
    goal on a small CPU (docs/benchmarks.md has the measurements).

    epochs: upper bound on passes over the training photos.
    batch_size: photos per optimiser step.
    learning_rate: peak Adam learning rate (the Train page and the CLI use
        ``FINE_TUNE_TRAINING`` instead when starting from a model).
    learning_rate_schedule: "cosine" decays to ~0 by the end of the run (the
        end is whichever comes first of ``epochs`` and ``max_seconds``);
        "constant" keeps it fixed.
    augment: random flips/zoom/rotation/colour jitter of training photos.
    close_up_probability: with ``augment``, the share of training examples
        zoomed onto the cat until it fills the frame (a crop around its mask,
        up to 3x), so a network trained on distant cats also learns pet
        portraits. 0 keeps the gentle zoom only.
    early_stopping_patience: stop after this many epochs without a better
        validation IoU; 0 disables early stopping.
    validation_fraction: share of photos held out to pick the best epoch.
    seed: fixes the split, the shuffling and the augmentation.
    max_seconds: wall-time budget for fitting; None for no limit. Training
        stops before an epoch that would overrun it.
    freeze_batch_norm: when fine-tuning a saved model, keep its batch-norm
        layers as they are (inference mode, statistics and scales fixed). With
        a few dozen photos in small batches the batch statistics are noisy, and
        fine-tunes that kept them fixed scored higher than those that updated
        them. No effect from random weights.
    precision: "float32", "mixed_bfloat16" (Keras mixed precision: bfloat16 arithmetic,
        float32 weights) or "auto": mixed_bfloat16 on a processor with native bfloat16
        instructions (where it is faster), float32 elsewhere (where bfloat16 is emulated
        and slow). Saved models are always float32.
    average_momentum: above 0, every epoch is scored, chosen and saved with a moving average
        of the weights (Polyak averaging: after each step the average moves 1 - momentum of
        the way to the new weights; 0.99 averages about the last hundred steps). The
        average smooths out the step-to-step noise of small batches; in a fine-tune it
        starts at the starting weights, so early epochs stay close to them. 0 turns it off.
    average_span: above 0 (and average_momentum 0), the same moving average with its momentum
        set from the run's planned steps, so that it spans about this share of them
        (catseg.train.budget.average_momentum): a slow machine's short run moves as far from its
        start as a fast machine's long one.
    frozen_encoder_stages: when fine-tuning U^2-Net-p, keep its first this many encoder
        stages (of six) as they are: no gradient flows into them, so a step is cheaper. 0
        trains them all; no effect on other networks.
    fine_tune_scale: when fine-tuning a fully convolutional network (not "mobilenet_unet"),
        show it the photos at this share of its input size, rounded to a multiple of 32:
        fewer pixels a step. The hold-out is scored at that size too; the saved model keeps,
        and predicts at, its own size.
    """

    epochs: int = 200
    batch_size: int = 4
    learning_rate: float = 1e-3
    learning_rate_schedule: str = "cosine"
    augment: bool = True
    close_up_probability: float = 0.0
    early_stopping_patience: int = 0
    validation_fraction: float = 0.25
    seed: int = 42
    max_seconds: float | None = 300.0
    freeze_batch_norm: bool = True
    precision: str = "auto"
    average_momentum: float = 0.0
    average_span: float = 0.0
    frozen_encoder_stages: int = 0
    fine_tune_scale: float = 1.0

    def __post_init__(self) -> None:
        _check_int("epochs", self.epochs, 1, 100_000)
        _check_int("batch_size", self.batch_size, 1, 1024)
        _check_number("learning_rate", self.learning_rate, 1e-7, 1.0)
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be greater than 0.")
        if self.learning_rate_schedule not in LEARNING_RATE_SCHEDULES:
            raise ValueError(
                f"Unknown learning_rate_schedule {self.learning_rate_schedule!r}; "
                f"choose one of {', '.join(LEARNING_RATE_SCHEDULES)}."
            )
        if not isinstance(self.augment, bool):
            raise ValueError(f"augment must be true or false, got {self.augment!r}.")
        _check_number("close_up_probability", self.close_up_probability, 0.0, 1.0)
        if not isinstance(self.freeze_batch_norm, bool):
            raise ValueError(f"freeze_batch_norm must be true or false, got {self.freeze_batch_norm!r}.")
        check_precision(self.precision)
        _check_number("average_momentum", self.average_momentum, 0.0, 0.9999)
        _check_number("average_span", self.average_span, 0.0, 1.0)
        if self.average_momentum and self.average_span:
            raise ValueError("Set either average_momentum (a fixed pace) or average_span (a share of the run), "
                             "not both.")
        _check_int("frozen_encoder_stages", self.frozen_encoder_stages, 0, 6)
        _check_number("fine_tune_scale", self.fine_tune_scale, 0.25, 1.0)
        _check_int("early_stopping_patience", self.early_stopping_patience, 0, 100_000)
        _check_number("validation_fraction", self.validation_fraction, 0.0, 1.0)
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                "validation_fraction must be strictly between 0 and 1 (e.g. 0.25), "
                f"got {self.validation_fraction}."
            )
        _check_int("seed", self.seed, 0, 2**31 - 1)
        if self.max_seconds is not None:
            _check_number("max_seconds", self.max_seconds, 1.0, 7 * 24 * 3600.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; inverse of ``from_dict``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        """Rebuild from ``to_dict`` output; missing keys take the defaults."""
        return _from_dict(cls, data)


def training_image_size(model_config: ModelConfig, train_config: TrainConfig, fine_tune: bool) -> int:
    """The size photos are trained at: the model's, or a fine-tune's share of it (TrainConfig.fine_tune_scale)."""
    if not fine_tune or model_config.architecture == "mobilenet_unet":
        return model_config.image_size  # MobileNetV2 keeps the size it was built with
    return max(32, round(model_config.image_size * train_config.fine_tune_scale / 32) * 32)


# A fine-tune's step costs about half as much with U^2-Net-p's first four encoder stages kept (no
# gradient flows into its full- to eighth-resolution blocks) and photos shown at three quarters of
# the model's size; the saved model still predicts at its own size (docs/benchmarks.md,
# bench/finetune_step_speed.py).
FINE_TUNE_FROZEN_ENCODER_STAGES = 4
FINE_TUNE_SCALE = 0.75

# The defaults of a run that starts from a trained model (see FINE_TUNE_LEARNING_RATE).
FINE_TUNE_TRAINING = TrainConfig(learning_rate=FINE_TUNE_LEARNING_RATE, average_span=FINE_TUNE_AVERAGE_SPAN,
                                 close_up_probability=FINE_TUNE_CLOSE_UP_PROBABILITY,
                                 frozen_encoder_stages=FINE_TUNE_FROZEN_ENCODER_STAGES,
                                 fine_tune_scale=FINE_TUNE_SCALE)
