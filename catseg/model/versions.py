"""Saved model versions: the folder with model.keras, its ONNX networks and card.json, and what it learnt.

A version folder appears whole or not at all; its card carries the configs it was trained with,
its scores, its test-time views and the list of its ONNX files (``catseg.predict.runtime``).
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Collection, Mapping, Sequence

from catseg import __version__
from catseg.model.config import ModelConfig, TrainConfig

MODEL_FILENAME = "model.keras"
CARD_FILENAME = "card.json"
CARD_FORMAT = "catseg-model-version"
CARD_FORMAT_VERSION = 1
# Beside the card: the SHA-256 content hashes (storage.dataset.content_hash) of every labelled photo
# that taught this model or the model it was fine-tuned from, one per line. A run that starts from
# the model keeps those photos out of its hold-out (catseg.train.splits.stable_split's must_teach).
LEARNT_PHOTOS_FILENAME = "learnt_photos.txt"


def _keras() -> Any:
    """Import Keras on first use so reading a card stays light."""
    import keras

    return keras


def _json_safe(value: Any) -> Any:
    """Turn numpy scalars/arrays and non-finite floats into plain JSON values."""
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON has no NaN/Infinity
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def save_model_version(
    model: Any,
    model_config: ModelConfig,
    train_config: TrainConfig,
    metrics: Mapping[str, Any],
    directory: Path | str,
    test_time_scales: Sequence[float] | None = None,
    test_time_flip: bool | None = None,
    learnt_photos: Collection[str] = (),
    quick_views: Mapping[str, Any] | None = None,
    check_photos: Sequence[Any] = (),
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write ``model.keras``, its ONNX networks and ``card.json`` into ``directory`` atomically.

    ``test_time_scales`` and ``test_time_flip`` (the full view set) and ``quick_views``, if
    given, go into the card for ``catseg.predict.predictor.Predictor`` (see ``catseg.predict.views``);
    ``learnt_photos`` (content hashes), if any, into ``learnt_photos.txt``. The network is
    exported for ONNX Runtime at every size those views use and checked against Keras on the
    shipped check photos and ``check_photos`` (RGB arrays); a mismatch saves nothing.

    The folder appears whole or not at all (``storage.files.atomic_folder``), so readers
    never see a half-written version. Raises FileExistsError if ``directory`` already exists.
    """
    from catseg.predict.onnx_export import export_networks
    from catseg.predict.views import exported_sizes
    from storage.files import atomic_folder, atomic_write

    directory = Path(directory)
    if not isinstance(model_config, ModelConfig) or not isinstance(train_config, TrainConfig):
        raise ValueError("save_model_version needs a ModelConfig and a TrainConfig.")
    keras = _keras()
    card = {
        "format": CARD_FORMAT,
        "format_version": CARD_FORMAT_VERSION,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "catseg_version": __version__,
        "keras_version": keras.__version__,
        "input": "float32 RGB in [0, 1], letterboxed to image_size (BORDER_REFLECT_101)",
        "model_config": model_config.to_dict(),
        "train_config": train_config.to_dict(),
        "metrics": _json_safe(dict(metrics)),
    }
    if test_time_scales:
        card["test_time_scales"] = [float(scale) for scale in test_time_scales]
    if test_time_flip is not None:
        card["test_time_flip"] = bool(test_time_flip)
    if quick_views:
        card["quick_views"] = {"scales": [float(scale) for scale in quick_views["scales"]],
                               "flip": bool(quick_views.get("flip", False))}
    with atomic_folder(directory) as temporary:
        model.save(temporary / MODEL_FILENAME)
        card["inference"] = export_networks(model, temporary, exported_sizes(card), check_photos, progress)
        atomic_write(temporary / CARD_FILENAME, json.dumps(card, indent=2, allow_nan=False).encode("utf-8"))
        if learnt_photos:
            atomic_write(temporary / LEARNT_PHOTOS_FILENAME, learnt_photos_text(learnt_photos).encode("ascii"))
    return directory


def learnt_photos_text(content_hashes: Collection[str]) -> str:
    """The ``learnt_photos.txt`` of a set of content hashes: sorted, one per line."""
    return "".join(f"{digest}\n" for digest in sorted(set(content_hashes)))


def read_learnt_photos(directory: Path | str) -> frozenset[str]:
    """Content hashes of the photos a saved model learnt; empty when its folder does not say
    (a model saved before catseg recorded them, or one that learnt no photo of a catseg dataset)."""
    path = Path(directory) / LEARNT_PHOTOS_FILENAME
    if not path.is_file():
        return frozenset()
    lines = [line.strip().lower() for line in path.read_text(encoding="ascii", errors="replace").splitlines()]
    learnt = frozenset(line for line in lines if line)
    damaged = next((line for line in learnt if len(line) != 64 or set(line) - set("0123456789abcdef")), None)
    if damaged is not None:
        raise ValueError(f"{path} is damaged: {damaged[:80]!r} is not a SHA-256 content hash.")
    return learnt


def read_card(directory: Path | str) -> dict[str, Any]:
    """Read a model version's ``card.json`` without loading the network."""
    directory = Path(directory)
    card_path = directory / CARD_FILENAME
    if not card_path.is_file():
        raise ValueError(f"{directory} is not a catseg model version: it has no {CARD_FILENAME}.")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{card_path} is damaged (not valid JSON): {error}") from error
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ValueError(f"{card_path} is not a catseg model card.")
    if card.get("format_version", 0) > CARD_FORMAT_VERSION:
        raise ValueError(
            f"{directory} was saved by a newer catseg (card format "
            f"{card.get('format_version')}); update catseg to load it."
        )
    return card


def load_model_version(directory: Path | str) -> tuple[Any, ModelConfig, dict[str, Any]]:
    """Load a saved version: (uncompiled model, its ModelConfig, the whole card)."""
    from catseg.model.losses import custom_objects

    directory = Path(directory)
    card = read_card(directory)
    model_path = directory / MODEL_FILENAME
    if not model_path.is_file():
        raise ValueError(f"{directory} is not a complete model version: {MODEL_FILENAME} is missing.")
    model_config = ModelConfig.from_dict(card["model_config"])
    model = _keras().models.load_model(model_path, compile=False, custom_objects=custom_objects())
    return model, model_config, card
