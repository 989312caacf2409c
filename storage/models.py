"""Typed SQLAlchemy 2.0 models. Schema changes go through Alembic (storage/migrations)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
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
    created_by: Mapped[str | None] = mapped_column(String(255))  # who added it; None where nobody signed in

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
    created_by: Mapped[str | None] = mapped_column(String(255))  # who saved it; None where nobody signed in

    photo: Mapped[Photo] = relationship(back_populates="mask_revisions")


RUN_STATUSES = ("starting", "running", "stopping", "finished", "stopped", "failed")
ACTIVE_RUN_STATUSES = ("starting", "running", "stopping")


class TrainingRun(Base):
    """One training run, executed in its own process, which reports here as it goes."""

    __tablename__ = "training_runs"
    __table_args__ = (
        # At most one active run: a second start fails on this index, even from two tabs at once.
        Index("ux_training_runs_one_active", "is_active", unique=True, sqlite_where=text("is_active = 1")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="starting")
    is_active: Mapped[bool | None] = mapped_column(default=True)  # True or NULL (NULLs never collide)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    process_id: Mapped[int | None]
    # The machine whose process trains it: only that machine can look the process up by its id.
    host: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[str | None] = mapped_column(String(255))  # who started it
    stop_requested: Mapped[bool] = mapped_column(default=False)
    model_config: Mapped[dict] = mapped_column(JSON)
    train_config: Mapped[dict] = mapped_column(JSON)
    initial_model: Mapped[str | None] = mapped_column(String(512))  # fine-tuned from: "starter", an id, a folder
    train_photo_ids: Mapped[list] = mapped_column(JSON, default=list)
    validation_photo_ids: Mapped[list] = mapped_column(JSON, default=list)
    epoch: Mapped[int] = mapped_column(default=0)  # epochs finished
    batch: Mapped[int] = mapped_column(default=0)  # batches finished in the current epoch
    batches_per_epoch: Mapped[int] = mapped_column(default=0)
    best_val_iou: Mapped[float | None]
    best_epoch: Mapped[int | None]
    # A fine-tune's starting model scored on the same validation photos before any training:
    # the line the run has to beat.
    starting_val_iou: Mapped[float | None]
    seconds: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)
    log_file: Mapped[str | None] = mapped_column(String(256))

    epochs: Mapped[list[RunEpoch]] = relationship(order_by="RunEpoch.epoch", cascade="all, delete-orphan")


class RunEpoch(Base):
    """Metrics of one finished epoch, train against validation."""

    __tablename__ = "run_epochs"

    run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(primary_key=True)  # 1-based
    loss: Mapped[float]
    iou: Mapped[float]
    val_loss: Mapped[float]
    val_iou: Mapped[float]
    learning_rate: Mapped[float | None]
    seconds: Mapped[float]
    preview_file: Mapped[str | None] = mapped_column(String(256))


class RunBatch(Base):
    """Loss after one batch, for the live chart."""

    __tablename__ = "run_batches"

    run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(primary_key=True)  # batches since the start of the run
    epoch: Mapped[int]
    loss: Mapped[float]


class ModelVersion(Base):
    """A trained model kept for use: the best epoch of a run (`.keras` + card with config and metrics)."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("training_runs.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(128))
    directory: Mapped[str] = mapped_column(String(256))  # relative to the data folder
    architecture: Mapped[str] = mapped_column(String(32))
    image_size: Mapped[int]
    val_iou: Mapped[float | None]
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
