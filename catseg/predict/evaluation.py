"""Score a model version on a labelled folder: mean and pooled IoU, and Dice (`python -m catseg evaluate`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from catseg.predict.compositing import check_threshold

if TYPE_CHECKING:
    from catseg.predict.predictor import Predictor


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
    from catseg.data.importing import iter_folder_pairs
    from catseg.data.masks import dice, iou

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder")
    check_threshold(threshold)
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
