"""`python -m catseg predict | splash | evaluate` as a user runs them, in a subprocess."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import drawn_cat, encode, run_cli
from conftest import register_tiny_model, save_tiny_model, write_tutorial_folder


def assert_one_line_error(result, *words):
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], result.stderr


@pytest.fixture
def photos(tmp_path):
    """Two good photos of different sizes in a folder, and a third file that is not a photo."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, (width, height) in enumerate([(120, 90), (70, 100)]):
        (folder / f"cat{index}.jpg").write_bytes(encode(drawn_cat(width, height, seed=index)[0], "JPEG", quality=95))
    (folder / "broken.png").write_bytes(b"not a photo")
    return folder


def test_predict_writes_full_size_masks_and_reports_bad_files(catseg_home, photos, tmp_path):
    version = register_tiny_model()
    output = tmp_path / "masks"
    result = run_cli(catseg_home, "predict", "--model", str(version.id), str(photos), "--out", str(output))
    # The bad file fails the run but does not stop the others.
    assert_one_line_error(result, "broken.png")
    assert "Wrote 2 mask(s)" in result.stdout
    assert sorted(path.name for path in output.iterdir()) == ["cat0.png", "cat1.png"]
    for name, size in (("cat0.png", (120, 90)), ("cat1.png", (70, 100))):
        mask = Image.open(output / name)
        assert mask.size == size and mask.mode == "L"
        assert set(np.unique(np.asarray(mask))) == {0, 255}

    good = run_cli(catseg_home, "predict", str(photos / "cat0.jpg"), "--out", str(tmp_path / "best"))
    assert good.returncode == 0, good.stderr
    assert (tmp_path / "best" / "cat0.png").is_file()


def test_splash_effects_and_sizes(catseg_home, photos, tmp_path):
    model = save_tiny_model(tmp_path / "model")  # a folder path works without any database
    grey = run_cli(catseg_home, "splash", "--model", str(model), str(photos / "cat0.jpg"), str(tmp_path / "grey.jpg"))
    assert grey.returncode == 0, grey.stderr
    assert Image.open(tmp_path / "grey.jpg").size == (120, 90)
    cut = run_cli(catseg_home, "splash", "--model", str(model / "model.keras"), str(photos / "cat1.jpg"),
                  str(tmp_path / "cut.jpg"), "--effect", "transparent", "--threshold", "0.4", "--feather", "2")
    assert cut.returncode == 0, cut.stderr
    picture = Image.open(tmp_path / "cut.png")
    assert picture.mode == "RGBA" and picture.size == (70, 100)
    coloured = run_cli(catseg_home, "splash", "--model", str(model), str(photos / "cat0.jpg"),
                       str(tmp_path / "red.png"), "--effect", "colour", "--colour", "#ff0000")
    assert coloured.returncode == 0, coloured.stderr
    assert tuple(np.asarray(Image.open(tmp_path / "red.png"))[0, 0]) == (255, 0, 0)


def test_evaluate_json(catseg_home, tmp_path):
    register_tiny_model()
    folder = write_tutorial_folder(tmp_path / "data", 2, first_seed=20)
    result = run_cli(catseg_home, "evaluate", "--model", "best", "--data", str(folder), "--json")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    assert scores["photos"] == 2 and scores["threshold"] == 0.5
    assert (scores["views"], scores["sizes"], scores["flip"]) == ("quick", [64], True)
    full = run_cli(catseg_home, "evaluate", "--data", str(folder), "--json", "--views", "full")
    full_scores = json.loads(full.stdout.strip().splitlines()[-1])
    assert (full_scores["views"], full_scores["sizes"], full_scores["flip"]) == ("full", [64, 96], True)
    assert 0.85 < scores["iou_mean"] <= 1 and 0.85 < scores["iou_pooled"] <= 1 and 0.9 < scores["dice_mean"] <= 1
    text = run_cli(catseg_home, "evaluate", "--data", str(folder))
    assert text.returncode == 0 and "2 photos: IoU" in text.stdout


def test_errors_are_one_line_without_traceback(catseg_home, no_starter, photos, tmp_path):
    # No model version at all: say how to get one.
    assert_one_line_error(run_cli(catseg_home, "splash", str(photos / "cat0.jpg"), str(tmp_path / "o.jpg")),
                          "No trained model yet")
    assert_one_line_error(run_cli(catseg_home, "predict", "--model", "starter", str(photos), "--out", str(tmp_path)),
                          "starter model is not installed")
    assert_one_line_error(run_cli(catseg_home, "evaluate", "--model", "7", "--data", str(tmp_path / "nowhere")),
                          "no such folder")
    assert_one_line_error(run_cli(catseg_home, "splash", "--model", "nonsense", str(photos / "cat0.jpg"),
                                  str(tmp_path / "o.jpg")), "Unknown model 'nonsense'")
    assert_one_line_error(run_cli(catseg_home, "splash", "--model", "1", str(photos / "cat0.jpg"),
                                  str(tmp_path / "o.jpg"), "--colour", "reddish", "--effect", "colour"),
                          "not a '#rrggbb' hex colour")
