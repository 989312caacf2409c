"""catseg.model.registry, catseg.predict.predictor and catseg.predict.evaluation: find a model version, predict, write files, score.

The "model" is a one-layer Keras network whose answer we control: it calls a pixel cat when
its red channel is high, so the orange cat of `drawn_cat` is found and the noise is not.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from catseg.model import registry
from catseg.predict.compositing import SplashSettings
from catseg.predict.evaluation import evaluate_folder
from catseg.data.masks import iou
from catseg.predict.predictor import Predictor, splash_file, write_mask
from catseg.predict.views import Views
from catseg.model.registry import NoModelYet, resolve_model
from conftest import (TINY_SIZE, drawn_cat, encode, register_fine_tune, register_tiny_model, save_tiny_model,
                      write_tutorial_folder)

# --- resolve_model -----------------------------------------------------------------------

def test_resolve_model_without_versions_says_how_to_train(catseg_home, no_starter):
    for spec in (None, "best"):
        with pytest.raises(NoModelYet, match="No trained model yet: train one on the Train page"):
            resolve_model(spec)


def test_resolve_model_finds_versions_by_best_id_and_path(catseg_home):
    first = register_tiny_model(val_iou=0.9, name="v1")
    second = register_tiny_model(val_iou=0.5, name="v2")
    assert resolve_model(None) == first.directory
    assert resolve_model(" best ") == first.directory
    assert resolve_model(str(second.id)) == second.directory
    assert resolve_model(str(second.directory)) == second.directory.resolve()
    assert resolve_model(str(second.directory / "model.keras")) == second.directory.resolve()
    with pytest.raises(ValueError, match="no model version #99"):
        resolve_model("99")


def test_resolve_model_rejects_what_is_not_a_model(catseg_home, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="not a catseg model version"):
        resolve_model(str(empty))
    with pytest.raises(ValueError, match="Unknown model 'nonsense'"):
        resolve_model("nonsense")
    with pytest.raises(ValueError, match="Empty model"):
        resolve_model("  ")


def test_resolve_model_missing_files_of_a_registered_version(catseg_home):
    import shutil

    version = register_tiny_model()
    shutil.rmtree(version.directory)
    with pytest.raises(ValueError, match="files are missing"):
        resolve_model(str(version.id))


def test_starter_model_is_the_fallback_until_a_model_is_trained(catseg_home, tmp_path, monkeypatch):
    starter = tmp_path / "starter_model"
    monkeypatch.setenv("CATSEG_STARTER_MODEL", str(starter))
    with pytest.raises(ValueError, match="The starter model is not installed"):
        resolve_model("starter")
    assert not registry.starter_model_available()
    save_tiny_model(starter)
    assert registry.starter_model_available()
    assert resolve_model("starter") == starter
    assert resolve_model(None) == starter  # nothing trained yet: the starter
    with pytest.raises(ValueError, match="No trained model yet"):
        resolve_model("best")  # "best" means the best *trained* model only
    trained = register_tiny_model(name="mine")
    assert resolve_model(None) == trained.directory


def test_a_fine_tune_that_ended_below_the_starter_does_not_replace_it(catseg_home, tmp_path, monkeypatch):
    starter = save_tiny_model(tmp_path / "starter_model")
    monkeypatch.setenv("CATSEG_STARTER_MODEL", str(starter))
    worse = register_fine_tune(starting_val_iou=0.80, val_iou=0.70, name="worse")
    assert resolve_model(None) == starter  # the user's only version lost to the starter on its own photos
    assert resolve_model("best") == worse.directory  # still reachable by name
    from_worse = register_fine_tune(starting_val_iou=0.75, val_iou=0.60, name="from-worse",
                                    initial_model=str(worse.id))
    # A start from the user's own version is not judged: that version may have trained on these photos.
    assert resolve_model(None) == from_worse.directory
    better = register_fine_tune(starting_val_iou=0.60, val_iou=0.65, name="better")
    assert resolve_model(None) == better.directory
    monkeypatch.setenv("CATSEG_STARTER_MODEL", str(tmp_path / "not-installed"))
    assert resolve_model(None) == worse.directory  # no starter to fall back on: the highest score


def test_the_shipped_starter_folder_is_the_default(monkeypatch):
    monkeypatch.delenv("CATSEG_STARTER_MODEL", raising=False)
    assert registry.starter_model_directory() == registry.SHIPPED_STARTER_DIRECTORY


def test_model_summary_reads_a_card_as_facts(tmp_path):
    import json

    from catseg.model.config import ModelConfig
    from catseg.model.versions import CARD_FILENAME
    from catseg.model.registry import TrainingSet, UnseenScore, model_summary

    plain = model_summary(save_tiny_model(tmp_path / "plain"))
    assert plain.validation_iou == pytest.approx(0.9) and plain.image_size == TINY_SIZE
    assert plain.architecture == ModelConfig().architecture
    assert plain.unseen_iou is None and plain.training_data == plain.unseen_scores == plain.limits == ()
    directory = save_tiny_model(tmp_path / "described")
    card_path = directory / CARD_FILENAME
    about = {"data": [{"name": "cats", "photos": 10, "licence": "CC0"}],
             "evaluation": [{"name": "a", "photos": 1, "iou_mean": 0.5}, {"name": "b", "photos": 3, "iou_mean": 0.9}],
             "limits": ["small cats"]}
    card_path.write_text(json.dumps({**json.loads(card_path.read_text(encoding="utf-8")), "about": about}),
                         encoding="utf-8")
    summary = model_summary(directory)
    assert summary.training_data == (TrainingSet(name="cats", photos=10, licence="CC0"),)
    assert summary.unseen_scores == (UnseenScore(name="a", photos=1, iou_mean=0.5),
                                     UnseenScore(name="b", photos=3, iou_mean=0.9))
    assert summary.unseen_iou == pytest.approx((0.5 + 3 * 0.9) / 4)  # weighted by photos
    assert summary.limits == ("small cats",)


# --- prediction and files ----------------------------------------------------------------

def test_predictor_knows_its_size_and_views(tiny_predictor, tiny_version):
    assert tiny_predictor.input_size == TINY_SIZE
    assert tiny_predictor.model_config.image_size == TINY_SIZE
    # The quick set by default: 1.25 x 64 rounds to 64, and its mirror image.
    assert tiny_predictor.views == Views((TINY_SIZE,), True) and tiny_predictor.views.count == 2
    # The full set: 1x, 1.25x, 1.5x rounded to multiples of 32 (64, 64, 96), each mirrored.
    full = Predictor(tiny_version.directory, views="full")
    assert full.views == Views((TINY_SIZE, 96), True) and full.views.count == 4
    with pytest.raises(ValueError, match="Unknown view set 'all'"):
        Predictor(tiny_version.directory, views="all")


def test_a_card_may_name_its_own_views(tmp_path):
    from catseg.model.versions import CARD_FILENAME
    from catseg.predict.views import scaled_input_sizes

    assert scaled_input_sizes(160, (1.0, 1.25, 1.5)) == (160, 192, 256)
    assert scaled_input_sizes(160, (0.8, 1.0, 1.25)) == (128, 160, 192)
    with pytest.raises(ValueError, match="test-time scale"):
        scaled_input_sizes(160, (0.0,))
    directory = save_tiny_model(tmp_path / "model")
    card_path = directory / CARD_FILENAME
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card_path.write_text(json.dumps({**card, "test_time_scales": [1.0, 0.5], "quick_views": {"scales": [1.5]}}),
                         encoding="utf-8")
    # Sizes the card's runtime files do not cover yet are exported on first use.
    assert Predictor(directory, views="full").views.sizes == (TINY_SIZE, 32)
    assert Predictor(directory).views == Views((96,), False)
    assert Predictor(directory, scales=(1.0,), flip=True).views == Views((TINY_SIZE,), True)  # explicit wins


def test_probability_is_full_resolution_and_finds_the_cat(tiny_predictor):
    photo, mask = drawn_cat(120, 90, seed=1)
    probability = tiny_predictor.probability(photo)
    assert probability.shape == (90, 120) and probability.dtype == np.float32
    assert 0.0 <= probability.min() and probability.max() <= 1.0
    assert iou(probability >= 0.5, mask) > 0.85


def test_splash_file_grey_keeps_the_cat_and_greys_the_rest(tiny_predictor, tmp_path):
    photo, mask = drawn_cat(120, 90, seed=2)
    source = tmp_path / "cat.png"
    source.write_bytes(encode(photo))
    written = splash_file(tiny_predictor, source, tmp_path / "out" / "cat.png", SplashSettings(effect="grey"))
    assert written == tmp_path / "out" / "cat.png"
    result = np.asarray(Image.open(written))
    assert result.shape == photo.shape
    # Deep inside the cat the colour survives; far outside it the picture is grey.
    inside = cv2.erode(mask, np.ones((7, 7), np.uint8)) > 0
    outside = cv2.dilate(mask, np.ones((7, 7), np.uint8)) == 0
    assert np.array_equal(result[inside], photo[inside])
    assert np.all(result[outside][:, 0] == result[outside][:, 1])
    assert np.all(result[outside][:, 1] == result[outside][:, 2])


def test_transparent_forces_png_and_jpeg_follows_the_suffix(tiny_predictor, tmp_path):
    photo, _ = drawn_cat(120, 90, seed=3)
    source = tmp_path / "cat.jpg"
    source.write_bytes(encode(photo, "JPEG", quality=95))
    written = splash_file(tiny_predictor, source, tmp_path / "cut.jpg", SplashSettings(effect="transparent"))
    assert written.suffix == ".png"
    assert Image.open(written).mode == "RGBA"
    jpeg = splash_file(tiny_predictor, source, tmp_path / "blur.jpeg", SplashSettings(effect="blur", feather_px=3))
    assert Image.open(jpeg).format == "JPEG" and Image.open(jpeg).size == (120, 90)
    with pytest.raises(ValueError, match=r"\.jpg, \.jpeg or \.png"):
        splash_file(tiny_predictor, source, tmp_path / "x.gif", SplashSettings())


def test_exif_rotated_jpeg_comes_out_upright_and_aligned(tiny_predictor, tmp_path):
    upright, mask = drawn_cat(160, 96, seed=4)
    # Store the pixels turned a quarter anticlockwise with EXIF orientation 6 ("rotate 90° clockwise to view").
    stored = np.ascontiguousarray(np.rot90(upright, k=1))
    exif = Image.Exif()
    exif[0x0112] = 6
    source = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(source, format="JPEG", quality=95, exif=exif.tobytes())

    written = splash_file(tiny_predictor, source, tmp_path / "phone.png", SplashSettings(effect="transparent"))
    alpha = np.asarray(Image.open(written))[:, :, 3]
    assert alpha.shape == mask.shape == (96, 160)
    assert iou(alpha >= 128, mask) > 0.85
    mask_file = write_mask(tiny_predictor, source, tmp_path / "masks" / "phone.png")
    written_mask = np.asarray(Image.open(mask_file))
    assert written_mask.shape == (96, 160) and set(np.unique(written_mask)) <= {0, 255}
    assert iou(written_mask, mask) > 0.85


def test_rgba_and_greyscale_photos_work(tiny_predictor, tmp_path):
    photo, mask = drawn_cat(120, 90, seed=5)
    rgba = np.dstack([photo, np.full(mask.shape, 255, np.uint8)])
    (tmp_path / "rgba.png").write_bytes(encode(rgba))
    (tmp_path / "grey.png").write_bytes(encode(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)))
    rgba_mask = write_mask(tiny_predictor, tmp_path / "rgba.png", tmp_path / "rgba-mask.png")
    assert iou(np.asarray(Image.open(rgba_mask)), mask) > 0.85
    grey_result = splash_file(tiny_predictor, tmp_path / "grey.png", tmp_path / "grey-out.jpg", SplashSettings())
    assert Image.open(grey_result).size == (120, 90) and Image.open(grey_result).mode == "RGB"


def test_non_image_gives_a_clear_error_naming_the_file(tiny_predictor, tmp_path):
    (tmp_path / "notes.jpg").write_bytes(b"this is not a photo")
    with pytest.raises(ValueError, match="notes.jpg: not a photo we can read"):
        splash_file(tiny_predictor, tmp_path / "notes.jpg", tmp_path / "out.jpg", SplashSettings())
    with pytest.raises(ValueError, match="missing.jpg: no such file"):
        write_mask(tiny_predictor, tmp_path / "missing.jpg", tmp_path / "m.png")
    assert not (tmp_path / "out.jpg").exists()


def test_evaluate_folder_scores_a_tutorial_layout(tiny_predictor, tmp_path):
    folder = write_tutorial_folder(tmp_path / "data", 3)
    result = evaluate_folder(tiny_predictor, folder)
    assert result.photos == 3
    assert 0.85 < result.iou_mean <= 1.0 and 0.85 < result.iou_pooled <= 1.0 and result.dice_mean >= result.iou_mean
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no labelled photos"):
        evaluate_folder(tiny_predictor, empty)
