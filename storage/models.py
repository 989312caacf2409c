"""Typed SQLAlchemy 2.0 models. Schema changes go through Alembic (storage/migrations)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

MASK_SOURCES = ("painted", "imported", "model", "grabcut")


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Photo(Base):
    """A photo in the dataset. Its file is named by content hash, never by the user's name."""

    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    original_name: Mapped[str] = mapped_column(String(512))  # for display only
    file_name: Mapped[str] = mapped_column(String(128))
    width: Mapped[int]
    height: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    mask_revisions: Mapped[list[MaskRevision]] = relationship(
        back_populates="photo",
        order_by="MaskRevision.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class MaskRevision(Base):
    """One saved version of a photo's mask; the newest is the current mask, older ones allow undo."""

    __tablename__ = "mask_revisions"
    __table_args__ = (Index("ix_mask_revisions_photo_id_id", "photo_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))  # one of MASK_SOURCES
    file_name: Mapped[str] = mapped_column(String(128))
    foreground_fraction: Mapped[float]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    photo: Mapped[Photo] = relationship(back_populates="mask_revisions")
