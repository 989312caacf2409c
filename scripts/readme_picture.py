"""Make the README's before/after picture: a shipped seed-cats photo beside its colour splash.

The splash is what `catseg splash --model starter catseg/check_photos/cat.10.jpg OUT` writes (the
starter model, its quick views, a grey background); the photo is Apache-2.0 (catseg/check_photos/NOTICE).

    .venv/bin/python scripts/readme_picture.py            # writes docs/splash.jpg
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from catseg.predict.compositing import SplashSettings
from catseg.predict.predictor import Predictor, encode_picture, read_photo, splash_file
from catseg.model.registry import resolve_model
from storage.files import atomic_write

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
GAP = 8  # white pixels between the two pictures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, default=REPOSITORY_ROOT / "catseg" / "check_photos" / "cat.10.jpg")
    parser.add_argument("--out", type=Path, default=REPOSITORY_ROOT / "docs" / "splash.jpg")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = splash_file(Predictor(resolve_model("starter")), arguments.photo, Path(folder) / "splash.jpg",
                             SplashSettings())
        before, after = read_photo(arguments.photo), read_photo(result)
    height, width = before.shape[:2]
    pair = np.full((height, 2 * width + GAP, 3), 255, np.uint8)
    pair[:, :width], pair[:, width + GAP:] = before, after
    atomic_write(arguments.out, encode_picture(pair, "JPEG"))
    print(f"Wrote {arguments.out}")


if __name__ == "__main__":
    main()
