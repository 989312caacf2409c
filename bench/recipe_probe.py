"""A short training probe of recipe variants on the seed-cats training split. Prints JSON per variant.

Each variant trains from random weights for a fixed wall-time budget (default 150 s) and
reports the last training IoU and the best validation IoU, to compare recipes quickly.

    .venv/bin/python bench/recipe_probe.py '{"augment": false}' '{"learning_rate": 0.003}' [--seconds 150]
    # a variant is JSON: TrainConfig fields, plus {"model": {ModelConfig fields}}
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from seed_split import DEFAULT_DATA, seed_pairs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", help="JSON overrides, e.g. '{\"augment\": false}'")
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    arguments = parser.parse_args()
    from catseg.config import ModelConfig, TrainConfig
    from catseg.pipeline import split_indices
    from catseg.training import train

    pairs = seed_pairs(arguments.data)
    train_indices, validation_indices = split_indices(len(pairs), 0.25, 42)
    for variant in arguments.variants:
        overrides = json.loads(variant)
        model_config = ModelConfig(**overrides.pop("model", {}))
        train_config = dataclasses.replace(TrainConfig(), max_seconds=arguments.seconds, **overrides)
        result = train(model_config, train_config, [pairs[i] for i in train_indices],
                       [pairs[i] for i in validation_indices])
        print(json.dumps({
            "variant": variant, "epochs": result.epochs_run,
            "last_train_iou": round(result.history["iou"][-1], 3),
            "best_val_iou": round(result.best_metrics.get("val_iou", float("nan")), 3),
            "seconds": round(result.seconds),
        }), flush=True)


if __name__ == "__main__":
    main()
