"""AppTest: the Photos page adds uploads, reports every file, shows them, and deletes after confirmation."""

import io
import zipfile

from PIL import Image
from streamlit.testing.v1 import AppTest

import storage
from catseg.data import intake
from storage import dataset
from conftest import REPOSITORY_ROOT, drawn_cat, encode

APP = str(REPOSITORY_ROOT / "app.py")


def open_page(page: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    app.switch_page(page)
    app.run()
    return app


def test_home_shows_live_counts(catseg_home):
    with storage.begin() as session:
        intake.add_photo(session, encode(drawn_cat()[0]), "a.png")
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    assert [m.value for m in app.metric][:2] == ["1", "0 of 1"]


def test_upload_then_delete(catseg_home):
    app = open_page("pages/photo_gallery.py")
    assert not app.exception
    assert app.metric[0].value == "0"
    photo_a, _ = drawn_cat(seed=1)
    photo_b, _ = drawn_cat(seed=2)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("more/c.png", encode(drawn_cat(seed=3)[0]))
    app.file_uploader(key="dataset_uploads").set_value([
        ("a.png", encode(photo_a), "image/png"),
        ("b.jpg", encode(photo_b, "JPEG"), "image/jpeg"),
        ("notes.jpg", b"not a photo", "image/jpeg"),
        ("more.zip", buffer.getvalue(), "application/zip"),
    ])
    app.run()
    app.button(key="dataset_add").click().run()
    assert not app.exception
    assert app.metric[0].value == "3"
    assert "**3** added" in app.warning[0].value and "**1** rejected" in app.warning[0].value
    assert any("notes.jpg" in m.value for m in app.markdown)

    with storage.begin() as session:
        first = dataset.list_photos(session)[0].id
    app.checkbox(key=f"dataset_select_{first}").check().run()
    app.button(key="dataset_delete").click().run()
    assert "cannot be undone" in app.warning[-1].value
    app.button(key="dataset_delete_yes").click().run()
    assert not app.exception
    assert app.metric[0].value == "2"
    with storage.begin() as session:
        assert first not in dataset.photo_ids(session)


def test_the_report_names_skipped_files(catseg_home):
    frames = [Image.new("RGB", (40, 30), colour) for colour in ("red", "blue")]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], loop=0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cats/good.png", encode(drawn_cat(seed=4)[0]))
        archive.writestr("cats/drawing.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>")
        archive.writestr("cats/anim.gif", gif.getvalue())
        archive.writestr("cats/.DS_Store", b"\0\0\0\1Bud1")
        archive.writestr("cats/notes.txt", "taken in the garden")
        archive.writestr("cats/corrupt.jpg", encode(drawn_cat(seed=5)[0], "JPEG")[:150])
    app = open_page("pages/photo_gallery.py")
    app.file_uploader(key="dataset_uploads").set_value([("cats.zip", buffer.getvalue(), "application/zip")])
    app.run()
    app.button(key="dataset_add").click().run()
    assert not app.exception
    summary = app.warning[0].value
    assert summary.startswith("6 files: **1** added") and "**1** rejected" in summary and "**4** skipped" in summary
    skipped = "\n".join(m.value for m in app.markdown)
    assert "`cats.zip/cats/drawing.svg`: not a photo format: .svg" in skipped
    assert "`cats.zip/cats/anim.gif`: animated GIF" in skipped
    assert "`cats.zip/cats/.DS_Store`: hidden file" in skipped
    assert "`cats.zip/cats/notes.txt`: not a photo format: .txt" in skipped
    assert any("cats.zip/cats/corrupt.jpg" in m.value for m in app.markdown)
    assert any(expander.label.startswith("Skipped") for expander in app.expander)


def test_cancel_keeps_photos(catseg_home):
    with storage.begin() as session:
        photo_id = intake.add_photo(session, encode(drawn_cat()[0]), "a.png").id
    app = open_page("pages/photo_gallery.py")
    app.checkbox(key=f"dataset_select_{photo_id}").check().run()
    app.button(key="dataset_delete").click().run()
    app.button(key="dataset_delete_no").click().run()
    with storage.begin() as session:
        assert dataset.counts(session).images == 1


def test_filter_unlabelled(catseg_home):
    with storage.begin() as session:
        intake.add_photo(session, encode(drawn_cat(seed=1)[0]), "plain.png")
        photo, mask = drawn_cat(seed=2)
        intake.add_photo(session, encode(photo), "masked.png", mask=mask)
    app = open_page("pages/photo_gallery.py")
    assert len(app.checkbox) == 2
    app.session_state["dataset_filter"] = "unlabelled"
    app.run()
    assert [c.label.split(" ")[1] for c in app.checkbox] == ["plain.png"]
