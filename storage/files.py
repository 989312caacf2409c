"""Atomic file writes, files that follow their database rows, and reading stored images.

A file is written under a temporary name in its final folder, flushed to disk and renamed
into place, so a reader never sees half a file (a folder likewise, see `atomic_folder`).
Files written inside a transaction are removed again if it rolls back; files of deleted
rows are removed only once the delete is committed. A row and its file therefore exist
together or not at all.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import event
from sqlalchemy.orm import Session

_WRITTEN = "catseg_files_written"
_TO_DELETE = "catseg_files_to_delete"
# How a full disk (or a user's exhausted quota) shows itself: an errno, or only the words, where a
# library (Keras' zip writer, SQLite) passes the system's text on without the number.
_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_WORDS = ("no space left on device", "disk quota exceeded", "database or disk is full")


class DiskFull(OSError):
    """A file could not be written because its disk is full; the message names the folder."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return self.strerror


def is_disk_full(error: BaseException) -> bool:
    """True when `error` (or what caused it) says the disk is full."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS:
            return True
        if any(words in str(error).lower() for words in _DISK_FULL_WORDS):
            return True
        error = error.__cause__ or error.__context__ or getattr(error, "orig", None)
    return False


def disk_full(folder: Path, what: str) -> DiskFull:
    """The error for `what` (e.g. "the mask") that could not be written into `folder` on a full disk."""
    return DiskFull(f"The disk holding {folder} is full: {what} could not be written. Free some space and try again.")


def fsync_path(path: Path) -> None:
    """Flush a file or folder to disk, where the system allows it (not folders on Windows)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return  # some file systems do not allow opening folders; the rename is still atomic
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that the file is either the old one or the whole new one.

    DiskFull, naming the folder, when the disk has no room (the old file is kept, no temporary file left).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        if is_disk_full(error):
            raise disk_full(path.parent, path.name) from None
        raise
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if is_disk_full(error):
            raise disk_full(path.parent, path.name) from None
        raise
    fsync_path(path.parent)


@contextmanager
def atomic_folder(directory: Path) -> Iterator[Path]:
    """Fill a new folder that appears whole or not at all: write into the folder this yields.

    It is a temporary folder beside `directory`, flushed and renamed into place when the
    block ends, and removed if the block fails. FileExistsError if `directory` exists;
    DiskFull, naming the folder, when the disk has no room for it.
    """
    directory = Path(directory)
    if directory.exists():
        raise FileExistsError(f"{directory} already exists; pick a new name.")
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    except OSError as error:
        if is_disk_full(error):
            raise disk_full(directory.parent, directory.name) from None
        raise
    try:
        yield temporary
        for path in temporary.iterdir():
            fsync_path(path)
        fsync_path(temporary)
        os.rename(temporary, directory)  # atomic on one file system; fails if `directory` appeared
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)
        if is_disk_full(error):
            raise disk_full(directory.parent, directory.name) from None
        raise
    fsync_path(directory.parent)


def read_image(path: Path, mode: str = "RGB") -> np.ndarray:
    """The pixels of an image file stored here: (H, W, 3) for mode "RGB", (H, W) for "L" (grey).

    Stored photos, masks and thumbnails are already upright 8-bit RGB or grey (the caller
    decoded and encoded them), so a plain read is all they need.
    """
    with Image.open(path) as image:
        return np.array(image.convert(mode))


def write_with_row(session: Session, path: Path, data: bytes) -> None:
    """Write a file that belongs to a row added in `session`: undone if the session rolls back."""
    atomic_write(path, data)
    session.info.setdefault(_WRITTEN, []).append(path)


def delete_with_row(session: Session, path: Path) -> None:
    """Remove a file once the deletion of its row is committed (kept if it rolls back)."""
    session.info.setdefault(_TO_DELETE, []).append(path)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    for path in session.info.pop(_TO_DELETE, []):
        Path(path).unlink(missing_ok=True)
    session.info.pop(_WRITTEN, None)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    for path in session.info.pop(_WRITTEN, []):
        Path(path).unlink(missing_ok=True)
    session.info.pop(_TO_DELETE, None)
