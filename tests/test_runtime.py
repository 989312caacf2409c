"""Predictions through ONNX Runtime: the export round trip, damaged or missing files, and no TensorFlow."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

from catseg.predict import onnx_export, predictor, runtime
from catseg.model.versions import CARD_FILENAME, load_model_version
from catseg.predict.predictor import Predictor
from catseg.predict.runtime import ArtifactProblem
from conftest import REPOSITORY_ROOT, TINY_SIZE, drawn_cat, encode, run_python_without_tensorflow, save_tiny_model


def card_of(directory) -> dict:
    return json.loads((directory / CARD_FILENAME).read_text(encoding="utf-8"))


def test_a_saved_version_carries_checked_runtime_files(tmp_path):
    directory = save_tiny_model(tmp_path / "model")
    section = card_of(directory)["inference"]
    assert section["runtime"] == "onnxruntime" and set(section["files"]) == {"64", "96"}
    assert section["check_photos"] == 3 and section["max_difference"] <= section["tolerance"] == 1e-3
    for entry in section["files"].values():
        assert runtime.file_digest(directory / entry["name"]) == entry["sha256"]
    assert not list(directory.glob(".*partial"))


def test_the_runtime_matches_keras_at_every_exported_size(tmp_path):
    from catseg.predict.letterbox import predict_probability_at_scales
    from catseg.model.networks import at_input_size

    directory = save_tiny_model(tmp_path / "model")
    model, _, card = load_model_version(directory)
    photo, _ = drawn_cat(130, 90, seed=3)
    networks = runtime.open_networks(directory, card, (64, 96))
    for network in networks:
        keras_network = model if network.size == TINY_SIZE else at_input_size(model, network.size)
        expected = predict_probability_at_scales([keras_network], photo, flip=True)
        assert np.abs(predict_probability_at_scales([network], photo, flip=True) - expected).max() <= 1e-3


def test_an_export_that_does_not_match_keras_is_refused_and_leaves_nothing(tmp_path, monkeypatch):
    directory = save_tiny_model(tmp_path / "model")
    model, _, _ = load_model_version(directory)
    original = runtime.RuntimeNetwork.predict_on_batch
    monkeypatch.setattr(runtime.RuntimeNetwork, "predict_on_batch",
                        lambda self, batch: original(self, batch) + np.float32(0.01))
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(ArtifactProblem, match="differs from Keras by 0.01 .* it was not saved"):
        onnx_export.export_networks(model, target, [TINY_SIZE])
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("damage", ["missing", "damaged", "old card"])
def test_a_missing_or_damaged_file_is_exported_again_once_with_a_message(tmp_path, damage):
    directory = save_tiny_model(tmp_path / "model")
    card = card_of(directory)
    first = directory / card["inference"]["files"]["64"]["name"]
    if damage == "missing":
        first.unlink()
    elif damage == "damaged":
        first.write_bytes(first.read_bytes()[:1000])
    else:  # a version saved before catseg had runtime files
        for entry in card["inference"]["files"].values():
            (directory / entry["name"]).unlink()
        del card["inference"]
        (directory / CARD_FILENAME).write_text(json.dumps(card), encoding="utf-8")
    messages: list[str] = []
    predictor = Predictor(directory, progress=messages.append)
    assert messages and "Preparing this model for fast predictions" in messages[0]
    assert any("Exporting the 64-pixel network" in message for message in messages)
    assert runtime.artifact_problem(directory, card_of(directory), (64, 96)) is None
    photo, mask = drawn_cat(seed=2)
    assert ((predictor.probability(photo) >= 0.5) == (mask > 0)).mean() > 0.95
    again: list[str] = []
    Predictor(directory, progress=again.append)
    assert again == []  # exported once: the next load runs the files as they are


def test_a_version_that_cannot_be_exported_again_says_why(tmp_path, monkeypatch):
    directory = save_tiny_model(tmp_path / "model")
    (directory / "model-64.onnx").write_bytes(b"not a network")

    def read_only(*arguments, **keywords):
        raise PermissionError(13, "Permission denied", str(directory))

    monkeypatch.setattr(predictor, "export_version", read_only)
    with pytest.raises(ArtifactProblem, match=r"model-64.onnx is damaged .* could not be exported again here"):
        Predictor(directory)


def test_predictions_never_import_tensorflow(tmp_path):
    """The CLI's predict, splash and evaluate run on ONNX Runtime alone."""
    directory = save_tiny_model(tmp_path / "model")
    photos = tmp_path / "photos"
    (photos / "input").mkdir(parents=True)
    (photos / "mask").mkdir()
    photo, mask = drawn_cat(seed=4)
    (photos / "input" / "cat.1.jpg").write_bytes(encode(photo, "JPEG"))
    (photos / "mask" / "mask_cat.1.jpg").write_bytes(encode(mask))
    code = (
        "from catseg.cli import main\n"
        f"model, photos, out = {str(directory)!r}, {str(photos)!r}, {str(tmp_path)!r}\n"
        "assert main(['predict', '--model', model, photos + '/input', '--out', out + '/masks']) == 0\n"
        "assert main(['splash', '--model', model, photos + '/input/cat.1.jpg', out + '/splash.jpg']) == 0\n"
        "assert main(['evaluate', '--model', model, '--data', photos, '--views', 'full']) == 0\n"
    )
    result = run_python_without_tensorflow(tmp_path / "home", code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "masks" / "cat.1.png").is_file() and (tmp_path / "splash.jpg").is_file()


@pytest.mark.parametrize("name", ["starter_model", "pretrained_u2netp"])
def test_the_shipped_models_carry_their_runtime_files(name):
    from catseg.predict.views import exported_sizes

    directory = REPOSITORY_ROOT / "catseg" / name
    card = card_of(directory)
    assert runtime.artifact_problem(directory, card, exported_sizes(card)) is None
    assert card["inference"]["max_difference"] <= 1e-3


def test_pages_share_one_predictor_per_model_and_the_warm_up_loads_it_once(tmp_path, monkeypatch):
    monkeypatch.setattr(predictor, "_SHARED", {})
    monkeypatch.setattr(predictor, "_warm_up_started", False)
    first, second = save_tiny_model(tmp_path / "first"), save_tiny_model(tmp_path / "second")
    asked = []

    def find_first():
        asked.append(first)
        return first

    assert predictor.warm_up_in_background(find_first)
    assert not predictor.warm_up_in_background(find_first)  # once per process
    for thread in threading.enumerate():
        if thread.name == "catseg-model-warm-up":
            thread.join(60)
    assert asked == [first] and len(predictor._SHARED) == 1
    shared = predictor.shared_predictor(first)
    assert list(predictor._SHARED.values()) == [shared]  # the warm-up's predictor, not a second load
    assert predictor.shared_predictor(str(first)) is shared
    assert predictor.shared_predictor(second) is not shared
    assert predictor.shared_predictor(first) is shared  # two models stay loaded
    # A card written anew (a re-export) loads the model afresh.
    card_path = first / CARD_FILENAME
    os.utime(card_path, ns=(card_path.stat().st_atime_ns, card_path.stat().st_mtime_ns + 1_000_000))
    assert predictor.shared_predictor(first) is not shared
