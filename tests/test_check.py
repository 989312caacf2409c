"""`catseg check`: rows without files, files without rows, leftovers of killed writes, thumbnails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

import storage
from catseg.data import intake
from catseg.data.consistency import check_data, last_check
from storage import dataset
from storage.files import read_image
from storage.models import MaskRevision
from conftest import REPOSITORY_ROOT, drawn_cat, encode, run_cli

SAVE_LOOP = """
import sys
import numpy as np
import storage
from catseg.data import intake

photo_id = int(sys.argv[1])
for step in range(100000):
    mask = np.zeros((600, 800), np.uint8)
    mask[: 1 + step % 599, : 1 + (step * 7) % 799] = 255
    with storage.begin() as session:
        revision = intake.save_mask(session, photo_id, mask, "painted")
    print(revision.id, flush=True)
"""


def add_photo(seed: int = 0, width: int = 800, height: int = 600) -> int:
    photo, mask = drawn_cat(width, height, seed=seed)
    with storage.begin() as session:
        return intake.add_photo(session, encode(photo), f"cat{seed}.png", mask=mask).id


def files_no_row_names(home) -> set[str]:
    """Computed here without catseg.data.consistency: mask files on disk that no revision row names."""
    with storage.begin() as session:
        named = set()
        for revision in session.query(MaskRevision):
            named.add(f"masks/{revision.file_name}")
            named.add(f"masks/{revision.file_name.replace('.png', '.thumb.png')}")
    on_disk = {path.relative_to(home).as_posix() for path in (home / "masks").rglob("*") if path.is_file()}
    return on_disk - named


def test_check_finds_each_kind_of_problem_and_repair_never_deletes_a_row(catseg_home):
    kept, lost = add_photo(0, 120, 90), add_photo(1, 120, 90)
    home = storage.data_home()
    with storage.begin() as session:
        kept_photo, lost_photo = dataset.get_photo(session, kept), dataset.get_photo(session, lost)
        mask_revision = dataset.current_mask_revision(session, kept)
        thumbnail = dataset.thumbnail_path(kept_photo)
        mask_thumbnail = dataset.mask_thumbnail_path(mask_revision)
        lost_file = dataset.photo_path(lost_photo)
    stray = home / "masks" / str(kept) / "999.png"
    stray.write_bytes(b"left by a killed save")
    temporary = home / "photos" / ".abc.png.x1y2.tmp"
    temporary.write_bytes(b"half a photo")
    thumbnail.unlink()
    mask_thumbnail.unlink()
    lost_file.unlink()

    report = check_data(grace_seconds=0)
    assert [item["owner"] for item in report.missing_files] == [f"photo #{lost} (cat1.png)"]
    assert report.orphan_files == [f"masks/{kept}/999.png"]
    assert report.temporary_files == ["photos/.abc.png.x1y2.tmp"]
    assert sorted(report.missing_thumbnails) == sorted(
        [thumbnail.relative_to(home).as_posix(), mask_thumbnail.relative_to(home).as_posix()])
    assert report.problems_left == report.problems_found == 5
    assert stray.exists() and temporary.exists()  # a plain check changes nothing
    assert last_check()["problems_left"] == 5  # what the Home page warns about

    repaired = check_data(repair=True, grace_seconds=0)
    assert (repaired.removed, repaired.rebuilt, repaired.problems_left) == (2, 2, 1)  # the missing photo file
    assert not stray.exists() and not temporary.exists()
    assert thumbnail.is_file() and mask_thumbnail.is_file()
    with storage.begin() as session:
        assert dataset.counts(session).images == 2  # no row was deleted
        rebuilt_mask_thumbnail = dataset.load_mask_thumbnail(session, kept)
        stored_mask = dataset.load_mask(session, kept)
    # The rebuilt mask thumbnail is the stored mask, small: about as much of it is cat.
    assert abs(np.mean(rebuilt_mask_thumbnail > 0) - np.mean(stored_mask > 0)) < 0.02
    assert last_check()["problems_left"] == 1


def test_young_files_are_left_alone_since_a_save_may_be_writing_them(catseg_home):
    photo_id = add_photo(0, 120, 90)
    young = storage.data_home() / "masks" / str(photo_id) / "12345.png"
    young.write_bytes(b"being written")
    assert check_data(repair=True).orphan_files == []  # default grace: a minute
    assert young.exists()


def test_check_repairs_the_leftovers_of_ten_kill_9_rounds(catseg_home):
    photo_id = add_photo()
    home = storage.data_home()
    environment = {**os.environ, "CATSEG_HOME": str(home), "PYTHONPATH": str(REPOSITORY_ROOT)}
    environment.pop("DATABASE_URL", None)
    committed = []
    generator = np.random.default_rng(0)
    for _ in range(10):
        process = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(photo_id)], cwd=REPOSITORY_ROOT,
                                   env=environment, stdout=subprocess.PIPE, text=True)
        first = process.stdout.readline()  # it is saving: kill it at a random moment of the next saves
        assert first.strip().isdigit(), "the save loop did not start"
        time.sleep(float(generator.uniform(0.05, 0.6)))
        process.send_signal(signal.SIGKILL)
        output, _ = process.communicate(timeout=30)
        committed += [int(line) for line in (first + output).split() if line.isdigit()]

    left_behind = files_no_row_names(home)
    report = check_data(grace_seconds=0)
    found = {path for path in report.orphan_files + report.temporary_files if path.startswith("masks/")}
    assert found == left_behind  # every leftover, and nothing that belongs to a row
    assert report.missing_files == []

    repaired = check_data(repair=True, grace_seconds=0)
    assert repaired.problems_left == 0
    assert check_data(grace_seconds=0).problems_found == 0
    with storage.begin() as session:
        revisions = {revision.id: revision for revision in session.query(MaskRevision)}
        assert set(committed) <= set(revisions)  # every save the loop saw committed is there
        for revision in revisions.values():  # and every committed mask reads back whole
            pixels = read_image(dataset.mask_path(revision), "L")
            assert pixels.shape == (600, 800)
            assert np.count_nonzero(pixels) / pixels.size == revision.foreground_fraction


def test_the_cli_reports_and_repairs_with_an_exit_status(catseg_home):
    photo_id = add_photo(0, 120, 90)
    stray = storage.data_home() / "masks" / str(photo_id) / "999.png"
    stray.write_bytes(b"stray")
    found = run_cli(catseg_home, "check", "--grace", "0", "--json")
    assert found.returncode == 1, found.stderr
    assert json.loads(found.stdout)["orphan_files"] == [f"masks/{photo_id}/999.png"]
    repaired = run_cli(catseg_home, "check", "--repair", "--grace", "0")
    assert repaired.returncode == 0, repaired.stderr
    assert "Repaired: removed 1 files" in repaired.stdout and not stray.exists()
    clean = run_cli(catseg_home, "check")
    assert clean.returncode == 0 and "All in step" in clean.stdout


def test_the_home_page_warns_after_a_check_with_problems_and_repairs_them(catseg_home):
    from streamlit.testing.v1 import AppTest

    photo_id = add_photo(0, 120, 90)
    stray = storage.data_home() / "masks" / str(photo_id) / "999.png"
    stray.write_bytes(b"stray")
    an_hour_ago = time.time() - 3600
    os.utime(stray, (an_hour_ago, an_hour_ago))
    app = AppTest.from_file(str(REPOSITORY_ROOT / "app.py"), default_timeout=60)
    app.run()
    assert not app.warning  # never checked: nothing to say
    check_data()
    app.run()
    assert "The last data check" in app.warning[0].value and "1 problem(s)" in app.warning[0].value
    app.button(key="home_repair").click().run()
    assert not app.exception
    assert not stray.exists()
    assert "data folder is in step" in app.success[0].value
    assert not app.warning
