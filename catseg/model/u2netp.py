"""U^2-Net-p (Qin et al. 2020), the small salient-object network, as a Keras model.

It takes the same input as every catseg network (float32 RGB in [0, 1], see
``catseg.model.networks``) and normalises it itself; ``with_side_outputs`` exposes its seven maps
for training with deep supervision.
"""

from __future__ import annotations

from typing import Any

from catseg.model.config import check_image_size


def _layers() -> Any:
    """Keras' layers, imported on first use so importing this module stays light."""
    import keras

    return keras.layers


# ImageNet statistics that U^2-Net was trained with; the model applies them itself so every
# catseg network takes the same [0, 1] RGB input.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _conv(x: Any, filters: int, dilation: int, name: str) -> Any:
    """U^2-Net's REBNCONV with batch norm folded into the bias: 3x3 convolution then ReLU."""
    layers = _layers()
    x = layers.Conv2D(filters, 3, padding="same", dilation_rate=dilation, name=f"{name}_conv")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _pool(x: Any, name: str) -> Any:
    # "same" pads at the end like PyTorch's ceil_mode=True, so odd sizes keep their last row.
    return _layers().MaxPooling2D(2, strides=2, padding="same", name=name)(x)


def _up(x: Any, factor: int, name: str) -> Any:
    # Half-pixel bilinear resizing, which is what PyTorch's align_corners=False computes.
    return _layers().UpSampling2D(factor, interpolation="bilinear", name=name)(x)


def _residual_u_block(x: Any, height: int, middle: int, out: int, name: str) -> Any:
    """RSU-L: a small U-Net of ``height`` levels inside one block, added to its input convolution."""
    layers = _layers()
    block_input = _conv(x, out, 1, f"{name}_in")
    encoder = [_conv(block_input, middle, 1, f"{name}_e1")]
    for level in range(2, height):
        pooled = _pool(encoder[-1], f"{name}_pool{level - 1}")
        encoder.append(_conv(pooled, middle, 1, f"{name}_e{level}"))
    # The deepest level widens its view by dilation instead of pooling once more.
    x = _conv(encoder[-1], middle, 2, f"{name}_e{height}")
    for level in range(height - 1, 0, -1):
        x = layers.Concatenate(name=f"{name}_cat{level}")([x, encoder[level - 1]])
        x = _conv(x, out if level == 1 else middle, 1, f"{name}_d{level}")
        if level > 1:
            x = _up(x, 2, f"{name}_up{level - 1}")
    return layers.Add(name=f"{name}_add")([x, block_input])


def _residual_u_block_dilated(x: Any, middle: int, out: int, name: str) -> Any:
    """RSU-4F: RSU-4 with dilations 1, 2, 4, 8 instead of pooling, for the coarsest levels."""
    layers = _layers()
    block_input = _conv(x, out, 1, f"{name}_in")
    encoder = [_conv(block_input, middle, 1, f"{name}_e1")]
    for level, dilation in ((2, 2), (3, 4)):
        encoder.append(_conv(encoder[-1], middle, dilation, f"{name}_e{level}"))
    x = _conv(encoder[-1], middle, 8, f"{name}_e4")
    for level, dilation in ((3, 4), (2, 2), (1, 1)):
        x = layers.Concatenate(name=f"{name}_cat{level}")([x, encoder[level - 1]])
        x = _conv(x, out if level == 1 else middle, dilation, f"{name}_d{level}")
    return layers.Add(name=f"{name}_add")([x, block_input])


def build_u2netp(image_size: int = 320) -> Any:
    """U^2-Net-p (Qin et al. 2020, "U^2-Net: Going Deeper with Nested U-Structure").

    Six stages of residual U-blocks (RSU-7, 6, 5, 4, 4F, 4F), a mirrored decoder, a
    side output per decoder stage and a 1x1 convolution fusing them. Layers are created
    in the order of the reference PyTorch forward pass, which is the order of the
    convolutions in its ONNX export (``scripts/import_u2netp.py`` relies on it).
    The model's output is the fused map; ``with_side_outputs`` gives all seven for
    training with deep supervision.
    """
    import keras

    check_image_size(image_size, 32)
    layers = keras.layers
    middle, width = 16, 64

    inputs = keras.Input((image_size, image_size, 3), name="photo")
    x = layers.Normalization(
        mean=list(_IMAGENET_MEAN), variance=[std**2 for std in _IMAGENET_STD], name="imagenet_normalise"
    )(inputs)
    encoder = []
    for stage, height in enumerate((7, 6, 5, 4), start=1):
        x = _residual_u_block(x, height, middle, width, f"stage{stage}")
        encoder.append(x)
        x = _pool(x, f"pool{stage}{stage + 1}")
    x = _residual_u_block_dilated(x, middle, width, "stage5")
    encoder.append(x)
    x = _pool(x, "pool56")
    x = _residual_u_block_dilated(x, middle, width, "stage6")

    decoder = [x]
    x = _up(x, 2, "stage6_up")
    x = _residual_u_block_dilated(layers.Concatenate(name="stage5d_cat")([x, encoder[4]]), middle, width, "stage5d")
    decoder.append(x)
    for stage, height in ((4, 4), (3, 5), (2, 6), (1, 7)):
        x = _up(x, 2, f"stage{stage + 1}d_up")
        x = layers.Concatenate(name=f"stage{stage}d_cat")([x, encoder[stage - 1]])
        x = _residual_u_block(x, height, middle, width, f"stage{stage}d")
        decoder.append(x)

    # decoder holds stage 6, 5d, 4d, 3d, 2d, 1d; side output k reads the stage at 1/2**(k-1).
    sides = []
    for side in range(1, 7):
        logits = layers.Conv2D(1, 3, padding="same", name=f"side{side}")(decoder[6 - side])
        if side > 1:
            logits = _up(logits, 2 ** (side - 1), f"side{side}_up")
        sides.append(logits)
    fused = layers.Conv2D(1, 1, name="fuse")(layers.Concatenate(name="sides")(sides))
    # A float32 map keeps the loss stable under mixed precision.
    outputs = layers.Activation("sigmoid", dtype="float32", name="cat_probability")(fused)
    return keras.Model(inputs, outputs, name="u2netp")


def with_side_outputs(model: Any) -> Any:
    """For deep supervision: the same network (shared weights) returning (batch, H, W, 7),
    the fused map in channel 0 and the six side outputs after it.

    Networks without side outputs come back unchanged.
    """
    import keras

    layers = keras.layers
    try:
        side_logits = [model.get_layer("side1").output] + [
            model.get_layer(f"side{side}_up").output for side in range(2, 7)
        ]
    except ValueError:
        return model
    maps = [layers.Activation("sigmoid", dtype="float32")(logits) for logits in side_logits]
    all_maps = layers.Concatenate(dtype="float32")([model.outputs[0], *maps])
    return keras.Model(model.input, all_maps, name=f"{model.name}_with_side_outputs")
