"""Letterbox (pad) against stretch at inference: mean IoU of a model on a labelled folder. Prints JSON.

    .venv/bin/python bench/fit_compare.py --model best --data /tmp/seed-split/valid
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="best", help="best, starter, a version id or a model folder")
    parser.add_argument("--data", type=Path, required=True, help="a tutorial-layout or YOLO folder")
    arguments = parser.parse_args()
    from catseg.dataset_io import iter_folder_pairs
    from catseg.inference import predict_probability
    from catseg.masks import iou
    from catseg.models import load_model_version
    from catseg.predictor import resolve_model

    directory = resolve_model(arguments.model)
    model, _, _ = load_model_version(directory)
    scores: dict[str, list[float]] = {"letterbox": [], "stretch": []}
    for _, photo, mask in iter_folder_pairs(arguments.data):
        for fit, values in scores.items():
            values.append(iou(predict_probability(model, photo, fit=fit) >= 0.5, mask))
    print(json.dumps({**{f"{fit}_mean_iou": round(float(np.mean(v)), 4) for fit, v in scores.items()},
                      "photos": len(scores["letterbox"]), "model": str(directory)}))


if __name__ == "__main__":
    main()
