"""Export a Keras network to ONNX files for ``catseg.predict.runtime``, checked against Keras on real photos.

``export_networks`` writes one file per input size with Keras' own ``model.export`` and
refuses to keep a file whose probability maps differ from Keras' by more than
``runtime.EXPORT_TOLERANCE``. ``catseg.model.versions.save_model_version`` calls it for every
new version, ``catseg.predict.predictor.export_version`` for one saved without its files.
TensorFlow is needed here, and only here of the prediction path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from catseg.predict.letterbox import prepare_input
from catseg.model.networks import at_input_size, in_precision
from catseg.predict.runtime import (
    EXPORT_TOLERANCE,
    RUNTIME,
    ArtifactProblem,
    RuntimeNetwork,
    artifact_filename,
    file_digest,
)

# Real photos (three seed-cats photos, Apache-2.0, see LICENSE there) that every export is checked on,
# besides any photos the caller adds.
CHECK_PHOTOS_DIRECTORY = Path(__file__).resolve().parent / "check_photos"

Progress = Callable[[str], None]


def check_photos() -> list[np.ndarray]:
    """The shipped check photos as RGB uint8 arrays."""
    from catseg.data.decoding import read_photo

    return [read_photo(path) for path in sorted(CHECK_PHOTOS_DIRECTORY.glob("*.jpg"))]


def _exportable(model: Any, size: int) -> Any:
    """The float32 network at `size`, with its input normalisation written as constant arithmetic.

    Keras keeps a Normalization layer's mean and variance as captured tensors, which the ONNX
    converter turns into extra graph inputs; a Rescaling layer with the same per-channel scale
    and offset computes the same map from constants.
    """
    import keras

    def constant_normalisation(layer: Any) -> Any:
        if not isinstance(layer, keras.layers.Normalization):
            return layer  # shared, weights and all
        mean = np.asarray(layer.mean, dtype=np.float64).reshape(-1)
        deviation = np.maximum(np.sqrt(np.asarray(layer.variance, dtype=np.float64).reshape(-1)),
                               keras.backend.epsilon())
        return keras.layers.Rescaling(scale=(1.0 / deviation).tolist(), offset=(-mean / deviation).tolist(),
                                      name=layer.name)

    return keras.models.clone_model(model, input_tensors=keras.Input((size, size, 3), name="photo"),
                                    clone_function=constant_normalisation)


def _largest_difference(reference: Any, network: RuntimeNetwork, photos: Sequence[np.ndarray]) -> float:
    """Largest absolute difference of the probability maps of two networks on the letterboxed photos."""
    batch = np.concatenate([prepare_input(photo, network.size)[0] for photo in photos])
    expected = np.asarray(reference.predict_on_batch(batch), dtype=np.float32)
    if not np.all(np.isfinite(expected)):
        raise ArtifactProblem("The network's own output is not a number on the check photos (its weights are "
                              "broken, as after a diverged run); it was not exported.")
    return float(np.max(np.abs(network.predict_on_batch(batch) - expected)))


def export_networks(model: Any, folder: Path | str, sizes: Iterable[int], photos: Sequence[np.ndarray] = (),
                    progress: Progress | None = None) -> dict[str, Any]:
    """Write `model` as one ONNX file per size into `folder`; returns the card's "inference" section.

    Each file is checked on the shipped check photos and `photos` against the Keras network at
    that size and replaces an older file only when it matches (ArtifactProblem otherwise).
    """
    import onnxruntime

    folder = Path(folder)
    photos = [*check_photos(), *photos]
    sizes = sorted({int(size) for size in sizes})
    base = in_precision(model, "float32")
    files, largest = {}, 0.0
    for number, size in enumerate(sizes, start=1):
        if progress is not None:
            progress(f"Exporting the {size}-pixel network for fast predictions ({number} of {len(sizes)})")
        name = artifact_filename(size)
        partial = folder / f".{name}.partial"
        try:
            exportable = _exportable(base, size)
            # Keras exports only a network that has run once.
            exportable.predict_on_batch(np.zeros((1, size, size, 3), np.float32))
            exportable.export(str(partial), format="onnx", verbose=False)
            reference = base if size == int(base.input_shape[1]) else at_input_size(base, size)
            difference = _largest_difference(reference, RuntimeNetwork(partial, size), photos)
            if not difference <= EXPORT_TOLERANCE:
                raise ArtifactProblem(
                    f"The {size}-pixel ONNX network differs from Keras by {difference:.2g} on the check photos "
                    f"(at most {EXPORT_TOLERANCE:g} is accepted); it was not saved.")
            os.replace(partial, folder / name)
        finally:
            partial.unlink(missing_ok=True)
        largest = max(largest, difference)
        files[str(size)] = {"name": name, "sha256": file_digest(folder / name)}
    return {"runtime": RUNTIME, "runtime_version": onnxruntime.__version__, "files": files,
            "check_photos": len(photos), "max_difference": largest, "tolerance": EXPORT_TOLERANCE}
