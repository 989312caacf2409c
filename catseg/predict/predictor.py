"""Apply a model version to photos: load it once, predict, colour-splash, and encode or write the results.

Used by the Try page, the Annotate page's pre-fill, the CLI (`predict`, `splash`, `evaluate`) and
the benches; `catseg.model.registry` finds the model folder first. Photos are read through
`catseg.data.decoding.decode_photo`, the one intake path, so EXIF orientation and colour conversion are
the same as in the dataset. The networks run on ONNX Runtime (`catseg.predict.runtime`), not TensorFlow.
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from catseg.predict.compositing import SplashSettings, alpha_from_probability, check_threshold, composite, mask_from_alpha
from catseg.data import decoding
from catseg.model.config import ModelConfig
from catseg.predict.letterbox import predict_probability_at_scales
from catseg.model.versions import read_card
from catseg.predict.runtime import INFERENCE_SECTION, RUNTIME, ArtifactProblem, open_networks
from catseg.predict.views import Views, card_views, exported_sizes, scaled_input_sizes
from storage.files import atomic_write

OUTPUT_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
JPEG_QUALITY = 92

Progress = Callable[[str], None]


class Predictor:
    """A model version's networks on ONNX Runtime, turning RGB photos into full-resolution cat probabilities.

    Load once, call `probability` many times. TensorFlow is not needed, except once for a version
    without its runtime files (saved by an older catseg, or with a file since damaged): it is
    exported then, and `progress` is told.
    """

    def __init__(self, directory: Path | str, views: str = "quick", scales: Iterable[float] | None = None,
                 flip: bool | None = None, progress: Progress | None = None) -> None:
        """`views`: "quick" (the default, a few network runs per photo) or "full" (the card's
        test-time views, which score best); `scales` and `flip` replace the chosen set's."""
        self.directory = Path(directory)
        self.card = read_card(self.directory)
        self.model_config = ModelConfig.from_dict(self.card["model_config"])
        chosen = card_views(self.card, views)
        if scales is not None:
            chosen = Views(scaled_input_sizes(self.model_config.image_size, scales), chosen.flip)
        if flip is not None:
            chosen = Views(chosen.sizes, bool(flip))
        self.views = chosen
        try:
            self._networks = open_networks(self.directory, self.card, chosen.sizes)
        except ArtifactProblem as problem:
            self._networks = self._export_again(problem, progress)

    def _export_again(self, problem: ArtifactProblem, progress: Progress | None) -> tuple:
        """Export the version's networks once more (TensorFlow), then open them."""
        if progress is not None:
            progress("Preparing this model for fast predictions (once for each model version)")
        try:
            self.card = export_version(self.directory, {*exported_sizes(self.card), *self.views.sizes}, progress)
        except ImportError as error:
            raise ArtifactProblem(f"{problem} Exporting it again needs TensorFlow ({error}).") from None
        except OSError as error:
            raise ArtifactProblem(f"{problem} It could not be exported again here: {error}") from None
        return open_networks(self.directory, self.card, self.views.sizes)

    @property
    def input_size(self) -> int:
        """Side of the network's own square input; photos are letterboxed as in training."""
        return self.model_config.image_size

    def warm_up(self) -> None:
        """Run each network once on a blank photo: the runtime's first run prepares its threads and memory."""
        for network in self._networks:
            network.predict_on_batch(np.zeros((2 if self.views.flip else 1, *network.input_shape[1:]), np.float32))

    def probability(self, photo: np.ndarray) -> np.ndarray:
        """Cat probability (H, W) float32 in [0, 1] at the photo's full resolution."""
        # Letterboxed like the training pipeline (catseg.predict.letterbox.letterbox), so the networks see
        # undistorted cats; every view's map is averaged (see catseg.predict.views).
        return predict_probability_at_scales(self._networks, photo, flip=self.views.flip)


def export_version(directory: Path | str, sizes: Iterable[int], progress: Progress | None = None) -> dict[str, Any]:
    """Export a saved version's network at `sizes` into its folder and record the files in its card.

    Files already listed for other sizes stay listed. Returns the new card. The card is
    replaced atomically, so a reader sees the old card or the new one.
    """
    from catseg.model.versions import CARD_FILENAME, load_model_version
    from catseg.predict.onnx_export import export_networks

    directory = Path(directory)
    model, _, card = load_model_version(directory)
    section = export_networks(model, directory, sizes, progress=progress)
    previous = card.get(INFERENCE_SECTION)
    if isinstance(previous, dict) and previous.get("runtime") == RUNTIME and isinstance(previous.get("files"), dict):
        kept = {size: entry for size, entry in previous["files"].items()
                if size not in section["files"] and isinstance(entry, dict)
                and (directory / str(entry.get("name"))).is_file()}
        section["files"] = {**kept, **section["files"]}
    card = {**read_card(directory), INFERENCE_SECTION: section}
    atomic_write(directory / CARD_FILENAME, json.dumps(card, indent=2, allow_nan=False).encode("utf-8"))
    return card


# --- one loaded model per process ---------------------------------------------------------

_SHARED_LOCK = threading.Lock()
_SHARED: dict[tuple[str, str, int], Predictor] = {}
# A model in use stays loaded; two are enough for the Try page's comparison and the Annotate page.
_SHARED_MAX = 2
_warm_up_started = False


def shared_predictor(directory: Path | str, views: str = "quick", progress: Progress | None = None) -> Predictor:
    """The process's one loaded Predictor for a model folder (Try and Annotate share it).

    Loading waits for a load of the same model already under way (the start-up warm-up), so
    a model is never loaded twice at once. A re-exported card (a newer mtime) loads afresh.
    """
    directory = Path(directory).resolve()
    from catseg.model.versions import CARD_FILENAME

    key = (str(directory), views, (directory / CARD_FILENAME).stat().st_mtime_ns)
    with _SHARED_LOCK:
        predictor = _SHARED.get(key)
        if predictor is None:
            predictor = Predictor(directory, views=views, progress=progress)
            while len(_SHARED) >= _SHARED_MAX:
                _SHARED.pop(next(iter(_SHARED)))
            _SHARED[key] = predictor
        else:
            _SHARED[key] = _SHARED.pop(key)  # most recently used last
        return predictor


def warm_up_in_background(find_directory: Callable[[], Path]) -> bool:
    """Load the model `find_directory()` names in a background thread, once per process.

    The first prediction then finds it loaded and its networks initialised. Returns True when
    this call started the thread. A failure is left for the page that needs the model to report.
    """
    global _warm_up_started
    with _SHARED_LOCK:
        if _warm_up_started:
            return False
        _warm_up_started = True

    def warm_up() -> None:
        try:
            shared_predictor(find_directory()).warm_up()
        except Exception:  # noqa: BLE001 - the page that uses the model reports what went wrong
            pass

    # Not a daemon: a process that ends while ONNX Runtime is loading or running aborts in C++, so
    # an exit waits the few seconds the warm-up takes.
    threading.Thread(target=warm_up, name="catseg-model-warm-up", daemon=False).start()
    return True


def splash(
    photo: np.ndarray, probability: np.ndarray, settings: SplashSettings, background: np.ndarray | None = None
) -> np.ndarray:
    """The colour-splash picture of a photo from its probability map (RGBA for "transparent")."""
    alpha = alpha_from_probability(probability, settings.threshold, settings.feather_px)
    return composite(photo, alpha, settings, background)


# --- probability maps kept for restyling -----------------------------------------------

def probability_to_uint8(probability: np.ndarray) -> np.ndarray:
    """Store a probability map in a quarter of the memory (steps of 1/255; thresholds barely move)."""
    return cv2.convertScaleAbs(probability, alpha=255.0)


def probability_from_uint8(stored: np.ndarray) -> np.ndarray:
    """The probability map back from `probability_to_uint8`'s bytes, as float32 in [0, 1]."""
    return stored.astype(np.float32) * np.float32(1.0 / 255.0)


def shrink_for_preview(photo: np.ndarray, stored_probability: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(photo, uint8 probability, scale) at most max_side pixels long, so restyling stays fast on big photos."""
    height, width = photo.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale == 1.0:
        return photo, stored_probability, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return (
        cv2.resize(photo, size, interpolation=cv2.INTER_AREA),
        cv2.resize(stored_probability, size, interpolation=cv2.INTER_AREA),
        scale,
    )


# --- files -----------------------------------------------------------------------------

def read_photo(path: Path | str) -> np.ndarray:
    """Read a photo file as upright RGB uint8 (EXIF applied); ValueError naming the file if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    return decoding.read_photo(path)


def _output_format(path: Path) -> str:
    format_name = OUTPUT_FORMATS.get(path.suffix.lower())
    if format_name is None:
        raise ValueError(f"{path}: write the result as .jpg, .jpeg or .png")
    return format_name


def encode_picture(picture: np.ndarray, format_name: str, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG or PNG bytes of an RGB/RGBA/grey uint8 array (OpenCV: faster than Pillow on big photos)."""
    if picture.ndim == 3:
        conversion = cv2.COLOR_RGBA2BGRA if picture.shape[2] == 4 else cv2.COLOR_RGB2BGR
        picture = cv2.cvtColor(picture, conversion)
    if format_name == "JPEG":
        if picture.ndim == 3 and picture.shape[2] == 4:
            raise ValueError("a transparent result can only be written as PNG")
        parameters = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        extension = ".jpg"
    else:
        # A light compression level: PNG files a little larger, written several times faster.
        parameters = [cv2.IMWRITE_PNG_COMPRESSION, 1]
        extension = ".png"
    written, buffer = cv2.imencode(extension, picture, parameters)
    if not written:
        raise ValueError(f"could not encode the picture as {format_name}")
    return buffer.tobytes()


def encode_result(picture: np.ndarray) -> tuple[bytes, str, str]:
    """(bytes, suffix, mime type) for a result: PNG when it has an alpha channel, else JPEG."""
    if picture.ndim == 3 and picture.shape[2] == 4:
        return encode_picture(picture, "PNG"), ".png", "image/png"
    return encode_picture(picture, "JPEG"), ".jpg", "image/jpeg"


def splash_file(
    predictor: Predictor,
    input_path: Path | str,
    output_path: Path | str,
    settings: SplashSettings,
    background: np.ndarray | None = None,
) -> Path:
    """Read a photo, predict, composite and write the result; returns the path written.

    The format follows the output suffix (.jpg/.jpeg or .png); the "transparent" effect
    always writes PNG (the suffix is changed to .png).
    """
    output_path = Path(output_path)
    if settings.effect == "transparent":
        output_path = output_path.with_suffix(".png")
    format_name = _output_format(output_path)
    if settings.effect == "picture" and background is None:
        raise ValueError("the 'picture' effect needs a background picture")
    photo = read_photo(input_path)
    picture = splash(photo, predictor.probability(photo), settings, background)
    atomic_write(output_path, encode_picture(picture, format_name))
    return output_path


def write_mask(predictor: Predictor, input_path: Path | str, output_path: Path | str, threshold: float = 0.5) -> Path:
    """Predict a photo's mask and write it as a full-resolution one-channel PNG (0/255)."""
    output_path = Path(output_path)
    if output_path.suffix.lower() != ".png":
        raise ValueError(f"{output_path}: masks are written as .png (lossless)")
    check_threshold(threshold)
    photo = read_photo(input_path)
    mask = mask_from_alpha(predictor.probability(photo), threshold)
    atomic_write(output_path, encode_picture(mask, "PNG"))
    return output_path


def zip_results(results: Iterable[tuple[str, bytes]]) -> bytes:
    """One .zip of (file name, bytes) results; JPEG/PNG are already compressed, so stored as is."""
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in results:
            stem, dot, suffix = name.rpartition(".")
            unique, counter = name, 1
            while unique in used:  # two results may share a name
                counter += 1
                unique = f"{stem}-{counter}{dot}{suffix}"
            used.add(unique)
            archive.writestr(unique, data)
    return buffer.getvalue()
