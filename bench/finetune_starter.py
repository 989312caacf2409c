"""Fine-tune the starter model on the seed-cats training split as the Train page does; score unseen photos.

The product path end to end, in a throw-away CATSEG_HOME: import the 60 training-split
photos (tutorial layout), plan a run with the Train page's defaults and "Start from: the
starter cat model", train it in this process (as the page's worker does), then score the
kept model version with `evaluate` on the 21 validation-split photos it never saw (mean
foreground IoU per photo, full resolution). `seconds` is the whole wall time from import
to a saved model version. Prints one JSON object.

    .venv/bin/python bench/finetune_starter.py [--data ../shared/data/seed-cats] [--set FIELD=JSON ...]

`--set` changes a TrainConfig field from the page's default, for experiments
(e.g. `--set learning_rate=0.0003`, or `--set max_seconds=600` for a 10-minute run).
The starting model is scored on the same 21 photos first, so `gain` is what the run bought. `--also-scales 1,1.25,1.5` also scores the same
fine-tuned model at other test-time scales (its card's own are the main figure).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from seed_split import DEFAULT_DATA, write_split  # noqa: E402


def page_fine_tune_config(settings: list[str]):
    """The Train page's TrainConfig when starting from a model, changed by `--set FIELD=JSON` texts."""
    from catseg.config import FINE_TUNE_LEARNING_RATE, TrainConfig

    overrides = {}
    for text in settings:
        name, _, value = text.partition("=")
        try:
            overrides[name] = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"--set {text}: write FIELD=VALUE with a JSON value, e.g. learning_rate=0.0003 "
                             "or freeze_batch_norm=false") from None
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"TrainConfig has no field {', '.join(unknown)}; it has {', '.join(sorted(fields))}")
    # The page's defaults when starting from a model (its fine-tuning learning rate).
    return dataclasses.replace(TrainConfig(learning_rate=FINE_TUNE_LEARNING_RATE), **overrides)


def fine_tune(folder: Path, train_config, model: str) -> tuple:
    """Import `folder` into the current CATSEG_HOME and fine-tune `model` on it as the page's worker does.

    Returns (import report, run summary, model version, run view, seconds from import to saved version).
    """
    import storage
    from catseg.config import ModelConfig
    from catseg.dataset_io import import_path
    from catseg.runs import execute_run, plan_run
    from storage import runs

    started = time.monotonic()
    report = import_path(folder)
    run_id = plan_run(ModelConfig(), train_config, model)
    summary = execute_run(run_id)
    seconds = time.monotonic() - started
    with storage.begin() as session:
        version = runs.model_version_for_run(session, run_id)
        run = runs.run_view(session, run_id)
    return report, summary, version, run, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", default="starter", help="the model to start from (default: the starter)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON")
    parser.add_argument("--also-scales", action="append", default=[], metavar="S1,S2,...",
                        type=lambda text: tuple(float(part) for part in text.split(",")))
    arguments = parser.parse_args()
    try:
        train_config = page_fine_tune_config(arguments.set)
    except ValueError as error:  # a wrong --set: a usage message, not a traceback
        parser.error(str(error))

    with tempfile.TemporaryDirectory(prefix="catseg-finetune-") as scratch:
        scratch = Path(scratch)
        os.environ["CATSEG_HOME"] = str(scratch / "home")
        os.environ.pop("DATABASE_URL", None)
        split = write_split(arguments.data, scratch / "split")

        import storage
        from catseg.predictor import Predictor, evaluate_folder

        from catseg.predictor import resolve_model

        # The line to beat: the starting model on the same unseen photos, before any fine-tuning.
        starting = evaluate_folder(Predictor(resolve_model(arguments.model)), scratch / "split" / "valid")
        report, summary, version, run, seconds = fine_tune(scratch / "split" / "train", train_config, arguments.model)
        unseen = evaluate_folder(Predictor(version.directory), scratch / "split" / "valid")
        at_other_scales = {}
        for scales in arguments.also_scales:
            other = evaluate_folder(Predictor(version.directory, scales), scratch / "split" / "valid")
            at_other_scales["+".join(map(str, scales))] = round(other.iou_mean, 4)
        storage.dispose_all()
    print(json.dumps({
        "starting_model_unseen_iou_mean": round(starting.iou_mean, 4),
        "unseen_iou_mean": round(unseen.iou_mean, 4),
        "gain": round(unseen.iou_mean - starting.iou_mean, 4),
        "unseen_iou_pooled": round(unseen.iou_pooled, 4),
        "unseen_photos": unseen.photos,
        "unseen_iou_mean_at_scales": at_other_scales,
        "run_best_val_iou": round(summary["best_val_iou"], 4),
        "run_starting_val_iou": round(summary["starting_val_iou"], 4) if summary["starting_val_iou"] is not None else None,
        "seconds": round(seconds, 1),
        "epochs": summary["epochs"],
        "best_epoch": summary["best_epoch"],
        "train_photos": run.train_count,
        "run_validation_photos": run.validation_count,
        "imported": report.added,
        "split": {"train": split["train"], "valid": split["valid"]},
        "start_from": arguments.model,
        "train_config": train_config.to_dict(),
    }))


if __name__ == "__main__":
    main()
