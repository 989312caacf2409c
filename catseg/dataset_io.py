"""Import and export of annotated folders: tutorial layout, YOLOv8-seg, plain photos, zips.

Import walks a source (a folder, a zip file, or zip bytes from an upload), detects its
layout, and adds each photo through the one intake path in its own transaction, so one
bad file is reported and skipped without touching anything else.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from catseg.images import MAX_FILE_BYTES, PhotoRejected, decode_photo, is_image_name
from catseg.masks import binarise, mask_to_polygons, polygons_to_mask

FORMATS = ("auto", "tutorial", "yolo", "images")
EXPORT_FORMATS = ("tutorial", "yolo")
# Zip limits: a real photo compresses at most ~3:1; anything beyond these is a bomb or an error.
MAX_ZIP_MEMBERS = 20_000
MAX_ZIP_TOTAL_BYTES = 8 * 1024**3
MAX_COMPRESSION_RATIO = 100

ProgressCallback = Callable[[int, int, str], None]


@dataclass
class ImportReport:
    """What an import did: counts for people, reasons for every file left out."""

    detected_format: str = ""
    added: int = 0
    added_labelled: int = 0
    duplicates: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    skipped: list[str] = field(default_factory=list)  # not photos (README, data.yaml, ...)

    def merge(self, other: ImportReport) -> None:
        self.added += other.added
        self.added_labelled += other.added_labelled
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.skipped += other.skipped

    def to_dict(self) -> dict:
        return {
            "format": self.detected_format,
            "added": self.added,
            "added_labelled": self.added_labelled,
            "duplicates": len(self.duplicates),
            "rejected": [{"file": name, "reason": reason} for name, reason in self.rejected],
            "skipped": len(self.skipped),
        }


# --- sources: a folder or a zip, seen as relative POSIX names ---------------------------

class FolderSource:
    """A folder on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = root.name

    def names(self) -> list[str]:
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in self.root.rglob("*")
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(self.root).parts)
        )

    def read(self, name: str) -> bytes:
        path = self.root / name
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise PhotoRejected(f"{name}: the file is {size / 1e6:.0f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB.")
        return path.read_bytes()


class UnsafeZip(ValueError):
    """A zip that cannot be opened safely (not a zip, or a bomb)."""


def _is_safe_member_name(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return not (path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name))


class ZipSource:
    """A zip archive, read member by member with size caps (never extracted to disk)."""

    def __init__(self, data: bytes, label: str) -> None:
        self.label = label
        try:
            self.archive = zipfile.ZipFile(io.BytesIO(data))
            members = [info for info in self.archive.infolist() if not info.is_dir()]
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            raise UnsafeZip(f"{label}: not a readable zip file ({error}).") from None
        if len(members) > MAX_ZIP_MEMBERS:
            raise UnsafeZip(f"{label}: {len(members)} files in one zip; the limit is {MAX_ZIP_MEMBERS}.")
        declared = sum(info.file_size for info in members)
        if declared > MAX_ZIP_TOTAL_BYTES:
            raise UnsafeZip(
                f"{label}: the zip would expand to {declared / 1e9:.1f} GB "
                f"(limit {MAX_ZIP_TOTAL_BYTES / 1e9:.0f} GB); it looks like a zip bomb."
            )
        self.unsafe = [info.filename for info in members if not _is_safe_member_name(info.filename)]
        self.members = {
            info.filename.replace("\\", "/"): info
            for info in members
            if _is_safe_member_name(info.filename)
            and not any(part.startswith(".") or part == "__MACOSX" for part in PurePosixPath(info.filename).parts)
        }

    def names(self) -> list[str]:
        return sorted(self.members)

    def read(self, name: str) -> bytes:
        info = self.members[name]
        where = f"{self.label}/{name}"
        if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO and info.file_size > 1e6:
            raise PhotoRejected(
                f"{where}: compressed {info.file_size / info.compress_size:.0f}:1, "
                "far beyond any photo; it looks like a zip bomb."
            )
        if info.file_size > MAX_FILE_BYTES:
            raise PhotoRejected(
                f"{where}: would expand to {info.file_size / 1e6:.0f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB."
            )
        # Headers can lie: never read more than the limit whatever they declare.
        with self.archive.open(info) as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise PhotoRejected(f"{where}: expands beyond {MAX_FILE_BYTES / 1e6:.0f} MB; it looks like a zip bomb.")
        return data


class MemorySource:
    """Files uploaded in the browser: names and bytes already in memory."""

    def __init__(self, files: list[tuple[str, bytes]], label: str = "upload") -> None:
        self.label = label
        self.files: dict[str, bytes] = {}
        for name, data in files:
            # Two uploads may share a name (from different folders); keep both.
            unique, number = name, 1
            while unique in self.files:
                number += 1
                unique = f"{name} ({number})"
            self.files[unique] = data

    def names(self) -> list[str]:
        return list(self.files)

    def read(self, name: str) -> bytes:
        return self.files[name]


def import_uploads(files: list[tuple[str, bytes]], on_progress: ProgressCallback | None = None) -> ImportReport:
    """Import photos and zips uploaded in the page; each zip's layout is detected on its own."""
    return import_source(MemorySource(files), "images", on_progress)


def open_source(path_or_bytes: Path | bytes, label: str | None = None) -> FolderSource | ZipSource:
    """A source for a folder, a .zip file on disk, or zip bytes (an upload)."""
    if isinstance(path_or_bytes, bytes):
        return ZipSource(path_or_bytes, label or "upload.zip")
    path = Path(path_or_bytes)
    if path.is_dir():
        return FolderSource(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        return ZipSource(path.read_bytes(), label or path.name)
    if not path.exists():
        raise ValueError(f"{path}: no such folder or zip file.")
    raise ValueError(f"{path}: expected a folder or a .zip file.")


# --- layouts ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ImportItem:
    """One photo to import; its mask (if any) is read lazily, after the photo decoded."""

    name: str
    mask_name: str | None
    mask_kind: str  # "tutorial" | "yolo" | "none"


def _split(name: str) -> tuple[str, str]:
    parent, _, base = name.rpartition("/")
    return (parent + "/" if parent else ""), base


def detect_format(names: list[str]) -> str:
    """"tutorial" for input/ + mask/, "yolo" for images/ + labels/, else "images"."""
    folders = {name.rpartition("/")[0] for name in names}
    parents = {folder.rpartition("/")[0] for folder in folders}
    for parent in parents:
        prefix = parent + "/" if parent else ""
        if f"{prefix}input" in folders and f"{prefix}mask" in folders:
            return "tutorial"
        if f"{prefix}images" in folders and f"{prefix}labels" in folders:
            return "yolo"
    return "images"


def plan_items(names: list[str], layout: str) -> tuple[list[ImportItem], list[str], list[str]]:
    """(photos to import, nested zips, names that are neither) for a layout."""
    present = set(names)
    stems: dict[str, str] = {}
    for name in names:
        stems.setdefault(name.rsplit(".", 1)[0], name)
    items, zips, skipped = [], [], []
    for name in names:
        folder, base = _split(name)
        if name.lower().endswith(".zip"):
            zips.append(name)
            continue
        if not is_image_name(base):
            skipped.append(name)
            continue
        stem = base.rsplit(".", 1)[0]
        if layout == "tutorial" and folder.endswith("input/"):
            mask_folder = folder[: -len("input/")] + "mask/"
            mask_name = mask_folder + f"mask_{base}"
            if mask_name not in present:  # exported masks are PNG whatever the photo was
                mask_name = stems.get(mask_folder + f"mask_{stem}")
            items.append(ImportItem(name, mask_name, "tutorial" if mask_name else "none"))
        elif layout == "tutorial" and folder.endswith("mask/"):
            continue  # read with its photo
        elif layout == "yolo" and folder.endswith("images/"):
            label_name = folder[: -len("images/")] + f"labels/{stem}.txt"
            items.append(ImportItem(name, label_name if label_name in present else None, "yolo" if label_name in present else "none"))
        else:
            items.append(ImportItem(name, None, "none"))
    return items, zips, skipped


def parse_yolo_label(text: str, name: str) -> list[np.ndarray]:
    """Polygons (normalised) from a YOLOv8-seg label file; ValueError on a malformed line."""
    polygons = []
    for number, line in enumerate(text.splitlines(), start=1):
        values = line.split()
        if not values:
            continue
        try:
            coordinates = [float(value) for value in values[1:]]
        except ValueError:
            raise ValueError(f"{name}, line {number}: not numbers.") from None
        if len(coordinates) == 4:
            raise ValueError(f"{name}, line {number}: a detection box, not a segmentation polygon.")
        if len(coordinates) < 6 or len(coordinates) % 2:
            raise ValueError(f"{name}, line {number}: a polygon needs at least 3 x,y pairs.")
        points = np.array(coordinates, dtype=np.float64).reshape(-1, 2)
        if points.min() < -0.01 or points.max() > 1.01:
            raise ValueError(f"{name}, line {number}: coordinates must be normalised to 0..1.")
        polygons.append(np.clip(points, 0.0, 1.0))
    return polygons


def _read_mask(source, item: ImportItem, width: int, height: int) -> np.ndarray | None:
    if item.mask_kind == "none" or item.mask_name is None:
        return None
    data = source.read(item.mask_name)
    if item.mask_kind == "yolo":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{item.mask_name}: not a text label file.") from None
        return polygons_to_mask(parse_yolo_label(text, item.mask_name), width, height)
    decoded = decode_photo(data, item.mask_name)
    mask = binarise(decoded.pixels)
    if mask.shape != (height, width):
        raise ValueError(
            f"{item.mask_name}: the mask is {mask.shape[1]}x{mask.shape[0]} "
            f"but its photo is {width}x{height}."
        )
    return mask


def import_source(
    source: FolderSource | ZipSource,
    layout: str = "auto",
    on_progress: ProgressCallback | None = None,
    nested: bool = True,
) -> ImportReport:
    """Import every photo (and mask) of a source into the dataset; never raises for one bad file."""
    import storage
    from storage.dataset import DuplicatePhoto, add_photo

    if layout not in FORMATS:
        raise ValueError(f"Unknown format {layout!r}; expected one of {', '.join(FORMATS)}.")
    names = source.names()
    detected = detect_format(names) if layout == "auto" else layout
    items, zips, skipped = plan_items(names, detected)
    report = ImportReport(detected_format=detected, skipped=skipped)
    for unsafe in getattr(source, "unsafe", []):
        where = f"{source.label}/{unsafe}"
        report.rejected.append((where, f"{where}: unsafe path in the zip (absolute or '..'); not extracted."))
    total = len(items) + len(zips)
    for done, item in enumerate(items, start=1):
        where = f"{source.label}/{item.name}" if isinstance(source, ZipSource) else item.name
        try:
            data = source.read(item.name)
            decoded = decode_photo(data, where)
            mask = _read_mask(source, item, decoded.width, decoded.height)
            with storage.begin() as session:
                add_photo(session, data, PurePosixPath(item.name).name, mask=mask, decoded=decoded)
            report.added += 1
            report.added_labelled += mask is not None
        except DuplicatePhoto:
            report.duplicates.append(where)
        except (ValueError, OSError) as error:
            message = str(error)
            report.rejected.append((where, message if message.startswith(where) else f"{where}: {message}"))
        if on_progress:
            on_progress(done, total, item.name)
    for done, name in enumerate(zips, start=len(items) + 1):
        if nested:
            try:
                inner = ZipSource(source.read(name), name)
                report.merge(import_source(inner, "auto", None, nested=False))
            except (ValueError, OSError) as error:
                report.rejected.append((name, str(error)))
        else:
            report.rejected.append((name, f"{name}: a zip inside a zip is not opened."))
        if on_progress:
            on_progress(done, total, name)
    return report


def import_path(path_or_bytes: Path | bytes, layout: str = "auto", on_progress: ProgressCallback | None = None,
                label: str | None = None) -> ImportReport:
    """Import a folder, a zip file, or uploaded zip bytes. ValueError if it cannot be opened at all."""
    return import_source(open_source(path_or_bytes, label), layout, on_progress)


# --- export ----------------------------------------------------------------------------

def _export_name(photo_id: int, original_name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePosixPath(original_name).stem)[:60] or "photo"
    return f"{photo_id:06d}_{stem}"


def export_dataset(directory: Path, layout: str = "tutorial", on_progress: ProgressCallback | None = None) -> dict:
    """Write every labelled photo and its mask to `directory`; returns counts."""
    import storage
    from catseg.images import encode_png, read_photo_file
    from storage.dataset import counts, get_photo, labelled_pairs
    from storage.files import atomic_write

    if layout not in EXPORT_FORMATS:
        raise ValueError(f"Unknown export format {layout!r}; expected one of {', '.join(EXPORT_FORMATS)}.")
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise ValueError(f"{directory}: the folder is not empty; export into a new or empty folder.")
    with storage.begin() as session:
        pairs = labelled_pairs(session)
        names = {photo_id: get_photo(session, photo_id).original_name for photo_id, _, _ in pairs}
        unlabelled = counts(session).unlabelled
    for done, (photo_id, photo_file, mask_file) in enumerate(pairs, start=1):
        name = _export_name(photo_id, names[photo_id])
        mask = read_photo_file(mask_file)[..., 0]
        if layout == "tutorial":
            atomic_write(directory / "input" / f"{name}{photo_file.suffix}", photo_file.read_bytes())
            atomic_write(directory / "mask" / f"mask_{name}.png", encode_png(mask))
        else:
            atomic_write(directory / "images" / f"{name}{photo_file.suffix}", photo_file.read_bytes())
            lines = [
                "0 " + " ".join(f"{value:.6f}" for value in polygon.reshape(-1))
                for polygon in mask_to_polygons(mask)
            ]
            atomic_write(directory / "labels" / f"{name}.txt", ("\n".join(lines) + "\n" if lines else "").encode())
        if on_progress:
            on_progress(done, len(pairs), name)
    if layout == "yolo":
        atomic_write(directory / "data.yaml", b"train: images\nval: images\nnc: 1\nnames: ['cat']\n")
    return {"format": layout, "exported": len(pairs), "skipped_unlabelled": unlabelled, "directory": str(directory)}


def iter_folder_pairs(folder: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, photo, mask) for every labelled photo of a tutorial or YOLO folder, without a database.

    Used by `evaluate` and the benches to read test data directly.
    """
    source = open_source(folder)
    names = source.names()
    items, _, _ = plan_items(names, detect_format(names))
    for item in items:
        if item.mask_kind == "none":
            continue
        decoded = decode_photo(source.read(item.name), item.name)
        yield item.name, decoded.pixels, _read_mask(source, item, decoded.width, decoded.height)
