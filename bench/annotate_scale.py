"""Annotate at scale: opening the page and a brush stroke's round trip with few and with many photos. Prints JSON.

Fills one throw-away data folder per dataset size with small made-up photos (320x240, every other
one with a round mask) through catseg's intake. Each run then opens Annotate the way a browser
would (Streamlit's AppTest in a fresh session: the router first, then the page) on the last
labelled photo, so its saved mask lies under the stroke, and draws one brush stroke: what
streamlit-drawable-canvas sends on mouse-up (the canvas's drawing, in the widget's state) and the
page's rerun it causes. The sizes take turns run by run, so a busy moment of a shared machine
falls on all of them alike; the medians are printed.

    .venv/bin/python bench/annotate_scale.py [--photos 300 5000] [--runs 9]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from unittest import mock

import cv2
import numpy as np

from _common import REPOSITORY_ROOT, scratch_home

PAGE = "pages/labelling.py"
WIDTH, HEIGHT = 320, 240
PHOTOS_PER_TRANSACTION = 250  # one commit per photo would make filling 5,000 slow for no gain here


def encoded_photo(index: int) -> bytes:
    """A small JPEG, different for every index (the dataset refuses the same bytes twice)."""
    generator = np.random.default_rng(index)
    # Coarse noise, enlarged: distinct photos that encode small and fast.
    coarse = generator.integers(0, 255, size=(HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
    photo = cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_NEAREST)
    return cv2.imencode(".jpg", photo)[1].tobytes()


def round_mask(index: int) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.circle(mask, (WIDTH // 2, HEIGHT // 2), 50 + index % 40, 255, -1)
    return mask


def fill(count: int) -> None:
    """Add `count` photos to the current data folder through catseg's intake; the odd ones get a mask."""
    import storage
    from catseg.data.intake import add_photo

    # The bench times the page, not the disk: without a flush to disk per file, 5,000 photos go in
    # in a fraction of the time (the scratch folder is thrown away anyway).
    with mock.patch("os.fsync"):
        for first in range(0, count, PHOTOS_PER_TRANSACTION):
            with storage.begin() as session:
                for index in range(first, min(first + PHOTOS_PER_TRANSACTION, count)):
                    add_photo(session, encoded_photo(index), f"cat{index}.jpg",
                              mask=round_mask(index) if index % 2 else None)


def last_labelled_photo() -> int:
    import storage
    from storage import dataset

    with storage.begin() as session:
        return dataset.photo_ids(session, "labelled")[-1]


def stroke_object() -> dict:
    """A freedraw path across the photo as the canvas sends it (tests/canvas_json.py builds the same shape)."""
    from catseg.annotate.canvas_edits import ADD_COLOUR

    y = 80
    points = [(60, y), (120, y + 4), (200, y), (260, y + 6)]
    commands = [["M", *points[0]]] + [["L", *point] for point in points[1:]]
    return {"type": "Path", "version": "7.4.0", "originX": "center", "originY": "center",
            "left": 160.0, "top": y + 3.0, "width": 200.0, "height": 6.0, "fill": None, "stroke": ADD_COLOUR,
            "strokeWidth": 20, "strokeLineCap": "round", "strokeLineJoin": "round", "scaleX": 1, "scaleY": 1,
            "angle": 0, "path": commands}


def opened(photo_id: int):
    """A fresh session's AppTest with Annotate open on `photo_id` (the router's run comes first), and the seconds the page took."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(REPOSITORY_ROOT / "app.py"), default_timeout=60)
    app.run()
    app.switch_page(PAGE)
    app.query_params["photo"] = str(photo_id)
    started = time.perf_counter()
    app.run()
    seconds = time.perf_counter() - started
    check(app)
    if app.session_state["annotate_photo_id"] != photo_id:
        raise SystemExit(f"Annotate opened photo #{app.session_state['annotate_photo_id']}, not #{photo_id}")
    return app, seconds


def check(app) -> None:
    if app.exception:
        raise SystemExit(f"Annotate raised: {app.exception[0].value}")
    if app.error:
        raise SystemExit(f"Annotate said: {app.error[0].value}")


def stroke_seconds(app) -> float:
    """Seconds of the rerun a brush stroke causes on the open page."""
    context = app.session_state["annotate_context"]
    app.session_state[context["canvas_key"]] = {
        "drawing": {"raw": {"version": "7.4.0", "objects": [stroke_object()]}, "data": None}, "backgroundFit": None}
    started = time.perf_counter()
    app.run()
    seconds = time.perf_counter() - started
    check(app)
    if app.session_state["annotate_context"]["canvas_key"] != context["canvas_key"]:
        raise SystemExit("The stroke moved the page to another canvas; the bench would time something else.")
    if not any("Unsaved changes" in warning.value for warning in app.warning):
        raise SystemExit("The stroke did not reach the page (no unsaved changes shown).")
    return seconds


def summary(seconds: list[float]) -> dict:
    return {"median_seconds": round(statistics.median(seconds), 3), "max_seconds": round(max(seconds), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, nargs="+", default=[300, 5000], help="dataset sizes, smallest first")
    parser.add_argument("--runs", type=int, default=9, help="opens and strokes timed at each size")
    arguments = parser.parse_args()
    sizes = sorted(set(arguments.photos))
    with scratch_home("catseg-annotate-scale-") as scratch:
        homes, photo_ids = {}, {}
        started = time.perf_counter()
        for size in sizes:
            homes[size] = scratch / f"home-{size}"
            os.environ["CATSEG_HOME"] = str(homes[size])  # storage follows it call by call
            fill(size)
            photo_ids[size] = last_labelled_photo()
        fill_seconds = time.perf_counter() - started
        for size in sizes:  # a first visit: imports done, the photo's pixels and saved mask cached
            os.environ["CATSEG_HOME"] = str(homes[size])
            opened(photo_ids[size])
        open_times = {size: [] for size in sizes}
        stroke_times = {size: [] for size in sizes}
        for _ in range(arguments.runs):
            for size in sizes:
                os.environ["CATSEG_HOME"] = str(homes[size])
                app, seconds = opened(photo_ids[size])
                open_times[size].append(seconds)
                stroke_times[size].append(stroke_seconds(app))
    smallest, largest = sizes[0], sizes[-1]
    print(json.dumps({
        "photo_size": f"{WIDTH}x{HEIGHT}",
        "runs": arguments.runs,
        "by_photos": {str(size): {"open": summary(open_times[size]), "stroke": summary(stroke_times[size])}
                      for size in sizes},
        "stroke_ratio": round(statistics.median(stroke_times[largest]) / statistics.median(stroke_times[smallest]), 2),
        "open_ratio": round(statistics.median(open_times[largest]) / statistics.median(open_times[smallest]), 2),
        "tensorflow_imported": "tensorflow" in sys.modules or "keras" in sys.modules,
        "fill_seconds": round(fill_seconds, 1),
    }))


if __name__ == "__main__":
    main()
