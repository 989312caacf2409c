"""Find a model: the starter and pretrained folders, registered versions, and what a card says.

`resolve_model` turns what a user names ("best", a version id, "starter", "pretrained" or a
folder) into a model-version folder holding model.keras and card.json; `model_summary`
reads a card into plain facts without loading the network. Nothing here imports
TensorFlow, so pages can list and describe models quickly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from catseg.model.versions import CARD_FILENAME, MODEL_FILENAME

# The starter model ships inside the package (see catseg/starter_model/README.md, its model card).
SHIPPED_STARTER_DIRECTORY = Path(__file__).resolve().parents[1] / "starter_model"
# Points catseg at another starter folder (a deployment's own, or a missing one to run without it).
STARTER_ENVIRONMENT_VARIABLE = "CATSEG_STARTER_MODEL"
# U^2-Net-p with its authors' salient-object weights, converted by scripts/import_u2netp.py (see its
# NOTICE): the starter's own starting point, offered on the Train page to fine-tune from.
PRETRAINED_DIRECTORY = Path(__file__).resolve().parents[1] / "pretrained_u2netp"


class NoModelYet(ValueError):
    """No trained model version is registered, so there is no "best" one to use."""

    def __init__(self) -> None:
        super().__init__("No trained model yet: train one on the Train page or with `catseg train`")


def is_model_directory(directory: Path) -> bool:
    """True when `directory` holds a model version: model.keras and card.json."""
    return (directory / MODEL_FILENAME).is_file() and (directory / CARD_FILENAME).is_file()


def _version_directory(version_id: int | str) -> Path:
    """The folder of model version `version_id`, or of the "best" or "recommended" one, from the database.

    "recommended" leaves out fine-tunes that ended below the starter model where one is
    installed (storage.runs.recommended_model_version). NoModelYet when none is registered.
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
        raise NoModelYet()
    if not is_model_directory(version.directory):
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
    return is_model_directory(starter_model_directory())


def pretrained_model_available() -> bool:
    """True when the converted U^2-Net-p weights ship with this installation."""
    return is_model_directory(PRETRAINED_DIRECTORY)


def resolve_model(spec: str | None) -> Path:
    """Turn a model spec into a model-version folder holding model.keras and card.json.

    None: the best trained version, or the starter model while none is trained (or while
    every trained version is a fine-tune that ended below it); "best": the best trained
    version only; digits: that version id; "starter": the model shipped with catseg;
    "pretrained": U^2-Net-p's salient-object weights before any cat training; anything else:
    a path to a version folder or its .keras file. ValueError (NoModelYet where nothing is
    trained) with a message for the user otherwise.
    """
    if spec is None:
        try:
            return _version_directory("recommended")
        except NoModelYet:
            if not starter_model_available():
                raise
            return starter_model_directory()
    text = str(spec).strip()
    if text.lower() == "best":
        return _version_directory("best")
    if text.isdigit():
        return _version_directory(int(text))
    if text.lower() == "starter":
        directory = starter_model_directory()
        if not is_model_directory(directory):
            raise ValueError(
                f"The starter model is not installed (no {MODEL_FILENAME} and {CARD_FILENAME} in {directory}); "
                "train a model (Train page or `catseg train`) and use its version id, or 'best'"
            )
        return directory
    if text.lower() == "pretrained":
        if not is_model_directory(PRETRAINED_DIRECTORY):
            raise ValueError(f"The pretrained U^2-Net-p is not installed (no {MODEL_FILENAME} and {CARD_FILENAME} "
                             f"in {PRETRAINED_DIRECTORY}); scripts/import_u2netp.py makes it")
        return PRETRAINED_DIRECTORY
    if not text:
        raise ValueError("Empty model: give a version id, 'best', 'starter', 'pretrained' or a model folder")
    path = Path(text).expanduser()
    if path.is_file() and path.suffix == ".keras":
        path = path.parent
    if path.is_dir():
        if is_model_directory(path):
            return path.resolve()
        raise ValueError(
            f"{text} is not a catseg model version: the folder needs {MODEL_FILENAME} and {CARD_FILENAME}"
        )
    raise ValueError(
        f"Unknown model {text!r}: give a version id (e.g. 3), 'best', 'starter', 'pretrained', "
        f"or the path of a model folder holding {MODEL_FILENAME} and {CARD_FILENAME}"
    )


@dataclass(frozen=True)
class TrainingSet:
    """A data set a model was trained on, as its card names it."""

    name: str
    photos: int
    licence: str


@dataclass(frozen=True)
class UnseenScore:
    """A model's mean foreground IoU per photo on a held-out set it never trained on."""

    name: str
    photos: int
    iou_mean: float


@dataclass(frozen=True)
class ModelSummary:
    """What a card says about a model version, read without loading the network.

    validation_iou: best validation IoU during training (None if the card has none).
    unseen_iou: for a card with unseen scores (the starter), the photo-weighted mean IoU
        over those sets; None otherwise.
    architecture, image_size: the network and input size it was built with (a fine-tune
        keeps them); "?" and 0 where the card does not say.
    training_data, unseen_scores, limits: the card's "about" section, empty where it has none.
    """

    validation_iou: float | None
    unseen_iou: float | None
    architecture: str
    image_size: int
    training_data: tuple[TrainingSet, ...] = ()
    unseen_scores: tuple[UnseenScore, ...] = ()
    limits: tuple[str, ...] = ()


def model_summary(directory: Path | str) -> ModelSummary:
    """Summarise a model version folder's card.json (ValueError if the card is missing or damaged)."""
    from catseg.model.versions import read_card

    card = read_card(directory)
    validation_iou = (card.get("metrics") or {}).get("val_iou")
    model_config = card.get("model_config") or {}
    about = card.get("about") or {}
    # The scores of the views the app predicts with (a card may also give the full set's).
    unseen_scores = tuple(UnseenScore(name=item["name"], photos=item["photos"], iou_mean=item["iou_mean"])
                          for item in about.get("evaluation") or [] if item.get("views", "quick") == "quick")
    total = sum(score.photos for score in unseen_scores)
    return ModelSummary(
        validation_iou=float(validation_iou) if validation_iou is not None else None,
        unseen_iou=sum(score.iou_mean * score.photos for score in unseen_scores) / total if total else None,
        architecture=str(model_config.get("architecture", "?")),
        image_size=int(model_config.get("image_size") or 0),
        training_data=tuple(TrainingSet(name=item["name"], photos=item["photos"], licence=item["licence"])
                            for item in about.get("data") or []),
        unseen_scores=unseen_scores,
        limits=tuple(about.get("limits") or []),
    )
