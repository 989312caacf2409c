"""AppTest: the Try page without a model, and with a tiny model: upload, restyle, download."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

import storage
from catseg.data import intake
from catseg.predict.predictor import Predictor
from conftest import REPOSITORY_ROOT, drawn_cat, encode
from conftest import register_tiny_model, save_tiny_model

APP = str(REPOSITORY_ROOT / "app.py")


pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture
def model_calls(monkeypatch):
    """Count how often the model really runs."""
    calls = []
    original = Predictor.probability

    def counted(self, photo):
        calls.append(photo.shape)
        return original(self, photo)

    monkeypatch.setattr(Predictor, "probability", counted)
    return calls


def open_try_page() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=90)
    app.run()
    app.switch_page("pages/try_photos.py")
    app.run()
    return app


def test_without_any_model_explains_what_comes_first(catseg_home, no_starter):
    app = open_try_page()
    assert not app.exception
    assert app.title[0].value == "Try"
    assert "No trained model yet" in app.info[0].value
    assert not app.file_uploader  # nothing to try yet


def upload_one_and_see_it_splashed(app, model_calls, stem: str, photo) -> None:
    """Upload one PNG; the model runs once and the page shows it beside its grey splash, ready to download."""
    app.file_uploader(key="try_uploads").set_value((f"{stem}.png", encode(photo), "image/png"))
    app.run()
    assert not app.exception
    assert len(model_calls) == 1
    assert [image.captions[0] for image in app.image] == ["Original", "Grey"]
    assert app.download_button(key="try_download_0").label == f"Download {stem}.jpg"
    assert app.download_button(key="try_download_0").proto.ignore_rerun, "a download must not rerun the page"


def test_upload_restyle_without_predicting_again_and_download(catseg_home, model_calls, tmp_path, monkeypatch):
    monkeypatch.setenv("CATSEG_STARTER_MODEL", str(save_tiny_model(tmp_path / "starter")))
    version = register_tiny_model()
    app = open_try_page()
    assert not app.exception
    assert app.selectbox(key="try_model").value == str(version.id)
    assert app.selectbox(key="try_model").options[-1] == "Starter cat model (comes with catseg)"
    assert app.metric[0].value == "0.900"

    upload_one_and_see_it_splashed(app, model_calls, "ginger", drawn_cat(120, 90, seed=1)[0])
    grey_picture = app.image[1].value[0]

    app.segmented_control(key="try_effect").set_value("blur").run()
    app.slider(key="try_threshold").set_value(0.7).run()
    app.slider(key="try_feather").set_value(5).run()
    app.toggle(key="try_show_mask").set_value(True).run()
    assert not app.exception
    assert len(model_calls) == 1, "restyling must reuse the cached probability map"
    assert [image.captions[0] for image in app.image] == ["Original with mask", "Blur"]
    assert app.image[1].value[0] != grey_picture

    app.segmented_control(key="try_effect").set_value("transparent").run()
    assert app.download_button(key="try_download_0").label == "Download ginger.png"

    app.segmented_control(key="try_effect").set_value("colour").run()
    app.color_picker(key="try_colour").set_value("#00ff00").run()
    assert [image.captions[0] for image in app.image][-1] == "Colour"

    app.segmented_control(key="try_effect").set_value("picture").run()
    assert "Upload a background picture" in app.info[0].value and not app.image
    app.file_uploader(key="try_background").set_value(("beach.png", encode(drawn_cat(64, 48, seed=9)[0]), "image/png"))
    app.run()
    assert not app.exception
    assert [image.captions[0] for image in app.image][-1] == "Picture"
    assert len(model_calls) == 1


def test_bad_upload_is_named_and_the_rest_still_work(catseg_home, model_calls):
    register_tiny_model()
    with storage.begin() as session:
        stored = intake.add_photo(session, encode(drawn_cat(100, 80, seed=7)[0]), "from-dataset.png")
    app = open_try_page()
    app.file_uploader(key="try_uploads").set_value([
        ("a.png", encode(drawn_cat(seed=2)[0]), "image/png"),
        ("notes.jpg", b"not a photo at all", "image/jpeg"),
    ])
    app.multiselect(key="try_dataset_photos").set_value([stored.id])
    app.run()
    assert not app.exception
    assert any("notes.jpg" in error.value for error in app.error)
    assert [header.value for header in app.subheader] == ["a.png", "from-dataset.png"]
    assert len(app.image) == 4
    assert len(model_calls) == 2
    assert app.download_button(key="try_download_1")
    assert app.download_button(key="try_download_zip").label == "Download all 2 results (.zip)"
    assert app.download_button(key="try_download_zip").proto.ignore_rerun


def test_first_start_splashes_with_the_starter_model(catseg_home, model_calls):
    """An empty CATSEG_HOME: no photos, no training, and the Try page already works."""
    app = open_try_page()
    assert not app.exception
    assert app.selectbox(key="try_model").value == "starter"
    assert app.metric[0].label == "IoU on unseen photos"
    assert any("Scores on photos it never saw" in markdown.value for markdown in app.markdown)  # the card
    upload_one_and_see_it_splashed(app, model_calls, "first", drawn_cat(160, 120, seed=3)[0])
    assert app.image[1].value[0]  # a picture was drawn


def test_a_fine_tune_below_the_starter_is_offered_but_the_starter_is_preselected(catseg_home):
    from conftest import register_fine_tune

    worse = register_fine_tune(starting_val_iou=0.80, val_iou=0.70, name="worse")
    app = open_try_page()
    assert not app.exception
    model = app.selectbox(key="try_model")
    assert model.value == "starter"
    assert f"#{worse.id} tiny (unet, IoU 0.700) · below the starter" in model.options
    assert any("ended below it on their own validation photos" in caption.value for caption in app.caption)
    model.set_value(str(worse.id)).run()
    assert not app.exception
    assert app.metric[0].label == "Validation IoU"


def test_a_splash_runs_without_tensorflow(catseg_home):
    """The Try page predicts on ONNX Runtime: after a splash with the starter, TensorFlow is not loaded."""
    from page_probe import probe_page

    with storage.begin() as session:
        stored = intake.add_photo(session, encode(drawn_cat(100, 80, seed=7)[0]), "from-dataset.png")
    storage.dispose_all()
    report = probe_page(catseg_home, "pages/try_photos.py",
                        then=f"app.multiselect(key='try_dataset_photos').set_value([{stored.id}]).run()\n")
    assert report["exception"] == []
    assert report["images"] == 2  # the photo and its splash
    assert not report["tensorflow"]
