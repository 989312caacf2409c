"""COCO instance segmentation: read the cat masks of a COCO JSON beside its images, and write one.

Masks go through pycocotools, the format's reference code: an imported mask is exactly
what `COCO.annToMask` gives (the union of an image's annotations), and an exported file
loads back bit for bit. Everything in a file is checked by `parse_annotations` and
`locate_images` before any mask is decoded, so a broken file can be refused as a whole.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

EXPORT_FILE = "annotations.json"
EXPORT_IMAGES = "images"
EXPORT_CATEGORY = {"id": 1, "name": "cat", "supercategory": "animal"}
# The names COCO files go by: annotations.json, instances_val2017.json, _annotations.coco.json.
ANNOTATION_NAME = re.compile(r"(instances|annotations|coco)[^/]*\.json$", re.IGNORECASE)
# A polygon point further out than this is an error in the file, and pycocotools would
# allocate memory in proportion to it.
POLYGON_MARGIN = 1.0  # in image widths / heights beyond each edge


@dataclass(frozen=True)
class CocoImage:
    """One image of a COCO file and the segmentations of its chosen annotations (checked)."""

    image_id: int | str
    file_name: str
    width: int
    height: int
    segmentations: tuple  # polygon lists and RLE dicts; none for an image without a cat


@dataclass(frozen=True)
class CocoFile:
    """A checked COCO file: its images with the segmentations of their chosen annotations."""

    name: str
    images: tuple[CocoImage, ...]


def is_annotation_name(name: str) -> bool:
    """True for the file names COCO annotation files usually have."""
    return bool(ANNOTATION_NAME.search(PurePosixPath(name).name))


def _whole_positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and float(value).is_integer()


def _count_list(value) -> bool:
    return isinstance(value, list) and all(
        isinstance(count, int) and not isinstance(count, bool) and count >= 0 for count in value
    )


def _covers_exactly(counts: str, width: int, height: int) -> bool:
    """Whether a compressed RLE string runs over exactly width x height pixels.

    pycocotools refuses runs longer than the mask but fills a shorter one with whatever
    memory held (and its merge never ends on one), so the length is checked first. Decoding
    the same runs as a column one pixel shorter fails exactly when they cover every pixel.
    """
    data = counts.encode("utf-8", errors="replace")
    try:
        mask_utils.decode({"size": [height, width], "counts": data})
    except ValueError:
        return False
    try:
        mask_utils.decode({"size": [height * width - 1, 1], "counts": data})
    except ValueError:
        return True
    return False


def _check_segmentation(segmentation, image: CocoImage, where: str):
    """The segmentation as pycocotools takes it, or ValueError saying what is wrong with it."""
    if isinstance(segmentation, list):
        if segmentation and all(isinstance(value, (int, float)) for value in segmentation):
            segmentation = [segmentation]  # a single polygon written without the outer list
        for polygon in segmentation:
            if not isinstance(polygon, list) or not all(
                isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                for value in polygon
            ):
                raise ValueError(f"{where}: polygon coordinates must be lists of numbers.")
            if len(polygon) < 6 or len(polygon) % 2:
                raise ValueError(f"{where}: a polygon needs at least 3 x,y pairs.")
            xs, ys = polygon[0::2], polygon[1::2]
            if (min(xs) < -POLYGON_MARGIN * image.width or max(xs) > (1 + POLYGON_MARGIN) * image.width
                    or min(ys) < -POLYGON_MARGIN * image.height or max(ys) > (1 + POLYGON_MARGIN) * image.height):
                raise ValueError(
                    f"{where}: a polygon lies far outside its {image.width}x{image.height} image."
                )
        return [[float(value) for value in polygon] for polygon in segmentation]
    if not isinstance(segmentation, dict) or "counts" not in segmentation or "size" not in segmentation:
        raise ValueError(f"{where}: the segmentation is neither polygons nor an RLE mask (size and counts).")
    size = segmentation["size"]
    if size != [image.height, image.width]:
        described = f"{size[1]}x{size[0]}" if isinstance(size, list) and len(size) == 2 else repr(size)
        raise ValueError(
            f"{where}: its RLE mask is {described} but image {image.image_id!r} is {image.width}x{image.height}."
        )
    counts = segmentation["counts"]
    pixels = image.width * image.height
    if _count_list(counts):
        if sum(counts) != pixels:
            raise ValueError(
                f"{where}: its RLE counts cover {sum(counts)} pixels, not the {pixels} of a "
                f"{image.width}x{image.height} image."
            )
        return {"size": [image.height, image.width], "counts": counts}
    if isinstance(counts, str):
        if not _covers_exactly(counts, image.width, image.height):
            raise ValueError(
                f"{where}: its compressed RLE does not cover the {image.width}x{image.height} pixels of its image."
            )
        return {"size": [image.height, image.width], "counts": counts}
    raise ValueError(f"{where}: RLE counts must be a string or a list of whole numbers.")


def _read_json(data: bytes, name: str) -> dict:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ValueError(f"{name}: not valid JSON (the file is not UTF-8 text).") from None
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{name}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})."
        ) from None
    if not isinstance(document, dict):
        raise ValueError(f"{name}: not a COCO annotation file (expected an object with images and annotations).")
    if not isinstance(document.get("images"), list):
        raise ValueError(f"{name}: not a COCO annotation file (no \"images\" list).")
    if not isinstance(document.get("annotations"), list):
        raise ValueError(f"{name}: no \"annotations\" list; a COCO instance segmentation file needs one.")
    if "categories" in document and not isinstance(document["categories"], list):
        raise ValueError(f"{name}: \"categories\" must be a list.")
    return document


def _read_images(document: dict, name: str) -> dict:
    images: dict = {}
    for index, entry in enumerate(document["images"]):
        if not isinstance(entry, dict):
            raise ValueError(f"{name}: images[{index}] is not an object.")
        image_id = entry.get("id")
        if not isinstance(image_id, (int, str)) or isinstance(image_id, bool):
            raise ValueError(f"{name}: images[{index}] has no id.")
        if image_id in images:
            raise ValueError(f"{name}: image id {image_id!r} appears twice in \"images\".")
        file_name = entry.get("file_name")
        if not isinstance(file_name, str) or not file_name.strip():
            raise ValueError(f"{name}: image {image_id!r} has no file_name.")
        width, height = entry.get("width"), entry.get("height")
        if not (_whole_positive(width) and _whole_positive(height)):
            raise ValueError(f"{name}: image {image_id!r} ({file_name}) needs a whole, positive width and height.")
        images[image_id] = CocoImage(image_id, file_name, int(width), int(height), ())
    if not images:
        raise ValueError(f"{name}: the \"images\" list is empty; there is nothing to import.")
    return images


def _categories(document: dict, name: str) -> tuple[set, set | None]:
    """(every category id, the ids to read): "cat" when the file has it, else all of them.

    A file without categories has every annotation read (ids to read: None).
    """
    if "categories" not in document:
        return set(), None
    categories = {}
    for index, entry in enumerate(document["categories"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), (int, str)):
            raise ValueError(f"{name}: categories[{index}] has no id.")
        categories[entry["id"]] = str(entry.get("name", ""))
    cats = {category_id for category_id, label in categories.items() if label.strip().lower() == "cat"}
    return set(categories), cats or set(categories)


def parse_annotations(data: bytes, name: str) -> CocoFile:
    """Read and check a COCO file; ValueError with one sentence naming the first problem.

    Only the "cat" category is read when the file has one, else every category. Each
    image keeps the segmentations of its chosen annotations, to be merged as their union
    (none: an image without a cat, whose mask is empty).
    """
    document = _read_json(data, name)
    images = _read_images(document, name)
    known, chosen = _categories(document, name)
    segmentations: dict = {image_id: [] for image_id in images}
    for index, annotation in enumerate(document["annotations"]):
        if not isinstance(annotation, dict):
            raise ValueError(f"{name}: annotations[{index}] is not an object.")
        where = f"{name}: annotation {annotation['id']!r}" if "id" in annotation else f"{name}: annotations[{index}]"
        image_id = annotation.get("image_id")
        if not isinstance(image_id, (int, str)) or image_id not in images:
            raise ValueError(f"{where} names image id {image_id!r}, which is not in \"images\".")
        category_id = annotation.get("category_id")
        if not isinstance(category_id, (int, str)) and chosen is not None:
            raise ValueError(f"{where} has no category_id.")
        if chosen is not None and category_id not in chosen:
            if category_id not in known:
                raise ValueError(f"{where} has category {category_id!r}, which is not in \"categories\".")
            continue  # another category (a dog beside the cat): not part of the cat mask
        if "segmentation" not in annotation:
            raise ValueError(f"{where} has no segmentation (a box alone is not a mask).")
        segmentations[image_id].append(_check_segmentation(annotation["segmentation"], images[image_id], where))
    checked = tuple(
        CocoImage(image.image_id, image.file_name, image.width, image.height, tuple(segmentations[image_id]))
        for image_id, image in images.items()
    )
    return CocoFile(name, checked)


def locate_images(coco_file: CocoFile, json_name: str, names: list[str]) -> dict[str, CocoImage]:
    """Each image's file among `names` (source-relative): {file: image}; ValueError if any is missing.

    file_name is read relative to the JSON's folder, then its images/ folder, then as the
    end of a path anywhere in the source (annotations/ beside val2017/, as COCO itself ships).
    """
    folder = PurePosixPath(json_name).parent
    present = set(names)
    by_base: dict[str, list[str]] = {}
    for name in names:
        by_base.setdefault(PurePosixPath(name).name, []).append(name)
    located: dict[str, CocoImage] = {}
    missing, ambiguous = [], []
    for image in coco_file.images:
        file_name = image.file_name.replace("\\", "/").removeprefix("./")
        base = PurePosixPath(file_name).name
        beside = [str(folder / file_name), str(folder / EXPORT_IMAGES / file_name)]
        tail = [name for name in by_base.get(base, []) if ("/" + name).endswith("/" + file_name.lstrip("/"))]
        matches = [name for name in beside if name in present] or tail or by_base.get(base, [])
        if not matches:
            missing.append(image.file_name)
            continue
        if len(matches) > 1 and not any(name in present for name in beside):
            ambiguous.append(image.file_name)
            continue
        found = matches[0]
        if found in located:
            raise ValueError(f"{coco_file.name}: {found} is listed twice (image ids {located[found].image_id!r} "
                             f"and {image.image_id!r}).")
        located[found] = image
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise ValueError(f"{coco_file.name}: {len(missing)} of its images are missing ({shown}).")
    if ambiguous:
        raise ValueError(f"{coco_file.name}: several files are named {ambiguous[0]}; "
                         "put each image where its file_name says.")
    return located


def upright_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a photo as it is shown (EXIF rotation applied), from its header only.

    None when the header cannot be read; decoding the photo later says why.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            # EXIF orientations 5-8 turn the photo a quarter: decode_photo swaps its sides.
            if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                width, height = height, width
    except Exception:  # Pillow raises many types for broken headers
        return None
    return width, height


def check_photo_size(image: CocoImage, data: bytes, photo_name: str, json_name: str) -> None:
    """ValueError when the photo's size is not the one the JSON gives for it."""
    size = upright_size(data)
    if size is not None and size != (image.width, image.height):
        raise ValueError(
            f"{json_name}: image {image.image_id!r} is {image.width}x{image.height} in the JSON "
            f"but {photo_name} is {size[0]}x{size[1]}."
        )


def image_mask(image: CocoImage) -> np.ndarray:
    """The union of an image's checked segmentations as a (height, width) 0/255 mask.

    COCO annotates every object on a listed image, so one without annotations has an empty mask.
    """
    encoded = []
    for segmentation in image.segmentations:
        if isinstance(segmentation, list):
            if segmentation:  # one RLE per polygon: merged below as the union of their fills
                encoded.extend(mask_utils.frPyObjects(segmentation, image.height, image.width))
        elif isinstance(segmentation["counts"], list):
            encoded.append(mask_utils.frPyObjects(segmentation, image.height, image.width))
        else:
            encoded.append(segmentation)
    if not encoded:
        return np.zeros((image.height, image.width), dtype=np.uint8)
    union = mask_utils.merge(encoded, intersect=False)
    return np.where(mask_utils.decode(union) > 0, 255, 0).astype(np.uint8)


def export_entries(number: int, file_name: str, mask: np.ndarray) -> tuple[dict, dict]:
    """(image, annotation) for one labelled photo: its whole mask as one compressed-RLE annotation."""
    height, width = mask.shape
    encoded = mask_utils.encode(np.asfortranarray(mask > 0, dtype=np.uint8))
    image = {"id": number, "file_name": file_name, "width": width, "height": height}
    annotation = {
        "id": number,
        "image_id": number,
        "category_id": EXPORT_CATEGORY["id"],
        "segmentation": {"size": [height, width], "counts": encoded["counts"].decode("ascii")},
        "area": int(mask_utils.area(encoded)),
        "bbox": [float(value) for value in mask_utils.toBbox(encoded)],
        "iscrowd": 0,
    }
    return image, annotation


def export_document(images: list[dict], annotations: list[dict]) -> bytes:
    """The annotations.json of an export."""
    document = {
        "info": {"description": "Cat masks exported by catseg"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [EXPORT_CATEGORY],
    }
    return json.dumps(document).encode("utf-8")
