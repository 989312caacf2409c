"""Training runs as separate processes: start, live metrics, stop, kill -9, one at a time.

Tests marked both_databases run on SQLite and on PostgreSQL (see tests/conftest.py); of those
that train in a process, only the start-to-model-version one does, to keep the suite short.
"""

import dataclasses
import os
import signal
import time
from datetime import timedelta

import pytest

import storage
from catseg.data import intake
from catseg.model.config import ModelConfig, TrainConfig
from catseg.train.run_control import reap_dead_runs, run_minutes, run_progress, start_run, stop_run
from storage import dataset, runs
from storage.models import utc_now
from conftest import add_labelled, drawn_cat, encode, run_status, wait_for

TINY_MODEL = ModelConfig(architecture="unet", image_size=32, base_filters=4)
TINY_TRAINING = TrainConfig(epochs=200, batch_size=2, max_seconds=120, learning_rate=1e-3)


@pytest.mark.both_databases
def test_too_few_labelled_photos_is_refused(catseg_home):
    add_labelled(2)
    with pytest.raises(ValueError, match="at least 4 labelled photos"):
        start_run(TINY_MODEL, TINY_TRAINING)


@pytest.mark.both_databases
def test_start_metrics_stop_keeps_a_model_version(catseg_home):
    add_labelled()
    run_id = start_run(TINY_MODEL, TINY_TRAINING)
    with pytest.raises(runs.RunAlreadyActive):
        start_run(TINY_MODEL, TINY_TRAINING)
    wait_for(lambda: run_status(run_id).epoch >= 1, what="a finished epoch")
    with storage.begin() as session:
        rows = runs.epoch_rows(session, run_id)
        assert rows and 0.0 <= rows[0]["val_iou"] <= 1.0
        assert runs.batch_rows(session, run_id)
    stop_run(run_id)
    final = wait_for(lambda: (v := run_status(run_id)).status in ("stopped", "finished", "failed") and v,
                     what="the run to stop")
    assert final.status == "stopped", final.error
    with storage.begin() as session:
        version = runs.model_version_for_run(session, run_id)
    assert version is not None and (version.directory / "model.keras").exists()


def test_kill_9_marks_the_run_failed_and_a_new_run_can_start(catseg_home):
    add_labelled()
    run_id = start_run(TINY_MODEL, TINY_TRAINING)
    running = wait_for(lambda: (v := run_status(run_id)).batches_per_epoch > 0 and v.status == "running" and v,
                       what="the run to start training")
    os.kill(running.process_id, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(lambda: reap_dead_runs() or run_status(run_id).status == "failed", timeout=30, what="reaping")
    assert time.monotonic() - killed_at < 30
    failed = run_status(run_id)
    assert failed.status == "failed" and "ended unexpectedly" in failed.error
    with storage.begin() as session:
        assert runs.model_version_for_run(session, run_id) is None
    assert not list((storage.data_home() / "models").glob("*")) if (storage.data_home() / "models").exists() else True
    second = start_run(TINY_MODEL, TINY_TRAINING)
    stop_run(second)
    wait_for(lambda: not run_status(second).is_active or reap_dead_runs(), what="the second run to end")


def test_cli_train_json_then_fine_tune_without_augmentation(catseg_home):
    import json

    from conftest import run_cli

    add_labelled()
    storage.dispose_all()
    first = run_cli(catseg_home, "train", "--size", "32", "--epochs", "1", "--batch-size", "2", "--close-up", "0.3",
                    "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert run_status(summary["run_id"]).train_config["close_up_probability"] == 0.3
    assert {"run_id", "model_id", "best_val_iou", "seconds"} <= set(summary)
    # Before any run of this network here, what the budget buys is unknown; the run measures it for the next.
    assert "5 minutes go on this machine is known once a run of unet at 32 px has finished here" in first.stderr
    with storage.begin() as session:
        first_directory = runs.model_version_for_run(session, summary["run_id"]).directory
    # A version lists the photos it learnt (its run's training photos), for the runs that start from it.
    from catseg.model.versions import read_learnt_photos
    with storage.begin() as session:
        hashes = dataset.labelled_content_hashes(session)
        first_taught = {hashes[i] for i in runs.get_run(session, summary["run_id"]).train_photo_ids}
    assert first_taught and read_learnt_photos(first_directory) == first_taught
    card_path = first_directory / "card.json"
    card = json.loads(card_path.read_text())
    assert "test_time_scales" not in card
    card["test_time_scales"] = [1.0, 1.5]  # as the starter's card names its own views
    card["test_time_flip"] = False
    card_path.write_text(json.dumps(card))
    second = run_cli(catseg_home, "train", "--from-model", str(summary["model_id"]), "--no-augment",
                     "--epochs", "1", "--json")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "On this machine 5 minutes buy about " in second.stderr  # the first run's step times, same network
    fine_tuned = json.loads(second.stdout.strip().splitlines()[-1])
    view = run_status(fine_tuned["run_id"])
    # A fine-tune scores its starting model first: the same figure in the summary, the run and the card.
    assert summary["starting_val_iou"] is None
    assert fine_tuned["starting_val_iou"] == pytest.approx(summary["best_val_iou"], abs=1e-4)
    assert view.starting_val_iou == pytest.approx(fine_tuned["starting_val_iou"])
    assert "starting model: validation IoU" in second.stderr
    # Both runs say how they split the photos; the fine-tune's start learnt the first run's training photos.
    assert f"on {len(first_taught)} photos, " in first.stderr and "held out to pick the epoch" in first.stderr
    assert f"({len(first_taught)} of them learnt by the starting model, so never held out)" in second.stderr
    # A start that learnt every labelled photo: the hold-out has to come from them, and the CLI says so.
    import shutil
    from catseg.model.versions import LEARNT_PHOTOS_FILENAME, learnt_photos_text
    knows_all = catseg_home.parent / "knows-all"
    shutil.copytree(first_directory, knows_all)
    (knows_all / LEARNT_PHOTOS_FILENAME).write_text(learnt_photos_text(hashes.values()))
    flattering = run_cli(catseg_home, "train", "--from-model", str(knows_all), "--epochs", "1", "--json")
    assert flattering.returncode == 0, flattering.stderr[-2000:]
    assert "the starting model learnt all of them, so the held-out ones will flatter it" in flattering.stderr
    assert view.train_config["augment"] is False
    # Fine-tuning's own recipe (FINE_TUNE_TRAINING), and the from-scratch one.
    from catseg.model.config import FINE_TUNE_TRAINING
    assert (view.train_config["learning_rate"], view.train_config["average_span"]) == (3e-4, FINE_TUNE_TRAINING.average_span)
    assert run_status(summary["run_id"]).train_config["learning_rate"] == 1e-3  # from random weights
    assert run_status(summary["run_id"]).train_config["average_span"] == 0.0
    assert view.initial_model == str(summary["model_id"])
    assert view.model_config["image_size"] == 32  # the starting model's size, not the default
    from catseg.model.versions import read_card
    with storage.begin() as session:
        fine_tuned_directory = runs.model_version_for_run(session, fine_tuned["run_id"]).directory
    assert read_card(fine_tuned_directory)["test_time_scales"] == [1.0, 1.5]  # inherited at the same size
    assert read_card(fine_tuned_directory)["test_time_flip"] is False
    assert read_learnt_photos(fine_tuned_directory) >= first_taught  # what its start learnt, and its own photos
    assert read_card(fine_tuned_directory)["metrics"]["starting_val_iou"] == pytest.approx(fine_tuned["starting_val_iou"])
    # --size with --from-model: the same weights fine-tuned on larger photos
    larger = run_cli(catseg_home, "train", "--from-model", str(summary["model_id"]), "--size", "64",
                     "--epochs", "1", "--json")
    assert larger.returncode == 0, larger.stderr[-2000:]
    assert "at 64 px" in larger.stderr
    enlarged = json.loads(larger.stdout.strip().splitlines()[-1])
    assert run_status(enlarged["run_id"]).model_config["image_size"] == 64
    from catseg.model.versions import load_model_version
    with storage.begin() as session:
        directory = runs.model_version_for_run(session, enlarged["run_id"]).directory
    model, config, card = load_model_version(directory)
    assert config.image_size == 64 and tuple(model.input_shape[1:3]) == (64, 64)
    assert "test_time_scales" not in card  # picked for 32 px, not for this size


@pytest.mark.both_databases
def test_a_fine_tune_of_the_starter_is_recorded_as_such_however_it_is_named(catseg_home, tmp_path, monkeypatch):
    """The Try page judges fine-tunes of the starter against it, so every spelling must be recognised."""
    from catseg.train.run_control import plan_run
    from conftest import save_tiny_model

    starter = save_tiny_model(tmp_path / "starter_model")
    monkeypatch.setenv("CATSEG_STARTER_MODEL", str(starter))
    add_labelled(4)
    for spec in ("starter", " Starter ", str(starter), str(starter / "model.keras")):
        run_id = plan_run(TINY_MODEL, TINY_TRAINING, spec)
        with storage.begin() as session:
            assert runs.run_view(session, run_id).initial_model == "starter", spec
            runs.finish_run(session, run_id, "stopped")


def running_view(**changes) -> runs.RunView:
    """A run in progress at epoch 4 of its default recipe, batch 0 of 8, as the pages read it."""
    started = utc_now()
    view = runs.RunView(
        id=1, status="running", created_at=started, started_at=started, finished_at=None, heartbeat_at=None,
        process_id=None, stop_requested=False, model_config={}, train_config={}, epoch=4, batch=0,
        batches_per_epoch=8, best_val_iou=None, best_epoch=None, seconds=None, error=None, train_count=10,
        validation_count=3, initial_model=None,
    )
    return dataclasses.replace(view, **changes)


def test_run_minutes_count_the_time_so_far_until_the_run_records_its_own():
    started = utc_now() - timedelta(minutes=3)
    running = running_view(created_at=started, started_at=started)
    assert 2.9 < run_minutes(running) < 3.5  # the Train page's table keeps up while it runs
    assert run_minutes(dataclasses.replace(running, status="finished", seconds=90.0)) == 1.5
    assert run_minutes(dataclasses.replace(running, status="starting", started_at=None)) == 0.0


def test_run_progress_counts_epochs_or_the_time_budget_whichever_is_further():
    recipe = TrainConfig(epochs=10, max_seconds=None).to_dict()
    loading = run_progress(running_view(batches_per_epoch=0, train_config=recipe), [])
    assert loading.loading and loading.fraction == 0.0 and loading.seconds_left is None
    by_epochs = run_progress(running_view(epoch=4, batch=4, train_config=recipe), [{"seconds": 30.0}] * 4)
    assert not by_epochs.loading
    assert (by_epochs.epoch, by_epochs.epochs, by_epochs.batch, by_epochs.batches_per_epoch) == (5, 10, 4, 8)
    assert by_epochs.fraction == pytest.approx(0.45)
    assert by_epochs.seconds_left == pytest.approx(120.0 * 0.55 / 0.45)
    budget = TrainConfig(epochs=10, max_seconds=600).to_dict()
    by_time = run_progress(running_view(epoch=0, batch=1, train_config=budget,
                                        started_at=utc_now() - timedelta(seconds=300)), [])
    assert by_time.fraction == pytest.approx(0.5, abs=0.01)  # half the time budget beats one batch of 80
    assert by_time.seconds_left == pytest.approx(300, rel=0.05)


@pytest.mark.both_databases
def test_a_run_can_show_some_photos_more_often(catseg_home):
    """--repeat 'cat.*=4': under-represented photos (indoor close-ups) weigh more; validation stays as it is."""
    from catseg.train.run_control import plan_run

    with storage.begin() as session:
        for index in range(8):
            photo, mask = drawn_cat(64, 48, seed=index)
            intake.add_photo(session, encode(photo), f"{'cat' if index % 2 else 'dog'}.{index}.png", mask=mask)
    plain = plan_run(TINY_MODEL, TINY_TRAINING)
    with storage.begin() as session:
        plain_view = runs.get_run(session, plain)
        plain_train, plain_validation = list(plain_view.train_photo_ids), list(plain_view.validation_photo_ids)
        runs.finish_run(session, plain, "stopped")
        names = {photo.id: photo.original_name for photo in dataset.list_photos_by_ids(session, plain_train)}
    weighted = plan_run(TINY_MODEL, TINY_TRAINING, repeat=[("cat.*", 4)])
    with storage.begin() as session:
        run = runs.get_run(session, weighted)
        assert list(run.validation_photo_ids) == plain_validation
        expected = [photo_id for photo_id in plain_train for _ in range(4 if names[photo_id].startswith("cat") else 1)]
        assert list(run.train_photo_ids) == expected
        runs.finish_run(session, weighted, "stopped")
    with pytest.raises(ValueError, match="repeat count"):
        plan_run(TINY_MODEL, TINY_TRAINING, repeat=[("cat.*", 0)])


@pytest.mark.both_databases
def test_the_pretrained_network_is_a_start_recorded_by_name(catseg_home):
    from catseg.model.registry import PRETRAINED_DIRECTORY
    from catseg.train.run_control import plan_run

    add_labelled(4)
    for spec in ("pretrained", str(PRETRAINED_DIRECTORY)):
        run_id = plan_run(TINY_MODEL, TINY_TRAINING, spec)
        with storage.begin() as session:
            view = runs.run_view(session, run_id)
            assert view.initial_model == "pretrained", spec
            assert view.model_config["architecture"] == "u2netp"
            runs.finish_run(session, run_id, "stopped")


@pytest.mark.both_databases
def test_a_diverged_run_fails_with_a_reason_instead_of_a_database_error(catseg_home):
    import numpy as np

    from catseg.model.networks import build_model
    from catseg.model.versions import save_model_version
    from catseg.train.run_control import plan_run
    from catseg.train.worker import execute_run

    add_labelled(4)
    # A starting model whose weights are NaN: its loss is NaN from the first batch, as after a divergence.
    broken = build_model(TINY_MODEL)
    directory = save_model_version(broken, TINY_MODEL, TINY_TRAINING, {"val_iou": 0.5}, catseg_home / "broken")
    broken.set_weights([np.full_like(weight, np.nan) for weight in broken.get_weights()])
    broken.save(directory / "model.keras")  # a NaN network cannot be saved as a version: put it in place
    run_id = plan_run(TINY_MODEL, dataclasses.replace(TINY_TRAINING, epochs=2, precision="float32"), str(directory))
    summary = execute_run(run_id)
    assert summary["status"] == "failed" and summary["stop_reason"] == "diverged"
    assert summary["model_id"] is None
    view = run_status(run_id)
    assert view.status == "failed" and "diverged" in view.error and "lower learning rate" in view.error
    assert "no model version was kept" in view.error
    with storage.begin() as session:
        assert runs.model_version_for_run(session, run_id) is None
        assert all(np.isfinite(row["loss"]) for row in runs.batch_rows(session, run_id))


@pytest.mark.both_databases
def test_labelling_more_photos_never_moves_a_training_photo_into_the_hold_out(catseg_home):
    from catseg.train.run_control import PlannedSplit, plan_run, planned_split

    add_labelled(12)
    first = plan_run(TINY_MODEL, TINY_TRAINING)
    with storage.begin() as session:
        before = runs.get_run(session, first)
        trained_on, held_out = set(before.train_photo_ids), set(before.validation_photo_ids)
        runs.finish_run(session, first, "stopped")
    add_labelled(30, first=12)
    second = plan_run(TINY_MODEL, TINY_TRAINING)
    with storage.begin() as session:
        after = runs.get_run(session, second)
        # A model fine-tuned from the first run is scored on photos that run never learnt.
        assert not trained_on & set(after.validation_photo_ids)
        assert held_out <= set(after.validation_photo_ids) and trained_on <= set(after.train_photo_ids)
        # The Train page's count is the split a run gets.
        assert planned_split(session, TINY_TRAINING) == PlannedSplit(
            len(after.train_photo_ids), len(after.validation_photo_ids), learnt=0)
        runs.finish_run(session, second, "stopped")


@pytest.mark.both_databases
def test_a_run_never_holds_out_a_photo_its_starting_model_learnt(catseg_home, tmp_path, monkeypatch):
    """Whatever split taught the starting model (another seed, another share, the starter's own run)."""
    from catseg.model.versions import LEARNT_PHOTOS_FILENAME, learnt_photos_text
    from catseg.train.run_control import PlannedSplit, learnt_by, plan_run, planned_split
    from conftest import save_tiny_model

    add_labelled(20)
    from_scratch = plan_run(TINY_MODEL, TINY_TRAINING)
    with storage.begin() as session:
        hashes = dataset.labelled_content_hashes(session)
        would_hold_out = set(runs.get_run(session, from_scratch).validation_photo_ids)
        runs.finish_run(session, from_scratch, "stopped")
    # A starter that learnt the very photos this seed holds out, and two more.
    learnt_ids = would_hold_out | set(list(hashes)[:2])
    starter = save_tiny_model(tmp_path / "starter_model")
    (starter / LEARNT_PHOTOS_FILENAME).write_text(learnt_photos_text({hashes[i] for i in learnt_ids}))
    monkeypatch.setenv("CATSEG_STARTER_MODEL", str(starter))
    fine_tune = plan_run(TINY_MODEL, TINY_TRAINING, "starter")
    with storage.begin() as session:
        view = runs.get_run(session, fine_tune)
        assert learnt_ids <= set(view.train_photo_ids)
        assert view.validation_photo_ids and not learnt_ids & set(view.validation_photo_ids)
        # The Train page's count is the split the run gets, and says how many photos the start learnt.
        assert planned_split(session, TINY_TRAINING, learnt_by("starter")) == PlannedSplit(
            len(view.train_photo_ids), len(view.validation_photo_ids), learnt=len(learnt_ids))
        runs.finish_run(session, fine_tune, "stopped")
    # From random weights nothing was learnt, so the plain split stands.
    assert learnt_by(None) == frozenset()
