"""Training runs as their own OS processes, reporting through the database.

`start_run` (the Train page) records a run and launches `python -m catseg train-worker ID`
in a new process session, so a browser refresh, a second tab or a crashed Streamlit script
never touches it. `execute_run` is that worker's body (and the CLI's `train`, which runs it
in the foreground). `reap_dead_runs` marks runs whose process has gone as failed.

A run belongs to the machine that runs it (its `host`): only that machine can look its
process up; every other machine sharing the database judges it by its heartbeat.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import subprocess
import sys
import threading
import time
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Collection, Sequence

import numpy as np

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
# Held-out photos of a run that its ONNX export is checked on, besides the shipped check photos.
EXPORT_CHECK_PHOTOS = 4
# Set by the CLI's Ctrl+C handler: stop after the current batch, like the page's Stop button.
local_stop_request = threading.Event()


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


# How long a finished run waits for the database to come back to record its model version and end.
FINAL_WRITE_PATIENCE_SECONDS = 300.0


def _database_gap(error: Exception) -> None:
    """Note, in the run's log, a report lost while the database was out of reach."""
    print(f"{time.strftime('%H:%M:%S')} not recorded: {error}", file=sys.stderr, flush=True)


def _when_database_answers(write, patience: float = FINAL_WRITE_PATIENCE_SECONDS):
    """`write()`, tried again every few seconds while the database is out of reach, for up to `patience` seconds."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return write()
        except storage.DatabaseUnavailable as error:
            if time.monotonic() >= deadline:
                raise
            _database_gap(error)
            time.sleep(HEARTBEAT_SECONDS)


class _Reporter:
    """Batches database writes so that reporting costs little next to training."""

    def __init__(self, run_id: int, announce=None) -> None:
        self.run_id = run_id
        self.announce = announce
        self.pending: list[tuple[int, int, float]] = []
        self.last_flush = 0.0
        self.stop_requested = False
        self.step = 0
        self.epoch_started = time.monotonic()

    def on_batch(self, epoch: int, batch: int, batches_per_epoch: int, loss: float) -> None:
        self.step += 1
        self.pending.append((self.step, epoch + 1, loss))
        if time.monotonic() - self.last_flush >= HEARTBEAT_SECONDS or batch + 1 == batches_per_epoch:
            self.flush(epoch, batch + 1)

    def flush(self, epoch: int, batch: int) -> None:
        try:
            with storage.begin() as session:
                runs.record_batches(session, self.run_id, self.pending, epoch, batch)
                self.stop_requested = runs.heartbeat(session, self.run_id)
        except storage.DatabaseUnavailable as error:
            _database_gap(error)  # training goes on; these batches' losses are not charted
        self.pending = []
        self.last_flush = time.monotonic()

    def should_stop(self) -> bool:
        return self.stop_requested or local_stop_request.is_set()

    def on_start(self, metrics: dict[str, float]) -> None:
        try:
            with storage.begin() as session:
                runs.record_starting_score(session, self.run_id, metrics["val_iou"])
        except storage.DatabaseUnavailable as error:
            _database_gap(error)
        if self.announce is not None:
            self.announce(0, metrics, 0.0)

    def on_epoch(self, epoch: int, logs: dict[str, float], preview: np.ndarray) -> None:
        from catseg.data.decoding import encode_jpeg
        from storage.files import atomic_write

        preview_path = run_folder(self.run_id) / f"epoch-{epoch + 1:03d}.jpg"
        atomic_write(preview_path, encode_jpeg(preview, 88))
        seconds = time.monotonic() - self.epoch_started
        self.epoch_started = time.monotonic()
        try:
            with storage.begin() as session:
                runs.record_epoch(session, self.run_id, epoch + 1, logs, seconds, preview_path.name)
                self.stop_requested = runs.heartbeat(session, self.run_id)
        except storage.DatabaseUnavailable as error:
            _database_gap(error)  # the model keeps its best epoch itself; only the chart misses this one
        if self.announce is not None:
            self.announce(epoch + 1, logs, seconds)


def diverged_message(epoch: int, learning_rate: float, version) -> str:
    """Why a run whose loss became NaN or infinite in `epoch` failed, and what was kept."""
    kept = (f" The best epoch before that is kept as model version \"{version.name}\"." if version is not None
            else " No epoch finished before that, so no model version was kept.")
    return (f"Training diverged in epoch {epoch}: the loss stopped being a number, so the network's weights "
            f"were no longer usable.{kept} Try again with a lower learning rate than {learning_rate:g} "
            "(the Train page's Advanced settings, or --learning-rate).")


def execute_run(run_id: int, announce=None) -> dict:
    """Train run `run_id` in this process, keep its best epoch as a model version; returns a summary.

    `announce(epoch, logs, seconds)`, if given, is told about every finished epoch (the CLI prints it),
    and about epoch 0, the starting model's validation scores, when the run fine-tunes one.
    """
    from catseg.data.decoding import read_photo
    from catseg.model.versions import read_card, read_learnt_photos, save_model_version
    from catseg.train.fitting import train

    started = time.monotonic()
    try:
        with storage.begin() as session:
            run = runs.get_run(session, run_id)
            model_config = ModelConfig.from_dict(run.model_config)
            train_config = TrainConfig.from_dict(run.train_config)
            by_id = {photo_id: (photo, mask) for photo_id, photo, mask in dataset.labelled_pairs(session)}
            train_pairs = [by_id[i] for i in run.train_photo_ids if i in by_id]
            validation_pairs = [by_id[i] for i in run.validation_photo_ids if i in by_id]
            content_hashes = dataset.labelled_content_hashes(session)
            taught = {content_hashes[i] for i in run.train_photo_ids if i in content_hashes}
            initial_spec = run.initial_model
            batches_per_epoch = -(-len(train_pairs) // train_config.batch_size)
            runs.mark_running(session, run_id, os.getpid(), batches_per_epoch, this_host())
        initial = None
        if initial_spec is not None:
            from catseg.model.registry import resolve_model

            initial = resolve_model(initial_spec)
        reporter = _Reporter(run_id, announce)
        result = train(
            model_config, train_config, train_pairs, validation_pairs,
            on_batch=reporter.on_batch, on_epoch=reporter.on_epoch, should_stop=reporter.should_stop,
            initial_model_directory=initial, on_start=reporter.on_start,
        )
        if result.extra.get("step_times") is not None:
            # What this machine's steps cost, so that the next run's budget can be put in passes beforehand.
            from catseg.train.budget import record_step_times, run_network_key

            record_step_times(run_network_key(model_config, train_config, initial is not None),
                              result.extra["step_times"])
        starting_val_iou = result.starting_metrics.get("val_iou")
        best = result.best_metrics
        version = None
        if best:
            # Keep the starting model's test-time views at the same size: they were picked for this
            # network within the time and memory budget of splashing a full-size phone photo.
            initial_card = read_card(initial) if initial is not None else {}
            same_size = initial_card.get("model_config", {}).get("image_size") == model_config.image_size
            test_time_scales = initial_card.get("test_time_scales") if same_size else None
            test_time_flip = initial_card.get("test_time_flip") if same_size else None
            quick_views = initial_card.get("quick_views") if same_size else None
            directory = runs.models_folder() / f"run-{run_id}"
            save_model_version(
                result.model, result.model_config, train_config,
                {**{k: float(v) for k, v in best.items()}, "run_id": run_id,
                 "train_photos": len(train_pairs), "validation_photos": len(validation_pairs),
                 **({"starting_val_iou": starting_val_iou} if starting_val_iou is not None else {})},
                directory, test_time_scales, test_time_flip,
                learnt_photos=taught | (read_learnt_photos(initial) if initial is not None else frozenset()),
                # The export is also checked on a few of the user's own photos.
                quick_views=quick_views,
                check_photos=[read_photo(path) for path, _ in validation_pairs[:EXPORT_CHECK_PHOTOS]],
            )

            def register_version():
                with storage.begin() as session:
                    return runs.add_model_version(
                        session, run_id, f"run {run_id}", directory, result.model_config.architecture,
                        result.model_config.image_size, float(best.get("val_iou", float("nan"))),
                        {k: float(v) for k, v in best.items()},
                    )

            version = _when_database_answers(register_version)
        status = {"requested": "stopped", "diverged": "failed"}.get(result.stop_reason, "finished")
        error = diverged_message(result.epochs_run + 1, train_config.learning_rate, version) \
            if result.stop_reason == "diverged" else None
        local_stop_request.clear()
        seconds = time.monotonic() - started

        def finish() -> tuple[str, str | None]:
            with storage.begin() as session:
                ended = runs.run_view(session, run_id)
                if ended.is_active:
                    runs.finish_run(session, run_id, status, error=error, seconds=seconds)
                    return status, error
                # Another machine ended the run while the database was out of reach: its verdict
                # stands, with a word on the model version kept all the same.
                kept = f" Its best epoch is kept as model version \"{version.name}\"." if version is not None else ""
                runs.finish_run(session, run_id, ended.status, error=(ended.error or "") + kept, seconds=seconds)
                return ended.status, (ended.error or "") + kept

        status, error = _when_database_answers(finish)
        return {
            "run_id": run_id, "model_id": version.id if version else None, "status": status,
            "stop_reason": result.stop_reason, "best_val_iou": float(best.get("val_iou", float("nan"))) if best else None,
            "best_epoch": int(best["epoch"]) + 1 if best else None, "epochs": result.epochs_run,
            "seconds": round(seconds, 1), "starting_val_iou": starting_val_iou,
            **({"error": error} if error else {}),
        }
    except BaseException as error:
        # A full disk or a lost database says what and where in its own words; anything else is named.
        plain = isinstance(error, (storage.DiskFull, storage.DatabaseUnavailable))
        message = str(error) if plain else f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        if not isinstance(error, (ValueError, KeyboardInterrupt)) and not plain:
            traceback.print_exc()  # into the run's log for whoever debugs it
        try:
            with storage.begin() as session:
                runs.finish_run(session, run_id, "stopped" if isinstance(error, KeyboardInterrupt) else "failed",
                                error=message, seconds=time.monotonic() - started)
        except storage.DatabaseUnavailable as unreachable:
            _database_gap(unreachable)  # the run's heartbeat stops: another look at the Train page ends it
        raise


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
