"""The Try page in a real browser: upload a photo, see original and result side by side, download."""

from __future__ import annotations

import io

import pytest
from PIL import Image

import storage
from browser_support import chromium_page, open_from_menu, streamlit_server, upload_file, wait_for_app
from conftest import drawn_cat, encode
from conftest import register_tiny_model

pytestmark = pytest.mark.browser

LOADED_IMAGES = (
    "() => { const images = [...document.querySelectorAll(\"[data-testid='stImage'] img\")];"
    " return images.length >= 2 && images.every(image => image.complete && image.naturalWidth > 0); }"
)


@pytest.mark.parametrize("trained", [True, False], ids=["own-model", "first-start-starter"])
def test_upload_shows_original_and_result(catseg_home, tmp_path, trained):
    # Without a trained model this is a first start: an empty CATSEG_HOME and the starter model.
    if trained:
        register_tiny_model()
    storage.dispose_all()
    photo_path = tmp_path / "ginger.jpg"
    photo_path.write_bytes(encode(drawn_cat(240, 180, seed=5)[0], "JPEG", quality=95))
    with streamlit_server(catseg_home) as url, chromium_page() as page:
        page.goto(url)
        wait_for_app(page)
        open_from_menu(page, "Try")
        wait_for_app(page)
        upload_file(page, photo_path, "Photos to try")
        page.wait_for_function(LOADED_IMAGES, timeout=90_000)
        wait_for_app(page)
        images = page.locator("[data-testid='stImage'] img")
        assert images.count() == 2
        widths = [images.nth(index).evaluate("image => image.naturalWidth") for index in range(2)]
        assert all(width > 0 for width in widths)
        page.screenshot(path=str(tmp_path / "try.png"), full_page=True)

        # The download is made on click, at the photo's full resolution.
        with page.expect_download(timeout=60_000) as download_info:
            page.get_by_text("Download ginger.jpg").click()
        result = Image.open(io.BytesIO(open(download_info.value.path(), "rb").read()))
        assert result.format == "JPEG" and result.size == (240, 180)
    assert (tmp_path / "try.png").stat().st_size > 0
