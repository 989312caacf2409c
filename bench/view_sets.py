"""Score and time the view sets a model could predict with: mean per-photo IoU, and network runs per photo.

Every set is a choice of input sizes (scales x the model's size) and of the mirror image. Each
photo runs once per distinct view through ONNX Runtime, as the app does (``Predictor``); the maps
are kept, so every set is scored from the same network outputs through the app's own averaging
(``catseg.predict.letterbox.predict_probability_at_scales``). One 12-megapixel splash must fit its budget:
time a set with bench/splash_speed.py. Prints one JSON object.

    .venv/bin/python bench/view_sets.py --model starter \
        --data ../shared/data/feral-cats/valid --data /tmp/seed-split/valid
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

import _common  # noqa: F401  (puts the repository on sys.path)

# (scales, flip) sets: one view, two views, and the starter's full set of four.
VIEW_SETS = (((1.0,), False), ((1.25,), False), ((1.0,), True), ((1.25,), True), ((1.0, 1.25), False),
             ((1.0, 1.25), True), ((1.0, 1.25, 1.5), True))


class RememberingNetwork:
    """A network that runs each distinct input once and answers later calls from memory."""

    def __init__(self, network) -> None:
        self.network = network
        self.input_shape = network.input_shape
        self.seconds = 0.0
        self.runs = 0
        self._outputs: dict[bytes, np.ndarray] = {}

    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        keys = [hashlib.sha1(item.tobytes()).digest() for item in batch]
        missing = [index for index, key in enumerate(keys) if key not in self._outputs]
        if missing:
            started = time.perf_counter()
            outputs = self.network.predict_on_batch(batch[missing])
            self.seconds += time.perf_counter() - started
            self.runs += len(missing)
            for index, output in zip(missing, outputs):
                self._outputs[keys[index]] = output
        return np.stack([self._outputs[key] for key in keys])

    def forget(self) -> None:
        self._outputs.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="starter", help="starter, pretrained, best, a version id or a model folder")
    parser.add_argument("--data", type=Path, action="append", required=True,
                        help="a tutorial-layout or YOLO folder to score on (may be repeated)")
    arguments = parser.parse_args()

    from catseg.data.importing import iter_folder_pairs
    from catseg.predict.letterbox import predict_probability_at_scales
    from catseg.data.masks import iou
    from catseg.model.versions import read_card
    from catseg.model.registry import resolve_model
    from catseg.predict.runtime import open_networks
    from catseg.predict.views import scaled_input_sizes

    directory = resolve_model(arguments.model)
    card = read_card(directory)
    size = int(card["model_config"]["image_size"])
    set_sizes = [scaled_input_sizes(size, scales) for scales, _ in VIEW_SETS]
    all_sizes = sorted({one for sizes in set_sizes for one in sizes})
    from catseg.predict.onnx_export import export_version

    try:
        networks = {network.size: RememberingNetwork(network) for network in open_networks(directory, card, all_sizes)}
    except ValueError:
        card = export_version(directory, all_sizes)  # sizes the card does not export yet
        networks = {network.size: RememberingNetwork(network) for network in open_networks(directory, card, all_sizes)}

    results = {"model": str(directory), "sets": []}
    scores: dict[str, list[list[float]]] = {}
    for folder in arguments.data:
        per_set: list[list[float]] = [[] for _ in VIEW_SETS]
        for _, photo, truth in iter_folder_pairs(folder):
            for network in networks.values():
                network.forget()
            for index, ((_, flip), sizes) in enumerate(zip(VIEW_SETS, set_sizes)):
                probability = predict_probability_at_scales([networks[one] for one in sizes], photo, flip=flip)
                per_set[index].append(iou(probability >= 0.5, truth > 0))
        scores[str(folder)] = per_set
    seconds_per_view = {one: network.seconds / max(1, network.runs) for one, network in networks.items()}
    for index, ((scales, flip), sizes) in enumerate(zip(VIEW_SETS, set_sizes)):
        results["sets"].append({
            "scales": list(scales), "flip": flip, "sizes": list(sizes), "views": len(sizes) * (2 if flip else 1),
            "network_seconds": round(sum(seconds_per_view[one] for one in sizes) * (2 if flip else 1), 3),
            "iou_mean": {folder: round(float(np.mean(per_set[index])), 4) for folder, per_set in scores.items()},
        })
    results["photos"] = {folder: len(per_set[0]) for folder, per_set in scores.items()}
    results["seconds_per_view"] = {str(one): round(value, 3) for one, value in seconds_per_view.items()}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
