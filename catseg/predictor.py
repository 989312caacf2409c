"""Apply a saved model version to photos: find it, load it once, predict, colour-splash, write files.

Used by the Try page, the CLI (`predict`, `splash`, `evaluate`) and the benches. Photos are
read through `catseg.images.decode_photo`, the one intake path, so EXIF orientation and
colour conversion are the same as in the dataset. TensorFlow is imported only when a model
is loaded.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from catseg.compositing import SplashSettings, alpha_from_probability, composite, mask_from_alpha
from catseg.images import decode_photo
from catseg.inference import model_input_size, predict_probability_at_scales
from catseg.models import CARD_FILENAME, MODEL_FILENAME

# The starter model ships inside the package (see catseg/starter_model/README.md, its model card).
SHIPPED_STARTER_DIRECTORY = Path(__file__).resolve().parent / "starter_model"
# Points catseg at another starter folder (a deployment's own, or a missing one to run without it).
STARTER_ENVIRONMENT_VARIABLE = "CATSEG_STARTER_MODEL"
STARTER_LABEL = "Starter cat model (comes with catseg)"
# U^2-Net-p with its authors' salient-object weights, converted by scripts/import_u2netp.py (see its
# NOTICE): the starter's own starting point, offered on the Train page to fine-tune from.
PRETRAINED_DIRECTORY = Path(__file__).resolve().parent / "pretrained_u2netp"
PRETRAINED_LABEL = "Pretrained U^2-Net-p (not yet shown cats)"
NO_MODEL_MESSAGE = "No trained model yet: train one on the Train page or with `python -m catseg train`"
OUTPUT_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
JPEG_QUALITY = 92
# Test-time scales: the network also runs at 1.25x and 1.5x its input size (rounded to a
# multiple of 32) and the maps are averaged. Picked on the starter's own training hold-out
# (bench/inference_scales.py --run-id 3), then checked on the unseen sets. A model card may
# name its own ("test_time_scales"), picked the same way for that model.
TEST_TIME_SCALES = (1.0, 1.25, 1.5)


def scaled_input_sizes(size: int, scales: Iterable[float]) -> tuple[int, ...]:
    """The distinct input sizes for `scales` x `size`, multiples of 32, the model's own first."""
    sizes = [size]
    for scale in scales:
        if not (isinstance(scale, (int, float)) and 0 < scale <= 4):
            raise ValueError(f"A test-time scale must be a number above 0 and at most 4, got {scale!r}.")
        scaled_size = max(32, round(size * scale / 32) * 32)
        if scaled_size not in sizes:
            sizes.append(scaled_size)
    return tuple(sizes)


def _is_model_directory(directory: Path) -> bool:
    return (directory / MODEL_FILENAME).is_file() and (directory / CARD_FILENAME).is_file()


def _version_directory(version_id: int | str) -> Path:
    """The folder of model version `version_id`, or of the "best" or "recommended" one, from the database.

    "recommended" leaves out fine-tunes that ended below the starter model where one is
    installed (storage.runs.recommended_model_version).
    """
    import storage
    from storage import runs

    with storage.begin() as session:
        if version_id == "best":
            version = runs.best_model_version(session)
        elif version_id == "recommended":
            version = runs.recommended_model_version(session, starter_model_available())
        else:
            version = runs.get_model_version(session, int(version_id))
    if version is None:
        raise ValueError(NO_MODEL_MESSAGE)
    if not _is_model_directory(version.directory):
        raise ValueError(
            f"Model version #{version.id} is registered but its files are missing from {version.directory}; "
            "pick another version or train again."
        )
    return version.directory


def starter_model_directory() -> Path:
    """Where the starter model lives: $CATSEG_STARTER_MODEL, else the folder shipped in the package."""
    override = os.environ.get(STARTER_ENVIRONMENT_VARIABLE, "").strip()
    return Path(override).expanduser() if override else SHIPPED_STARTER_DIRECTORY


def starter_model_available() -> bool:
    """True when the starter model ships with this installation."""
    return _is_model_directory(starter_model_directory())


def pretrained_model_available() -> bool:
    """True when the converted U^2-Net-p weights ship with this installation."""
    return _is_model_directory(PRETRAINED_DIRECTORY)


def resolve_model(spec: str | None) -> Path:
    """Turn a model spec into a model-version folder holding model.keras and card.json.

    None: the best trained version, or the starter model while none is trained (or while
    every trained version is a fine-tune that ended below it); "best": the best trained
    version only; digits: that version id; "starter": the model shipped with catseg;
    "pretrained": U^2-Net-p's salient-object weights before any cat training; anything else: a path to a version folder or its .keras file.
    """
    if spec is None:
        try:
            return _version_directory("recommended")
        except ValueError as error:
            if str(error) != NO_MODEL_MESSAGE or not starter_model_available():
                raise
            return starter_model_directory()
    text = str(spec).strip()
    if text.lower() == "best":
        return _version_directory("best")
    if text.isdigit():
        return _version_directory(int(text))
    if text.lower() == "starter":
        directory = starter_model_directory()
        if not _is_model_directory(directory):
            raise ValueError(
                f"The starter model is not installed (no {MODEL_FILENAME} and {CARD_FILENAME} in {directory}); "
                "train a model (Train page or `python -m catseg train`) and use its version id, or 'best'"
            )
        return directory
    if text.lower() == "pretrained":
        if not _is_model_directory(PRETRAINED_DIRECTORY):
            raise ValueError(f"The pretrained U^2-Net-p is not installed (no {MODEL_FILENAME} and {CARD_FILENAME} "
                             f"in {PRETRAINED_DIRECTORY}); scripts/import_u2netp.py makes it")
        return PRETRAINED_DIRECTORY
    if not text:
        raise ValueError("Empty model: give a version id, 'best', 'starter', 'pretrained' or a model folder")
    path = Path(text).expanduser()
    if path.is_file() and path.suffix == ".keras":
        path = path.parent
    if path.is_dir():
        if _is_model_directory(path):
            return path.resolve()
        raise ValueError(
            f"{text} is not a catseg model version: the folder needs {MODEL_FILENAME} and {CARD_FILENAME}"
        )
    raise ValueError(
        f"Unknown model {text!r}: give a version id (e.g. 3), 'best', 'starter', 'pretrained', "
        f"or the path of a model folder holding {MODEL_FILENAME} and {CARD_FILENAME}"
    )


@dataclass(frozen=True)
class ModelSummary:
    """What a page shows about a model version, read from its card without loading the network.

    validation_iou: best validation IoU during training (None if the card has none).
    unseen_iou: for a card with an "evaluation" list (the starter), the photo-weighted mean
        IoU over the held-out sets it was measured on; None otherwise.
    description: Markdown for people: training data, scores on unseen photos, known limits.
    architecture, image_size: the network and input size it was built with (a fine-tune keeps them).
    """

    validation_iou: float | None
    unseen_iou: float | None
    description: str
    architecture: str
    image_size: int


def model_summary(directory: Path | str) -> ModelSummary:
    """Summarise a model version folder's card.json (ValueError if the card is missing or damaged)."""
    from catseg.models import read_card

    card = read_card(directory)
    metrics = card.get("metrics") or {}
    validation_iou = metrics.get("val_iou")
    model_config = card.get("model_config") or {}
    lines = [f"A {model_config.get('architecture', '?')} network working at "
             f"{model_config.get('image_size', '?')} × {model_config.get('image_size', '?')} pixels."]
    about = card.get("about") or {}
    data = about.get("data") or []
    if data:
        lines.append("\n**Trained on**\n")
        lines += [f"- {item['name']}: {item['photos']} photos ({item['licence']})" for item in data]
    evaluation = about.get("evaluation") or []
    unseen_iou = None
    if evaluation:
        lines.append("\n**Scores on photos it never saw** (mean foreground IoU per photo; 1.0 is perfect)\n")
        lines += [f"- {item['name']}: {item['iou_mean']:.3f} over {item['photos']} photos" for item in evaluation]
        total = sum(item["photos"] for item in evaluation)
        unseen_iou = sum(item["iou_mean"] * item["photos"] for item in evaluation) / total if total else None
    limits = about.get("limits") or []
    if limits:
        lines.append("\n**Known limits**\n")
        lines += [f"- {limit}" for limit in limits]
    return ModelSummary(
        validation_iou=float(validation_iou) if validation_iou is not None else None,
        unseen_iou=unseen_iou,
        description="\n".join(lines),
        architecture=str(model_config.get("architecture", "?")),
        image_size=int(model_config.get("image_size") or 0),
    )


def _quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter would bury the CLI's one-line messages.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class Predictor:
    """A loaded model version that turns RGB photos into full-resolution cat probabilities.

    Load once, call `probability` many times; the attributes are read-only.
    """

    __slots__ = ("_directory", "_models", "_model_config", "_card", "_size", "_flip")

    def __init__(self, directory: Path | str, scales: Iterable[float] | None = None, flip: bool | None = None) -> None:
        """`scales`: test-time scales; by default the card's own, else TEST_TIME_SCALES.
        `flip`: also run the mirror image; by default the card's "test_time_flip", else True."""
        from catseg.models import at_input_size, load_model_version

        _quiet_tensorflow()
        directory = Path(directory)
        model, model_config, card = load_model_version(directory)
        if scales is None:
            scales = card.get("test_time_scales") or TEST_TIME_SCALES
        size = model_input_size(model)
        models = [model]
        for scaled_size in scaled_input_sizes(size, scales)[1:]:
            try:
                models.append(at_input_size(model, scaled_size))
            except ValueError:
                break  # a network tied to its input size runs at that size only
        # A card may turn the mirror view off ("test_time_flip"), e.g. to stay within a time budget.
        if flip is None:
            flip = bool(card.get("test_time_flip", True))
        for name, value in (("_directory", directory), ("_models", tuple(models)), ("_model_config", model_config),
                            ("_card", card), ("_size", size), ("_flip", flip)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Predictor is read-only; load another model version instead")

    @classmethod
    def from_spec(cls, spec: str | None) -> "Predictor":
        """Load the model named by a spec ("best", an id, "starter" or a path); see resolve_model."""
        return cls(resolve_model(spec))

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def model_config(self):
        return self._model_config

    @property
    def card(self) -> dict:
        return self._card

    @property
    def input_size(self) -> int:
        """Side of the square model input; photos are letterboxed to it as in training."""
        return self._size

    def probability(self, photo: np.ndarray) -> np.ndarray:
        """Cat probability (H, W) float32 in [0, 1] at the photo's full resolution."""
        # Letterbox, like the training pipeline (catseg.pipeline.letterbox), so the model
        # sees undistorted cats at inference too. Averaging the photo and its mirror at each
        # test-time scale costs more model calls at these small input sizes, and gains
        # mean IoU on unseen photos (see the starter's model card).
        return predict_probability_at_scales(self._models, photo, fit="letterbox", flip=self._flip)

    @property
    def input_sizes(self) -> tuple[int, ...]:
        """Every input size the photo is run at (test-time scales), the model's own first."""
        return tuple(model_input_size(model) for model in self._models)

    @property
    def flips(self) -> bool:
        """True when each size also runs the mirror image."""
        return self._flip


# --- files -----------------------------------------------------------------------------

def read_photo(path: Path | str) -> np.ndarray:
    """Read a photo file as upright RGB uint8 (EXIF applied); ValueError naming the file if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    return decode_photo(path.read_bytes(), path.name).pixels


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
        # Level 1: PNG files a little larger, written several times faster.
        parameters = [cv2.IMWRITE_PNG_COMPRESSION, 1]
        extension = ".png"
    written, buffer = cv2.imencode(extension, picture, parameters)
    if not written:
        raise ValueError(f"could not encode the picture as {format_name}")
    return buffer.tobytes()


def _write_bytes(path: Path, data: bytes) -> None:
    """Write through a temporary file and rename, so a crash never leaves half a picture."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def splash(
    photo: np.ndarray, probability: np.ndarray, settings: SplashSettings, background: np.ndarray | None = None
) -> np.ndarray:
    """The colour-splash picture of a photo from its probability map (RGBA for "transparent")."""
    alpha = alpha_from_probability(probability, settings.threshold, settings.feather_px)
    return composite(photo, alpha, settings, background)


def result_suffix(settings: SplashSettings) -> str:
    """".png" when the result has transparency, else ".jpg"."""
    return ".png" if settings.effect == "transparent" else ".jpg"


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
    _write_bytes(output_path, encode_picture(picture, format_name))
    return output_path


def write_mask(predictor: Predictor, input_path: Path | str, output_path: Path | str, threshold: float = 0.5) -> Path:
    """Predict a photo's mask and write it as a full-resolution one-channel PNG (0/255)."""
    output_path = Path(output_path)
    if output_path.suffix.lower() != ".png":
        raise ValueError(f"{output_path}: masks are written as .png (lossless)")
    SplashSettings(threshold=threshold)  # validates the threshold with the usual message
    photo = read_photo(input_path)
    mask = mask_from_alpha(predictor.probability(photo), threshold)
    _write_bytes(output_path, encode_picture(mask, "PNG"))
    return output_path


# --- the Try page's helpers --------------------------------------------------------------

def probability_to_uint8(probability: np.ndarray) -> np.ndarray:
    """Store a probability map in a quarter of the memory (steps of 1/255; thresholds barely move)."""
    return cv2.convertScaleAbs(probability, alpha=255.0)


def probability_from_uint8(stored: np.ndarray) -> np.ndarray:
    return stored.astype(np.float32) * np.float32(1.0 / 255.0)


def shrink_for_preview(photo: np.ndarray, stored_probability: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(photo, uint8 probability, scale) at most max_side pixels long, so sliders stay fast on big photos."""
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


def zip_results(results: Iterable[tuple[str, bytes]]) -> bytes:
    """One .zip of (file name, bytes) results; JPEG/PNG are already compressed, so stored as is."""
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in results:
            stem, dot, suffix = name.rpartition(".")
            unique, counter = name, 1
            while unique in used:  # two uploads may share a name
                counter += 1
                unique = f"{stem}-{counter}{dot}{suffix}"
            used.add(unique)
            archive.writestr(unique, data)
    return buffer.getvalue()


# --- evaluation ------------------------------------------------------------------------

@dataclass(frozen=True)
class Evaluation:
    """Scores of a model on a labelled folder (foreground masks cut at `threshold`)."""

    photos: int
    iou_mean: float
    iou_pooled: float
    dice_mean: float
    threshold: float

    def to_dict(self) -> dict:
        return {"photos": self.photos, "iou_mean": self.iou_mean, "iou_pooled": self.iou_pooled,
                "dice_mean": self.dice_mean, "threshold": self.threshold}


def evaluate_folder(predictor: Predictor, folder: Path | str, threshold: float = 0.5) -> Evaluation:
    """Score the model on every labelled photo of a tutorial-layout or YOLO folder."""
    from catseg.dataset_io import iter_folder_pairs
    from catseg.masks import dice, iou

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder")
    SplashSettings(threshold=threshold)
    ious, dices = [], []
    intersection = union = 0
    for _, photo, truth in iter_folder_pairs(folder):
        predicted = predictor.probability(photo) >= threshold
        truth = truth > 0
        ious.append(iou(predicted, truth))
        dices.append(dice(predicted, truth))
        intersection += int(np.count_nonzero(predicted & truth))
        union += int(np.count_nonzero(predicted | truth))
    if not ious:
        raise ValueError(
            f"{folder}: no labelled photos found (expected input/ + mask/ or images/ + labels/)"
        )
    return Evaluation(
        photos=len(ious),
        iou_mean=float(np.mean(ious)),
        iou_pooled=float(intersection / union) if union else 1.0,
        dice_mean=float(np.mean(dices)),
        threshold=float(threshold),
    )
