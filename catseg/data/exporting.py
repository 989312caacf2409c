"""Export of the labelled photos as an annotated folder: tutorial layout, YOLOv8-seg or COCO.

Every format loads back with ``catseg.data.importing.import_path``: tutorial and COCO masks
exactly, YOLO polygons to within a pixel along their edges.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from catseg.data import coco
from catseg.data.importing import ProgressCallback
from catseg.data.decoding import encode_png
from catseg.data.masks import mask_to_polygons

EXPORT_FORMATS = ("tutorial", "yolo", "coco")


def _export_name(photo_id: int, original_name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePosixPath(original_name).stem)[:60] or "photo"
    return f"{photo_id:06d}_{stem}"


def export_dataset(directory: Path, layout: str = "tutorial", on_progress: ProgressCallback | None = None) -> dict:
    """Write every labelled photo and its mask to `directory`; returns counts.

    COCO writes images/ and annotations.json: one compressed-RLE annotation per photo,
    category "cat" (id 1), so every mask loads back exactly.
    """
    import storage
    from storage.dataset import counts, get_photo, labelled_pairs
    from storage.files import atomic_write, read_image

    if layout not in EXPORT_FORMATS:
        raise ValueError(f"Unknown export format {layout!r}; expected one of {', '.join(EXPORT_FORMATS)}.")
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise ValueError(f"{directory}: the folder is not empty; export into a new or empty folder.")
    with storage.begin() as session:
        pairs = labelled_pairs(session)
        names = {photo_id: get_photo(session, photo_id).original_name for photo_id, _, _ in pairs}
        unlabelled = counts(session).unlabelled
    coco_images, coco_annotations = [], []
    for done, (photo_id, photo_file, mask_file) in enumerate(pairs, start=1):
        name = _export_name(photo_id, names[photo_id])
        mask = read_image(mask_file, "L")
        if layout == "tutorial":
            atomic_write(directory / "input" / f"{name}{photo_file.suffix}", photo_file.read_bytes())
            atomic_write(directory / "mask" / f"mask_{name}.png", encode_png(mask))
        elif layout == "coco":
            atomic_write(directory / coco.EXPORT_IMAGES / f"{name}{photo_file.suffix}", photo_file.read_bytes())
            image, annotation = coco.export_entries(photo_id, f"{name}{photo_file.suffix}", mask)
            coco_images.append(image)
            coco_annotations.append(annotation)
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
    if layout == "coco":
        atomic_write(directory / coco.EXPORT_FILE, coco.export_document(coco_images, coco_annotations))
    return {"format": layout, "exported": len(pairs), "skipped_unlabelled": unlabelled, "directory": str(directory)}
