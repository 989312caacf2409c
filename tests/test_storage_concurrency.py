"""Several processes writing at once lose nothing: two labellers saving masks while a run reports.

Runs on SQLite (WAL and the busy timeout must hold) and on PostgreSQL (see tests/conftest.py).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import storage
from catseg.data import intake
from storage import dataset, runs
from storage.files import read_image
from conftest import REPOSITORY_ROOT, drawn_cat, encode
from storage_writers import BATCHES_PER_FLUSH, writer_mask

pytestmark = pytest.mark.both_databases

WRITERS = 2
SAVES_PER_WRITER = 100
RUN_FLUSHES = 150
TIME_LIMIT_SECONDS = 180


def start_writers(start_folder: Path, photo_ids: list[int]) -> dict[str, subprocess.Popen]:
    script = str(Path(__file__).with_name("storage_writers.py"))
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY_ROOT)}  # CATSEG_HOME, DATABASE_URL: the fixture's
    commands = {f"masks-{writer}": ["masks", str(writer), str(SAVES_PER_WRITER), ",".join(map(str, photo_ids))]
                for writer in range(WRITERS)}
    commands["run"] = ["run", str(RUN_FLUSHES)]
    return {
        name: subprocess.Popen([sys.executable, script, *arguments, str(start_folder)], cwd=REPOSITORY_ROOT,
                               env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, arguments in commands.items()
    }


def finish(processes: dict[str, subprocess.Popen], start_folder: Path) -> dict[str, object]:
    """Start them together, wait for all (within the time limit) and return each one's JSON result."""
    deadline = time.monotonic() + TIME_LIMIT_SECONDS
    try:
        while len(list(start_folder.glob("ready-*"))) < len(processes):
            failed = {name: p.returncode for name, p in processes.items() if p.poll() not in (None, 0)}
            assert not failed and time.monotonic() < deadline, f"a writer did not get ready: {failed}"
            time.sleep(0.05)
        (start_folder / "go").touch()
        results = {}
        for name, process in processes.items():
            output, errors = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert process.returncode == 0, f"{name} failed:\n{errors[-3000:]}"
            results[name] = json.loads(output.strip().splitlines()[-1])
        return results
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def test_two_labellers_and_a_training_run_write_at_once_and_nothing_is_lost(catseg_home, tmp_path):
    with storage.begin() as session:
        photo_ids = [intake.add_photo(session, encode(drawn_cat(64, 48, seed=seed)[0]), f"{seed}.png").id
                     for seed in range(4)]
    storage.dispose_all()  # the children open their own connections
    start_folder = tmp_path / "start"
    start_folder.mkdir()

    started = time.monotonic()
    results = finish(start_writers(start_folder, photo_ids), start_folder)
    last_start = max(result["started"] for result in results.values())
    first_end = min(result["ended"] for result in results.values())
    print(f"{WRITERS} x {SAVES_PER_WRITER} mask saves and {RUN_FLUSHES} run flushes in "
          f"{time.monotonic() - started:.1f} s, all three writing for {first_end - last_start:.1f} s")
    assert last_start < first_end, "the three processes did not write at the same time; the test proves nothing"
    saves = {revision_id: (int(name.split("-")[1]), photo_id, index)
             for name, result in results.items() if name.startswith("masks")
             for revision_id, photo_id, index in result["saved"]}
    assert len(saves) == WRITERS * SAVES_PER_WRITER  # every save got its own revision
    with storage.begin() as session:
        revisions = {revision.id: revision for photo_id in photo_ids
                     for revision in dataset.get_photo(session, photo_id).mask_revisions}
        assert set(revisions) == set(saves)
        for revision_id, (writer, photo_id, index) in saves.items():
            revision = revisions[revision_id]
            photo = dataset.get_photo(session, photo_id)
            assert revision.photo_id == photo_id
            assert dataset.mask_thumbnail_path(revision).is_file()
            stored = read_image(dataset.mask_path(revision), "L")
            assert np.array_equal(stored, writer_mask(photo.width, photo.height, writer, index)), revision_id

        run = results["run"]
        view = runs.run_view(session, run["run_id"])
        assert (view.status, view.epoch, view.best_epoch) == ("finished", run["epochs"], run["epochs"])
        assert [row["step"] for row in runs.batch_rows(session, run["run_id"])] == list(range(1, run["steps"] + 1))
        assert run["steps"] == RUN_FLUSHES * BATCHES_PER_FLUSH
        assert [row["epoch"] for row in runs.epoch_rows(session, run["run_id"])] == list(range(1, run["epochs"] + 1))
