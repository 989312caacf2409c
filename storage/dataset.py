"""Photos and masks: store, read, list, label, undo, delete.

Every function takes the caller's `Session`; the caller owns the transaction
(`with storage.begin() as session: ...`). Files are written atomically and follow
their rows (see `storage.files`). What the files hold is the caller's choice: storage
keeps the bytes it is given (`PhotoFiles`, `MaskFiles`; `catseg.data.intake` makes them)
and reads them back as pixels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased

from storage.db import get_or_raise
from storage.files import delete_with_row, read_image, write_with_row
from storage.models import MASK_SOURCES, MaskRevision, Photo
from storage.settings import data_home

FILTERS = ("all", "labelled", "unlabelled")


class DuplicatePhoto(ValueError):
    """The same photo (same bytes) is already in the dataset."""

    def __init__(self, name: str, existing_id: int) -> None:
        super().__init__(f"{name}: already in the dataset (photo #{existing_id}).")
        self.existing_id = existing_id


@dataclass(frozen=True)
class PhotoFiles:
    """A photo ready to store: the file to keep, its gallery thumbnail, and its size."""

    content_hash: str  # of the bytes as received, so the same photo is recognised again
    extension: str  # of the stored file, without the dot: "jpg", "png"
    data: bytes
    thumbnail: bytes  # a small JPEG
    width: int
    height: int


@dataclass(frozen=True)
class MaskFiles:
    """A mask ready to store: a lossless PNG of the 0/255 mask at the photo's size, and its thumbnail."""

    data: bytes
    thumbnail: bytes  # a small PNG
    foreground_fraction: float  # the share of cat pixels


@dataclass(frozen=True)
class PhotoSummary:
    """What the gallery and the pages need to know of a photo, without a live session."""

    id: int
    original_name: str
    width: int
    height: int
    created_at: datetime
    mask_source: str | None  # None while the photo has no mask
    mask_updated_at: datetime | None
    mask_saved_by: str | None = None  # who saved the current mask (None: unknown, or no mask)

    @property
    def is_labelled(self) -> bool:
        return self.mask_source is not None


@dataclass(frozen=True)
class PhotoPlace:
    """Where a photo sits among all the photos (oldest first), for stepping through them one at a time."""

    position: int  # 0-based
    count: int  # photos in the dataset
    labelled: int  # photos with a mask
    previous_id: int | None  # None for the first photo
    next_id: int | None  # None for the last photo
    next_unlabelled_id: int | None  # the first unlabelled one after it, wrapping round; None when no other is


@dataclass(frozen=True)
class DatasetCounts:
    images: int
    labelled: int

    @property
    def unlabelled(self) -> int:
        return self.images - self.labelled


# --- paths ---------------------------------------------------------------------------

def photos_folder() -> Path:
    return data_home() / "photos"


def photo_path(photo: Photo) -> Path:
    return photos_folder() / photo.file_name


def thumbnail_path(photo: Photo) -> Path:
    return data_home() / "thumbnails" / f"{photo.content_hash}.jpg"


def mask_path(revision: MaskRevision) -> Path:
    return data_home() / "masks" / revision.file_name


def mask_thumbnail_path(revision: MaskRevision) -> Path:
    return data_home() / "masks" / revision.file_name.replace(".png", ".thumb.png")


# --- masks ---------------------------------------------------------------------------

def _current_revision_subquery():
    return (
        select(MaskRevision.photo_id, func.max(MaskRevision.id).label("revision_id"))
        .group_by(MaskRevision.photo_id)
        .subquery()
    )


def current_mask_revision(session: Session, photo_id: int) -> MaskRevision | None:
    return session.scalars(
        select(MaskRevision)
        .where(MaskRevision.photo_id == photo_id)
        .order_by(MaskRevision.id.desc())
        .limit(1)
    ).first()


def store_mask(session: Session, photo_id: int, files: MaskFiles, source: str,
               created_by: str | None = None) -> MaskRevision:
    """Store a new mask revision of a photo, saved by `created_by`; it becomes the current mask."""
    if source not in MASK_SOURCES:
        raise ValueError(f"Unknown mask source {source!r}; expected one of {', '.join(MASK_SOURCES)}.")
    photo = get_photo(session, photo_id)
    revision = MaskRevision(
        photo_id=photo.id, source=source, file_name="pending", foreground_fraction=files.foreground_fraction,
        created_by=created_by,
    )
    session.add(revision)
    session.flush()  # the id names the file
    revision.file_name = f"{photo.id}/{revision.id}.png"
    write_with_row(session, mask_path(revision), files.data)
    write_with_row(session, mask_thumbnail_path(revision), files.thumbnail)
    return revision


def undo_mask(session: Session, photo_id: int) -> MaskRevision | None:
    """Drop the newest mask revision so the previous one is current again; returns that one."""
    revision = current_mask_revision(session, photo_id)
    if revision is None:
        raise ValueError("This photo has no saved mask to undo.")
    delete_with_row(session, mask_path(revision))
    delete_with_row(session, mask_thumbnail_path(revision))
    session.delete(revision)
    session.flush()
    return current_mask_revision(session, photo_id)


def load_mask(session: Session, photo_id: int) -> np.ndarray | None:
    """The current mask at full resolution (uint8 0/255), or None if the photo has none."""
    revision = current_mask_revision(session, photo_id)
    if revision is None:
        return None
    return read_image(mask_path(revision), "L")


def load_mask_revision(session: Session, revision_id: int) -> np.ndarray:
    """The mask of one revision at full resolution (uint8 0/255), current or not."""
    revision = get_or_raise(session, MaskRevision, revision_id,
                            f"There is no mask revision #{revision_id}; it may have been undone.")
    return read_image(mask_path(revision), "L")


def mask_revision_count(session: Session, photo_id: int) -> int:
    return session.scalar(select(func.count()).where(MaskRevision.photo_id == photo_id)) or 0


# --- photos --------------------------------------------------------------------------

def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def find_by_hash(session: Session, digest: str) -> Photo | None:
    return session.scalars(select(Photo).where(Photo.content_hash == digest)).first()


def new_photo_hash(session: Session, data: bytes, original_name: str) -> str:
    """The content hash of a photo's bytes; DuplicatePhoto if the dataset already holds them."""
    digest = content_hash(data)
    existing = find_by_hash(session, digest)
    if existing is not None:
        raise DuplicatePhoto(original_name, existing.id)
    return digest


def store_photo(session: Session, original_name: str, files: PhotoFiles, created_by: str | None = None) -> Photo:
    """Store a photo's row and files, added by `created_by`; the name is kept for display only, files are named by hash."""
    digest = files.content_hash
    photo = Photo(
        content_hash=digest,
        original_name=original_name[:512],
        file_name=f"{digest[:2]}/{digest}.{files.extension}",
        width=files.width,
        height=files.height,
        created_by=created_by,
    )
    session.add(photo)
    session.flush()
    write_with_row(session, photo_path(photo), files.data)
    write_with_row(session, thumbnail_path(photo), files.thumbnail)
    return photo


def get_photo(session: Session, photo_id: int) -> Photo:
    return get_or_raise(session, Photo, photo_id, f"There is no photo #{photo_id}; it may have been deleted.")


def load_photo(session: Session, photo_id: int) -> np.ndarray:
    """The stored photo as upright RGB uint8 at full resolution."""
    return read_image(photo_path(get_photo(session, photo_id)))


def load_thumbnail(session: Session, photo_id: int) -> np.ndarray:
    return read_image(thumbnail_path(get_photo(session, photo_id)))


def load_mask_thumbnail(session: Session, photo_id: int) -> np.ndarray | None:
    revision = current_mask_revision(session, photo_id)
    if revision is None:
        return None
    return read_image(mask_thumbnail_path(revision), "L")


def gallery_images(session: Session, summaries: list[PhotoSummary]) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(photo thumbnail, mask thumbnail or None) for each summary, for a gallery page."""
    return [(load_thumbnail(session, s.id), load_mask_thumbnail(session, s.id) if s.is_labelled else None)
            for s in summaries]


def delete_photos(session: Session, photo_ids: list[int]) -> int:
    """Delete photos, their masks and all their files (files go once the delete commits)."""
    photos = session.scalars(select(Photo).where(Photo.id.in_(photo_ids))).all()
    for photo in photos:
        for revision in photo.mask_revisions:
            delete_with_row(session, mask_path(revision))
            delete_with_row(session, mask_thumbnail_path(revision))
        delete_with_row(session, photo_path(photo))
        delete_with_row(session, thumbnail_path(photo))
        session.delete(photo)
    session.flush()
    return len(photos)


# --- listing -------------------------------------------------------------------------

def counts(session: Session) -> DatasetCounts:
    images = session.scalar(select(func.count()).select_from(Photo)) or 0
    labelled = session.scalar(select(func.count(func.distinct(MaskRevision.photo_id)))) or 0
    return DatasetCounts(images=images, labelled=labelled)


def _filtered(statement, which: str):
    if which not in FILTERS:
        raise ValueError(f"Unknown filter {which!r}; expected one of {', '.join(FILTERS)}.")
    any_revision = aliased(MaskRevision)
    has_mask = exists().where(any_revision.photo_id == Photo.id).correlate(Photo)
    if which == "labelled":
        return statement.where(has_mask)
    if which == "unlabelled":
        return statement.where(~has_mask)
    return statement


def count_filtered(session: Session, which: str = "all") -> int:
    return session.scalar(_filtered(select(func.count()).select_from(Photo), which)) or 0


def _current_revision_id():
    """The id of the photo's newest mask revision, looked up per photo in the (photo_id, id) index.

    Correlated rather than grouped over every revision, so one photo or one page of photos
    costs the same however many photos the dataset holds.
    """
    return (select(func.max(MaskRevision.id)).where(MaskRevision.photo_id == Photo.id)
            .correlate(Photo).scalar_subquery())


def _summary_query():
    return (
        select(Photo, MaskRevision.source, MaskRevision.created_at, MaskRevision.created_by)
        .outerjoin(MaskRevision, MaskRevision.id == _current_revision_id())
        .order_by(Photo.id)
    )


def _summaries(session: Session, statement) -> list[PhotoSummary]:
    return [
        PhotoSummary(p.id, p.original_name, p.width, p.height, p.created_at, source, updated, saved_by)
        for p, source, updated, saved_by in session.execute(statement).all()
    ]


def list_photos(session: Session, which: str = "all", offset: int = 0, limit: int = 50) -> list[PhotoSummary]:
    """A page of photos, oldest first, with their current mask's source."""
    return _summaries(session, _filtered(_summary_query(), which).offset(offset).limit(limit))


def list_photos_by_ids(session: Session, ids: list[int]) -> list[PhotoSummary]:
    """The photos with these ids (those that exist), oldest first."""
    return _summaries(session, _summary_query().where(Photo.id.in_(ids)))


def photo_ids(session: Session, which: str = "all") -> list[int]:
    return list(session.scalars(_filtered(select(Photo.id).order_by(Photo.id), which)))


def photo_choices(session: Session) -> list[tuple[int, str, str | None]]:
    """(id, original name, current mask source or None) of every photo, oldest first: only what a pick list shows.

    Plain rows rather than `PhotoSummary`s, so that listing thousands of photos stays cheap.
    """
    statement = (
        select(Photo.id, Photo.original_name, MaskRevision.source)
        .outerjoin(MaskRevision, MaskRevision.id == _current_revision_id())
        .order_by(Photo.id)
    )
    return [(photo_id, name, source) for photo_id, name, source in session.execute(statement)]


def photos_version(session: Session) -> str:
    """Changes whenever a photo or a mask revision is added or removed: a key for caching a list of photos.

    The counts see removals; the newest id and time see additions, even where SQLite gives a removed
    newest id again (its time is new) and where machines' clocks disagree (PostgreSQL never re-uses an id).
    """
    photos = session.execute(select(func.count(), func.max(Photo.id), func.max(Photo.created_at))).one()
    masks = session.execute(
        select(func.count(), func.max(MaskRevision.id), func.max(MaskRevision.created_at))).one()
    return " ".join(str(value) for value in (*photos, *masks))


def next_unlabelled_id(session: Session, after_id: int) -> int | None:
    """The first unlabelled photo after `after_id` (by id), wrapping round to the start; never `after_id` itself.

    None when no other photo is unlabelled. Each look is one indexed query, however big the dataset.
    """
    unlabelled = _filtered(select(Photo.id), "unlabelled")
    # ORDER BY ... LIMIT 1 stops at the first match; MIN() would look at every photo after it.
    following = session.scalar(unlabelled.where(Photo.id > after_id).order_by(Photo.id).limit(1))
    if following is None:
        following = session.scalar(unlabelled.where(Photo.id < after_id).order_by(Photo.id).limit(1))
    return following


def first_photo_to_label(session: Session) -> int | None:
    """The first unlabelled photo, else the first photo; None when there are no photos."""
    first_unlabelled = next_unlabelled_id(session, 0)  # ids start at 1
    return first_unlabelled if first_unlabelled is not None else session.scalar(select(func.min(Photo.id)))


def photo_place(session: Session, photo_id: int) -> PhotoPlace:
    """Where `photo_id` sits among all the photos and which ones are around it, without listing them."""
    dataset_counts = counts(session)
    return PhotoPlace(
        position=session.scalar(select(func.count()).select_from(Photo).where(Photo.id < photo_id)) or 0,
        count=dataset_counts.images,
        labelled=dataset_counts.labelled,
        previous_id=session.scalar(select(Photo.id).where(Photo.id < photo_id).order_by(Photo.id.desc()).limit(1)),
        next_id=session.scalar(select(Photo.id).where(Photo.id > photo_id).order_by(Photo.id).limit(1)),
        next_unlabelled_id=next_unlabelled_id(session, photo_id),
    )


def labelled_content_hashes(session: Session) -> dict[int, str]:
    """{photo id: hash of its bytes as received} for every labelled photo, by id."""
    current = _current_revision_subquery()
    statement = select(Photo.id, Photo.content_hash).join(current, current.c.photo_id == Photo.id).order_by(Photo.id)
    return {photo_id: content_hash for photo_id, content_hash in session.execute(statement)}


def labelled_pairs(session: Session) -> list[tuple[int, Path, Path]]:
    """(photo id, photo file, current mask file) for every labelled photo, for training."""
    current = _current_revision_subquery()
    statement = (
        select(Photo, MaskRevision)
        .join(current, current.c.photo_id == Photo.id)
        .join(MaskRevision, MaskRevision.id == current.c.revision_id)
        .order_by(Photo.id)
    )
    return [(p.id, photo_path(p), mask_path(m)) for p, m in session.execute(statement).all()]

