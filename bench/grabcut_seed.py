"""How well does a GrabCut box alone cut out the seed cats?

For each seed photo the box is the true mask's bounding box plus a 5 % margin
(of the box size, clamped to the photo), as a careful user would draw it.
Prints one JSON object: photos, mean/median/min foreground IoU, seconds per
photo, and the GrabCut settings used.

    .venv/bin/python bench/grabcut_seed.py [--data DIR] [--max-side 384] [--iterations 5]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from catseg.annotation import grabcut_from_box  # noqa: E402

DEFAULT_DATA = REPO_ROOT / ".." / "shared" / "data" / "seed-cats"


def load_rgb(path: Path) -> np.ndarray:
    """Upright RGB uint8, as the app shows it."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def load_mask(path: Path) -> np.ndarray:
    """JPEG masks: white is cat, threshold at 128."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("L")) >= 128


def box_with_margin(mask: np.ndarray, margin: float = 0.05) -> tuple[int, int, int, int]:
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


def photo_number(path: Path) -> int:
    match = re.search(r"(\d+)", path.stem)
    return int(match.group(1)) if match else -1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder with input/cat.N.jpg and mask/mask_cat.N.jpg")
    parser.add_argument("--max-side", type=int, default=384)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--no-clean", action="store_true", help="skip hole filling / main-part keeping")
    parser.add_argument("--per-photo", action="store_true", help="also list each photo's IoU")
    args = parser.parse_args()

    photos = sorted((args.data / "input").glob("cat.*.jpg"), key=photo_number)
    if not photos:
        print(f"No photos in {args.data / 'input'}; pass --data.", file=sys.stderr)
        return 2
    scores: dict[str, float] = {}
    seconds = 0.0
    for photo_path in photos:
        mask_path = args.data / "mask" / f"mask_{photo_path.name}"
        photo = load_rgb(photo_path)
        truth = load_mask(mask_path)
        if truth.shape != photo.shape[:2]:
            raise ValueError(f"{mask_path.name} is not the size of {photo_path.name}.")
        box = box_with_margin(truth)
        start = time.perf_counter()
        predicted = grabcut_from_box(photo, box, iterations=args.iterations,
                                     max_side=args.max_side, clean=not args.no_clean) > 0
        seconds += time.perf_counter() - start
        union = (predicted | truth).sum()
        scores[photo_path.name] = float((predicted & truth).sum() / union) if union else 1.0

    values = list(scores.values())
    result = {
        "photos": len(values),
        "mean_iou": round(statistics.fmean(values), 4),
        "median_iou": round(statistics.median(values), 4),
        "min_iou": round(min(values), 4),
        "seconds_per_photo": round(seconds / len(values), 4),
        "max_side": args.max_side,
        "iterations": args.iterations,
        "clean": not args.no_clean,
    }
    if args.per_photo:
        result["per_photo"] = {name: round(value, 4) for name, value in scores.items()}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
