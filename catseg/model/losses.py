"""Loss and metric for binary (cat / background) segmentation.

Keras is imported lazily: the loss class is created and registered the first
time ``bce_dice_loss()`` or ``custom_objects()`` is called, so importing this
module stays cheap.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _bce_dice_loss_class() -> type:
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="catseg", name="BceDiceLoss")
    class BceDiceLoss(keras.losses.Loss):
        """Binary cross-entropy plus soft Dice loss.

        Cross-entropy gives smooth per-pixel gradients; Dice optimises the
        overlap directly and does not let the (larger) background dominate,
        which is what the IoU metric rewards.
        """

        def __init__(
            self,
            dice_weight: float = 1.0,
            smooth: float = 1.0,
            name: str = "bce_dice",
            **kwargs: Any,
        ) -> None:
            super().__init__(name=name, **kwargs)
            self.dice_weight = float(dice_weight)
            self.smooth = float(smooth)

        def call(self, y_true: Any, y_pred: Any) -> Any:
            # A network with side outputs (deep supervision) predicts several maps of one mask.
            y_true = ops.broadcast_to(ops.cast(y_true, y_pred.dtype), ops.shape(y_pred))
            cross_entropy = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred), axis=(1, 2))
            # Dice per image, so a photo with a small cat counts as much as a
            # close-up; smooth keeps it defined for empty masks.
            axes = (1, 2, 3)
            intersection = ops.sum(y_true * y_pred, axis=axes)
            total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
            dice = (2.0 * intersection + self.smooth) / (total + self.smooth)
            return cross_entropy + self.dice_weight * (1.0 - dice)

        def get_config(self) -> dict[str, Any]:
            config = super().get_config()
            config.update({"dice_weight": self.dice_weight, "smooth": self.smooth})
            return config

    return BceDiceLoss


def bce_dice_loss(dice_weight: float = 1.0, smooth: float = 1.0) -> Any:
    """Return a serialisable BCE + soft-Dice ``keras.losses.Loss``.

    Expects ``y_true`` in {0, 1} and ``y_pred`` sigmoid probabilities, both of
    shape (batch, height, width, 1).
    """
    return _bce_dice_loss_class()(dice_weight=dice_weight, smooth=smooth)


@functools.cache
def _fused_iou_class() -> type:
    import keras

    @keras.saving.register_keras_serializable(package="catseg", name="FusedMapIoU")
    class FusedMapIoU(keras.metrics.BinaryIoU):
        """Binary IoU of the first map only: the fused output of a network trained with side outputs."""

        def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
            return super().update_state(y_true, y_pred[..., :1], sample_weight)

    return FusedMapIoU


def iou_metric() -> Any:
    """Foreground (cat) IoU at a 0.5 threshold, accumulated over the whole set.

    Reads the first channel of the prediction, so it scores the fused map of a network
    trained with side outputs and is the plain IoU for one-map networks.
    """
    return _fused_iou_class()(target_class_ids=[1], threshold=0.5, name="iou")


def custom_objects() -> dict[str, Any]:
    """Objects a saved catseg model may reference, for ``keras.models.load_model``."""
    loss_class = _bce_dice_loss_class()
    metric_class = _fused_iou_class()
    return {"catseg>BceDiceLoss": loss_class, "BceDiceLoss": loss_class,
            "catseg>FusedMapIoU": metric_class, "FusedMapIoU": metric_class}
