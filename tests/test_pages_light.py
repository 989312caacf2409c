"""Pages that draw data only stay light: no TensorFlow in the Streamlit process (open times are a bench's job)."""

import pytest

import storage
from catseg.data import intake
from conftest import drawn_cat, encode
from page_probe import probe_page


@pytest.mark.parametrize("page", ["pages/home.py", "pages/photo_gallery.py", "pages/training.py", "pages/try_photos.py"])
def test_page_opens_without_tensorflow(catseg_home, page):
    with storage.begin() as session:
        for index in range(5):
            photo, mask = drawn_cat(seed=index)
            intake.add_photo(session, encode(photo), f"{index}.png", mask=mask)
    storage.dispose_all()
    report = probe_page(catseg_home, page)
    assert report["exception"] == []
    assert not report["tensorflow"]
