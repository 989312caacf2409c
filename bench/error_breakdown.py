"""Where a model loses IoU: mean per-photo IoU by number of cats, cat size and photo brightness.

Reads a tutorial-layout or YOLO folder (for YOLO, the number of cats is the number of
label lines of the photo; tutorial masks count as one cat), predicts every photo and
groups the per-photo IoU. Prints one JSON object; feeds the "known limits" of a model card.

    .venv/bin/python bench/error_breakdown.py --model starter --data ../shared/data/feral-cats/valid
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cat_count(folder: Path, name: str) -> int:
    label = folder / "labels" / (Path(name).stem + ".txt")
    if not label.is_file():
        return 1
    return sum(1 for line in label.read_text().splitlines() if len(line.split()) >= 7)


def grouped(values: list[float], keys: list[str]) -> dict:
    groups: dict[str, list[float]] = {}
    for key, value in zip(keys, values):
        groups.setdefault(key, []).append(value)
    return {key: {"photos": len(items), "iou_mean": round(float(np.mean(items)), 4)}
            for key, items in sorted(groups.items())}


def tercile_keys(values: list[float], name: str) -> list[str]:
    low, high = np.percentile(values, [100 / 3, 200 / 3])
    return [f"1 {name} lowest third (< {low:.3f})" if value < low else
            f"3 {name} highest third (>= {high:.3f})" if value >= high else
            f"2 {name} middle third" for value in values]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="as for `python -m catseg evaluate --model`")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--threshold", type=float, default=0.5)
    arguments = parser.parse_args()

    from catseg.dataset_io import iter_folder_pairs
    from catseg.masks import iou
    from catseg.predictor import Predictor, resolve_model

    predictor = Predictor(resolve_model(arguments.model))
    ious, counts, sizes, brightness = [], [], [], []
    for name, photo, truth in iter_folder_pairs(arguments.data):
        predicted = predictor.probability(photo) >= arguments.threshold
        ious.append(iou(predicted, truth))
        counts.append(cat_count(arguments.data, name))
        sizes.append(float(np.count_nonzero(truth)) / truth.size)
        brightness.append(float(photo.mean()) / 255.0)
    count_keys = [str(count) if count < 3 else "3+" for count in counts]
    print(json.dumps({
        "photos": len(ious),
        "iou_mean": round(float(np.mean(ious)), 4),
        "share_of_photos_below_0.5": round(float(np.mean(np.array(ious) < 0.5)), 4),
        "by_cats_in_photo": grouped(ious, count_keys),
        "by_cat_area_fraction": grouped(ious, tercile_keys(sizes, "area")),
        "by_brightness": grouped(ious, tercile_keys(brightness, "brightness")),
    }))


if __name__ == "__main__":
    main()
