"""Fine-tune a model with the Train page's defaults; score it before and after. Prints one JSON object.

`--train` picks the photos to fine-tune on, `--score` the photos to score:

  seed          the 60 seed-cats training-split photos (the starter learnt 56 of them, so they always teach)
  seed-valid    the 21 seed-cats validation-split photos
  feral-unseen  60 photos of feral-cats/valid (picked with a fixed seed), never shown to the starter
  feral-rest    the other photos of feral-cats/valid (135)

Without `--score` a set is scored on the photos it leaves out (seed: seed-valid,
feral-unseen: feral-rest, and back). The product path runs end to end in a throw-away
CATSEG_HOME: import the photos, plan a run with the Train page's defaults for a start from a
model (the run holds out about a quarter of the photos the starting model has not learnt, to pick
the epoch), run it in this process as the page's worker does. Scores are `catseg evaluate`'s:
mean foreground IoU per photo at full resolution, with the model's test-time views. `seconds` runs from the import to the
saved model version; `gain` is the fine-tuned score less the starting model's.

When `--train` and `--score` name the same photos the run trains on all of them and picks
its epoch on them too: not a result, but the most the time budget can reach on this machine.

    .venv/bin/python bench/finetune.py --train seed
    .venv/bin/python bench/finetune.py --train feral-unseen
    .venv/bin/python bench/finetune.py --train seed-valid --score seed-valid
    .venv/bin/python bench/finetune.py --train seed --set max_seconds=600 --set learning_rate=0.0001

`--set FIELD=JSON` changes a TrainConfig field from the page's default; `--also-scales
1,1.25` also scores the fine-tuned model at other test-time scales. `estimated_passes` is what
the Train page would have promised for the run (catseg.train.budget), from the step times the last
such run on this machine kept in `--step-times-home` (default CATSEG_HOME; null before one has):
compare it with `epochs`.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

from _common import FERAL_CATS_VALID, SEED_CATS, apply_settings, scratch_home, write_split

SETS = ("seed", "seed-valid", "feral-unseen", "feral-rest")
# The photos each training set leaves out: what it is scored on by default.
COMPLEMENT = {"seed": "seed-valid", "seed-valid": "seed", "feral-unseen": "feral-rest", "feral-rest": "feral-unseen"}
# The seed-cats split's folder names (bench/_common.py's write_split) for the two seed sets.
SEED_FOLDERS = {"seed": "train", "seed-valid": "valid"}
FERAL_SETS = ("feral-unseen", "feral-rest")


@dataclass(frozen=True)
class FineTune:
    """A finished fine-tune: where its model version is and what its run reported."""

    directory: Path
    imported: int
    train_photos: int
    validation_photos: int
    starting_val_iou: float | None
    best_val_iou: float | None
    epochs: int
    best_epoch: int | None
    stop_reason: str
    seconds: float
    estimated_passes: int | None = None


def page_fine_tune_config(settings: list[str]):
    """The Train page's TrainConfig when starting from a model, changed by `--set FIELD=JSON` texts."""
    from catseg.model.config import FINE_TUNE_TRAINING

    (train_config,) = apply_settings(settings, FINE_TUNE_TRAINING)
    return train_config


def write_feral_split(data: Path, out: Path, photos: int, seed: int) -> dict:
    """Link `photos` labelled images of a YOLO folder into out/feral-unseen, the rest into out/feral-rest."""
    import numpy as np

    images = sorted(path for path in (data / "images").iterdir() if (data / "labels" / f"{path.stem}.txt").exists())
    if not 4 <= photos < len(images):
        raise ValueError(f"--feral-photos must be between 4 and {len(images) - 1} for {data}, got {photos}.")
    order = np.random.default_rng(seed).permutation(len(images))
    parts = dict(zip(FERAL_SETS, (sorted(order[:photos]), sorted(order[photos:]))))
    for name, indices in parts.items():
        for folder in ("images", "labels"):
            (out / name / folder).mkdir(parents=True, exist_ok=True)
        for index in indices:
            image = images[index]
            label = data / "labels" / f"{image.stem}.txt"
            (out / name / "images" / image.name).symlink_to(image.resolve())
            (out / name / "labels" / label.name).symlink_to(label.resolve())
    return {name: len(indices) for name, indices in parts.items()}


def write_sets(arguments: argparse.Namespace, out: Path) -> tuple[dict[str, Path], dict[str, int]]:
    """Link the photos of the sets named by --train and --score under `out`: ({set: folder}, {set: photos})."""
    needed = {arguments.train, arguments.score}
    folders, counts = {}, {}
    if needed & set(SEED_FOLDERS):
        split = write_split(arguments.seed_data, out / "seed-split")
        for name, folder in SEED_FOLDERS.items():
            folders[name], counts[name] = out / "seed-split" / folder, split[folder]
    if needed & set(FERAL_SETS):
        counts.update(write_feral_split(arguments.feral_data, out, arguments.feral_photos, arguments.feral_seed))
        folders.update({name: out / name for name in FERAL_SETS})
    return folders, {name: counts[name] for name in SETS if name in needed}


def fine_tune(folder: Path, train_config, model: str, step_times_home: Path | None = None) -> FineTune:
    """Import `folder` into the current CATSEG_HOME and fine-tune `model` on it as the page's worker does.

    step_times_home: a folder whose step_times.json (catseg.train.budget) gives the passes the Train
    page would have promised for this run, and then keeps the times the run measured.
    """
    import storage
    from catseg.train.budget import budget_estimate, record_step_times, recorded_step_times, run_network_key
    from catseg.model.config import ModelConfig
    from catseg.data.importing import import_path
    from catseg.train.run_control import plan_run
    from catseg.train.worker import execute_run
    from storage import runs

    started = time.monotonic()
    report = import_path(folder)
    run_id = plan_run(ModelConfig(), train_config, model)
    with storage.begin() as session:
        planned = runs.run_view(session, run_id)
    network = run_network_key(ModelConfig.from_dict(planned.model_config), train_config, fine_tune=True)
    known = recorded_step_times(network, step_times_home) if step_times_home is not None else None
    estimate = (budget_estimate(known, planned.train_count, planned.validation_count, train_config.max_seconds,
                                train_config.epochs, train_config.batch_size)
                if known is not None and train_config.max_seconds else None)
    summary = execute_run(run_id)
    seconds = time.monotonic() - started
    measured = recorded_step_times(network)  # the run keeps its times in the scratch CATSEG_HOME
    if step_times_home is not None and measured is not None:
        record_step_times(network, measured, step_times_home)
    with storage.begin() as session:
        version = runs.model_version_for_run(session, run_id)
        run = runs.run_view(session, run_id)
    return FineTune(Path(version.directory), report.added, run.train_count, run.validation_count,
                    summary["starting_val_iou"], summary["best_val_iou"], summary["epochs"], summary["best_epoch"],
                    summary["stop_reason"], seconds, estimate.passes if estimate is not None else None)


def fine_tune_on_scored_photos(folder: Path, train_config, model: str, out: Path) -> FineTune:
    """Import `folder`, fine-tune `model` on all of its photos and pick the epoch on them too (the ceiling)."""
    import storage
    from catseg.data.importing import import_path
    from catseg.model.versions import read_card, save_model_version
    from catseg.model.registry import resolve_model
    from catseg.train.fitting import train
    from storage import dataset

    started = time.monotonic()
    report = import_path(folder)
    with storage.begin() as session:
        pairs = [(photo, mask) for _, photo, mask in dataset.labelled_pairs(session)]
    start_from = resolve_model(model)
    result = train(None, train_config, pairs, pairs, initial_model_directory=start_from)
    card = read_card(start_from)  # keep the starting model's test-time views, as a run does
    directory = save_model_version(result.model, result.model_config, result.train_config, result.best_metrics,
                                   out, card.get("test_time_scales"), card.get("test_time_flip"))
    best = result.best_metrics
    return FineTune(Path(directory), report.added, len(pairs), len(pairs), result.starting_metrics.get("val_iou"),
                    best.get("val_iou"), result.epochs_run, int(best["epoch"]) + 1 if best else None,
                    result.stop_reason, time.monotonic() - started)


def rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def add_fine_tune_arguments(parser: argparse.ArgumentParser) -> None:
    """--train, --score, --set and the data folders: what every fine-tune bench takes."""
    parser.add_argument("--train", choices=SETS, default="seed", help="photos to fine-tune on (default: seed)")
    parser.add_argument("--score", choices=SETS, help="photos to score (default: those --train leaves out)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                        help="change a TrainConfig field from the page's default, e.g. learning_rate=0.0001")
    parser.add_argument("--seed-data", type=Path, default=SEED_CATS, help="the seed-cats folder (input/, mask/)")
    parser.add_argument("--feral-data", type=Path, default=FERAL_CATS_VALID, help="feral-cats/valid (YOLO layout)")
    parser.add_argument("--feral-photos", type=int, default=60, help="photos in feral-unseen (default 60)")
    parser.add_argument("--feral-seed", type=int, default=42, help="fixes which photos feral-unseen holds")


def parse_fine_tune_arguments(parser: argparse.ArgumentParser):
    """(arguments with --score filled in, the page's TrainConfig changed by --set); usage errors exit."""
    arguments = parser.parse_args()
    arguments.score = arguments.score or COMPLEMENT[arguments.train]
    try:
        return arguments, page_fine_tune_config(arguments.set)
    except ValueError as error:  # a wrong --set: a usage message, not a traceback
        parser.error(str(error))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_fine_tune_arguments(parser)
    parser.add_argument("--model", default="starter",
                        help="the model to start from: starter (default), pretrained or a model folder")
    parser.add_argument("--also-scales", action="append", default=[], metavar="S1,S2,...",
                        type=lambda text: tuple(float(part) for part in text.split(",")),
                        help="also score the fine-tuned model at these test-time scales (may be repeated)")
    parser.add_argument("--step-times-home", type=Path,
                        help="folder of the step_times.json that estimates the passes beforehand and keeps the run's "
                             "times (default: the data folder, CATSEG_HOME)")
    arguments, train_config = parse_fine_tune_arguments(parser)
    from storage.settings import data_home

    step_times_home = arguments.step_times_home or data_home()

    with scratch_home("catseg-finetune-") as scratch:
        try:
            folders, photos_per_set = write_sets(arguments, scratch / "sets")
        except (ValueError, OSError) as error:  # a wrong --seed-data, --feral-data or --feral-photos
            parser.error(str(error))

        from catseg.predict.evaluation import evaluate_folder
        from catseg.predict.predictor import Predictor
        from catseg.model.registry import resolve_model

        try:
            start_from = resolve_model(arguments.model)
        except ValueError as error:  # a wrong --model
            parser.error(str(error))
        scored = folders[arguments.score]
        # The line to beat: the starting model on the same photos, before any fine-tuning.
        starting = evaluate_folder(Predictor(start_from), scored)
        if arguments.train == arguments.score:
            run = fine_tune_on_scored_photos(folders[arguments.train], train_config, arguments.model,
                                             scratch / "model")
        else:
            run = fine_tune(folders[arguments.train], train_config, arguments.model, step_times_home)
        fine_tuned = evaluate_folder(Predictor(run.directory), scored)
        at_other_scales = {}
        for scales in arguments.also_scales:
            other = evaluate_folder(Predictor(run.directory, scales=scales), scored)
            at_other_scales["+".join(map(str, scales))] = rounded(other.iou_mean)
    print(json.dumps({
        "train": arguments.train,
        "score": arguments.score,
        "starting_iou_mean": rounded(starting.iou_mean),
        "fine_tuned_iou_mean": rounded(fine_tuned.iou_mean),
        "gain": rounded(fine_tuned.iou_mean - starting.iou_mean),
        "fine_tuned_iou_pooled": rounded(fine_tuned.iou_pooled),
        "scored_photos": fine_tuned.photos,
        "fine_tuned_iou_mean_at_scales": at_other_scales,
        "run_starting_val_iou": rounded(run.starting_val_iou),
        "run_best_val_iou": rounded(run.best_val_iou),
        "epochs": run.epochs,
        "estimated_passes": run.estimated_passes,
        "best_epoch": run.best_epoch,
        "stop_reason": run.stop_reason,
        "train_photos": run.train_photos,
        "run_validation_photos": run.validation_photos,
        "imported": run.imported,
        "photos_per_set": photos_per_set,
        "seconds": round(run.seconds, 1),
        "start_from": arguments.model,
        "score_views": "quick",
        "data": {name: str(folder) for name, folder, sets in (("seed-cats", arguments.seed_data, SEED_FOLDERS),
                                                               ("feral-cats/valid", arguments.feral_data, FERAL_SETS))
                 if {arguments.train, arguments.score} & set(sets)},
        "train_config": train_config.to_dict(),
    }))


if __name__ == "__main__":
    main()
