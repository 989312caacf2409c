"""Training runs, their live metrics, and model versions.

The training process writes here as it goes (status, heartbeat, batches, epochs); pages
and the CLI read the same rows, so a refresh or a second tab shows the same live run.
The caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.db import get_or_raise
from storage.models import ACTIVE_RUN_STATUSES, ModelVersion, RunBatch, RunEpoch, TrainingRun, utc_now
from storage.settings import data_home


class RunAlreadyActive(ValueError):
    """Only one training run at a time."""


@dataclass(frozen=True)
class RunView:
    """A training run as the pages show it (plain values, no live session needed)."""

    id: int
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    process_id: int | None
    stop_requested: bool
    model_config: dict
    train_config: dict
    epoch: int
    batch: int
    batches_per_epoch: int
    best_val_iou: float | None
    best_epoch: int | None
    seconds: float | None
    error: str | None
    train_count: int
    validation_count: int
    initial_model: str | None
    starting_val_iou: float | None = None
    host: str | None = None  # the machine that runs it
    created_by: str | None = None  # who started it

    @property
    def ended_below_start(self) -> bool:
        """True when the run's best epoch scored below its starting model on the run's validation photos."""
        return scored_below(self.best_val_iou, self.starting_val_iou)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES


def _view(run: TrainingRun) -> RunView:
    return RunView(
        id=run.id, status=run.status, created_at=run.created_at, started_at=run.started_at,
        finished_at=run.finished_at, heartbeat_at=run.heartbeat_at, process_id=run.process_id,
        stop_requested=run.stop_requested, model_config=dict(run.model_config), train_config=dict(run.train_config),
        epoch=run.epoch, batch=run.batch, batches_per_epoch=run.batches_per_epoch, best_val_iou=run.best_val_iou,
        best_epoch=run.best_epoch, seconds=run.seconds, error=run.error,
        train_count=len(run.train_photo_ids or []), validation_count=len(run.validation_photo_ids or []),
        initial_model=run.initial_model, starting_val_iou=run.starting_val_iou, host=run.host,
        created_by=run.created_by,
    )


def runs_folder() -> Path:
    return data_home() / "runs"


def models_folder() -> Path:
    return data_home() / "models"


def create_run(
    session: Session,
    model_config: dict,
    train_config: dict,
    train_photo_ids: list[int],
    validation_photo_ids: list[int],
    initial_model: str | None = None,
    host: str | None = None,
    created_by: str | None = None,
) -> TrainingRun:
    """A new run in status "starting", to run on `host`; RunAlreadyActive if another run is active."""
    active = active_run(session)
    if active is not None:
        raise RunAlreadyActive(f"Training run #{active.id} is still {active.status}; stop it or wait for it first.")
    run = TrainingRun(
        model_config=model_config,
        train_config=train_config,
        train_photo_ids=list(train_photo_ids),
        validation_photo_ids=list(validation_photo_ids),
        initial_model=initial_model,
        host=host,
        created_by=created_by,
    )
    session.add(run)
    try:
        session.flush()
    except IntegrityError:
        # Another tab started one between our check and our insert.
        raise RunAlreadyActive("Another training run has just started; stop it or wait for it first.") from None
    return run


def get_run(session: Session, run_id: int) -> TrainingRun:
    return get_or_raise(session, TrainingRun, run_id, f"There is no training run #{run_id}.")


def run_view(session: Session, run_id: int) -> RunView:
    return _view(get_run(session, run_id))


def active_run(session: Session) -> RunView | None:
    run = session.scalars(select(TrainingRun).where(TrainingRun.status.in_(ACTIVE_RUN_STATUSES))).first()
    return _view(run) if run else None


def list_runs(session: Session, limit: int = 50) -> list[RunView]:
    return [_view(run) for run in session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(limit))]


def latest_run(session: Session) -> RunView | None:
    runs = list_runs(session, limit=1)
    return runs[0] if runs else None


def mark_running(session: Session, run_id: int, process_id: int, batches_per_epoch: int,
                 host: str | None = None) -> None:
    run = get_run(session, run_id)
    run.status = "running" if not run.stop_requested else "stopping"
    run.process_id = process_id
    run.host = host or run.host
    run.batches_per_epoch = batches_per_epoch
    run.started_at = run.started_at or utc_now()
    run.heartbeat_at = utc_now()


def set_process(session: Session, run_id: int, process_id: int, log_file: str | None = None,
                host: str | None = None) -> None:
    run = get_run(session, run_id)
    run.process_id = process_id
    run.host = host or run.host
    run.log_file = log_file
    run.heartbeat_at = utc_now()


def heartbeat(session: Session, run_id: int) -> bool:
    """Beat the heartbeat; returns True when the run should stop: a stop was requested, or it was ended.

    A run is ended under its process's feet when another machine found its heartbeat stale
    (the database was out of reach longer than the stale limit, say).
    """
    session.execute(update(TrainingRun).where(TrainingRun.id == run_id).values(heartbeat_at=utc_now()))
    row = session.execute(select(TrainingRun.stop_requested, TrainingRun.status).where(TrainingRun.id == run_id)).first()
    return row is None or bool(row.stop_requested) or row.status not in ACTIVE_RUN_STATUSES


def record_batches(session: Session, run_id: int, rows: list[tuple[int, int, float]], epoch: int, batch: int) -> None:
    """Store (step, epoch, loss) rows and the current position in the epoch."""
    session.add_all(RunBatch(run_id=run_id, step=step, epoch=e, loss=loss) for step, e, loss in rows)
    session.execute(
        update(TrainingRun).where(TrainingRun.id == run_id).values(epoch=epoch, batch=batch, heartbeat_at=utc_now())
    )


def record_epoch(
    session: Session, run_id: int, epoch: int, logs: dict[str, float], seconds: float, preview_file: str | None
) -> None:
    session.merge(RunEpoch(
        run_id=run_id, epoch=epoch, loss=float(logs.get("loss", float("nan"))), iou=float(logs.get("iou", float("nan"))),
        val_loss=float(logs.get("val_loss", float("nan"))), val_iou=float(logs.get("val_iou", float("nan"))),
        learning_rate=float(logs["learning_rate"]) if "learning_rate" in logs else None,
        seconds=seconds, preview_file=preview_file,
    ))
    run = get_run(session, run_id)
    run.epoch, run.batch = epoch, 0
    run.heartbeat_at = utc_now()
    val_iou = float(logs.get("val_iou", float("nan")))
    if val_iou == val_iou and (run.best_val_iou is None or val_iou > run.best_val_iou):
        run.best_val_iou, run.best_epoch = val_iou, epoch


def record_starting_score(session: Session, run_id: int, val_iou: float) -> None:
    """The starting model's validation IoU before training (fine-tunes only)."""
    get_run(session, run_id).starting_val_iou = float(val_iou)


def request_stop(session: Session, run_id: int) -> None:
    run = get_run(session, run_id)
    if run.status in ACTIVE_RUN_STATUSES:
        run.stop_requested = True
        run.status = "stopping"


def finish_run(session: Session, run_id: int, status: str, error: str | None = None, seconds: float | None = None) -> None:
    """End a run: "finished", "stopped" or "failed". It stops counting as the active run."""
    run = get_run(session, run_id)
    run.status = status
    run.is_active = None
    run.error = error
    run.finished_at = utc_now()
    if seconds is not None:
        run.seconds = seconds


def stale_runs(session: Session, older_than: timedelta) -> list[RunView]:
    """Active runs whose heartbeat is older than `older_than` (or that never beat)."""
    limit = utc_now() - older_than
    runs = session.scalars(select(TrainingRun).where(TrainingRun.status.in_(ACTIVE_RUN_STATUSES))).all()
    return [_view(r) for r in runs if (r.heartbeat_at or r.created_at) < limit]


def epochs(session: Session, run_id: int) -> list[RunEpoch]:
    return list(session.scalars(select(RunEpoch).where(RunEpoch.run_id == run_id).order_by(RunEpoch.epoch)))


def batches(session: Session, run_id: int) -> list[RunBatch]:
    return list(session.scalars(select(RunBatch).where(RunBatch.run_id == run_id).order_by(RunBatch.step)))


def epoch_rows(session: Session, run_id: int) -> list[dict]:
    """Per-epoch metrics as plain dicts (for charts and tables)."""
    return [
        {"epoch": e.epoch, "loss": e.loss, "val_loss": e.val_loss, "iou": e.iou, "val_iou": e.val_iou,
         "learning_rate": e.learning_rate, "seconds": e.seconds, "preview_file": e.preview_file}
        for e in epochs(session, run_id)
    ]


def batch_rows(session: Session, run_id: int) -> list[dict]:
    """Per-batch loss as plain dicts."""
    return [{"step": b.step, "epoch": b.epoch, "loss": b.loss} for b in batches(session, run_id)]


# --- model versions ------------------------------------------------------------------

@dataclass(frozen=True)
class ModelVersionView:
    id: int
    run_id: int | None
    name: str
    directory: Path
    architecture: str
    image_size: int
    val_iou: float | None
    metrics: dict
    created_at: datetime


def _version_view(version: ModelVersion) -> ModelVersionView:
    return ModelVersionView(
        id=version.id, run_id=version.run_id, name=version.name, directory=data_home() / version.directory,
        architecture=version.architecture, image_size=version.image_size, val_iou=version.val_iou,
        metrics=dict(version.metrics or {}), created_at=version.created_at,
    )


def add_model_version(
    session: Session, run_id: int | None, name: str, directory: Path, architecture: str, image_size: int,
    val_iou: float | None, metrics: dict,
) -> ModelVersionView:
    """Register a model folder that is already complete on disk (written atomically)."""
    version = ModelVersion(
        run_id=run_id, name=name, directory=Path(directory).resolve().relative_to(data_home()).as_posix(),
        architecture=architecture, image_size=image_size, val_iou=val_iou, metrics=metrics,
    )
    session.add(version)
    session.flush()
    return _version_view(version)


def list_model_versions(session: Session) -> list[ModelVersionView]:
    """Newest first."""
    return [_version_view(v) for v in session.scalars(select(ModelVersion).order_by(ModelVersion.id.desc()))]


def get_model_version(session: Session, version_id: int) -> ModelVersionView:
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise ValueError(f"There is no model version #{version_id}.")
    return _version_view(version)


def _highest_scoring(versions: list[ModelVersionView]) -> ModelVersionView | None:
    """The highest validation IoU (newest on ties); the newest when none has a score."""
    scored = [v for v in versions if v.val_iou is not None]
    if not scored:
        return versions[0] if versions else None
    return max(scored, key=lambda v: (v.val_iou, v.id))


def best_model_version(session: Session) -> ModelVersionView | None:
    """The version with the highest validation IoU (newest on ties)."""
    return _highest_scoring(list_model_versions(session))


def scored_below(score: float | None, starting_score: float | None) -> bool:
    """The one rule for "ended below its starting model": both scores known, the run's lower."""
    return score is not None and starting_score is not None and score < starting_score


def versions_below_starter(session: Session) -> set[int]:
    """Ids of versions fine-tuned from the starter model that ended below it.

    Both scores come from the same run's validation photos (the starter's before training,
    the version's best epoch), so the comparison is fair: the starter never trained on a
    user's photos. A fine-tune from a user's own version is not judged this way, because
    after photos are added the earlier version has usually trained on some of the new
    validation photos and its score would be flattered.
    """
    rows = session.execute(
        select(ModelVersion.id, ModelVersion.val_iou, TrainingRun.starting_val_iou)
        .join(TrainingRun, ModelVersion.run_id == TrainingRun.id)
        .where(TrainingRun.initial_model == "starter", TrainingRun.starting_val_iou.is_not(None))
    )
    return {version_id for version_id, val_iou, starting in rows if scored_below(val_iou, starting)}


def recommended_model_version(session: Session, starter_available: bool = True) -> ModelVersionView | None:
    """The version to use by default: the best one, leaving out fine-tunes that ended below the starter.

    None when there is no version, or (with `starter_available`) when every version is such
    a fine-tune: then the starter model serves better. Without a starter model installed,
    the best version whatever its start.
    """
    versions = list_model_versions(session)
    if not starter_available:
        return _highest_scoring(versions)
    below_starter = versions_below_starter(session)
    return _highest_scoring([v for v in versions if v.id not in below_starter])


def model_version_for_run(session: Session, run_id: int) -> ModelVersionView | None:
    version = session.scalars(select(ModelVersion).where(ModelVersion.run_id == run_id)).first()
    return _version_view(version) if version else None
