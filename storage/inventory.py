"""What the data folder should hold according to the database, and what it does hold.

A process killed while saving (kill -9, a power cut) can leave files that no committed row
names, and temporary files of writes that never finished; a user deleting files by hand
leaves rows without files. `take_inventory` lists all of these without changing anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.dataset import mask_path, mask_thumbnail_path, photo_path, thumbnail_path
from storage.models import MaskRevision, ModelVersion, Photo, TrainingRun
from storage.settings import data_home

# Folders whose every file belongs to a row; anything else in the data folder (the database,
# settings) is left alone.
FILE_FOLDERS = ("photos", "thumbnails", "masks")


@dataclass(frozen=True)
class MissingFile:
    """A row whose file is gone: the user decides what to do with the row."""

    owner: str  # e.g. "photo #3 (cat.3.jpg)"
    path: Path


@dataclass(frozen=True)
class Thumbnail:
    """A thumbnail that is missing while the file it is made from is there."""

    kind: str  # "photo" or "mask"
    owner: str
    source: Path
    path: Path


@dataclass
class Inventory:
    missing: list[MissingFile] = field(default_factory=list)
    orphans: list[Path] = field(default_factory=list)  # files and model/run folders no row names
    temporary: list[Path] = field(default_factory=list)  # leftovers of writes that never finished
    missing_thumbnails: list[Thumbnail] = field(default_factory=list)


def is_temporary(path: Path) -> bool:
    """A file or folder written under a temporary name (storage.files.atomic_write, atomic_folder)."""
    name = path.name
    return name.startswith(".") and (name.endswith(".tmp") or ".tmp-" in name)


def _old_enough(path: Path, grace_seconds: float, now: float) -> bool:
    # A file younger than the grace period may belong to a save that is still running in
    # another process and not committed yet: it is not called an orphan.
    try:
        return now - path.lstat().st_mtime >= grace_seconds
    except FileNotFoundError:
        return False


def take_inventory(session: Session, grace_seconds: float = 60.0) -> Inventory:
    """Compare the rows with the files in the data folder; changes nothing."""
    home = data_home()
    inventory = Inventory()
    expected: set[Path] = set()
    photos = [("photo", f"photo #{photo.id} ({photo.original_name})", photo_path(photo), thumbnail_path(photo))
              for photo in session.scalars(select(Photo).order_by(Photo.id))]
    masks = [("mask", f"mask revision #{revision.id} of photo #{revision.photo_id}", mask_path(revision),
              mask_thumbnail_path(revision))
             for revision in session.scalars(select(MaskRevision).order_by(MaskRevision.id))]
    for kind, owner, source, small in photos + masks:
        expected.update((source, small))
        if not source.is_file():
            inventory.missing.append(MissingFile(owner, source))
        elif not small.is_file():
            inventory.missing_thumbnails.append(Thumbnail(kind, owner, source, small))
    version_folders = set()
    for version in session.scalars(select(ModelVersion).order_by(ModelVersion.id)):
        folder = home / version.directory
        version_folders.add(folder)
        if not (folder / "model.keras").is_file():
            inventory.missing.append(MissingFile(f"model version #{version.id} ({version.name})", folder))
    run_folders = {home / "runs" / str(run_id) for run_id in session.scalars(select(TrainingRun.id))}

    now = time.time()
    for folder_name in FILE_FOLDERS:
        folder = home / folder_name
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or not _old_enough(path, grace_seconds, now):
                continue
            if is_temporary(path):
                inventory.temporary.append(path)
            elif path not in expected:
                inventory.orphans.append(path)
    for folder, known in ((home / "models", version_folders), (home / "runs", run_folders)):
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            if not _old_enough(entry, grace_seconds, now):
                continue
            if is_temporary(entry):
                inventory.temporary.append(entry)
            elif entry not in known:
                inventory.orphans.append(entry)
            elif entry.is_dir():
                inventory.temporary += [path for path in sorted(entry.iterdir())
                                        if is_temporary(path) and _old_enough(path, grace_seconds, now)]
    return inventory
