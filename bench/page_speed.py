"""How long each page takes to open with a big dataset (default 1,000 photos, half labelled). Prints JSON.

Fills a throw-away CATSEG_HOME with made-up photos through catseg's intake, then opens every page the way a browser
would (Streamlit's AppTest: the router first, then the page) and times the page's run.
The page tests check that these pages open without TensorFlow; how fast they open is
measured here, on a quiet machine, since a shared one makes wall-clock times noisy.

    .venv/bin/python bench/page_speed.py [--photos 1000] [--runs 5] [--page photos ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from _common import REPOSITORY_ROOT, scratch_home

PAGES = {"home": "pages/home.py", "photos": "pages/photo_gallery.py", "annotate": "pages/labelling.py",
         "train": "pages/training.py", "try": "pages/try_photos.py"}


def fill(count: int, folder: Path) -> None:
    """Import `count` 640x480 photos (random noise) through catseg's intake, every other one with a round mask."""
    from catseg.data.importing import import_path

    generator = np.random.default_rng(0)
    for sub_folder in ("labelled/input", "labelled/mask", "plain"):
        (folder / sub_folder).mkdir(parents=True)
    for index in range(count):
        photo = generator.integers(0, 255, size=(480, 640, 3), dtype=np.uint8)
        if index % 2:
            cv2.imwrite(str(folder / "plain" / f"cat{index}.jpg"), photo)
            continue
        mask = np.zeros((480, 640), np.uint8)
        cv2.circle(mask, (320, 240), 100 + index % 50, 255, -1)
        cv2.imwrite(str(folder / "labelled" / "input" / f"cat{index}.jpg"), photo)
        cv2.imwrite(str(folder / "labelled" / "mask" / f"mask_cat{index}.png"), mask)
    import_path(folder / "labelled", layout="tutorial")
    import_path(folder / "plain", layout="images")


def open_seconds(page: str, runs: int) -> list[float]:
    """Seconds of each run of `page`, each in a fresh AppTest session after the router's first run."""
    from streamlit.testing.v1 import AppTest

    timings = []
    for _ in range(runs):
        app = AppTest.from_file(str(REPOSITORY_ROOT / "app.py"), default_timeout=60)
        app.run()
        app.switch_page(page)
        started = time.perf_counter()
        app.run()
        timings.append(time.perf_counter() - started)
        if app.exception:
            raise SystemExit(f"{page} raised: {app.exception[0].value}")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--page", choices=PAGES, action="append", help="a page to time (default: all five)")
    arguments = parser.parse_args()
    with scratch_home("catseg-page-speed-") as scratch:
        started = time.perf_counter()
        fill(arguments.photos, scratch / "photos")
        fill_seconds = time.perf_counter() - started
        pages = {}
        for name in arguments.page or PAGES:
            timings = open_seconds(PAGES[name], arguments.runs)
            pages[name] = {"median_seconds": round(statistics.median(timings), 3),
                           "max_seconds": round(max(timings), 3)}
    print(json.dumps({
        "photos": arguments.photos,
        "runs": arguments.runs,
        "pages": pages,
        "tensorflow_imported": "tensorflow" in sys.modules or "keras" in sys.modules,
        "fill_seconds": round(fill_seconds, 1),
    }))


if __name__ == "__main__":
    main()
