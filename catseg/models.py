"""Network builders, compilation and versioned save/load.

Every model takes float32 RGB photos scaled to [0, 1], shape
(batch, image_size, image_size, 3), letterboxed as in ``catseg.inference.letterbox``,
and returns per-pixel cat probabilities of shape (batch, image_size, image_size, 1).
U^2-Net-p is built in ``catseg.u2netp``.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Collection, Mapping, Sequence

from catseg import __version__
from catseg.config import ModelConfig, TrainConfig, check_precision

MODEL_FILENAME = "model.keras"
CARD_FILENAME = "card.json"
CARD_FORMAT = "catseg-model-version"
CARD_FORMAT_VERSION = 1
# Beside the card: the SHA-256 content hashes (storage.dataset.content_hash) of every labelled photo
# that taught this model or the model it was fine-tuned from, one per line. A run that starts from
# the model keeps those photos out of its hold-out (catseg.splits.stable_split's must_teach).
LEARNT_PHOTOS_FILENAME = "learnt_photos.txt"

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
    """Import Keras on first use so ``import catseg.models`` stays light."""
    import keras

    return keras


def check_image_size(image_size: int, multiple: int) -> None:
    """ValueError unless image_size is a whole multiple of `multiple` (the network halves it that often)."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < multiple:
        raise ValueError(f"image_size must be a whole number >= {multiple}, got {image_size!r}.")
    if image_size % multiple:
        raise ValueError(f"image_size must be a multiple of {multiple}, got {image_size}.")


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
        from catseg.u2netp import build_u2netp

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
    from catseg.losses import bce_dice_loss, iou_metric

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
    given, go into the card for ``catseg.prediction.Predictor`` (see ``catseg.views``);
    ``learnt_photos`` (content hashes), if any, into ``learnt_photos.txt``. The network is
    exported for ONNX Runtime at every size those views use and checked against Keras on the
    shipped check photos and ``check_photos`` (RGB arrays); a mismatch saves nothing.

    The folder appears whole or not at all (``storage.files.atomic_folder``), so readers
    never see a half-written version. Raises FileExistsError if ``directory`` already exists.
    """
    from catseg.export import export_networks
    from catseg.views import exported_sizes
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
    from catseg.losses import custom_objects

    directory = Path(directory)
    card = read_card(directory)
    model_path = directory / MODEL_FILENAME
    if not model_path.is_file():
        raise ValueError(f"{directory} is not a complete model version: {MODEL_FILENAME} is missing.")
    model_config = ModelConfig.from_dict(card["model_config"])
    model = _keras().models.load_model(model_path, compile=False, custom_objects=custom_objects())
    return model, model_config, card
