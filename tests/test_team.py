"""Several machines on one database: a run belongs to its host, others judge it by its heartbeat.

Machines are simulated with CATSEG_HOST. The reaper's rules run on both databases; the test
with real training processes runs on PostgreSQL, the database a team shares.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import psutil
import pytest

import storage
from catseg.model.config import ModelConfig, TrainConfig
from catseg.train.run_control import HEARTBEAT_SECONDS, STALE_AFTER, reap_dead_runs, start_run, stop_run
from storage import runs
from storage.models import TrainingRun, utc_now
from conftest import add_labelled, run_status, wait_for

TINY_MODEL = ModelConfig(architecture="unet", image_size=32, base_filters=4)
# Long enough to outlast the polling below; never stops early on its own.
LONG_TRAINING = TrainConfig(epochs=500, batch_size=2, max_seconds=240, learning_rate=1e-3, early_stopping_patience=0)
POLL_SECONDS = 30
on_postgresql = pytest.mark.parametrize("catseg_home", ["postgresql"], indirect=True)


def pid_not_running() -> int:
    """A process id that no process has on this machine now."""
    candidate = 4_000_000
    while psutil.pid_exists(candidate):
        candidate += 1
    return candidate


def running_run(host: str, process_id: int, heartbeat_age: timedelta = timedelta(0)) -> int:
    """A run recorded as training on `host` in process `process_id`, last heard of `heartbeat_age` ago."""
    with storage.begin() as session:
        run = runs.create_run(session, TINY_MODEL.to_dict(), LONG_TRAINING.to_dict(), [1, 2], [3], host=host)
        runs.mark_running(session, run.id, process_id, 4)
        session.get(TrainingRun, run.id).heartbeat_at = utc_now() - heartbeat_age
        return run.id


@pytest.mark.both_databases
def test_only_the_runs_own_machine_checks_its_process(catseg_home, monkeypatch):
    absent = pid_not_running()
    run_id = running_run("a", absent)
    monkeypatch.setenv("CATSEG_HOST", "b")  # as machine b sees it: no such process here, heartbeat fresh
    assert reap_dead_runs() == [] and run_status(run_id).status == "running"
    monkeypatch.setenv("CATSEG_HOST", "a")  # on its own machine, the process is gone
    assert reap_dead_runs() == [run_id]
    assert "ended unexpectedly" in run_status(run_id).error


@pytest.mark.both_databases
def test_another_machine_ends_a_run_whose_heartbeat_is_stale_even_where_its_pid_is_taken(catseg_home, monkeypatch):
    monkeypatch.setenv("CATSEG_HOST", "b")
    # On b, a's process id belongs to an unrelated process (this one): only the heartbeat counts.
    run_id = running_run("a", os.getpid(), heartbeat_age=STALE_AFTER + timedelta(seconds=1))
    assert reap_dead_runs() == [run_id]
    failed = run_status(run_id)
    assert failed.status == "failed" and "on a stopped responding" in failed.error
    # The process on a, back in touch, learns that its run was ended and stops.
    with storage.begin() as session:
        assert runs.heartbeat(session, run_id) is True


@pytest.mark.both_databases
def test_a_run_records_its_host_and_who_started_it(catseg_home, monkeypatch):
    from catseg.train.run_control import plan_run

    add_labelled(4)
    monkeypatch.setenv("CATSEG_HOST", "labelling-pc")
    run_id = plan_run(TINY_MODEL, LONG_TRAINING, created_by="ada@example.org")
    view = run_status(run_id)
    assert (view.host, view.created_by) == ("labelling-pc", "ada@example.org")


@on_postgresql
def test_two_machines_one_run_b_leaves_it_alone_stops_it_and_notices_its_death(catseg_home, monkeypatch):
    add_labelled(6)
    monkeypatch.setenv("CATSEG_HOST", "a")  # the worker inherits it: machine a trains
    run_id = start_run(TINY_MODEL, LONG_TRAINING)
    wait_for(lambda: (v := run_status(run_id)).batches_per_epoch > 0 and v.status == "running", timeout=180,
             what="a's run to train")
    assert run_status(run_id).host == "a"

    # Machine b's Train page polls every 2 s: a's process id means nothing there, its heartbeat is fresh.
    monkeypatch.setenv("CATSEG_HOST", "b")
    polled_until = time.monotonic() + POLL_SECONDS
    polls = 0
    while time.monotonic() < polled_until:
        assert reap_dead_runs() == [], run_status(run_id).error
        assert run_status(run_id).status == "running"
        polls += 1
        time.sleep(2)
    assert polls >= POLL_SECONDS // 2 - 1

    # Stop pressed on b: a's run ends after its current batch, keeping its best epoch.
    stop_run(run_id)
    stopped = wait_for(lambda: (v := run_status(run_id)).status in ("stopped", "finished", "failed") and v,
                       timeout=60, what="a's run to stop")
    assert stopped.status == "stopped", stopped.error
    with storage.begin() as session:
        assert runs.model_version_for_run(session, run_id) is not None

    # a's next trainer is killed with kill -9: b, which cannot see a's processes, ends it by its heartbeat.
    monkeypatch.setenv("CATSEG_HOST", "a")
    second = start_run(TINY_MODEL, LONG_TRAINING)
    training = wait_for(lambda: (v := run_status(second)).batches_per_epoch > 0 and v.status == "running" and v,
                        timeout=180, what="a's second run to train")
    monkeypatch.setenv("CATSEG_HOST", "b")
    os.kill(training.process_id, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(lambda: reap_dead_runs() or run_status(second).status == "failed",
             timeout=STALE_AFTER.total_seconds() + 30, what="b to notice the dead run")
    assert time.monotonic() - killed_at <= STALE_AFTER.total_seconds() + 2 * HEARTBEAT_SECONDS + 2
    failed = run_status(second)
    assert failed.status == "failed" and "on a stopped responding" in failed.error


def test_a_run_ended_by_another_machine_stops_and_still_keeps_its_best_epoch(catseg_home):
    """As when the database was out of reach past the stale limit: the worker learns it on its next beat."""
    add_labelled(6)
    run_id = start_run(TINY_MODEL, LONG_TRAINING)
    training = wait_for(lambda: (v := run_status(run_id)).epoch >= 1 and v, timeout=180, what="a finished epoch")
    with storage.begin() as session:
        runs.finish_run(session, run_id, "failed", "The training process on a stopped responding (no heartbeat for 20 s).")
    wait_for(lambda: not psutil.pid_exists(training.process_id) or
             psutil.Process(training.process_id).status() == psutil.STATUS_ZOMBIE, timeout=60,
             what="the worker to stop")
    ended = run_status(run_id)
    assert ended.status == "failed" and "stopped responding" in ended.error
    with storage.begin() as session:
        version = runs.model_version_for_run(session, run_id)
    assert version is not None and f'kept as model version "{version.name}"' in ended.error
