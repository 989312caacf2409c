"""Peak memory of training with many photos (default 1,000 at 256x256). Prints JSON.

The photos are drawn (a coloured ellipse on noise, 640x480 JPEG) into a temporary folder,
so the figure does not depend on ../shared. Training runs for a few batches only: the
peak comes from holding the decoded photos and building the model and pipeline, which
happen before the first batch.

    .venv/bin/python bench/train_memory.py [--photos 1000] [--size 256] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def draw_photos(folder: Path, count: int) -> list[tuple[Path, Path]]:
    generator = np.random.default_rng(0)
    pairs = []
    for index in range(count):
        photo = generator.integers(0, 120, size=(480, 640, 3), dtype=np.uint8)
        mask = np.zeros((480, 640), np.uint8)
        cv2.ellipse(mask, (320 + index % 100, 240), (160, 120), index % 180, 0, 360, 255, -1)
        photo[mask > 0] = (40, 140, 230)
        photo_path, mask_path = folder / f"{index}.jpg", folder / f"mask_{index}.png"
        cv2.imwrite(str(photo_path), photo)
        cv2.imwrite(str(mask_path), mask)
        pairs.append((photo_path, mask_path))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    arguments = parser.parse_args()
    from catseg.config import ModelConfig, TrainConfig
    from catseg.training import train

    with tempfile.TemporaryDirectory() as folder:
        pairs = draw_photos(Path(folder), arguments.photos)
        validation = max(1, arguments.photos // 10)
        started = time.perf_counter()
        stop_after = {"batches": 0}

        def on_batch(epoch, batch, batches_per_epoch, loss):
            stop_after["batches"] += 1

        result = train(
            ModelConfig(image_size=arguments.size),
            TrainConfig(epochs=1, max_seconds=None),
            pairs[validation:], pairs[:validation],
            on_batch=on_batch, should_stop=lambda: stop_after["batches"] >= arguments.steps,
        )
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "photos": arguments.photos, "image_size": arguments.size, "batches": stop_after["batches"],
        "peak_memory_mb": round(peak_kib / 1024, 1), "seconds": round(time.perf_counter() - started, 1),
        "architecture": result.model_config.architecture,
    }))


if __name__ == "__main__":
    main()
