"""PostgreSQL stopped for 10 s and started again while a run trains and a labeller saves masks in a loop.

The test starts a PostgreSQL server of its own (Debian's server programs, as
scripts/postgres_for_tests.sh uses), so that stopping it leaves the other tests' server alone.
Where those programs are missing it is skipped, or fails under CATSEG_REQUIRE_POSTGRES=1 (CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

import storage
from catseg.model.config import ModelConfig, TrainConfig
from catseg.train.run_control import start_run
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
    from catseg.data import intake

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


def server_programs() -> Path:
    """The folder of initdb and pg_ctl (Debian keeps them out of PATH, one folder per version)."""
    folders = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda folder: int(folder.parent.name)
                     if folder.parent.name.isdigit() else 0)
    found = [folder for folder in folders if (folder / "initdb").is_file()]
    if found:
        return found[-1]
    if shutil.which("initdb"):
        return Path(shutil.which("initdb")).parent
    if os.environ.get("CATSEG_REQUIRE_POSTGRES") == "1":
        pytest.fail("PostgreSQL's server programs (initdb, pg_ctl) were not found (CATSEG_REQUIRE_POSTGRES=1)")
    pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) were not found")


@pytest.fixture
def own_postgres(tmp_path, monkeypatch):
    """A PostgreSQL server for this test alone, on a free loopback port; yields `pg_ctl(action)`."""
    import pwd
    import socket

    programs = server_programs()
    as_server_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="catseg-restart-"))  # not under pytest's root-only folder
    folder.chmod(0o755)
    if os.geteuid() == 0:  # initdb refuses to run as root
        user = "postgres"
        try:
            pwd.getpwnam(user)
        except KeyError:
            user = "nobody"
        as_server_user = ["runuser", "-u", user, "--"]
        shutil.chown(folder, user)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    control = [*as_server_user, str(programs / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"),
               "-w", "-t", "60", "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"]

    def pg_ctl(action: str) -> None:
        result = subprocess.run([*control, "-m", "fast", action], capture_output=True, text=True, timeout=90)
        assert result.returncode == 0, result.stdout + result.stderr + (folder / "log").read_text(errors="replace")

    made = subprocess.run([*as_server_user, str(programs / "initdb"), "-D", str(folder / "data"), "-U", "catseg",
                           "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    pg_ctl("start")
    try:
        subprocess.run([*as_server_user, str(programs / "createdb"), "-h", "127.0.0.1", "-p", str(port),
                        "-U", "catseg", "catseg"], check=True, capture_output=True)
        monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://catseg@127.0.0.1:{port}/catseg")
        monkeypatch.setenv("CATSEG_HOME", str(tmp_path / "home"))
        yield pg_ctl
    finally:
        storage.dispose_all()
        subprocess.run([*control, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_postgresql_restart_loses_no_saved_mask_and_the_run_goes_on(own_postgres, tmp_path):
    pg_ctl = own_postgres
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
        pg_ctl("stop")
        time.sleep(OUTAGE_SECONDS)
        pg_ctl("start")
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
