"""How long the Photos page takes to render with 1,000 photos (half labelled). Prints JSON.

    .venv/bin/python bench/dataset_page_speed.py [--photos 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def fill(count: int) -> None:
    import storage
    from catseg.images import encode_jpeg
    from storage import dataset

    generator = np.random.default_rng(0)
    for start in range(0, count, 100):
        with storage.begin() as session:
            for index in range(start, min(count, start + 100)):
                photo = generator.integers(0, 255, size=(480, 640, 3), dtype=np.uint8)
                mask = np.zeros((480, 640), np.uint8)
                cv2.circle(mask, (320, 240), 100 + index % 50, 255, -1)
                dataset.add_photo(session, encode_jpeg(photo), f"cat{index}.jpg",
                                  mask=mask if index % 2 == 0 else None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["CATSEG_HOME"] = home
        os.environ.pop("DATABASE_URL", None)
        started = time.perf_counter()
        fill(arguments.photos)
        fill_seconds = time.perf_counter() - started
        from streamlit.testing.v1 import AppTest

        timings = []
        for _ in range(arguments.runs):
            app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
            app.run()
            app.switch_page("pages/dataset.py")
            started = time.perf_counter()
            app.run()
            timings.append(time.perf_counter() - started)
            assert not app.exception, app.exception
        print(json.dumps({
            "photos": arguments.photos,
            "render_seconds_median": round(statistics.median(timings), 3),
            "render_seconds_max": round(max(timings), 3),
            "runs": arguments.runs,
            "fill_seconds": round(fill_seconds, 1),
        }))


if __name__ == "__main__":
    main()
