"""A run shaped by its time budget: the steps it will make, its schedule over them, and what a
budget buys on this machine.

A run's learning-rate warm-up, cosine decay and the pace of its weight average are fractions
of the steps the run will make, not of epochs: a slow machine that makes a quarter of the steps
gets the same shape of schedule, squeezed, instead of a run that ends inside its warm-up.
`BudgetSchedule` plans those steps from the measured time of the first steps and of each epoch;
the run's stop rule (catseg.train.fitting) ends it where the plan says.

The step times a run measured are kept per machine and network in `step_times.json` under
CATSEG_HOME (`record_step_times`), so the Train page and `catseg train` can say before a run
what its minutes buy (`budget_estimate`). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STEP_TIMES_FILENAME = "step_times.json"
# The run's first step traces the network's training function, so it is left out of the step time.
TRACED_STEPS = 1
# Steps timed after the traced one before the run's length is first planned.
PROBE_STEPS = 3
# A run that makes fewer passes than this over its photos is suggested a longer budget: the
# fine-tunes in docs/benchmarks.md that gained made a dozen passes or more, those of three or
# four changed nothing.
USEFUL_PASSES = 10


def planned_steps(step_limit: int, steps_per_epoch: int, steps_done: int, seconds_left: float | None,
                  step_seconds: float, epoch_seconds: float) -> int:
    """The steps a run will have made when it ends, by its stop rule.

    A run ends at `step_limit` (its epochs), when its time is up in the middle of its first
    epoch, or before an epoch that would overrun the budget (`epoch_seconds`, validation
    included). `steps_done` counts from the run's start; an unfinished epoch is finished first.
    """
    if seconds_left is None:
        return step_limit
    steps, left = steps_done, seconds_left
    in_epoch = steps_done % steps_per_epoch
    if in_epoch or steps_done == 0:
        # Mid-epoch (the first epoch always starts): the epoch goes on until it ends or time is up.
        rest = (steps_per_epoch - in_epoch) * step_seconds + (epoch_seconds - steps_per_epoch * step_seconds)
        if rest > left:
            return min(step_limit, steps_done + max(1, math.ceil(left / step_seconds)))
        steps, left = steps_done + steps_per_epoch - in_epoch, left - rest
    more_epochs = math.floor(left / epoch_seconds) if epoch_seconds > 0 else 0
    return max(1, min(step_limit, steps + more_epochs * steps_per_epoch))


def learning_rate_factor(step: int, total_steps: int, warmup_fraction: float, cosine: bool) -> float:
    """The share of the peak learning rate at `step` (from 0) of a run of `total_steps`.

    A straight rise over the first `warmup_fraction` of the steps, times a cosine decay over
    the whole run to 1 % of the peak (its last steps still polish a little), when `cosine`.
    """
    factor = 1.0
    if cosine:
        progress = min(1.0, step / max(1, total_steps))
        factor = 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))
    warmup_steps = warmup_fraction * total_steps
    if warmup_fraction and step < warmup_steps:
        factor *= min(1.0, (step + 1) / warmup_steps)
    return factor


def average_momentum(total_steps: int, span_fraction: float) -> float:
    """The per-step momentum of a weight average that spans about `span_fraction` of a run's steps
    (1 - 1/span: the average of the last `span` steps, roughly)."""
    span = max(1.0, span_fraction * total_steps)
    return 1.0 - 1.0 / span


@dataclass
class BudgetSchedule:
    """The run's planned length and its schedule, re-planned from measured times.

    step_limit: epochs x steps per epoch, the most the run may make.
    max_seconds: the time budget from the run's start (None: the epochs alone end it).
    validation_seconds: a first guess at an epoch's validation time, until an epoch has been
        timed (a fine-tune's scoring of its starting model; 0 when there is none).
    """

    step_limit: int
    steps_per_epoch: int
    max_seconds: float | None
    warmup_fraction: float = 0.0
    cosine: bool = True
    average_span: float = 0.0
    validation_seconds: float = 0.0
    total_steps: int = field(init=False)
    step_seconds: list[float] = field(init=False, default_factory=list)
    epoch_seconds: list[float] = field(init=False, default_factory=list)
    plans: list[tuple[int, int]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        # Until the first steps are timed the run is assumed to reach its epoch limit: the
        # warm-up then starts at least as gently as the one planned later.
        self.total_steps = self.step_limit

    def measured_step(self, step: int, seconds: float) -> None:
        """Step `step` (from 0) took `seconds`; the plan is made once the probe steps are timed."""
        if step >= TRACED_STEPS:
            self.step_seconds.append(seconds)

    def probe_done(self) -> bool:
        return len(self.step_seconds) >= PROBE_STEPS

    def typical_step(self) -> float:
        return statistics.median(self.step_seconds[-20:])

    def typical_epoch(self) -> float:
        """An epoch's seconds: the median of the last five timed, else steps plus the validation guess."""
        if self.epoch_seconds:
            return statistics.median(self.epoch_seconds[-5:])
        return self.steps_per_epoch * self.typical_step() + self.validation_seconds

    def replan(self, steps_done: int, elapsed: float) -> int:
        """Plan the run's total steps from where it is (`elapsed` seconds after its start)."""
        if self.max_seconds is None or not self.step_seconds:
            return self.total_steps
        self.total_steps = planned_steps(self.step_limit, self.steps_per_epoch, steps_done,
                                         self.max_seconds - elapsed, self.typical_step(), self.typical_epoch())
        self.plans.append((steps_done, self.total_steps))
        return self.total_steps

    def learning_rate_factor(self, step: int) -> float:
        return learning_rate_factor(step, self.total_steps, self.warmup_fraction, self.cosine)

    def average_momentum(self) -> float:
        return average_momentum(self.total_steps, self.average_span)


# ---------------------------------------------------------------------------------------------
# What a budget buys: step times kept per machine and network.


def machine_identity() -> str:
    """This machine's processor model and core count, e.g. "AMD EPYC 7B13 x2"."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        pass
    model = model or platform.processor() or platform.machine() or "unknown processor"
    # ONEDNN_MAX_CPU_ISA caps the instructions TensorFlow uses (a bench emulating a smaller
    # processor): its step times are another machine's.
    capped = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip()
    return f"{model} x{os.cpu_count() or 1}" + (f" ({capped})" if capped else "")


def network_key(architecture: str, image_size: int, precision: str, frozen_stages: int = 0) -> str:
    """What a step's time depends on besides the machine: network, training size, arithmetic, frozen stages."""
    return f"{architecture} {image_size}px {precision}" + (f" frozen {frozen_stages}" if frozen_stages else "")


@dataclass(frozen=True)
class StepTimes:
    """A run's measured costs, per photo so that another batch size or photo count can use them.

    seconds_per_training_photo: a training step's seconds over its batch size.
    seconds_per_held_out_photo: an epoch's seconds beyond its steps (validation, preview) over
        the held-out photos.
    first_step_extra_seconds: how much longer the first step took (tracing the network).
    """

    seconds_per_training_photo: float
    seconds_per_held_out_photo: float
    first_step_extra_seconds: float

    def to_dict(self) -> dict[str, float]:
        return {name: round(value, 4) for name, value in self.__dict__.items()}


def _step_times_path(home: Path | None = None) -> Path:
    if home is None:
        from storage.settings import data_home

        home = data_home()
    return Path(home) / STEP_TIMES_FILENAME


def _read_all(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or damaged: estimates are unknown until the next run records its times
    return data if isinstance(data, dict) else {}


def record_step_times(network: str, times: StepTimes, home: Path | None = None) -> None:
    """Keep `times` as this machine's latest for `network` (see network_key)."""
    from storage.files import atomic_write

    path = _step_times_path(home)
    data = _read_all(path)
    data.setdefault(machine_identity(), {})[network] = times.to_dict()
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True).encode("utf-8"))


def recorded_step_times(network: str, home: Path | None = None) -> StepTimes | None:
    """This machine's latest times for `network`; None before a run of it has finished here."""
    entry = _read_all(_step_times_path(home)).get(machine_identity(), {}).get(network)
    try:
        return StepTimes(**{name: float(entry[name]) for name in StepTimes.__dataclass_fields__})
    except (TypeError, KeyError, ValueError):
        return None


@dataclass(frozen=True)
class BudgetEstimate:
    """What a time budget buys: `passes` over the training photos (the epochs that fit, at most
    the epoch limit), the seconds one pass takes, and the minutes `USEFUL_PASSES` would take."""

    passes: int
    seconds_per_pass: float
    useful_minutes: int

    @property
    def too_short(self) -> bool:
        return self.passes < USEFUL_PASSES


def budget_estimate(times: StepTimes, train_photos: int, held_out_photos: int, max_seconds: float,
                    epochs: int, batch_size: int) -> BudgetEstimate:
    """The passes `max_seconds` buys over `train_photos` (as the run's stop rule counts them)."""
    steps_per_epoch = max(1, math.ceil(train_photos / batch_size))
    step_seconds = times.seconds_per_training_photo * batch_size
    epoch_seconds = steps_per_epoch * step_seconds + times.seconds_per_held_out_photo * held_out_photos
    budget = max(0.0, max_seconds - times.first_step_extra_seconds)
    steps = planned_steps(epochs * steps_per_epoch, steps_per_epoch, 0, budget, step_seconds, epoch_seconds)
    useful = times.first_step_extra_seconds + min(USEFUL_PASSES, epochs) * epoch_seconds
    return BudgetEstimate(passes=steps // steps_per_epoch, seconds_per_pass=epoch_seconds,
                          useful_minutes=max(1, math.ceil(useful / 60)))


def run_network_key(model_config: Any, train_config: Any, fine_tune: bool) -> str:
    """`network_key` of a run with these configs (catseg.model.config's ModelConfig and TrainConfig)."""
    from catseg.model.config import training_image_size
    from catseg.model.networks import resolve_precision

    frozen = train_config.frozen_encoder_stages if fine_tune and model_config.architecture == "u2netp" else 0
    return network_key(model_config.architecture, training_image_size(model_config, train_config, fine_tune),
                       resolve_precision(train_config.precision), frozen)
