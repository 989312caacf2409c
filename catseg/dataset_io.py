"""Import of annotated folders: tutorial layout, YOLOv8-seg, COCO, plain photos, zips.

Import walks a source (a folder, a zip file, or zip bytes from an upload; see
``catseg.import_sources``), detects its layout, and adds each photo through the one intake
path (``catseg.intake``) in its own transaction, so one bad file is reported and skipped
without touching anything else. Every file the import sees ends in exactly one line of its
report (see ImportReport). Export, the way back, is ``catseg.dataset_export``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from catseg import coco
from catseg.images import MAX_PIXELS, decode_photo, is_image_name
from catseg.import_sources import FolderSource, MemorySource, ZipSource, open_source
from catseg.masks import mask_for_photo, polygons_to_mask

FORMATS = ("auto", "tutorial", "yolo", "coco", "images")
# Notes on photos added without a mask in a layout that has masks.
NO_MASK_NOTES = {
    "tutorial": "no mask file: added without a mask",
    "yolo": "no label file: added without a mask",
    "coco": "not in the COCO annotations: added without a mask",
}

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


# --- layouts ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ImportItem:
    """One photo to import; its mask (if any) is read lazily, after the photo decoded."""

    name: str
    mask_name: str | None
    mask_kind: str  # "tutorial" | "yolo" | "coco" | "none"
    note: str = ""  # said on the photo's line of the report when it is added
    coco_image: coco.CocoImage | None = None


@dataclass
class ImportPlan:
    """How a source's files are read: photos (with masks), zips to open, and files left out."""

    items: list[ImportItem] = field(default_factory=list)
    zips: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why)
    label_files: set[str] = field(default_factory=set)  # masks and labels read with a photo
    annotation_files: list[str] = field(default_factory=list)  # COCO JSONs read for many photos


def _split(name: str) -> tuple[str, str]:
    parent, _, base = name.rpartition("/")
    return (parent + "/" if parent else ""), base


def _hidden_reason(name: str) -> str | None:
    """Why a file is left out unread (macOS metadata, hidden files), or None."""
    parts = PurePosixPath(name).parts
    if "__MACOSX" in parts:
        return "macOS metadata (__MACOSX folder)"
    if any(part.startswith(".") for part in parts):
        return "hidden file"
    return None


def _format_reason(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    return f"not a photo format: {suffix}" if suffix else "not a photo format: no file extension"


def detect_format(names: list[str]) -> str:
    """"tutorial" for input/ + mask/, "yolo" for images/ + labels/, "coco" beside a COCO JSON, else "images".

    Hidden files and macOS metadata take no part.
    """
    names = [name for name in names if _hidden_reason(name) is None]
    folders = {name.rpartition("/")[0] for name in names}
    parents = {folder.rpartition("/")[0] for folder in folders}
    for parent in parents:
        prefix = parent + "/" if parent else ""
        if f"{prefix}input" in folders and f"{prefix}mask" in folders:
            return "tutorial"
        if f"{prefix}images" in folders and f"{prefix}labels" in folders:
            return "yolo"
    if any(coco.is_annotation_name(name) for name in names):
        return "coco"
    return "images"


def plan_items(names: list[str], layout: str) -> ImportPlan:
    """How the files of a tutorial, YOLO or plain layout are read, from their names alone."""
    visible = [name for name in names if _hidden_reason(name) is None]
    present = set(visible)
    stems: dict[str, str] = {}
    for name in visible:
        if is_image_name(name):
            stems.setdefault(name.rsplit(".", 1)[0], name)
    plan = ImportPlan()
    masks_and_labels = []  # named once we know which ones a photo claimed
    for name in names:
        hidden = _hidden_reason(name)
        folder, base = _split(name)
        if hidden:
            plan.skipped.append((name, hidden))
        elif name.lower().endswith(".zip"):
            plan.zips.append(name)
        elif layout == "yolo" and folder.endswith("labels/") and base.lower().endswith(".txt"):
            masks_and_labels.append((name, "label file without a photo"))
        elif not is_image_name(base):
            plan.skipped.append((name, _format_reason(name)))
        elif layout == "tutorial" and folder.endswith("mask/"):
            masks_and_labels.append((name, "mask without a photo"))
        elif layout == "tutorial" and folder.endswith("input/"):
            stem = base.rsplit(".", 1)[0]
            mask_folder = folder[: -len("input/")] + "mask/"
            mask_name = mask_folder + f"mask_{base}"
            if mask_name not in present:  # exported masks are PNG whatever the photo was
                mask_name = stems.get(mask_folder + f"mask_{stem}")
            plan.items.append(_paired_item(plan, name, mask_name, layout))
        elif layout == "yolo" and folder.endswith("images/"):
            label_name = folder[: -len("images/")] + f"labels/{base.rsplit('.', 1)[0]}.txt"
            plan.items.append(_paired_item(plan, name, label_name if label_name in present else None, layout))
        else:
            plan.items.append(ImportItem(name, None, "none", NO_MASK_NOTES.get(layout, "")))
    plan.skipped += [(name, why) for name, why in masks_and_labels if name not in plan.label_files]
    return plan


def _paired_item(plan: ImportPlan, name: str, mask_name: str | None, layout: str) -> ImportItem:
    if mask_name is None:
        return ImportItem(name, None, "none", NO_MASK_NOTES[layout])
    plan.label_files.add(mask_name)
    return ImportItem(name, mask_name, layout)


def plan_coco(source, names: list[str], forced: bool = False) -> ImportPlan:
    """How a COCO layout is read; ValueError naming the problem when an annotation file is bad.

    Every annotation file is checked, and every image it lists found and measured, before
    anything is added, so a bad file refuses the whole source. Without a COCO-like name
    (annotations.json, instances_*.json) a chosen --format coco reads every .json.
    """
    visible = [name for name in names if _hidden_reason(name) is None]
    json_names = [name for name in visible if coco.is_annotation_name(name)]
    if not json_names and forced:
        json_names = [name for name in visible if name.lower().endswith(".json")]
    if not json_names:
        raise ValueError(f"{source.label}: no COCO annotation file (.json) found.")
    images: dict[str, coco.CocoImage] = {}
    owners: dict[str, str] = {}
    for json_name in json_names:
        annotations = coco.parse_annotations(source.read(json_name), source.where(json_name))
        for photo_name, image in coco.locate_images(annotations, json_name, visible).items():
            if photo_name in owners:
                raise ValueError(
                    f"{source.where(photo_name)} is listed in both {source.where(owners[photo_name])} "
                    f"and {source.where(json_name)}."
                )
            try:
                data = source.read(photo_name)
            except (ValueError, OSError):
                data = b""  # too large to read: the photo is rejected with that reason when added
            coco.check_photo_size(image, data, source.where(photo_name), source.where(json_name))
            images[photo_name], owners[photo_name] = image, json_name
    plan = ImportPlan(annotation_files=json_names)
    for name in names:
        hidden = _hidden_reason(name)
        if hidden:
            plan.skipped.append((name, hidden))
        elif name in json_names:
            continue  # named in the report's annotation files
        elif name in images:
            plan.items.append(ImportItem(name, owners[name], "coco", coco_image=images[name]))
        elif name.lower().endswith(".zip"):
            plan.zips.append(name)
        elif is_image_name(name):
            plan.items.append(ImportItem(name, None, "none", NO_MASK_NOTES["coco"]))
        else:
            plan.skipped.append((name, _format_reason(name)))
    return plan


def _gif_reason(source, name: str) -> str:
    """Why a GIF is skipped, saying so when it is animated (the intake reads no GIFs at all)."""
    try:
        with Image.open(io.BytesIO(source.read(name))) as image:
            width, height = image.size
            # Counting frames walks the file: only for sizes the intake would accept anyway.
            animated = width * height <= MAX_PIXELS and getattr(image, "n_frames", 1) > 1
    except Exception:  # Pillow raises many types for broken files; a broken GIF is skipped all the same
        return _format_reason(name)
    if animated:
        return "animated GIF: not imported; save one frame as PNG or JPEG to add it"
    return "GIF: not a photo format we import; save it as PNG or JPEG to add it"


def plan_source(source, names: list[str], layout: str, forced: bool = False) -> ImportPlan:
    """How a source's files are read in a layout; ValueError for a bad COCO annotation file."""
    plan = plan_coco(source, names, forced) if layout == "coco" else plan_items(names, layout)
    plan.skipped = [
        (name, _gif_reason(source, name) if name.lower().endswith(".gif") and why == _format_reason(name) else why)
        for name, why in plan.skipped
    ]
    return plan


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
    if item.mask_kind == "coco":
        # Drawn at the size the JSON gives; add_photo rejects it if the decoded photo differs.
        return coco.image_mask(item.coco_image)
    data = source.read(item.mask_name)
    if item.mask_kind == "yolo":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{item.mask_name}: not a text label file.") from None
        return polygons_to_mask(parse_yolo_label(text, item.mask_name), width, height)
    return mask_for_photo(decode_photo(data, item.mask_name).pixels, width, height, item.mask_name)


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
    from catseg.intake import add_photo
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
            mask = _read_mask(source, item, decoded.width, decoded.height)
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
        yield item.name, decoded.pixels, _read_mask(source, item, decoded.width, decoded.height)
