"""Import of annotated folders: tutorial layout, YOLOv8-seg, COCO, plain photos, zips.

Import walks a source (a folder, a zip file, or zip bytes from an upload; see
``catseg.data.import_sources``), detects its layout, and adds each photo through the one intake
path (``catseg.data.intake``) in its own transaction, so one bad file is reported and skipped
without touching anything else. Every file the import sees ends in exactly one line of its
report (see ImportReport). Export, the way back, is ``catseg.data.exporting``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from catseg.data.decoding import decode_photo
from catseg.data.import_sources import FolderSource, MemorySource, ZipSource, open_source
from catseg.data.layouts import detect_format, plan_source, read_mask

FORMATS = ("auto", "tutorial", "yolo", "coco", "images")
ProgressCallback = Callable[[int, int, str], None]


@dataclass
class ImportReport:
    """What an import did: one line for every file it saw, and counts for people.

    A file is a file of the folder or a member of a zip; hidden ones are files too. A photo
    and the mask or label file read with it (tutorial mask/, YOLO labels/) are one file,
    named by the photo; a COCO annotation file, which labels many photos, is named once in
    `annotation_files` and counted with the photos it labels. A zip that is opened is not
    a file itself: its members are (one it cannot open is a rejected file). So
    added + duplicates + rejected + skipped == files_seen, each file named exactly once.
    """

    detected_format: str = ""
    files_seen: int = 0
    added_files: list[tuple[str, str]] = field(default_factory=list)  # (file, note or "")
    added_labelled: int = 0
    duplicates: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file, reason naming the file)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why: not a photo, hidden, ...)
    annotation_files: list[str] = field(default_factory=list)  # COCO JSONs read for the masks
    # Why the import stopped before the end (the disk is full), or "" when it went through every
    # file; the files after that point are not in any list.
    stopped: str = ""

    @property
    def added(self) -> int:
        return len(self.added_files)

    def stop(self, reason: str) -> ImportReport:
        """End the import early for `reason`: only the files it went through count as seen."""
        self.stopped = self.stopped or reason
        self.files_seen = self.added + len(self.duplicates) + len(self.rejected) + len(self.skipped)
        return self

    def merge(self, other: ImportReport) -> None:
        self.files_seen += other.files_seen
        self.added_files += other.added_files
        self.added_labelled += other.added_labelled
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.skipped += other.skipped
        self.annotation_files += other.annotation_files
        self.stopped = self.stopped or other.stopped

    def to_dict(self) -> dict:
        return {
            "format": self.detected_format,
            "files_seen": self.files_seen,
            "added": self.added,
            "added_labelled": self.added_labelled,
            "duplicates": len(self.duplicates),
            "rejected": [{"file": name, "reason": reason} for name, reason in self.rejected],
            "skipped": [{"file": name, "reason": reason} for name, reason in self.skipped],
            "added_files": [{"file": name, "note": note} for name, note in self.added_files],
            "duplicate_files": list(self.duplicates),
            "annotation_files": list(self.annotation_files),
            "stopped": self.stopped,
        }


def import_uploads(files: list[tuple[str, bytes]], on_progress: ProgressCallback | None = None,
                   created_by: str | None = None) -> ImportReport:
    """Import photos and zips uploaded in the page by `created_by`; each zip's layout is detected on its own."""
    return import_source(MemorySource(files), "images", on_progress, created_by=created_by)


def _naming(where: str, message: str) -> str:
    """A reason that starts with the file it is about."""
    return message if message.startswith(where) else f"{where}: {message}"


def import_source(
    source: FolderSource | ZipSource | MemorySource,
    layout: str = "auto",
    on_progress: ProgressCallback | None = None,
    nested: bool = True,
    created_by: str | None = None,
) -> ImportReport:
    """Import every photo (and mask) of a source into the dataset; never raises for one bad file.

    ValueError for an unknown layout or a bad COCO annotation file: then nothing is added.
    A full disk stops the import at that photo (`report.stopped` says why); what was added is kept.
    created_by: who imports, recorded with every photo and mask.
    """
    import storage
    from catseg.data.intake import add_photo
    from storage.dataset import DuplicatePhoto

    if layout not in FORMATS:
        raise ValueError(f"Unknown format {layout!r}; expected one of {', '.join(FORMATS)}.")
    names = source.names()
    detected = detect_format(names) if layout == "auto" else layout
    plan = plan_source(source, names, detected, forced=layout != "auto")
    unsafe = getattr(source, "unsafe", [])
    report = ImportReport(
        detected_format=detected,
        # Masks and labels count with their photos; each zip counts as its members (or as
        # one rejected file), added below.
        files_seen=len(names) + len(unsafe) - len(plan.label_files) - len(plan.annotation_files) - len(plan.zips),
        skipped=[(source.where(name), why) for name, why in plan.skipped],
        annotation_files=[source.where(name) for name in plan.annotation_files],
    )
    for name in unsafe:
        where = source.where(name)
        report.rejected.append((where, f"{where}: unsafe path in the zip (absolute or '..'); not extracted."))
    total = len(plan.items) + len(plan.zips)
    for done, item in enumerate(plan.items, start=1):
        where = source.where(item.name)
        try:
            data = source.read(item.name)
            decoded = decode_photo(data, where)
            mask = read_mask(source, item, decoded.width, decoded.height)
            with storage.begin() as session:
                add_photo(session, data, PurePosixPath(item.name).name, mask=mask, decoded=decoded,
                          created_by=created_by)
            report.added_files.append((where, item.note))
            report.added_labelled += mask is not None
        except DuplicatePhoto:
            report.duplicates.append(where)
        except (storage.DiskFull, storage.DatabaseUnavailable) as error:
            # Every later photo would fail the same way: stop, and say so once.
            return report.stop(f"{where}: {error}")
        except (ValueError, OSError) as error:
            report.rejected.append((where, _naming(where, str(error))))
        if on_progress:
            on_progress(done, total, item.name)
    for done, name in enumerate(plan.zips, start=len(plan.items) + 1):
        where = source.where(name)
        if nested:
            try:
                report.merge(import_source(ZipSource(source.read(name), where), "auto", None, nested=False,
                                           created_by=created_by))
                if report.stopped:
                    return report.stop(report.stopped)
            except (ValueError, OSError) as error:
                report.rejected.append((where, _naming(where, str(error))))
                report.files_seen += 1
        else:
            report.rejected.append((where, f"{where}: a zip inside a zip is not opened; unzip it first."))
            report.files_seen += 1
        if on_progress:
            on_progress(done, total, name)
    return report


def import_path(path_or_bytes: Path | bytes, layout: str = "auto", on_progress: ProgressCallback | None = None,
                label: str | None = None, created_by: str | None = None) -> ImportReport:
    """Import a folder, a zip file, or uploaded zip bytes, as `created_by`.

    ValueError if it cannot be opened at all, or its COCO annotations are bad (nothing is added).
    """
    return import_source(open_source(path_or_bytes, label), layout, on_progress, created_by=created_by)


def iter_folder_pairs(folder: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, photo, mask) for every labelled photo of a tutorial, YOLO or COCO folder, without a database.

    Used by `evaluate` and the benches to read test data directly.
    """
    source = open_source(folder)
    names = source.names()
    for item in plan_source(source, names, detect_format(names)).items:
        if item.mask_kind == "none":
            continue
        decoded = decode_photo(source.read(item.name), item.name)
        yield item.name, decoded.pixels, read_mask(source, item, decoded.width, decoded.height)
