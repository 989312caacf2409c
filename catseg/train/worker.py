"""The body of a training run's process: train, report to the database, keep the best epoch as a version.

`execute_run` runs in the `catseg train-worker` process that `catseg.train.run_control.start_run`
launches, or in the foreground for `catseg train`. It beats a heartbeat and writes metrics while
it trains, rides out a database outage, and saves the best epoch (with its ONNX networks) as a
model version.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback

import numpy as np

import storage
from catseg.data.team import this_host
from catseg.model.config import ModelConfig, TrainConfig
from catseg.train.run_control import HEARTBEAT_SECONDS, run_folder
from storage import dataset, runs

# Held-out photos of a run that its ONNX export is checked on, besides the shipped check photos.
EXPORT_CHECK_PHOTOS = 4
# Set by the CLI's Ctrl+C handler: stop after the current batch, like the page's Stop button.
local_stop_request = threading.Event()


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
