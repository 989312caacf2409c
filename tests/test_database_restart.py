"""PostgreSQL stopped for 10 s and started again while a run trains and a labeller saves masks in a loop.

Needs the throw-away server of scripts/postgres_for_tests.sh, which the test stops and starts
(CATSEG_TEST_POSTGRES_CTL); skipped with a reason on a server of one's own.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

import storage
from catseg.config import ModelConfig, TrainConfig
from catseg.runs import start_run
from storage import dataset, runs
from storage.files import read_image
from storage.models import MaskRevision
from conftest import REPOSITORY_ROOT, add_labelled, run_status, wait_for

TINY_MODEL = ModelConfig(architecture="unet", image_size=32, base_filters=4)
# Ends on its own a while after the server is back; never stops early.
TRAINING = TrainConfig(epochs=500, batch_size=2, max_seconds=60, learning_rate=1e-3, early_stopping_patience=0)
OUTAGE_SECONDS = 10

# Saves masks one transaction each, as the Annotate page does, until STOP exists; one JSON line per try.
SAVER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import numpy as np
    import storage
    from catseg import intake

    photo_ids, stop = [int(i) for i in sys.argv[1].split(",")], Path(sys.argv[2])
    step = 0
    while not stop.exists():
        photo_id = photo_ids[step % len(photo_ids)]
        mask = np.zeros((48, 64), np.uint8)
        mask[: 1 + step % 47, : 1 + step % 63] = 255
        try:
            with storage.begin() as session:
                revision = intake.save_mask(session, photo_id, mask, "painted")
            print(json.dumps({"saved": revision.id, "photo": photo_id}), flush=True)
        except OSError as error:
            print(json.dumps({"failed": str(error), "kind": type(error).__name__}), flush=True)
            time.sleep(0.2)
        step += 1
        time.sleep(0.02)
""")


def server_control() -> list[str]:
    control = os.environ.get("CATSEG_TEST_POSTGRES_CTL")
    if not control:
        pytest.skip("needs the server that scripts/postgres_for_tests.sh starts (CATSEG_TEST_POSTGRES_CTL)")
    return json.loads(control)


def pg_ctl(control: list[str], action: str) -> None:
    result = subprocess.run([*control, "-m", "fast", action], capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("catseg_home", ["postgresql"], indirect=True)
def test_a_postgresql_restart_loses_no_saved_mask_and_the_run_goes_on(catseg_home, tmp_path):
    control = server_control()
    add_labelled(6)
    with storage.begin() as session:
        photo_ids = dataset.photo_ids(session)
    run_id = start_run(TINY_MODEL, TRAINING)
    stop_file = tmp_path / "stop-saving"
    saver = subprocess.Popen([sys.executable, "-c", SAVER, ",".join(map(str, photo_ids)), str(stop_file)],
                             cwd=REPOSITORY_ROOT, env={**os.environ, "PYTHONPATH": str(REPOSITORY_ROOT)},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (v := run_status(run_id)).batches_per_epoch > 0 and v.epoch >= 1, timeout=180,
                 what="the run to finish an epoch")
        storage.dispose_all()  # this process's own connections die with the server too
        pg_ctl(control, "stop")
        time.sleep(OUTAGE_SECONDS)
        pg_ctl(control, "start")
        time.sleep(5)  # saves go on against the restarted server
    finally:
        stop_file.touch()
        output, errors = saver.communicate(timeout=60)
    assert saver.returncode == 0, errors[-3000:]
    tries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    saved = [t for t in tries if "saved" in t]
    failed = [t for t in tries if "failed" in t]
    print(f"{len(saved)} saves succeeded, {len(failed)} failed during the outage")
    assert saved and failed, f"{len(saved)} saves, {len(failed)} failures: the outage was not seen"
    for failure in failed:  # one line, naming the database without its password
        assert failure["kind"] == "DatabaseUnavailable" and "\n" not in failure["failed"], failure
        assert "is unreachable" in failure["failed"] and "postgresql+psycopg://" in failure["failed"]

    final = wait_for(lambda: (v := run_status(run_id)).status in ("finished", "stopped", "failed") and v,
                     timeout=240, what="the run to end")
    with storage.begin() as session:
        version = runs.model_version_for_run(session, run_id)
        # Every save that reported success is in the database, with a file that opens.
        revisions = {r.id: r for r in session.query(MaskRevision).filter(MaskRevision.id.in_([t["saved"] for t in saved]))}
        assert len(revisions) == len(saved)
        for revision in revisions.values():
            assert read_image(dataset.mask_path(revision), "L").shape == (48, 64)
    print(f"run #{run_id}: {final.status}, {final.epoch} epochs, {final.error or ''}")
    assert final.status == "finished" or (final.status == "failed" and version is not None), final.error
    assert version is not None and (version.directory / "model.keras").is_file()

    storage.dispose_all()
    checked = subprocess.run([sys.executable, "-m", "catseg", "check", "--grace", "0"], cwd=REPOSITORY_ROOT,
                             env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0 and "All in step" in checked.stdout, checked.stdout + checked.stderr
