"""Storage: rows and files together, revisions and undo, settings, schema upgrades.

Each test using `catseg_home` runs on SQLite and on PostgreSQL (see tests/conftest.py).
"""

import math
import socket
import threading
import time

import numpy as np
import pytest
from sqlalchemy import text

import storage
from catseg.data import intake
from storage import dataset, runs
from storage.models import utc_now
from conftest import drawn_cat, encode

pytestmark = pytest.mark.both_databases


def files_under(home):
    return sorted(p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file() and "sqlite3" not in p.name)


def test_add_photo_stores_files_named_by_hash(catseg_home):
    photo, mask = drawn_cat()
    with storage.begin() as session:
        row = intake.add_photo(session, encode(photo), "My Cat (1).png", mask=mask)
        photo_id, digest = row.id, row.content_hash
    names = files_under(catseg_home)
    assert f"photos/{digest[:2]}/{digest}.png" in names
    assert not any("My Cat" in name for name in names)
    with storage.begin() as session:
        assert np.array_equal(dataset.load_photo(session, photo_id), photo)
        assert np.array_equal(dataset.load_mask(session, photo_id), mask)
        assert dataset.list_photos_by_ids(session, [photo_id])[0].original_name == "My Cat (1).png"
        assert dataset.counts(session) == dataset.DatasetCounts(images=1, labelled=1)


def test_an_upright_jpeg_is_stored_byte_for_byte(catseg_home):
    photo, _ = drawn_cat()
    data = encode(photo, "JPEG", quality=90)
    with storage.begin() as session:
        row = intake.add_photo(session, data, "cat.jpg")
        stored = dataset.photo_path(row)
    assert stored.suffix == ".jpg" and stored.read_bytes() == data


def test_the_same_photo_twice_is_a_duplicate(catseg_home):
    photo, _ = drawn_cat()
    with storage.begin() as session:
        first = intake.add_photo(session, encode(photo), "a.png").id
    with pytest.raises(dataset.DuplicatePhoto) as error:
        with storage.begin() as session:
            intake.add_photo(session, encode(photo), "b.png")
    assert error.value.existing_id == first and "b.png" in str(error.value)
    with storage.begin() as session:
        assert dataset.counts(session).images == 1


def test_rollback_leaves_no_files(catseg_home):
    photo, mask = drawn_cat()
    with pytest.raises(RuntimeError):
        with storage.begin() as session:
            intake.add_photo(session, encode(photo), "a.png", mask=mask)
            raise RuntimeError("power cut")
    assert files_under(catseg_home) == []
    with storage.begin() as session:
        assert dataset.counts(session).images == 0


def test_bad_mask_size_adds_nothing(catseg_home):
    photo, _ = drawn_cat(120, 90)
    with pytest.raises(ValueError, match="mask is 10x10 but the photo is 120x90"):
        with storage.begin() as session:
            intake.add_photo(session, encode(photo), "a.png", mask=np.zeros((10, 10), np.uint8))
    assert files_under(catseg_home) == []


def test_mask_revisions_undo_and_delete(catseg_home):
    photo, mask = drawn_cat()
    with storage.begin() as session:
        photo_id = intake.add_photo(session, encode(photo), "a.png", mask=mask).id
    painted = np.zeros_like(mask)
    painted[:10, :10] = 255
    with storage.begin() as session:
        intake.save_mask(session, photo_id, painted, "painted")
    with storage.begin() as session:
        assert np.array_equal(dataset.load_mask(session, photo_id), painted)
        assert dataset.list_photos_by_ids(session, [photo_id])[0].mask_source == "painted"
        assert dataset.mask_revision_count(session, photo_id) == 2
    with storage.begin() as session:
        dataset.undo_mask(session, photo_id)
    with storage.begin() as session:
        assert np.array_equal(dataset.load_mask(session, photo_id), mask)
        assert dataset.list_photos_by_ids(session, [photo_id])[0].mask_source == "imported"
    with storage.begin() as session:
        assert dataset.delete_photos(session, [photo_id]) == 1
    assert files_under(catseg_home) == []


def test_undo_of_a_delete_that_rolls_back_keeps_files(catseg_home):
    photo, mask = drawn_cat()
    with storage.begin() as session:
        photo_id = intake.add_photo(session, encode(photo), "a.png", mask=mask).id
    before = files_under(catseg_home)
    with pytest.raises(RuntimeError):
        with storage.begin() as session:
            dataset.delete_photos(session, [photo_id])
            raise RuntimeError("changed my mind")
    assert files_under(catseg_home) == before
    with storage.begin() as session:
        assert dataset.counts(session).images == 1


def test_filters_and_paging(catseg_home):
    with storage.begin() as session:
        for index in range(7):
            photo, mask = drawn_cat(seed=index)
            intake.add_photo(session, encode(photo), f"{index}.png", mask=mask if index % 2 == 0 else None)
    with storage.begin() as session:
        assert dataset.count_filtered(session, "labelled") == 4
        assert dataset.count_filtered(session, "unlabelled") == 3
        page = dataset.list_photos(session, "all", offset=5, limit=5)
        assert [p.original_name for p in page] == ["5.png", "6.png"]
        assert all(not p.is_labelled for p in dataset.list_photos(session, "unlabelled"))
        assert len(dataset.labelled_pairs(session)) == 4
        with pytest.raises(ValueError, match="Unknown filter"):
            dataset.list_photos(session, "cats")


def test_a_photo_place_names_its_neighbours_without_listing_every_photo(catseg_home):
    with storage.begin() as session:
        assert dataset.first_photo_to_label(session) is None  # no photos at all
        ids = []
        for index in range(6):
            photo, mask = drawn_cat(seed=index)
            ids.append(intake.add_photo(session, encode(photo), f"{index}.png",
                                        mask=mask if index in (0, 2, 3) else None).id)
    with storage.begin() as session:
        assert dataset.first_photo_to_label(session) == ids[1]
        first = dataset.photo_place(session, ids[0])
        assert (first.position, first.count, first.labelled) == (0, 6, 3)
        assert (first.previous_id, first.next_id, first.next_unlabelled_id) == (None, ids[1], ids[1])
        middle = dataset.photo_place(session, ids[2])
        assert (middle.position, middle.previous_id, middle.next_id, middle.next_unlabelled_id) == (
            2, ids[1], ids[3], ids[4])
        last = dataset.photo_place(session, ids[5])
        assert (last.position, last.next_id, last.next_unlabelled_id) == (5, None, ids[1])  # wraps round
        assert dataset.next_unlabelled_id(session, ids[4]) == ids[5]
        assert [choice[0] for choice in dataset.photo_choices(session)] == ids
        assert dataset.photo_choices(session)[3] == (ids[3], "3.png", "imported")
        assert dataset.photo_choices(session)[4] == (ids[4], "4.png", None)
        for photo_id in (ids[1], ids[4], ids[5]):
            intake.save_mask(session, photo_id, drawn_cat(seed=photo_id)[1], "painted")
    with storage.begin() as session:
        assert dataset.photo_place(session, ids[2]).next_unlabelled_id is None, "every other photo is labelled"
        assert dataset.first_photo_to_label(session) == ids[0], "all labelled: the first photo"
        assert dataset.photo_choices(session)[5] == (ids[5], "5.png", "painted")


def test_an_older_mask_revision_can_be_read_by_its_id(catseg_home):
    photo, mask = drawn_cat()
    with storage.begin() as session:
        photo_id = intake.add_photo(session, encode(photo), "cat.png", mask=mask).id
        first = dataset.current_mask_revision(session, photo_id).id
        newer = intake.save_mask(session, photo_id, 255 - mask, "painted").id
    with storage.begin() as session:
        assert np.array_equal(dataset.load_mask_revision(session, first), mask)
        assert np.array_equal(dataset.load_mask_revision(session, newer), 255 - mask)
        assert dataset.list_photos_by_ids(session, [photo_id])[0].mask_source == "painted"
        dataset.undo_mask(session, photo_id)
    with storage.begin() as session:
        assert dataset.list_photos_by_ids(session, [photo_id])[0].mask_source == "imported"
        with pytest.raises(ValueError, match="may have been undone"):
            dataset.load_mask_revision(session, newer)


def newest_schema_version() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from storage.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def test_schema_is_versioned_and_sqlite_runs_in_wal_mode(catseg_home):
    """Opening an empty database (on PostgreSQL too) migrates it to the newest schema."""
    with storage.begin() as session:
        assert session.execute(text("SELECT version_num FROM alembic_version")).scalar() == newest_schema_version()
        if session.bind.dialect.name == "sqlite":
            assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert int(session.execute(text("PRAGMA busy_timeout")).scalar()) >= 5000


def test_a_database_from_before_starting_scores_is_upgraded_keeping_its_runs(catseg_home):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from storage.db import MIGRATIONS
    from storage.settings import database_url

    catseg_home.mkdir(parents=True, exist_ok=True)
    engine = create_engine(database_url())
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")  # the schema before runs kept their starting score
        # `false`, not 0: PostgreSQL's booleans are no integers.
        connection.execute(text(
            "INSERT INTO training_runs (id, status, created_at, stop_requested, model_config, train_config, "
            "train_photo_ids, validation_photo_ids, epoch, batch, batches_per_epoch, best_val_iou) "
            "VALUES (7, 'finished', '2026-11-25 10:00:00', false, '{}', '{}', '[]', '[]', 3, 0, 5, 0.61)"))
    engine.dispose()
    with storage.begin() as session:  # opening the store upgrades it
        view = runs.run_view(session, 7)
        assert session.execute(text("SELECT version_num FROM alembic_version")).scalar() == newest_schema_version()
    assert view.best_val_iou == 0.61 and view.starting_val_iou is None
    assert view.host is None and view.created_by is None  # runs from before hosts were recorded


def test_database_url_overrides_the_database(catseg_home, tmp_path, monkeypatch):
    other = tmp_path / "elsewhere.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{other}")
    with storage.begin() as session:
        intake.add_photo(session, encode(drawn_cat()[0]), "a.png")
    assert other.exists()
    assert not (catseg_home / "catseg.sqlite3").exists()


def start_tiny_run(session):
    return runs.create_run(session, {"architecture": "unet", "image_size": 32}, {"epochs": 2}, [1, 2], [3])


def test_a_second_run_started_at_the_same_moment_is_refused(catseg_home):
    """The one-active-run index holds while the first start is not yet committed (another tab)."""
    with storage.begin() as session:
        runs.finish_run(session, start_tiny_run(session).id, "finished")
    with storage.begin() as session:
        runs.finish_run(session, start_tiny_run(session).id, "stopped")  # ended runs never collide
    outcome = []

    def second_start():
        try:
            with storage.begin() as session:
                outcome.append(start_tiny_run(session).id)
        except runs.RunAlreadyActive as error:
            outcome.append(error)

    with storage.begin() as session:
        first = start_tiny_run(session).id
        racer = threading.Thread(target=second_start)
        racer.start()
        time.sleep(1.0)  # the second start passes its check and waits on the index
    racer.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], runs.RunAlreadyActive), outcome
    with storage.begin() as session:
        assert runs.active_run(session).id == first
        assert [view.status for view in runs.list_runs(session)] == ["starting", "stopped", "finished"]


def test_run_rows_and_model_versions_keep_their_values(catseg_home):
    with storage.begin() as session:
        run_id = runs.create_run(
            session, {"architecture": "unet", "image_size": 32, "scales": [1.0, 1.5]},
            {"epochs": 3, "augment": False, "max_seconds": None}, [4, 4, 5], [6], initial_model="starter",
        ).id
        runs.mark_running(session, run_id, process_id=4_194_303, batches_per_epoch=2)
    with storage.begin() as session:
        runs.record_batches(session, run_id, [(1, 1, 0.9), (2, 1, 0.85)], epoch=0, batch=2)
        assert runs.heartbeat(session, run_id) is False
    with storage.begin() as session:
        first_logs = {"loss": 0.8, "iou": 0.5, "val_loss": 0.7, "val_iou": 0.55}
        runs.record_epoch(session, run_id, 1, first_logs, 1.5, "e1.jpg")
        runs.record_epoch(session, run_id, 2, {"loss": 0.6, "iou": 0.6, "val_loss": 0.9, "val_iou": 0.5}, 1.4, None)
        runs.request_stop(session, run_id)
        assert runs.heartbeat(session, run_id) is True
    directory = catseg_home / "models" / f"run-{run_id}"
    directory.mkdir(parents=True)
    with storage.begin() as session:
        runs.add_model_version(session, run_id, f"run {run_id}", directory, "unet", 32, 0.55,
                               {"val_iou": 0.55, "loss": float("nan"), "epoch": 0.0})
        runs.finish_run(session, run_id, "stopped", seconds=3.0)
    with storage.begin() as session:
        view = runs.run_view(session, run_id)
        rows = runs.epoch_rows(session, run_id)
        losses = [row["loss"] for row in runs.batch_rows(session, run_id)]
        version = runs.model_version_for_run(session, run_id)
        best = runs.best_model_version(session)
    assert view.model_config["scales"] == [1.0, 1.5]
    assert view.train_config == {"epochs": 3, "augment": False, "max_seconds": None}
    assert (view.train_count, view.validation_count, view.initial_model) == (3, 1, "starter")
    assert (view.status, view.stop_requested, view.process_id, view.is_active) == ("stopped", True, 4_194_303, False)
    assert (view.best_val_iou, view.best_epoch, view.epoch) == (0.55, 1, 2)
    assert losses == [0.9, 0.85]
    assert [row["val_iou"] for row in rows] == [0.55, 0.5] and rows[0]["preview_file"] == "e1.jpg"
    # Times are naive UTC on both databases, whatever the server's time zone.
    assert view.created_at.tzinfo is None and abs((utc_now() - view.created_at).total_seconds()) < 60
    assert view.started_at <= view.heartbeat_at <= view.finished_at
    # PostgreSQL's json type has no NaN: a diverged metric is stored as null there.
    assert version.id == best.id and version.directory == directory and version.metrics["val_iou"] == 0.55
    assert version.metrics["loss"] is None or math.isnan(version.metrics["loss"])


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_database_is_one_sentence_naming_it_without_its_password(tmp_path, monkeypatch):
    monkeypatch.setenv("CATSEG_HOME", str(tmp_path / "home"))
    port = closed_port()
    # postgresql:// without a driver means psycopg 3 (SQLAlchemy's own default, psycopg2, is not installed).
    monkeypatch.setenv("DATABASE_URL", f"postgresql://labeller:s3cret@127.0.0.1:{port}/catseg")
    started = time.monotonic()
    with pytest.raises(storage.DatabaseUnavailable) as error:
        with storage.begin():
            pass
    message = str(error.value)
    assert message.startswith(f"The database at postgresql+psycopg://labeller:***@127.0.0.1:{port}/catseg is unreachable:")
    assert "s3cret" not in message and "\n" not in message and "refused" in message.lower()
    assert time.monotonic() - started < 15
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg2://labeller:s3cret@127.0.0.1:{port}/catseg")
    driver_missing = r"driver for postgresql\+psycopg2://labeller:\*\*\*@.*not installed"
    with pytest.raises(storage.DatabaseUnavailable, match=driver_missing):
        storage.session_factory()
    monkeypatch.setenv("DATABASE_URL", "s3cret")
    with pytest.raises(storage.DatabaseUnavailable, match="DATABASE_URL is not a database URL") as error:
        storage.session_factory()
    assert "s3cret" not in str(error.value)
