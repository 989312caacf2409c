"""`catseg check`: are the database and the data folder in step? With repair, put them back in step.

Repair removes files no row names and temporary files left by interrupted writes, and
rebuilds missing thumbnails. It never deletes a row: rows whose file is missing are listed
for the user to decide (restore the file from a backup, or delete the photo in the app).
The last result is kept in the data folder, so the Home page can warn about it.
"""

from __future__ import annotations

import datetime
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

LAST_CHECK_FILE = "last_check.json"


@dataclass
class CheckReport:
    """What a check found and, with repair, what it did. Paths are relative to the data folder."""

    checked_at: str
    data_home: str
    missing_files: list[dict] = field(default_factory=list)  # {"owner": "photo #3 (...)", "path": ...}
    orphan_files: list[str] = field(default_factory=list)
    temporary_files: list[str] = field(default_factory=list)
    missing_thumbnails: list[str] = field(default_factory=list)
    repaired: bool = False
    removed: int = 0
    rebuilt: int = 0
    problems_left: int = 0  # after repair: what repair could not or may not fix
    kept: bool = True  # False when the disk was too full to keep this result for the Home page

    @property
    def problems_found(self) -> int:
        return (len(self.missing_files) + len(self.orphan_files) + len(self.temporary_files)
                + len(self.missing_thumbnails))

    def to_dict(self) -> dict:
        return dict(asdict(self), problems_found=self.problems_found)


def _relative(path: Path, home: Path) -> str:
    try:
        return path.relative_to(home).as_posix()
    except ValueError:
        return str(path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _rebuild_thumbnail(kind: str, source: Path, path: Path) -> None:
    from catseg.data.intake import mask_thumbnail, photo_thumbnail
    from storage.files import atomic_write, read_image

    if kind == "mask":
        atomic_write(path, mask_thumbnail(read_image(source, "L")))
    else:
        atomic_write(path, photo_thumbnail(read_image(source)))


def check_data(repair: bool = False, grace_seconds: float = 60.0) -> CheckReport:
    """Compare rows and files; with `repair`, remove orphans and temporaries and rebuild thumbnails.

    grace_seconds: files younger than this are left alone, since a save in another process
    may be writing them right now.
    """
    import storage
    from storage.files import DiskFull, atomic_write
    from storage.inventory import take_inventory

    home = storage.data_home()
    with storage.begin() as session:
        inventory = take_inventory(session, grace_seconds)
    report = CheckReport(
        checked_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        data_home=str(home),
        missing_files=[{"owner": item.owner, "path": _relative(item.path, home)} for item in inventory.missing],
        orphan_files=[_relative(path, home) for path in inventory.orphans],
        temporary_files=[_relative(path, home) for path in inventory.temporary],
        missing_thumbnails=[_relative(item.path, home) for item in inventory.missing_thumbnails],
        repaired=repair,
    )
    if repair:
        for path in inventory.orphans + inventory.temporary:
            try:
                _remove(path)
                report.removed += 1
            except OSError:
                pass  # counted below as a problem left
        for item in inventory.missing_thumbnails:
            try:
                _rebuild_thumbnail(item.kind, item.source, item.path)
                report.rebuilt += 1
            except (OSError, ValueError):
                pass
        with storage.begin() as session:
            after = take_inventory(session, grace_seconds)
        report.problems_left = (len(after.missing) + len(after.orphans) + len(after.temporary)
                                + len(after.missing_thumbnails))
    else:
        report.problems_left = report.problems_found
    try:
        atomic_write(home / LAST_CHECK_FILE, json.dumps(report.to_dict(), indent=2).encode("utf-8"))
    except DiskFull:
        report.kept = False  # a check only reads; a full disk must not stop it from saying what it found
    return report


def last_check() -> dict | None:
    """The last check's result (CheckReport.to_dict()), or None if the data folder was never checked."""
    import storage

    path = storage.data_home() / LAST_CHECK_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
