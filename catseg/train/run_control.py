"""Training runs as their own OS processes, reporting through the database.

`start_run` (the Train page) records a run and launches `python -m catseg train-worker ID`
in a new process session, so a browser refresh, a second tab or a crashed Streamlit script
never touches it; `catseg.train.worker.execute_run` is that worker's body (and the CLI's
`train`, which runs it in the foreground). `reap_dead_runs` marks runs whose process has gone
as failed.

A run belongs to the machine that runs it (its `host`): only that machine can look its
process up; every other machine sharing the database judges it by its heartbeat.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Collection, Sequence

import storage
from catseg.model.config import ModelConfig, TrainConfig
from catseg.data.team import this_host
from storage import dataset, runs

# The worker beats at least this often while it trains (every batch, throttled).
HEARTBEAT_SECONDS = 2.0
# A run whose heartbeat is older than this is dead, though its PID may have been reused.
# Loading photos and building the model can take a while before the first batch.
STALE_AFTER = timedelta(seconds=20)
STARTUP_GRACE = timedelta(seconds=120)
MINIMUM_LABELLED = 4


def _process_alive(process_id: int | None) -> bool:
    if not process_id:
        return False
    import psutil

    try:
        process = psutil.Process(process_id)
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def runs_here(run: runs.RunView) -> bool:
    """True when this machine runs `run` (runs recorded before hosts were recorded count as local)."""
    return run.host is None or run.host == this_host()


def reap_dead_runs() -> list[int]:
    """Mark active runs whose process has died (kill -9, out of memory, reboot) as failed.

    The machine that runs it checks its process; any other machine only its heartbeat, since
    a process id means nothing on another machine.
    """
    failed = []
    with storage.begin() as session:
        active = runs.active_run(session)
        if active is None:
            return failed
        beat_limit = STARTUP_GRACE if active.batches_per_epoch == 0 else STALE_AFTER
        stale = bool(runs.stale_runs(session, beat_limit))
        local = runs_here(active)
        if local and active.process_id and not _process_alive(active.process_id):
            reason = "The training process ended unexpectedly (killed, or out of memory)."
        elif stale:
            where = "" if local else f" on {active.host}"
            reason = f"The training process{where} stopped responding (no heartbeat for {beat_limit.seconds} s)."
        else:
            return failed
        log_tail = _log_tail(active.id)
        runs.finish_run(session, active.id, "failed", reason + (f"\n\nLast lines of its log:\n{log_tail}" if log_tail else ""))
        failed.append(active.id)
    return failed


def run_folder(run_id: int) -> Path:
    return runs.runs_folder() / str(run_id)


def _log_tail(run_id: int, lines: int = 12) -> str:
    path = run_folder(run_id) / "log.txt"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def plan_run(
    model_config: ModelConfig, train_config: TrainConfig, initial_model: str | None = None,
    fine_tune_size: int | None = None, repeat: Sequence[tuple[str, int]] = (), created_by: str | None = None,
) -> int:
    """Record a new run over the labelled photos (split by `split_photos`), to run here; returns its id.

    `initial_model` ("starter", a version id, or a model folder) fine-tunes that model; its
    architecture and input size then replace `model_config`, unless `fine_tune_size` asks
    for another input size (the same weights on larger photos).
    `repeat`: (file-name pattern, times) pairs; a training photo whose original file name
    matches a pattern is shown that many times an epoch (the largest when several match),
    to give a small set of photos of an under-represented kind more weight.
    """
    from catseg.model.versions import read_card, read_learnt_photos
    from catseg.model.registry import PRETRAINED_DIRECTORY, resolve_model, starter_model_directory

    if initial_model is not None:
        directory = resolve_model(initial_model)  # ValueError with a clear message if it is gone
        model_config = ModelConfig.from_dict(read_card(directory)["model_config"])
        if fine_tune_size is not None and fine_tune_size != model_config.image_size:
            if model_config.architecture == "mobilenet_unet":
                raise ValueError(
                    "A MobileNetV2 U-Net keeps the input size it was built with; "
                    f"fine-tune it at {model_config.image_size} px or train a new one at {fine_tune_size} px."
                )
            model_config = dataclasses.replace(model_config, image_size=fine_tune_size)  # validated by ModelConfig
        # Stored in one spelling: "starter" or "pretrained" (also when named by their folders), a
        # version id, or a folder.
        spec = initial_model.strip()
        if Path(directory).resolve() == starter_model_directory().resolve():
            initial_model = "starter"
        elif Path(directory).resolve() == PRETRAINED_DIRECTORY.resolve():
            initial_model = "pretrained"
        else:
            initial_model = spec if spec.isdigit() else str(directory)

    learnt = read_learnt_photos(directory) if initial_model is not None else frozenset()
    reap_dead_runs()
    with storage.begin() as session:
        content_hashes = dataset.labelled_content_hashes(session)
        if len(content_hashes) < MINIMUM_LABELLED:
            raise ValueError(
                f"Training needs at least {MINIMUM_LABELLED} labelled photos; the dataset has {len(content_hashes)}. "
                "Label more on the Annotate page or import a labelled folder."
            )
        train_ids, validation_ids = split_photos(content_hashes, train_config, learnt)
        run = runs.create_run(
            session,
            model_config.to_dict(),
            train_config.to_dict(),
            _repeat_matching(session, train_ids, repeat),
            validation_ids,
            initial_model,
            host=this_host(),
            created_by=created_by,
        )
        return run.id


def split_photos(content_hashes: dict[int, str], train_config: TrainConfig,
                 learnt: Collection[str] = ()) -> tuple[list[int], list[int]]:
    """(training, held-out) ids of {photo id: content hash}: each photo's side is fixed by its content and the seed.

    So labelling more photos never moves a photo an earlier run trained on into the hold-out,
    where it would flatter a model fine-tuned from that run (see catseg.train.splits.stable_split).
    `learnt`: content hashes of the photos the starting model learnt (its learnt_photos.txt);
    they always teach, whatever seed or share split them before.
    """
    from catseg.train.splits import stable_split

    photo_ids = list(content_hashes)
    train, validation = stable_split(list(content_hashes.values()), train_config.validation_fraction,
                                     train_config.seed, must_teach=learnt)
    return [photo_ids[index] for index in train], [photo_ids[index] for index in validation]


@dataclasses.dataclass(frozen=True)
class PlannedSplit:
    """How a run planned now would use the labelled photos.

    learnt: labelled photos the starting model learnt already; they are among those that
        teach (unless every photo is learnt, when the hold-out has to be drawn from them).
    """

    teach: int
    held_out: int
    learnt: int

    @property
    def hold_out_flatters(self) -> bool:
        """True when the starting model learnt every labelled photo, held-out ones included."""
        return self.learnt > 0 and self.learnt == self.teach + self.held_out


def learnt_by(initial_model: str | None) -> frozenset[str]:
    """Content hashes of the photos a starting model learnt ("starter", a version id, ...); none for random weights."""
    if initial_model is None:
        return frozenset()
    from catseg.model.versions import read_learnt_photos
    from catseg.model.registry import resolve_model

    return read_learnt_photos(resolve_model(initial_model))


def _split_counts(content_hashes: dict[int, str], train_ids: Sequence[int], validation_ids: Sequence[int],
                  learnt: Collection[str]) -> PlannedSplit:
    """Counts of distinct photos on each side (a repeated training photo counts once), and of those learnt."""
    teach = {content_hashes[i] for i in train_ids if i in content_hashes}
    held_out = {content_hashes[i] for i in validation_ids if i in content_hashes}
    return PlannedSplit(len(teach), len(held_out), len((teach | held_out) & set(learnt)))


def planned_split(session, train_config: TrainConfig, learnt: Collection[str] = ()) -> PlannedSplit:
    """The split of a run planned now over the labelled photos (all counts 0 below two photos)."""
    content_hashes = dataset.labelled_content_hashes(session)
    if len(content_hashes) < 2:
        return PlannedSplit(0, 0, 0)
    train, validation = split_photos(content_hashes, train_config, learnt)
    return _split_counts(content_hashes, train, validation, learnt)


def run_split(session, run_id: int, learnt: Collection[str] = ()) -> PlannedSplit:
    """The split a recorded run got, counted as `planned_split` counts it."""
    run = runs.get_run(session, run_id)
    return _split_counts(dataset.labelled_content_hashes(session), run.train_photo_ids, run.validation_photo_ids,
                         learnt)


def _repeat_matching(session, photo_ids: list[int], repeat: Sequence[tuple[str, int]]) -> list[int]:
    """`photo_ids` with each photo whose original name matches a pattern repeated that many times."""
    for pattern, times in repeat:
        if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= 100:
            raise ValueError(f"A repeat count must be a whole number from 1 to 100, got {times!r} for {pattern!r}.")
    if not repeat:
        return photo_ids
    names = {photo.id: Path(photo.original_name).name for photo in dataset.list_photos_by_ids(session, photo_ids)}
    repeated = []
    for photo_id in photo_ids:
        name = names.get(photo_id, "")
        times = max((count for pattern, count in repeat if fnmatch.fnmatch(name, pattern)), default=1)
        repeated += [photo_id] * times
    return repeated


def start_run(model_config: ModelConfig, train_config: TrainConfig, initial_model: str | None = None,
              created_by: str | None = None) -> int:
    """Record a run started by `created_by` and launch its worker process here, in the background; returns the run id."""
    run_id = plan_run(model_config, train_config, initial_model, created_by=created_by)
    folder = run_folder(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "log.txt"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "catseg", "train-worker", str(run_id)],
            cwd=Path(__file__).resolve().parents[2],  # the checkout: `-m catseg` finds this catseg
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the Streamlit script and its reruns
            env={**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
    with storage.begin() as session:
        runs.set_process(session, run_id, process.pid, str(log_path), this_host())
    return run_id


def stop_run(run_id: int) -> None:
    """Ask a run to stop after its current batch; its best epoch so far is kept."""
    with storage.begin() as session:
        runs.request_stop(session, run_id)


def _seconds_since_start(run: runs.RunView) -> float:
    """Wall time since the run's process started training (0 before it has)."""
    if run.started_at is None:
        return 0.0
    from storage.models import utc_now

    return (utc_now() - run.started_at).total_seconds()


def run_minutes(run: runs.RunView) -> float:
    """Minutes a run has trained: its recorded time once it has ended, the time since it started while it runs."""
    if run.seconds is not None:
        return run.seconds / 60
    return _seconds_since_start(run) / 60 if run.is_active else 0.0


@dataclasses.dataclass(frozen=True)
class RunProgress:
    """How far a run has come, for a progress bar.

    fraction: 0 to 1, by epochs or by the time budget, whichever is further along.
    loading: True until the first batch (photos loading, model being built); the other
        counts are then 0.
    epoch: the epoch under way, from 1, at most `epochs`.
    seconds_left: an estimate once a little of the run is done, else None.
    """

    fraction: float
    loading: bool
    epoch: int
    epochs: int
    batch: int
    batches_per_epoch: int
    seconds_left: float | None


def run_progress(run: runs.RunView, epoch_rows: list[dict]) -> RunProgress:
    """Where an active run stands: epoch, batch, share done and time left (epoch_rows: runs.epoch_rows)."""
    train = TrainConfig.from_dict(run.train_config)
    if run.batches_per_epoch == 0:
        return RunProgress(fraction=0.0, loading=True, epoch=0, epochs=train.epochs, batch=0, batches_per_epoch=0,
                           seconds_left=None)
    done_batches = run.epoch * run.batches_per_epoch + run.batch
    fraction_by_epochs = done_batches / (train.epochs * run.batches_per_epoch)
    elapsed = sum(row["seconds"] for row in epoch_rows)
    fraction_by_time = 0.0
    if train.max_seconds and run.started_at is not None:
        running_for = _seconds_since_start(run)
        fraction_by_time = running_for / train.max_seconds
        elapsed = running_for
    fraction = min(1.0, max(fraction_by_epochs, fraction_by_time))
    # Too early an estimate swings wildly; wait for a little of the run to be done.
    seconds_left = elapsed * (1 - fraction) / fraction if fraction > 0.02 and elapsed > 0 else None
    return RunProgress(
        fraction=fraction, loading=False, epoch=min(run.epoch + 1, train.epochs), epochs=train.epochs,
        batch=run.batch, batches_per_epoch=run.batches_per_epoch, seconds_left=seconds_left,
    )
