"""Run a model version's exported networks with ONNX Runtime: predictions without TensorFlow.

Every saved model version carries one ONNX file per input size it predicts at
(``model-256.onnx``, ...), listed with their SHA-256 in the card's "inference" section
(``catseg.predict.onnx_export`` writes them). ``open_networks`` checks those files and opens one
``RuntimeNetwork`` per size; it imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

RUNTIME = "onnxruntime"
INFERENCE_SECTION = "inference"
# Largest difference of a probability map between the runtime and Keras that an export accepts.
EXPORT_TOLERANCE = 1e-3

# One network runs at a time in a process, each on all the cores: the Try and Annotate pages and a
# CLI batch share the cores instead of multiplying threads that fight over them.
_RUN_LOCK = threading.Lock()


class ArtifactProblem(ValueError):
    """A model version's runtime files are missing, damaged or out of date (the message says which)."""


def artifact_filename(size: int) -> str:
    """The file of the network that takes size x size photos."""
    return f"model-{int(size)}.onnx"


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def artifact_problem(directory: Path, card: Mapping[str, Any], sizes: Iterable[int]) -> str | None:
    """Why the runtime files of a version cannot serve `sizes`, or None when they can."""
    section = card.get(INFERENCE_SECTION)
    if not isinstance(section, Mapping) or section.get("runtime") != RUNTIME:
        return "it has no ONNX Runtime files yet (saved by an older catseg)"
    files = section.get("files")
    if not isinstance(files, Mapping):
        return "its card lists no runtime files"
    for size in sizes:
        entry = files.get(str(int(size)))
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            return f"it has no runtime file for {size}-pixel views"
        path = directory / entry["name"]
        if not path.is_file():
            return f"{entry['name']} is missing"
        if file_digest(path) != entry.get("sha256"):
            return f"{entry['name']} is damaged (its content does not match the card)"
    return None


def runtime_threads() -> int:
    """Threads for one network: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def _session_options() -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = runtime_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    # A memory plan made ahead for every tensor of the network raises the peak memory of a large
    # splash by much more than it gains in speed (docs/benchmarks.md has the figures).
    options.enable_mem_pattern = False
    # Idle worker threads sleep instead of spinning, so the web server's own threads keep their cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


class RuntimeNetwork:
    """One exported network: float32 (N, size, size, 3) photos in [0, 1] -> (N, size, size, 1) probabilities.

    It answers to ``input_shape`` and ``predict_on_batch`` like a Keras model, so
    ``catseg.predict.letterbox`` runs either.
    """

    def __init__(self, path: Path | str, size: int) -> None:
        import onnxruntime

        self.path = Path(path)
        self.size = int(size)
        try:
            self._session = onnxruntime.InferenceSession(
                str(self.path), sess_options=_session_options(), providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for unreadable files
            raise ArtifactProblem(f"{self.path} could not be opened by ONNX Runtime: {error}") from None
        self._input_name = self._session.get_inputs()[0].name
        self._output_name = self._session.get_outputs()[0].name

    @property
    def input_shape(self) -> tuple[None, int, int, int]:
        return (None, self.size, self.size, 3)

    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        with _RUN_LOCK:
            return self._session.run([self._output_name], {self._input_name: batch})[0]


def open_networks(directory: Path, card: Mapping[str, Any], sizes: Iterable[int]) -> tuple[RuntimeNetwork, ...]:
    """One RuntimeNetwork per size from a version's checked runtime files; ArtifactProblem otherwise."""
    sizes = tuple(sizes)
    problem = artifact_problem(directory, card, sizes)
    if problem is not None:
        raise ArtifactProblem(f"{directory}: {problem}.")
    files = card[INFERENCE_SECTION]["files"]
    return tuple(RuntimeNetwork(directory / files[str(size)]["name"], size) for size in sizes)
