"""Photos and masks into the dataset: decode them, decide what is stored, then store it.

`storage` keeps bytes and rows; what those bytes are is decided here. A photo is decoded
once (``catseg.data.decoding.decode_photo``) and kept byte for byte when it is a JPEG or PNG that
needed no change; anything else is stored as a lossless PNG of its upright RGB pixels, so
the stored photos come in two formats every reader handles and show what the intake saw.
A mask becomes 0/255 by the one mask rule (``catseg.data.masks.cat_pixels``) and is stored as
PNG. Both get small thumbnails for the galleries.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy.orm import Session

from catseg.data.decoding import DecodedPhoto, decode_photo, encode_jpeg, encode_png, thumbnail
from catseg.data.masks import mask_for_photo
from storage import dataset
from storage.dataset import MaskFiles, PhotoFiles
from storage.models import MaskRevision, Photo

THUMBNAIL_SIDE = 256
# The source formats stored as they came (file extension of each), when nothing had to change.
KEPT_FORMATS = {"JPEG": "jpg", "PNG": "png"}


def photo_thumbnail(pixels: np.ndarray) -> bytes:
    """The gallery's small JPEG of an RGB photo."""
    return encode_jpeg(thumbnail(pixels, THUMBNAIL_SIDE), 85)


def mask_thumbnail(mask: np.ndarray) -> bytes:
    """The gallery's small PNG of a 0/255 mask."""
    return encode_png(thumbnail(mask, THUMBNAIL_SIDE))


def photo_files(data: bytes, decoded: DecodedPhoto, digest: str) -> PhotoFiles:
    """What storage keeps of a decoded photo whose bytes hash to `digest`."""
    extension = KEPT_FORMATS.get(decoded.source_format)
    if decoded.was_converted or extension is None:
        extension, data = "png", encode_png(decoded.pixels)
    return PhotoFiles(digest, extension, data, photo_thumbnail(decoded.pixels), decoded.width, decoded.height)


def mask_files(mask: np.ndarray, width: int, height: int, name: str = "mask") -> MaskFiles:
    """What storage keeps of a mask (bool, 0/1, 0..255 or probabilities) for a width x height photo.

    ValueError naming `name` when the mask has another size.
    """
    pixels = mask_for_photo(mask, width, height, name)
    return MaskFiles(encode_png(pixels), mask_thumbnail(pixels), np.count_nonzero(pixels) / pixels.size)


def add_photo(
    session: Session,
    data: bytes,
    original_name: str,
    mask: np.ndarray | None = None,
    mask_source: str = "imported",
    decoded: DecodedPhoto | None = None,
    created_by: str | None = None,
) -> Photo:
    """Add a photo (and optionally its mask). Raises PhotoRejected, DuplicatePhoto or ValueError.

    decoded: the photo already decoded from `data`, to save decoding it twice.
    created_by: who adds it (and its mask), as recorded with both.
    """
    digest = dataset.new_photo_hash(session, data, original_name)
    decoded = decoded or decode_photo(data, original_name)
    # Checked before anything is written, so a bad mask leaves no trace.
    masks = None if mask is None else mask_files(mask, decoded.width, decoded.height, original_name)
    photo = dataset.store_photo(session, original_name, photo_files(data, decoded, digest), created_by)
    if masks is not None:
        dataset.store_mask(session, photo.id, masks, mask_source, created_by)
    return photo


def save_mask(session: Session, photo_id: int, mask: np.ndarray, source: str,
              created_by: str | None = None) -> MaskRevision:
    """Store a new mask of a photo (full resolution, lossless PNG 0/255), saved by `created_by`; it becomes the current one."""
    photo = dataset.get_photo(session, photo_id)
    return dataset.store_mask(session, photo_id, mask_files(mask, photo.width, photo.height, photo.original_name),
                              source, created_by)
