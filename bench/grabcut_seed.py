"""How well a GrabCut box alone cuts out the seed cats. Prints one JSON object.

For each seed-cats photo the box is the true mask's bounding box plus a 5 % margin (of the
box size, clamped to the photo), as a careful user would draw it on the Annotate page.
Reports the photos, the mean, median and lowest foreground IoU, the seconds per photo and
the GrabCut settings used.

    .venv/bin/python bench/grabcut_seed.py [--data ../shared/data/seed-cats] [--max-side 384] [--iterations 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from _common import SEED_CATS


def box_with_margin(mask: np.ndarray, margin: float = 0.05) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the mask's foreground, widened by `margin` of its size, inside the photo."""
    ys, xs = np.nonzero(mask)
    x0, x1 = xs.min(), xs.max() + 1
    y0, y1 = ys.min(), ys.max() + 1
    pad_x, pad_y = margin * (x1 - x0), margin * (y1 - y0)
    height, width = mask.shape
    return (
        max(0, int(np.floor(x0 - pad_x))),
        max(0, int(np.floor(y0 - pad_y))),
        min(width, int(np.ceil(x1 + pad_x))),
        min(height, int(np.ceil(y1 + pad_y))),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SEED_CATS, help="a labelled folder (tutorial layout or YOLO)")
    parser.add_argument("--max-side", type=int, default=384)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--no-clean", action="store_true", help="skip hole filling / main-part keeping")
    parser.add_argument("--per-photo", action="store_true", help="also list each photo's IoU")
    arguments = parser.parse_args()
    if not arguments.data.is_dir():
        parser.error(f"{arguments.data}: no such folder; pass --data.")

    from catseg.data.importing import iter_folder_pairs
    from catseg.annotate.grabcut import grabcut_from_box
    from catseg.data.masks import iou

    scores: dict[str, float] = {}
    seconds = 0.0
    for name, photo, truth in iter_folder_pairs(arguments.data):
        if not truth.any():
            continue  # no cat, no box to draw
        box = box_with_margin(truth > 0)
        started = time.perf_counter()
        predicted = grabcut_from_box(photo, box, iterations=arguments.iterations,
                                     max_side=arguments.max_side, clean=not arguments.no_clean)
        seconds += time.perf_counter() - started
        scores[name] = iou(predicted, truth)
    if not scores:
        parser.error(f"No labelled photos in {arguments.data}; pass --data.")

    values = list(scores.values())
    result = {
        "photos": len(values),
        "mean_iou": round(statistics.fmean(values), 4),
        "median_iou": round(statistics.median(values), 4),
        "min_iou": round(min(values), 4),
        "seconds_per_photo": round(seconds / len(values), 4),
        "max_side": arguments.max_side,
        "iterations": arguments.iterations,
        "clean": not arguments.no_clean,
    }
    if arguments.per_photo:
        result["per_photo"] = {name: round(value, 4) for name, value in scores.items()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
