"""Processes that write to the store at the same time, for tests/test_storage_concurrency.py.

    python tests/storage_writers.py masks WRITER SAVES PHOTO_IDS START_FOLDER
    python tests/storage_writers.py run FLUSHES START_FOLDER

`masks` saves SAVES masks, one transaction each as the Annotate page does, cycling over the
comma-separated PHOTO_IDS; `run` writes a training run's rows as a training worker does.
Each opens the store, writes START_FOLDER/ready-NAME, waits for START_FOLDER/go (so that
all start writing together) and prints one JSON line: what it wrote, and when it started
and ended writing. CATSEG_HOME and DATABASE_URL come from the environment.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import storage
from catseg.data import intake
from storage import dataset, runs

BATCHES_PER_FLUSH = 4
FLUSHES_PER_EPOCH = 10


def writer_mask(width: int, height: int, writer: int, index: int) -> np.ndarray:
    """The mask that writer `writer` saves at step `index`: different for each (writer, index) on one photo."""
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[: 1 + index % (height - 1), : 1 + writer] = 255
    mask[height - 1, : 1 + index // (height - 1)] = 255
    return mask


def wait_for_start(start_folder: Path, name: str) -> None:
    storage.session_factory()  # connect and check the schema before the race, not during it
    (start_folder / f"ready-{name}").touch()
    deadline = time.monotonic() + 60
    while not (start_folder / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("no start signal within 60 s")
        time.sleep(0.01)


def save_masks(writer: int, saves: int, photo_ids: list[int], start_folder: Path) -> dict:
    """[revision id, photo id, index] of every save."""
    with storage.begin() as session:
        sizes = {photo_id: dataset.get_photo(session, photo_id) for photo_id in photo_ids}
        sizes = {photo_id: (photo.width, photo.height) for photo_id, photo in sizes.items()}
    wait_for_start(start_folder, f"masks-{writer}")
    started = time.time()
    saved = []
    for index in range(saves):
        photo_id = photo_ids[index % len(photo_ids)]
        with storage.begin() as session:
            revision = intake.save_mask(session, photo_id, writer_mask(*sizes[photo_id], writer, index), "painted")
        saved.append([revision.id, photo_id, index])
    return {"saved": saved, "started": started, "ended": time.time()}


def write_run(flushes: int, start_folder: Path) -> dict:
    """A run's rows, written in the order and transactions of catseg.train.worker's reporter."""
    wait_for_start(start_folder, "run")
    started = time.time()
    with storage.begin() as session:
        run_id = runs.create_run(session, {"architecture": "unet", "image_size": 32}, {"epochs": 99}, [1, 2], [3]).id
    with storage.begin() as session:
        runs.mark_running(session, run_id, os.getpid(), BATCHES_PER_FLUSH * FLUSHES_PER_EPOCH)
    step = 0
    for flush in range(flushes):
        epoch = flush // FLUSHES_PER_EPOCH
        rows = [(step + offset + 1, epoch + 1, 1.0 / (step + offset + 1)) for offset in range(BATCHES_PER_FLUSH)]
        step += BATCHES_PER_FLUSH
        with storage.begin() as session:
            runs.record_batches(session, run_id, rows, epoch, (flush % FLUSHES_PER_EPOCH + 1) * BATCHES_PER_FLUSH)
            runs.heartbeat(session, run_id)
        if (flush + 1) % FLUSHES_PER_EPOCH == 0:
            with storage.begin() as session:
                logs = {"loss": 0.5, "iou": 0.5, "val_loss": 0.5, "val_iou": epoch / 100, "learning_rate": 1e-3}
                runs.record_epoch(session, run_id, epoch + 1, logs, 1.0, None)
                runs.heartbeat(session, run_id)
    with storage.begin() as session:
        runs.finish_run(session, run_id, "finished", seconds=1.0)
    return {"run_id": run_id, "steps": step, "epochs": flushes // FLUSHES_PER_EPOCH, "started": started,
            "ended": time.time()}


def main(arguments: list[str]) -> None:
    if arguments[0] == "masks":
        writer, saves, photo_ids, start_folder = arguments[1:]
        result = save_masks(int(writer), int(saves), [int(i) for i in photo_ids.split(",")], Path(start_folder))
    else:
        flushes, start_folder = arguments[1:]
        result = write_run(int(flushes), Path(start_folder))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
