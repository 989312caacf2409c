"""Acceptance: label a photo in a real browser (Streamlit + Chromium) and check the stored mask.

Brush a stroke on the canvas, save, erase part of it, save, undo: after each step the
full-resolution mask in the database must follow what the mouse did on screen.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import storage
from catseg.data import intake
from browser_support import chromium_page, open_from_menu, streamlit_server, wait_for_app
from conftest import drawn_cat, encode
from storage import dataset

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 301, 223  # odd on purpose
BRUSH = 20  # the page's default brush size, in screen px
TOLERANCE = 2  # photo px allowed between where the mouse went and the stored mask edge


def stored_mask(photo_id: int) -> np.ndarray | None:
    with storage.begin() as session:
        return dataset.load_mask(session, photo_id)


def wait_for_mask(photo_id: int, condition, timeout: float = 30.0) -> np.ndarray:
    """Poll the database until the stored mask satisfies condition (the save runs in the server)."""
    deadline = time.monotonic() + timeout
    while True:
        mask = stored_mask(photo_id)
        if mask is not None and condition(mask):
            return mask
        if time.monotonic() > deadline:
            raise AssertionError(f"the stored mask never reached the expected state (last: "
                                 f"{None if mask is None else int(mask.sum() // 255)} foreground px)")
        time.sleep(0.2)


def canvas_box(page) -> dict:
    """The drawing layer (Fabric's upper canvas) of the current canvas, once it is on screen."""
    upper = page.locator("canvas.upper-canvas")
    upper.first.wait_for(state="visible", timeout=30_000)
    return upper.first.bounding_box()


def canvas_scrolls_sideways(page) -> bool:
    """Whether the canvas is wider than the box the component shows it in (part of it hidden)."""
    return page.locator("canvas.upper-canvas").first.evaluate(
        """(canvas) => { const box = canvas.closest('.dc-scroll'); return box.scrollWidth > box.clientWidth; }""")


def drag(page, box: dict, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press, move in small steps, release: a freehand stroke in canvas px."""
    page.mouse.move(box["x"] + start[0], box["y"] + start[1])
    page.mouse.down()
    page.mouse.move(box["x"] + end[0], box["y"] + end[1], steps=25)
    page.mouse.up()


def canvas_settled(page) -> None:
    """Wait until the browser has drawn two frames since Streamlit's run ended: the canvas applies
    new arguments (its brush, its colour) in a React effect, which has run by then."""
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    page.locator("canvas.upper-canvas").first.wait_for(state="visible", timeout=30_000)


def button(page, key: str):
    """The page's button with this key (Streamlit also keeps a hidden copy of buttons with help)."""
    return page.locator(f".st-key-{key} button:visible")


def click_when_enabled(page, key: str, timeout: float = 30.0) -> None:
    """Click a page button once the rerun has settled on exactly one, enabled, copy of it.

    While Streamlit reruns, the old element can linger beside the new one for a moment.
    """
    enabled = page.locator(f".st-key-{key} button:visible:not([disabled])")
    deadline = time.monotonic() + timeout
    while not (button(page, key).count() == 1 and enabled.count() == 1):
        if time.monotonic() > deadline:
            raise AssertionError(f"the {key} button never became clickable")
        time.sleep(0.1)
    enabled.click()


def wait_until_saved(page) -> None:
    """After a save the page reruns with nothing pending: Save greys out again."""
    page.locator(".st-key-annotate_save button:visible[disabled]").wait_for(state="attached", timeout=30_000)
    wait_for_app(page)


def test_brush_save_erase_save_undo(catseg_home, tmp_path):
    photo, _ = drawn_cat(WIDTH, HEIGHT, seed=4)
    with storage.begin() as session:
        photo_id = intake.add_photo(session, encode(photo), "odd.png").id
    storage.dispose_all()

    with streamlit_server(catseg_home) as url, chromium_page() as page:
        page.goto(url)
        wait_for_app(page)
        open_from_menu(page, "Annotate")
        page.get_by_text("Paint over the cat.").wait_for(timeout=30_000)
        wait_for_app(page)
        box = canvas_box(page)
        canvas_settled(page)  # the canvas sets up its brush just after it appears
        assert not canvas_scrolls_sideways(page), "the default canvas hides part of the photo"
        # Canvas px to photo px, from what the browser shows (the canvas keeps the photo's aspect).
        scale_x, scale_y = WIDTH / box["width"], HEIGHT / box["height"]
        brush_photo = BRUSH * (scale_x * scale_y) ** 0.5

        # 1. Brush (the default tool): one horizontal stroke, then Save.
        stroke_start, stroke_end = (0.12 * box["width"], 0.3 * box["height"]), (0.88 * box["width"], 0.3 * box["height"])
        drag(page, box, stroke_start, stroke_end)
        click_when_enabled(page, "annotate_save")
        mask = wait_for_mask(photo_id, lambda m: m.any())
        wait_until_saved(page)
        assert mask.shape == (HEIGHT, WIDTH)
        x0, x1 = stroke_start[0] * scale_x, stroke_end[0] * scale_x
        row = stroke_start[1] * scale_y
        half = brush_photo / 2
        # Foreground all along the path, across the whole brush width (less the tolerance).
        columns = np.arange(int(np.ceil(x0 + TOLERANCE)), int(np.floor(x1 - TOLERANCE)) + 1)
        rows = np.arange(int(np.ceil(row - half + TOLERANCE)), int(np.floor(row + half - TOLERANCE)) + 1)
        assert mask[np.ix_(rows, columns)].min() == 255, "the stroke's path is not all foreground"
        # Background beyond the brush's reach (round caps included).
        ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
        distance = np.hypot(np.clip(xs + 0.5, x0, x1) - (xs + 0.5), ys + 0.5 - row)
        assert mask[distance > half + TOLERANCE].max() == 0, "paint landed away from the stroke"
        assert mask[distance < half - TOLERANCE].min() == 255
        painted = mask.copy()

        # 2. Eraser: a vertical stroke through the middle of the line, then Save.
        page.locator(".st-key-annotate_tool button", has_text="Eraser").click()
        # The eraser's hint is drawn in the same run that hands the canvas its new colour.
        page.get_by_text("Paint over what is not cat.").wait_for(timeout=30_000)
        wait_for_app(page)
        canvas_settled(page)  # the canvas applies its new brush before the mouse goes down
        box = canvas_box(page)
        middle_x = 0.5 * box["width"]
        drag(page, box, (middle_x, 0.1 * box["height"]), (middle_x, 0.5 * box["height"]))
        click_when_enabled(page, "annotate_save")
        cut_x = middle_x * scale_x
        erased = wait_for_mask(photo_id, lambda m: m[int(row), int(cut_x)] == 0)
        wait_until_saved(page)
        gap = np.abs(xs + 0.5 - cut_x) < half - TOLERANCE
        line = painted > 0
        assert erased[gap & line].max() == 0, "the erased part of the stroke is still there"
        away = np.abs(xs + 0.5 - cut_x) > half + TOLERANCE
        assert np.array_equal(erased[away & line], painted[away & line]), "the eraser reached too far"
        assert erased[~line].max() == 0

        # 3. Undo last save: the erased part comes back.
        click_when_enabled(page, "annotate_undo")
        restored = wait_for_mask(photo_id, lambda m: m[int(row), int(cut_x)] == 255)
        wait_for_app(page)
        assert np.array_equal(restored, painted)
        page.screenshot(path=str(tmp_path / "annotate.png"), full_page=True)

    assert (tmp_path / "annotate.png").stat().st_size > 0
    with storage.begin() as session:
        assert dataset.mask_revision_count(session, photo_id) == 1
        assert dataset.list_photos_by_ids(session, [photo_id])[0].mask_source == "painted"
