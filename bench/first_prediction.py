"""A new user's first predictions, in Chromium: the first Try result, then the first Annotate pre-fill.

Imports seed-cats and feral-cats/valid into a throw-away CATSEG_HOME (a few made-up photos where
../shared is absent), starts `streamlit run app.py` as the README does, opens the Try page as
soon as the server answers, drops one photo on it and times until the photo and its splash
show; then opens Annotate, presses "Pre-fill from model" and times until the mask is there.
Prints one JSON object; measure on a quiet machine. Needs Chromium (bench/browser_support.py).

    .venv/bin/python bench/first_prediction.py
"""

from __future__ import annotations

import json
import time

from _common import FERAL_CATS_VALID, SEED_CATS, scratch_home
from browser_support import chromium_page, open_from_menu, streamlit_server, upload_file, wait_for_app

RESULT_SHOWN = (
    "() => { const images = [...document.querySelectorAll(\"[data-testid='stImage'] img\")];"
    " return images.length >= 2 && images.every(image => image.complete && image.naturalWidth > 0); }"
)


def fill_dataset(folder) -> int:
    """Import the real photos, or 12 drawn ones where the shared data is absent; returns the count."""
    import cv2
    import numpy as np

    from catseg.data.importing import import_path

    sources = [path for path in (SEED_CATS, FERAL_CATS_VALID) if path.is_dir()]
    if not sources:
        made = folder / "made-up"
        made.mkdir()
        generator = np.random.default_rng(0)
        for index in range(12):
            photo = generator.integers(0, 120, size=(480, 640, 3), dtype=np.uint8)
            cv2.ellipse(photo, (320, 240), (150, 110), 0, 0, 360, (40, 140, 230), -1)
            cv2.imwrite(str(made / f"cat{index}.jpg"), photo)
        sources = [made]
    return sum(import_path(source).added for source in sources)


def main() -> None:
    with scratch_home("catseg-first-prediction-") as folder:
        import storage

        photos = fill_dataset(folder)
        storage.dispose_all()
        photo_path = (sorted((SEED_CATS / "input").glob("*.jpg"))[17:18] or [None])[0]
        if photo_path is None:
            photo_path = next((folder / "made-up").glob("*.jpg"))
        home = folder / "home"
        started = time.perf_counter()
        with streamlit_server(home) as url, chromium_page() as page:
            server_seconds = time.perf_counter() - started
            # Through the sidebar, as a user goes: a page's own address as the first visit shows
            # Streamlit's "Page not found" dialog over it (README, Troubleshooting).
            page.goto(url)
            wait_for_app(page)
            open_from_menu(page, "Try")
            wait_for_app(page)
            page_open = time.perf_counter()
            upload_file(page, photo_path, "Photos to try")
            page.wait_for_function(RESULT_SHOWN, timeout=120_000)
            try_seconds = time.perf_counter() - page_open

            open_from_menu(page, "Annotate")
            wait_for_app(page)
            prefill = page.get_by_role("button", name="Pre-fill from model")
            prefill.wait_for(timeout=60_000)
            clicked = time.perf_counter()
            prefill.click()
            page.get_by_text("Unsaved changes").first.wait_for(timeout=120_000)
            prefill_seconds = time.perf_counter() - clicked
    print(json.dumps({
        "photos_in_dataset": photos,
        "server_start_seconds": round(server_seconds, 2),
        "first_try_result_seconds": round(try_seconds, 2),
        "first_prefill_seconds": round(prefill_seconds, 2),
        "photo": photo_path.name,
    }))


if __name__ == "__main__":
    main()
