"""Which input sizes to average at inference: mean per-photo IoU of a model for sets of scales.

Every set runs the photo (with and without its mirror image) at each scale (x the model's
input size, rounded to a multiple of 32) through ``Predictor``, as the app does. Pick scales on a
training run's own hold-out (``--run-id``: its validation photos, from $CATSEG_HOME), not on
the photos you report scores on; then time the choice with bench/splash_speed.py. Prints one
JSON object.

    CATSEG_HOME=/tmp/starter-home .venv/bin/python bench/inference_scales.py --model 3 --run-id 3
    .venv/bin/python bench/inference_scales.py --model starter --data ../shared/data/feral-cats/valid
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import _common  # noqa: F401  (puts the repository on sys.path)

SCALE_SETS = ((1.0,), (1.0, 1.25), (1.0, 1.5), (1.0, 1.25, 1.5), (1.0, 1.25, 1.5, 1.75),
              (0.8, 1.0, 1.25), (0.8, 1.0, 1.25, 1.5))


def run_hold_out(run_id: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(photo, mask) of the run's validation photos, as stored now."""
    import storage
    from storage import dataset, runs

    with storage.begin() as session:
        photo_ids = runs.get_run(session, run_id).validation_photo_ids
        return [(dataset.load_photo(session, photo_id), dataset.load_mask(session, photo_id)) for photo_id in photo_ids]


def folder_pairs(folder: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    from catseg.dataset_io import iter_folder_pairs

    return [(photo, truth) for _, photo, truth in iter_folder_pairs(folder)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="starter, best, a version id or a model folder")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run-id", type=int, help="score on this training run's validation photos")
    source.add_argument("--data", type=Path, help="score on a tutorial-layout or YOLO folder")
    parser.add_argument("--scales", action="append", metavar="S1,S2,...",
                        type=lambda text: tuple(float(part) for part in text.split(",")),
                        help="a set of scales to try (may be repeated; default: seven sets from 1 to 1.75)")
    arguments = parser.parse_args()

    from catseg.masks import iou
    from catseg.prediction import Predictor
    from catseg.registry import resolve_model

    pairs = run_hold_out(arguments.run_id) if arguments.run_id is not None else folder_pairs(arguments.data)
    directory = resolve_model(arguments.model)
    results = {}
    for scales in arguments.scales or SCALE_SETS:
        for flip in (True, False):
            predictor = Predictor(directory, scales=scales, flip=flip)
            scores = [iou(predictor.probability(photo) >= 0.5, truth > 0) for photo, truth in pairs]
            name = "+".join(map(str, predictor.input_sizes)) + (" mirrored" if flip else "")
            results[name] = round(float(np.mean(scores)), 4)
    print(json.dumps({"photos": len(pairs), "model": str(directory), "iou_mean_by_input_sizes": results}))


if __name__ == "__main__":
    main()
