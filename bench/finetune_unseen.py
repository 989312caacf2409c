"""Does fine-tuning the starter help on cats it never saw? Train-page defaults, scored before and after.

`finetune_starter.py` fine-tunes on seed-cats photos the starter was trained on, so its
run's own validation score flatters the starting model. Here the photos are new to it:
`feral-cats/valid` (never used to train the starter) is split with a fixed seed into a
fine-tuning set (imported into a throw-away CATSEG_HOME, where the run holds out its usual
25 % to pick the epoch) and an evaluation set that neither sees. The starter and the
fine-tuned version are both scored on the evaluation set (mean foreground IoU per photo,
full resolution), so the JSON says what a user's few minutes of training bought.

    .venv/bin/python bench/finetune_unseen.py [--data ../shared/data/feral-cats/valid] [--photos 60] [--set FIELD=JSON ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from finetune_starter import fine_tune, page_fine_tune_config  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "feral-cats" / "valid"


def write_yolo_split(data: Path, out: Path, photos: int, seed: int) -> dict:
    """Symlink `photos` labelled images of a YOLO folder into out/tune, the rest into out/evaluate."""
    import numpy as np

    images = sorted(path for path in (data / "images").iterdir() if (data / "labels" / f"{path.stem}.txt").exists())
    if not 4 <= photos < len(images):
        raise ValueError(f"--photos must be between 4 and {len(images) - 1} for {data}, got {photos}.")
    order = np.random.default_rng(seed).permutation(len(images))
    parts = {"tune": sorted(order[:photos]), "evaluate": sorted(order[photos:])}
    for name, indices in parts.items():
        for folder in ("images", "labels"):
            (out / name / folder).mkdir(parents=True, exist_ok=True)
        for index in indices:
            image = images[index]
            label = data / "labels" / f"{image.stem}.txt"
            (out / name / "images" / image.name).symlink_to(image.resolve())
            (out / name / "labels" / label.name).symlink_to(label.resolve())
    return {name: len(indices) for name, indices in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a YOLO folder the starter never saw")
    parser.add_argument("--photos", type=int, default=60, help="photos to fine-tune on (the rest are scored)")
    parser.add_argument("--seed", type=int, default=42, help="fixes which photos are fine-tuned on")
    parser.add_argument("--model", default="starter", help="the model to start from (default: the starter)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON")
    arguments = parser.parse_args()
    try:
        train_config = page_fine_tune_config(arguments.set)
    except ValueError as error:  # a wrong --set: a usage message, not a traceback
        parser.error(str(error))

    with tempfile.TemporaryDirectory(prefix="catseg-finetune-unseen-") as scratch:
        scratch = Path(scratch)
        os.environ["CATSEG_HOME"] = str(scratch / "home")
        os.environ.pop("DATABASE_URL", None)
        try:
            split = write_yolo_split(arguments.data, scratch / "split", arguments.photos, arguments.seed)
        except (ValueError, OSError) as error:  # a wrong --data or --photos: a usage message, not a traceback
            parser.error(str(error))

        import storage
        from catseg.predictor import Predictor, evaluate_folder, resolve_model

        evaluation_folder = scratch / "split" / "evaluate"
        before = evaluate_folder(Predictor(resolve_model(arguments.model)), evaluation_folder)
        report, summary, version, run, seconds = fine_tune(scratch / "split" / "tune", train_config, arguments.model)
        after = evaluate_folder(Predictor(version.directory), evaluation_folder)
        storage.dispose_all()
    print(json.dumps({
        "starting_model_iou_mean": round(before.iou_mean, 4),
        "fine_tuned_iou_mean": round(after.iou_mean, 4),
        "gain": round(after.iou_mean - before.iou_mean, 4),
        "evaluation_photos": after.photos,
        "run_starting_val_iou": round(summary["starting_val_iou"], 4) if summary["starting_val_iou"] is not None else None,
        "run_best_val_iou": round(summary["best_val_iou"], 4),
        "epochs": summary["epochs"],
        "best_epoch": summary["best_epoch"],
        "train_photos": run.train_count,
        "run_validation_photos": run.validation_count,
        "imported": report.added,
        "split": split,
        "seconds": round(seconds, 1),
        "data": str(arguments.data),
        "start_from": arguments.model,
        "train_config": train_config.to_dict(),
    }))


if __name__ == "__main__":
    main()
