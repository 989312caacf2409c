"""The app starts in a real browser and the Photos page shows a stored photo."""

import pytest

import storage
from catseg.data import intake
from browser_support import chromium_page, streamlit_server, wait_for_app
from conftest import drawn_cat, encode

pytestmark = pytest.mark.browser


def test_photos_page_renders_gallery(catseg_home, tmp_path):
    with storage.begin() as session:
        photo, mask = drawn_cat(seed=3)
        intake.add_photo(session, encode(photo), "ginger.png", mask=mask)
    storage.dispose_all()
    with streamlit_server(catseg_home) as url, chromium_page() as page:
        page.goto(f"{url}/photos")
        wait_for_app(page)
        page.get_by_text("ginger.png", exact=False).wait_for(timeout=30_000)
        images = page.locator("[data-testid='stImage'] img")
        images.first.wait_for(timeout=30_000)
        assert images.count() >= 1
        page.screenshot(path=str(tmp_path / "photos.png"))
