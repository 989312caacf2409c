"""The layouts an import reads: which files are photos, which are their masks or labels, and which are left out.

``detect_format`` names a source's layout (tutorial, YOLOv8-seg, COCO or plain photos);
``plan_source`` lists what to import and what to skip with the reason; ``read_mask`` reads the
mask of one planned photo. ``catseg.data.importing`` adds the photos.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np
from PIL import Image

from catseg.data import coco
from catseg.data.decoding import MAX_PIXELS, decode_photo, is_image_name
from catseg.data.masks import mask_for_photo, polygons_to_mask

# Notes on photos added without a mask in a layout that has masks.
NO_MASK_NOTES = {
    "tutorial": "no mask file: added without a mask",
    "yolo": "no label file: added without a mask",
    "coco": "not in the COCO annotations: added without a mask",
}


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


def read_mask(source, item: ImportItem, width: int, height: int) -> np.ndarray | None:
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
