"""Atomic file writes, and files that follow their database rows.

A file is written under a temporary name in its final folder, flushed to disk and renamed
into place, so a reader never sees half a file. Files written inside a transaction are
removed again if it rolls back; files of deleted rows are removed only once the delete is
committed. A row and its file therefore exist together or not at all.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session

_WRITTEN = "catseg_files_written"
_TO_DELETE = "catseg_files_to_delete"


def _fsync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # some file systems do not allow opening folders; the rename is still atomic
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that the file is either the old one or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


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
