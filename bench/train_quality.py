"""Quality of the training recipe from random weights on the seed-cats split. Prints one JSON object.

Trains the library defaults (`ModelConfig()`, `TrainConfig()`) with a 10-minute budget on
the seed-cats training split and reports the best foreground IoU on its validation split
(Keras' pooled IoU at the model's input size, as the run picks its epoch), the last
epoch's training IoU and the wall time of the whole run, decoding included.

    .venv/bin/python bench/train_quality.py [--data ../shared/data/seed-cats] [--set FIELD=JSON ...]

`--set` changes a ModelConfig or TrainConfig field, e.g. `--set image_size=192`, or a short
probe of a recipe: `--set max_seconds=150 --set augment=false --set learning_rate=0.003`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from _common import SEED_CATS, apply_settings, seed_split_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SEED_CATS)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                        help="change a ModelConfig or TrainConfig field, e.g. image_size=192")
    parser.add_argument("--verbose", action="store_true", help="print every epoch's metrics to stderr")
    arguments = parser.parse_args()
    started = time.monotonic()

    from catseg.model.config import ModelConfig, TrainConfig

    try:
        model_config, train_config = apply_settings(arguments.set, ModelConfig(), TrainConfig(max_seconds=600.0))
        train_pairs, validation_pairs = seed_split_pairs(arguments.data, train_config.validation_fraction,
                                                         train_config.seed)
    except ValueError as error:  # a wrong --set or --data: a usage message, not a traceback
        parser.error(str(error))

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(os.cpu_count() or 2)
    tf.config.threading.set_inter_op_parallelism_threads(2)

    from catseg.train.fitting import train

    def report_epoch(epoch: int, logs: dict, preview: object) -> None:
        print(json.dumps({"epoch": epoch, **{key: round(value, 4) for key, value in logs.items()}}), file=sys.stderr)

    result = train(model_config, train_config, train_pairs, validation_pairs,
                   on_epoch=report_epoch if arguments.verbose else None)
    print(json.dumps({
        "best_val_iou": round(result.best_metrics.get("val_iou", float("nan")), 4),
        "last_train_iou": round(result.history["iou"][-1], 4) if result.history.get("iou") else None,
        "seconds": round(time.monotonic() - started, 1),
        "epochs": result.epochs_run,
        "best_epoch": int(result.best_metrics.get("epoch", -1)) + 1,
        "stop_reason": result.stop_reason,
        "model_config": model_config.to_dict(),
        "train_config": train_config.to_dict(),
    }))


if __name__ == "__main__":
    main()
