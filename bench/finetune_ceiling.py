"""How far a 5-minute fine-tune can go on this machine: train on the very photos that are scored.

Not a result: a ceiling for `bench/finetune_starter.py`. It fine-tunes the starter with the
Train page's settings (or `--set FIELD=JSON` changes) on the 21 seed-cats validation-split
photos, picks the epoch on those same photos, and scores them at full resolution with the
model's test-time scales, as `evaluate` does. If memorising the photos cannot reach a goal
within the budget, learning from other photos cannot either. Prints one JSON object.

    .venv/bin/python bench/finetune_ceiling.py [--set learning_rate=0.0003 --set freeze_batch_norm=false]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from finetune_starter import page_fine_tune_config  # noqa: E402
from seed_split import DEFAULT_DATA, seed_pairs, write_split  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", default="starter", help="the model to start from (default: the starter)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON")
    arguments = parser.parse_args()
    if not (arguments.data / "input").is_dir():
        parser.error(f"{arguments.data} is not the seed-cats folder (no input/ folder of photos there)")

    from catseg.models import read_card, save_model_version
    from catseg.predictor import Predictor, evaluate_folder, resolve_model
    from catseg.training import train

    try:
        start_from = resolve_model(arguments.model)
        train_config = page_fine_tune_config(arguments.set)
    except ValueError as error:  # a wrong --model or --set: a usage message, not a traceback
        parser.error(str(error))
    with tempfile.TemporaryDirectory(prefix="catseg-ceiling-") as scratch:
        scratch = Path(scratch)
        write_split(arguments.data, scratch / "split")
        valid = scratch / "split" / "valid"
        pairs = seed_pairs(valid)
        # The scored photos are both the training and the epoch-picking set: the upper bound.
        result = train(None, train_config, pairs, pairs, initial_model_directory=start_from)
        saved = save_model_version(result.model, result.model_config, result.train_config, result.best_metrics,
                                   scratch / "model", test_time_scales=read_card(start_from).get("test_time_scales"))
        scores = evaluate_folder(Predictor(saved), valid)
    print(json.dumps({
        "trained_iou_mean": round(scores.iou_mean, 4),
        "trained_photos": scores.photos,
        "starting_iou_at_model_size": round(result.starting_metrics["val_iou"], 4),
        "best_iou_at_model_size": round(result.best_metrics["val_iou"], 4),
        "epochs": result.epochs_run,
        "best_epoch": int(result.best_metrics["epoch"]) + 1,
        "seconds": round(result.seconds, 1),
        "stop_reason": result.stop_reason,
        "start_from": str(start_from),
        "train_config": train_config.to_dict(),
    }))


if __name__ == "__main__":
    main()
