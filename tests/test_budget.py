"""A run's plan from its budget, and what a budget buys from the step times kept per machine."""

from __future__ import annotations

import json

import pytest

from catseg.train import budget
from catseg.train.budget import (USEFUL_PASSES, BudgetSchedule, StepTimes, budget_estimate, learning_rate_factor,
                           network_key, planned_steps, record_step_times, recorded_step_times)


def test_planned_steps_follow_the_runs_stop_rule() -> None:
    # 10 steps of 2 s an epoch, 5 s of validation: 25 s an epoch.
    plan = dict(step_limit=1000, steps_per_epoch=10, step_seconds=2.0, epoch_seconds=25.0)
    assert planned_steps(steps_done=0, seconds_left=100.0, **plan) == 40  # four whole epochs fit
    assert planned_steps(steps_done=0, seconds_left=99.0, **plan) == 30  # not the fourth: it would overrun
    assert planned_steps(steps_done=4, seconds_left=90.0, **plan) == 30  # finish this epoch (17 s), then 2 more
    assert planned_steps(steps_done=10, seconds_left=50.0, **plan) == 30  # at an epoch's end
    assert planned_steps(steps_done=0, seconds_left=7.0, **plan) == 4  # time is up inside the first epoch
    assert planned_steps(steps_done=0, seconds_left=100.0, **dict(plan, step_limit=20)) == 20  # the epochs come first
    assert planned_steps(steps_done=0, seconds_left=None, **plan) == 1000


def test_a_faster_machine_gets_more_steps_and_the_same_shape() -> None:
    slow = planned_steps(5000, 10, 0, 600.0, 2.0, 20.0)
    fast = planned_steps(5000, 10, 0, 600.0, 0.5, 5.0)
    assert (slow, fast) == (300, 1200)
    for share in (0.05, 0.15, 0.5, 0.9):
        assert learning_rate_factor(round(share * slow), slow, 0.15, True) == pytest.approx(
            learning_rate_factor(round(share * fast), fast, 0.15, True), abs=0.02)
    assert budget.average_momentum(slow, 0.3) == pytest.approx(1 - 1 / 90)
    assert budget.average_momentum(fast, 0.3) == pytest.approx(1 - 1 / 360)


def test_the_schedule_plans_once_the_probe_steps_are_timed_and_then_from_timed_epochs() -> None:
    schedule = BudgetSchedule(step_limit=2000, steps_per_epoch=10, max_seconds=300.0, warmup_fraction=0.15,
                              average_span=0.3, validation_seconds=10.0)
    assert schedule.total_steps == 2000 and schedule.replan(0, 0.0) == 2000  # nothing timed yet
    schedule.measured_step(0, 30.0)  # the traced first step is not a step's time
    for step in range(1, 4):
        schedule.measured_step(step, 2.0)
    assert schedule.probe_done()
    # 30 s an epoch (10 steps and the validation guess); after 4 steps and 36 s: 6 more steps, 8 epochs.
    assert schedule.replan(4, 36.0) == 90
    schedule.epoch_seconds.append(40.0)  # the epoch measured slower than guessed
    assert schedule.replan(10, 50.0) == 70
    assert schedule.plans == [(4, 90), (10, 70)]
    assert schedule.average_momentum() == pytest.approx(1 - 1 / 21)


def test_step_times_are_kept_per_machine_and_network(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budget, "machine_identity", lambda: "Laptop CPU x2")
    network = network_key("u2netp", 256, "float32", 4)
    assert recorded_step_times(network, tmp_path) is None  # nothing measured: the estimate is unknown
    times = StepTimes(seconds_per_training_photo=1.0, seconds_per_held_out_photo=0.5, first_step_extra_seconds=20.0)
    record_step_times(network, times, tmp_path)
    assert recorded_step_times(network, tmp_path) == times
    assert recorded_step_times(network_key("u2netp", 192, "float32", 4), tmp_path) is None  # another size
    monkeypatch.setattr(budget, "machine_identity", lambda: "Workstation CPU x16")
    assert recorded_step_times(network, tmp_path) is None  # another machine
    record_step_times(network, StepTimes(0.1, 0.05, 2.0), tmp_path)
    assert set(json.loads((tmp_path / budget.STEP_TIMES_FILENAME).read_text())) == {"Laptop CPU x2",
                                                                                   "Workstation CPU x16"}
    (tmp_path / budget.STEP_TIMES_FILENAME).write_text("{damaged")
    assert recorded_step_times(network, tmp_path) is None


def test_a_capped_instruction_set_is_another_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    plain = budget.machine_identity()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert budget.machine_identity() == plain + " (AVX2)"


def test_what_a_budget_buys_and_the_minutes_a_useful_run_needs() -> None:
    times = StepTimes(seconds_per_training_photo=1.0, seconds_per_held_out_photo=0.5, first_step_extra_seconds=20.0)
    # 48 photos in steps of 4: 48 s a pass, 6 s of validating 12 photos; 280 s after the first step's extra.
    estimate = budget_estimate(times, train_photos=48, held_out_photos=12, max_seconds=300.0, epochs=200, batch_size=4)
    assert (estimate.passes, estimate.seconds_per_pass) == (5, 54.0)
    assert estimate.too_short and estimate.useful_minutes == 10  # 20 s + 10 passes of 54 s
    longer = budget_estimate(times, 48, 12, 600.0, 200, 4)
    assert longer.passes == USEFUL_PASSES and not longer.too_short
    assert budget_estimate(times, 48, 12, 30.0, 200, 4).passes == 0  # not one whole pass
