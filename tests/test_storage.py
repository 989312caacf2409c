"""Storage: rows and files together, revisions and undo, settings, schema upgrades."""

import numpy as np
import pytest
from sqlalchemy import text

import storage
from storage import dataset, runs
from conftest import drawn_cat, encode


def files_under(home):
    return sorted(p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file() and "sqlite3" not in p.name)


def test_add_photo_stores_files_named_by_hash(catseg_home):
    photo, mask = drawn_cat()
    with storage.begin() as session:
        row = dataset.add_photo(session, encode(photo), "My Cat (1).png", mask=mask)
        photo_id, digest = row.id, row.content_hash
    names = files_under(catseg_home)
    assert f"photos/{digest[:2]}/{digest}.png" in names
    assert not any("My Cat" in name for name in names)
    with storage.begin() as session:
        assert np.array_equal(dataset.load_photo(session, photo_id), photo)
        assert np.array_equal(dataset.load_mask(session, photo_id), mask)
        assert dataset.summary(session, photo_id).original_name == "My Cat (1).png"
        assert dataset.counts(session) == dataset.DatasetCounts(images=1, labelled=1)


def test_the_same_photo_twice_is_a_duplicate(catseg_home):
    photo, _ = drawn_cat()
    with storage.begin() as session:
        first = dataset.add_photo(session, encode(photo), "a.png").id
    with pytest.raises(dataset.DuplicatePhoto) as error:
        with storage.begin() as session:
            dataset.add_photo(session, encode(photo), "b.png")
    assert error.value.existing_id == first and "b.png" in str(error.value)
    with storage.begin() as session:
        assert dataset.counts(session).images == 1


def test_rollback_leaves_no_files(catseg_home):
    photo, mask = drawn_cat()
    with pytest.raises(RuntimeError):
        with storage.begin() as session:
            dataset.add_photo(session, encode(photo), "a.png", mask=mask)
            raise RuntimeError("power cut")
    assert files_under(catseg_home) == []
    with storage.begin() as session:
        assert dataset.counts(session).images == 0


def test_bad_mask_size_adds_nothing(catseg_home):
    photo, _ = drawn_cat(120, 90)
    with pytest.raises(ValueError, match="mask is 10x10 but the photo is 120x90"):
        with storage.begin() as session:
            dataset.add_photo(session, encode(photo), "a.png", mask=np.zeros((10, 10), np.uint8))
    assert files_under(catseg_home) == []


def test_mask_revisions_undo_and_delete(catseg_home):
    photo, mask = drawn_cat()
    with storage.begin() as session:
        photo_id = dataset.add_photo(session, encode(photo), "a.png", mask=mask).id
    painted = np.zeros_like(mask)
    painted[:10, :10] = 255
    with storage.begin() as session:
        dataset.save_mask(session, photo_id, painted, "painted")
    with storage.begin() as session:
        assert np.array_equal(dataset.load_mask(session, photo_id), painted)
        assert dataset.summary(session, photo_id).mask_source == "painted"
        assert dataset.mask_revision_count(session, photo_id) == 2
    with storage.begin() as session:
        dataset.undo_mask(session, photo_id)
    with storage.begin() as session:
        assert np.array_equal(dataset.load_mask(session, photo_id), mask)
        assert dataset.summary(session, photo_id).mask_source == "imported"
    with storage.begin() as session:
        assert dataset.delete_photos(session, [photo_id]) == 1
    assert files_under(catseg_home) == []


def test_undo_of_a_delete_that_rolls_back_keeps_files(catseg_home):
    photo, mask = drawn_cat()
    with storage.begin() as session:
        photo_id = dataset.add_photo(session, encode(photo), "a.png", mask=mask).id
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
            dataset.add_photo(session, encode(photo), f"{index}.png", mask=mask if index % 2 == 0 else None)
    with storage.begin() as session:
        assert dataset.count_filtered(session, "labelled") == 4
        assert dataset.count_filtered(session, "unlabelled") == 3
        page = dataset.list_photos(session, "all", offset=5, limit=5)
        assert [p.original_name for p in page] == ["5.png", "6.png"]
        assert all(not p.is_labelled for p in dataset.list_photos(session, "unlabelled"))
        assert len(dataset.labelled_pairs(session)) == 4
        with pytest.raises(ValueError, match="Unknown filter"):
            dataset.list_photos(session, "cats")


def test_sqlite_runs_in_wal_mode_and_schema_is_versioned(catseg_home):
    with storage.begin() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert int(session.execute(text("PRAGMA busy_timeout")).scalar()) >= 5000
        assert session.execute(text("SELECT version_num FROM alembic_version")).scalar() is not None


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
        connection.execute(text(
            "INSERT INTO training_runs (id, status, created_at, stop_requested, model_config, train_config, "
            "train_photo_ids, validation_photo_ids, epoch, batch, batches_per_epoch, best_val_iou) "
            "VALUES (7, 'finished', '2026-11-25 10:00:00', 0, '{}', '{}', '[]', '[]', 3, 0, 5, 0.61)"))
    engine.dispose()
    with storage.begin() as session:  # opening the store upgrades it
        view = runs.run_view(session, 7)
        assert session.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0003"
    assert view.best_val_iou == 0.61 and view.starting_val_iou is None


def test_database_url_overrides_the_database(catseg_home, tmp_path, monkeypatch):
    other = tmp_path / "elsewhere.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{other}")
    with storage.begin() as session:
        dataset.add_photo(session, encode(drawn_cat()[0]), "a.png")
    assert other.exists()
    assert not (catseg_home / "catseg.sqlite3").exists()
