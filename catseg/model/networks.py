"""Network builders, input sizes, arithmetic precision and compiling.

Every model takes float32 RGB photos scaled to [0, 1], shape
(batch, image_size, image_size, 3), letterboxed as in ``catseg.predict.letterbox``,
and returns per-pixel cat probabilities of shape (batch, image_size, image_size, 1).
U^2-Net-p is built in ``catseg.model.u2netp``; saved versions are ``catseg.model.versions``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from catseg.model.config import ModelConfig, check_image_size, check_precision
from catseg.model.u2netp import build_u2netp

# MobileNetV2 layers whose outputs feed the decoder, at 1/2 .. 1/16 of the input
# size; "block_16_project" (1/32) is the bottleneck.
_MOBILENET_SKIP_LAYERS = (
    "block_1_expand_relu",
    "block_3_expand_relu",
    "block_6_expand_relu",
    "block_13_expand_relu",
)
_MOBILENET_BOTTLENECK_LAYER = "block_16_project"


class PretrainedWeightsUnavailable(RuntimeError):
    """The ImageNet weights for a pretrained encoder could not be obtained."""


def _keras() -> Any:
    """Import Keras on first use so ``import catseg.model.networks`` stays light."""
    import keras

    return keras


def build_tutorial_unet(image_size: int = 256) -> Any:
    """The original tutorial's U-Net: 8-16-32-64-128 filters, no batch norm.

    Two 3x3 ReLU convolutions per level, max pooling down, 2x2 stride-2
    transposed convolutions up, sigmoid output. Kept as the comparison baseline.
    """
    check_image_size(image_size, 16)
    keras = _keras()
    layers = keras.layers

    def two_convs(x: Any, filters: int) -> Any:
        x = layers.Conv2D(filters, (3, 3), activation="relu", padding="same")(x)
        return layers.Conv2D(filters, (3, 3), activation="relu", padding="same")(x)

    inputs = keras.Input((image_size, image_size, 3), name="photo")
    c1 = two_convs(inputs, 8)
    c2 = two_convs(layers.MaxPooling2D((2, 2))(c1), 16)
    c3 = two_convs(layers.MaxPooling2D((2, 2))(c2), 32)
    c4 = two_convs(layers.MaxPooling2D((2, 2))(c3), 64)
    c5 = two_convs(layers.MaxPooling2D((2, 2))(c4), 128)

    x = c5
    for skip, filters in ((c4, 64), (c3, 32), (c2, 16), (c1, 8)):
        x = layers.Conv2DTranspose(filters, (2, 2), strides=(2, 2), padding="same")(x)
        x = layers.concatenate([x, skip])
        x = two_convs(x, filters)

    # float32 output, as in every catseg network: under mixed precision the probabilities and
    # the loss keep their full precision.
    outputs = layers.Conv2D(1, (1, 1), activation="sigmoid", dtype="float32", name="cat_probability")(x)
    return keras.Model(inputs, outputs, name="tutorial_unet")


def _conv_bn_relu(x: Any, filters: int, separable: bool, name: str) -> Any:
    layers = _keras().layers
    # No bias: batch norm's offset makes it redundant.
    if separable:
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    else:
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_unet(
    image_size: int = 160,
    base_filters: int = 24,
    depth: int = 4,
    separable: bool = False,
    dropout: float = 0.0,
) -> Any:
    """catseg's default U-Net: batch norm, bilinear up-sampling.

    depth: number of poolings (image_size must be divisible by 2**depth).
    separable: depthwise-separable convolutions below the first level
        (fewer weights; on a CPU not necessarily faster).
    dropout: spatial dropout rate at the bottleneck.
    """
    if not 1 <= depth <= 6:
        raise ValueError(f"depth must be between 1 and 6, got {depth}.")
    check_image_size(image_size, 2**depth)
    if not 4 <= base_filters <= 256:
        raise ValueError(f"base_filters must be between 4 and 256, got {base_filters}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
    keras = _keras()
    layers = keras.layers

    inputs = keras.Input((image_size, image_size, 3), name="photo")
    x = inputs
    skips = []
    for level in range(depth):
        filters = base_filters * 2**level
        # The first convolution sees only 3 channels: a separable one would be too weak.
        x = _conv_bn_relu(x, filters, separable and level > 0, f"down{level}_a")
        x = _conv_bn_relu(x, filters, separable, f"down{level}_b")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)

    filters = base_filters * 2**depth
    x = _conv_bn_relu(x, filters, separable, "bottleneck_a")
    x = _conv_bn_relu(x, filters, separable, "bottleneck_b")
    if dropout:
        x = layers.SpatialDropout2D(dropout, name="bottleneck_dropout")(x)

    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"up{level}_resize")(x)
        x = layers.Concatenate(name=f"up{level}_concat")([x, skips[level]])
        x = _conv_bn_relu(x, filters, separable and level > 0, f"up{level}_a")
        x = _conv_bn_relu(x, filters, separable and level > 0, f"up{level}_b")

    # float32 output keeps the loss stable should someone enable mixed precision.
    outputs = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="cat_probability")(x)
    return keras.Model(inputs, outputs, name="unet")


def _mobilenet_v2(image_size: int, weights: str | None) -> Any:
    keras = _keras()
    return keras.applications.MobileNetV2(
        input_shape=(image_size, image_size, 3), include_top=False, weights=weights
    )


def build_mobilenet_unet(image_size: int = 160, weights: str | None = "imagenet") -> Any:
    """U-Net whose encoder is Keras' MobileNetV2 (optionally ImageNet-pretrained).

    Skip connections come from the encoder's expansion activations at 1/2,
    1/4, 1/8 and 1/16 of the input size. Raises ``PretrainedWeightsUnavailable``
    if ``weights="imagenet"`` cannot be downloaded or found in the Keras cache.
    """
    check_image_size(image_size, 32)
    if weights not in ("imagenet", None):
        raise ValueError(f"weights must be 'imagenet' or None, got {weights!r}.")
    keras = _keras()
    layers = keras.layers

    if weights == "imagenet":
        try:
            encoder = _mobilenet_v2(image_size, "imagenet")
        except Exception as error:  # keras raises a bare Exception for URL failures
            raise PretrainedWeightsUnavailable(
                "The ImageNet weights for the MobileNetV2 encoder could not be downloaded "
                "(is there no internet connection?). Pick another architecture "
                "('unet' trains well from scratch), set pretrained=False, or place the "
                "weights file 'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_"
                f"{_mobilenet_cache_size(image_size)}_no_top.h5' in the Keras cache "
                f"folder ~/.keras/models/. Cause: {error}"
            ) from error
    else:
        encoder = _mobilenet_v2(image_size, None)

    inputs = keras.Input((image_size, image_size, 3), name="photo")
    # MobileNetV2 was trained on pixels scaled to [-1, 1]; our contract is [0, 1].
    scaled = layers.Rescaling(2.0, offset=-1.0, name="to_mobilenet_range")(inputs)
    feature_extractor = keras.Model(
        encoder.input,
        [encoder.get_layer(name).output for name in _MOBILENET_SKIP_LAYERS]
        + [encoder.get_layer(_MOBILENET_BOTTLENECK_LAYER).output],
        name="mobilenet_v2_encoder",
    )
    *skips, x = feature_extractor(scaled)

    for level, (skip, filters) in enumerate(zip(reversed(skips), (128, 64, 48, 32))):
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"up{level}_resize")(x)
        x = layers.Concatenate(name=f"up{level}_concat")([x, skip])
        x = _conv_bn_relu(x, filters, False, f"up{level}_a")
        x = _conv_bn_relu(x, filters, False, f"up{level}_b")
    # The shallowest skip is at 1/2 size; one more step reaches full resolution.
    x = layers.UpSampling2D(2, interpolation="bilinear", name="full_resize")(x)
    x = _conv_bn_relu(x, 16, False, "full_a")
    outputs = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="cat_probability")(x)
    return keras.Model(inputs, outputs, name="mobilenet_unet")


def _mobilenet_cache_size(image_size: int) -> int:
    # Keras picks the nearest published ImageNet resolution for other sizes.
    published = (96, 128, 160, 192, 224)
    return image_size if image_size in published else 224


def build_model(config: ModelConfig) -> Any:
    """Build the (uncompiled) network described by ``config``."""
    if not isinstance(config, ModelConfig):
        raise ValueError(f"build_model needs a ModelConfig, got {type(config).__name__}.")
    if config.architecture == "tutorial":
        return build_tutorial_unet(config.image_size)
    if config.architecture == "unet":
        return build_unet(config.image_size, config.base_filters)
    if config.architecture == "mobilenet_unet":
        return build_mobilenet_unet(config.image_size, "imagenet" if config.pretrained else None)
    if config.architecture == "u2netp":
        return build_u2netp(config.image_size)
    raise ValueError(f"Unknown architecture {config.architecture!r}.")  # guarded by ModelConfig


def at_input_size(model: Any, image_size: int) -> Any:
    """The same network, sharing its weights, wired to take image_size x image_size photos.

    Works for the fully convolutional U-Nets; raises ValueError for a network tied to
    its input size (the MobileNetV2 encoder keeps the size it was built with).
    """
    keras = _keras()
    check_image_size(image_size, 32)
    try:
        # clone_function returning the layer itself shares every weight: no copy, no memory.
        return keras.models.clone_model(
            model, input_tensors=keras.Input((image_size, image_size, 3), name="photo"),
            clone_function=lambda layer: layer,
        )
    except ValueError as error:
        raise ValueError(f"This network cannot take {image_size}-pixel photos: {error}") from None


def native_bfloat16() -> bool:
    """True when this processor computes bfloat16 natively (AVX-512 BF16 or AMX), per /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(setting: str) -> str:
    """The Keras dtype policy for a precision setting: "auto" is mixed_bfloat16 where the
    processor has bfloat16 instructions (faster there) and float32 elsewhere (where bfloat16
    is emulated and slow)."""
    if check_precision(setting) == "auto":
        return "mixed_bfloat16" if native_bfloat16() else "float32"
    return setting


@contextmanager
def dtype_policy(precision: str) -> Iterator[None]:
    """Build networks under Keras' `precision` policy, then put back the policy found.

    Keras keeps the policy per thread, so this never changes another thread's networks."""
    keras = _keras()
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def in_precision(model: Any, precision: str) -> Any:
    """The same weights in a network that computes in `precision` ("float32" or
    "mixed_bfloat16"); `model` itself when it already does.

    A loaded network keeps the float32 policy it was saved with, so every layer is cloned
    under the new policy except the output layers, which compute in float32 either way
    (probabilities and the loss keep their full precision).
    """
    outputs = set(model.output_names)
    # The layers' own policies, not the model's: a network loaded while another policy is
    # global reports that policy for itself, yet its layers compute as they were saved.
    computing = [layer for layer in model.layers if layer.weights and layer.name not in outputs]
    if all(layer.dtype_policy.name == precision for layer in computing):
        return model
    keras = _keras()

    def under_policy(layer: Any) -> Any:
        config = layer.get_config()
        config["dtype"] = "float32" if layer.name in outputs else precision
        return layer.__class__.from_config(config)

    with dtype_policy(precision):
        twin = keras.models.clone_model(model, clone_function=under_policy, recursive=True)
    twin.set_weights(model.get_weights())
    return twin


def compile_model(model: Any, learning_rate: float, jit_compile: bool | str = "auto",
                  average_momentum: float = 0.0) -> Any:
    """Compile with Adam, BCE + Dice loss and the foreground IoU metric.

    average_momentum: above 0, Adam also keeps an exponential moving average of the weights
    with this momentum per step (Keras' ``use_ema``); 0 keeps none.
    """
    from catseg.model.losses import bce_dice_loss, iou_metric

    keras = _keras()
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be greater than 0, got {learning_rate}.")
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=learning_rate, use_ema=average_momentum > 0,
            ema_momentum=average_momentum or 0.99,
        ),
        loss=bce_dice_loss(),
        metrics=[iou_metric()],
        jit_compile=jit_compile,
    )
    return model
