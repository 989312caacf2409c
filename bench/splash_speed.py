"""End-to-end colour splash of a 12-megapixel JPEG: read + decode, predict, composite, write JPEG.

    .venv/bin/python bench/splash_speed.py [--model best|ID|PATH] [--runs 5] [--effect grey]
        [--views quick|full] [--scales 1,1.25] [--flip yes|no]

Without --model it uses the model the app would (the best version in CATSEG_HOME, else the
starter), else a freshly built default-architecture model (random weights: the timing is
the same as a trained one). --views picks the card's quick (the app's default) or full view
set; --scales and --flip time other views. The network runs on ONNX Runtime, as in the app.
Prints one JSON object. Targets: median at most 1.2 s and peak memory at most 1.2 GB on 2 CPU
cores, on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import SEED_CATS
from catseg.predict.views import VIEW_SETS

SEED_PHOTOS = SEED_CATS / "input"
WIDTH, HEIGHT = 4000, 3000


def make_photo(path: Path) -> str:
    """Write a 4000x3000 JPEG: a real seed-cats photo upscaled, or a synthetic one."""
    import cv2

    candidates = sorted(SEED_PHOTOS.glob("*.jpg")) if SEED_PHOTOS.is_dir() else []
    if candidates:
        photo = cv2.imread(str(candidates[0]), cv2.IMREAD_COLOR)
        source = f"seed-cats/{candidates[0].name} upscaled"
    else:
        generator = np.random.default_rng(0)
        photo = generator.integers(0, 255, size=(300, 400, 3), dtype=np.uint8)
        cv2.ellipse(photo, (200, 150), (100, 80), 0, 0, 360, (40, 140, 230), -1)
        source = "synthetic"
    big = cv2.resize(photo, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    # A little noise so the JPEG is as hard to decode as a real camera photo, not a smooth upscale.
    noise = np.random.default_rng(1).integers(-6, 7, size=big.shape, dtype=np.int16)
    big = np.clip(big.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return source


def default_model(folder: Path) -> tuple[Path, str]:
    """A saved default-architecture model with random weights."""
    from catseg.model.config import ModelConfig, TrainConfig
    from catseg.model.networks import build_model
    from catseg.model.versions import save_model_version

    config = ModelConfig()
    directory = save_model_version(build_model(config), config, TrainConfig(), {}, folder / "random-model")
    return directory, f"random {config.architecture} {config.image_size}px"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="best | version id | model folder (default: best, else random)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--effect", default="grey")
    parser.add_argument("--feather", type=int, default=0)
    parser.add_argument("--scales", type=lambda text: [float(part) for part in text.split(",")],
                        help="test-time scales, e.g. 1,1.25 (default: the model card's)")
    parser.add_argument("--flip", choices=("yes", "no"), help="also run the mirror image (default: the model card's)")
    parser.add_argument("--views", choices=VIEW_SETS, default="quick", help="the card's view set (default: quick)")
    arguments = parser.parse_args()

    from catseg.predict.compositing import SplashSettings
    from catseg.predict.predictor import Predictor, splash_file
    from catseg.model.registry import resolve_model

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        photo_path = folder / "cat-12mp.jpg"
        source = make_photo(photo_path)
        try:
            directory, model_name = resolve_model(arguments.model), arguments.model or "best"
        except ValueError:
            if arguments.model is not None:
                raise
            directory, model_name = default_model(folder)
        predictor = Predictor(directory, arguments.views, arguments.scales,
                              None if arguments.flip is None else arguments.flip == "yes")
        settings = SplashSettings(effect=arguments.effect, feather_px=arguments.feather)
        output_path = folder / "splash.jpg"
        splash_file(predictor, photo_path, output_path, settings)  # warm-up: the runtime's first call prepares it
        seconds = []
        for _ in range(arguments.runs):
            start = time.perf_counter()
            written = splash_file(predictor, photo_path, output_path, settings)
            seconds.append(time.perf_counter() - start)
        import cv2

        written_shape = cv2.imread(str(written), cv2.IMREAD_UNCHANGED).shape
    # ru_maxrss is in kilobytes on Linux: the peak of the whole process.
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "megapixels": round(WIDTH * HEIGHT / 1e6, 1),
        "median_seconds": round(statistics.median(seconds), 3),
        "min_seconds": round(min(seconds), 3),
        "peak_memory_mb": round(peak_mb, 1),
        "runs": arguments.runs,
        "model": model_name,
        "views": arguments.views,
        "input_sizes": list(predictor.views.sizes),
        "mirrored": predictor.views.flip,
        "tensorflow_imported": "tensorflow" in sys.modules,
        "effect": arguments.effect,
        "photo": source,
        "output_shape": list(written_shape),
    }))


if __name__ == "__main__":
    main()
