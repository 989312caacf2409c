"""A full disk: a save, an import and a model version refuse in one line that names the folder; nothing is lost.

The data folder is a small tmpfs mounted for the test (skipped where the test may not mount
one). Runs on SQLite (whose database is on the full disk too) and on PostgreSQL.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import storage
from catseg.data import intake
from storage import dataset, runs
from storage.files import read_image
from storage.inventory import is_temporary
from storage.models import MaskRevision
from conftest import REPOSITORY_ROOT, add_labelled, write_tutorial_folder

pytestmark = pytest.mark.both_databases

DISK_BYTES = 4 * 1024 * 1024


@pytest.fixture
def small_disk(catseg_home):
    """The test's CATSEG_HOME on a tmpfs of a few MB, unmounted afterwards."""
    catseg_home.mkdir(parents=True, exist_ok=True)
    if not shutil.which("mount"):
        pytest.skip("no mount command to make a small file system")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(catseg_home)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.strip() or 'mount failed'}")
    try:
        yield catseg_home
    finally:
        storage.dispose_all()
        subprocess.run(["umount", "-l", str(catseg_home)], check=False)


def fill(folder: Path, leave_bytes: int = 0) -> Path:
    """Write a filler file into `folder` until the disk has no more than `leave_bytes` free."""
    filler = folder / "filler"
    chunk = b"\0" * 4096
    with open(filler, "ab", buffering=0) as handle:
        try:
            while shutil.disk_usage(folder).free > leave_bytes + len(chunk):
                handle.write(chunk)
            if leave_bytes == 0:
                while True:
                    handle.write(chunk)
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
    return filler


def catseg_command(*arguments: str) -> subprocess.CompletedProcess:
    """`python -m catseg ...` on the test's CATSEG_HOME and database."""
    return subprocess.run([sys.executable, "-m", "catseg", *arguments], cwd=REPOSITORY_ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=300)


def temporary_files(home: Path) -> list[Path]:
    return [path for path in home.rglob("*") if is_temporary(path)]


def every_revision_opens() -> int:
    with storage.begin() as session:
        revisions = session.query(MaskRevision).all()
        for revision in revisions:
            assert read_image(dataset.mask_path(revision), "L").any()
        return len(revisions)


def test_a_full_disk_refuses_saves_imports_and_versions_in_one_line_and_loses_nothing(small_disk, tmp_path):
    add_labelled(3)
    with storage.begin() as session:
        photo = dataset.get_photo(session, dataset.photo_ids(session)[0])
        width, height, photo_id = photo.width, photo.height, photo.id
    revisions_before = every_revision_opens()

    # An import that runs out of room stops at that photo, keeps and counts what it stored, exits non-zero.
    source = write_tutorial_folder(tmp_path / "import", 12, first_seed=40)
    fill(small_disk, leave_bytes=160 * 1024)
    storage.dispose_all()
    imported = catseg_command("import", str(source), "--json")
    assert imported.returncode != 0, imported.stdout + imported.stderr
    assert "Traceback" not in imported.stderr
    report = json.loads(imported.stdout.strip().splitlines()[-1])
    assert "is full" in report["stopped"] and str(small_disk) in report["stopped"], report
    assert 0 < report["added"] < 12, report  # some photos fitted before the disk ran out
    assert not report["rejected"]  # no one-by-one "No space left on device" rejections
    with storage.begin() as session:
        assert dataset.counts(session).images == 3 + report["added"]
    plain = catseg_command("import", str(source))  # the rest, in words: one line on stderr
    assert plain.returncode != 0 and "Traceback" not in plain.stderr
    assert "error: the import stopped at" in plain.stderr and "is full" in plain.stderr
    storage.dispose_all()

    # Now full to the last byte: a mask save refuses, naming the folder; the previous revision stays current.
    fill(small_disk)
    with storage.begin() as session:
        before = dataset.current_mask_revision(session, photo_id).id
    mask = np.zeros((height, width), np.uint8)
    mask[: height // 2] = 255
    with pytest.raises(storage.DiskFull) as refused:
        with storage.begin() as session:
            intake.save_mask(session, photo_id, mask, "painted")
    message = str(refused.value)
    assert "is full" in message and str(small_disk) in message and "\n" not in message
    with storage.begin() as session:
        assert dataset.current_mask_revision(session, photo_id).id == before

    # A model version that cannot be written refuses the same way and leaves no half folder.
    from conftest import save_tiny_model

    with pytest.raises(storage.DiskFull, match="is full") as refused:
        save_tiny_model(runs.models_folder() / "run-99")
    assert str(runs.models_folder()) in str(refused.value)
    assert not (runs.models_folder() / "run-99").exists()

    with storage.begin() as session:
        images = dataset.counts(session).images
    assert images >= 3 + report["added"]
    assert every_revision_opens() == revisions_before - 3 + images  # one mask each: every stored photo is whole
    assert temporary_files(small_disk) == []
    storage.dispose_all()
    checked = catseg_command("check", "--grace", "0")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All in step" in checked.stdout and "Traceback" not in checked.stderr
