"""The .tflite importer and the float executor against LiteRT, on models built op by op."""

import numpy as np
import pytest

from edge_sdk.convert.float_exec import run_pixels
from edge_sdk.convert.handlers import same_pads
from edge_sdk.convert.importer import import_tflite, run_litert
from edge_sdk.convert.tflite_writer import TFLiteBuilder, tiny_cnn, tiny_resnet
from edge_sdk.errors import ConversionError, UnsupportedOpError

pytest.importorskip("ai_edge_litert")
RNG = np.random.default_rng(0)


def _w(*shape, scale=0.2):
    return RNG.normal(0, scale, shape).astype(np.float32)


def _check(data: bytes, shape, atol=2e-4):
    model = import_tflite(data)
    px = RNG.integers(0, 256, (3,) + tuple(shape)).astype(np.uint8)
    ours, theirs = run_pixels(model.graph, px), run_litert(model, px)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=atol, rtol=1e-4)
    return model


@pytest.mark.parametrize(
    "size,stride,padding", [(8, 2, "SAME"), (9, 2, "SAME"), (7, 1, "SAME"), (9, 2, "VALID"), (10, 1, "VALID")]
)
def test_conv_padding_and_strides_match_litert(size, stride, padding):
    b = TFLiteBuilder()
    x = b.input((1, size, size, 3))
    y = b.conv2d(x, _w(4, 3, 3, 3, scale=0.01), _w(4), stride=stride, padding=padding, act="RELU6")
    model = _check(b.build([x], [y]), (size, size, 3))
    conv = model.graph.nodes[0]
    assert conv.act == "relu6"
    if padding == "SAME" and stride == 2 and size % 2 == 0:
        assert conv.attrs["pad"] == (0, 0, 1, 1)  # TFLite SAME/2 on even sizes pads bottom/right


def test_same_pads_rule():
    assert same_pads(32, 3, 2) == (0, 1)
    assert same_pads(33, 3, 2) == (1, 1)
    assert same_pads(32, 3, 1) == (1, 1)
    assert same_pads(32, 1, 2) == (0, 0)


def test_depthwise_pool_mean_dense_softmax_match_litert():
    _check(tiny_cnn(), (16, 16, 3), atol=1e-5)


def test_residual_model_matches_litert():
    model = _check(tiny_resnet(), (16, 16, 3), atol=1e-5)
    ops = [n.op for n in model.graph.nodes]
    assert ops.count("add") == 2 and "gap" in ops  # the 8x8 average pool became a global average pool


def test_pad_then_valid_conv_fuses_into_explicit_pads():
    b = TFLiteBuilder()
    x = b.input((1, 8, 8, 2))
    y = b.pad(x, ((1, 0), (0, 1)))
    y = b.conv2d(y, _w(3, 3, 3, 2, scale=0.01), _w(3), padding="VALID", act="RELU")
    model = _check(b.build([x], [y]), (8, 8, 2))
    assert [n.op for n in model.graph.nodes] == ["conv"]
    assert model.graph.nodes[0].attrs["pad"] == (1, 0, 0, 1)


def test_standalone_relu_fuses_and_avgpool_local_stays():
    b = TFLiteBuilder()
    x = b.input((1, 8, 8, 2))
    y = b.unary("RELU", b.conv2d(x, _w(2, 1, 1, 2, scale=0.01), _w(2)))
    y = b.pool(y, "AVERAGE_POOL_2D", 2, 2, "SAME")
    model = _check(b.build([x], [y]), (8, 8, 2))
    assert [n.op for n in model.graph.nodes] == ["conv", "avgpool"] and model.graph.nodes[0].act == "relu"


def test_int8_per_channel_weights_are_dequantized():
    scales = np.array([0.02, 0.005, 0.01], np.float32)
    q = RNG.integers(-127, 128, (3, 3, 3, 2)).astype(np.int8)
    b = TFLiteBuilder()
    x = b.input((1, 6, 6, 2))
    y = b.conv2d(x, q, np.zeros(3, np.float32), wq=dict(scale=scales, zero_point=np.zeros(3), qdim=0))
    model = import_tflite(b.build([x], [y]))
    w = model.graph.nodes[0].attrs["w"]
    np.testing.assert_allclose(w, q.transpose(0, 3, 1, 2) * scales[:, None, None, None], rtol=1e-6)


def test_unknown_op_names_op_and_layer():
    b = TFLiteBuilder()
    x = b.input((1, 4, 4, 2))
    y = b.unary("LOGISTIC", x)
    with pytest.raises(UnsupportedOpError) as err:
        import_tflite(b.build([x], [y]))
    assert err.value.op == "LOGISTIC" and "logistic_0" in err.value.layer


def test_not_a_tflite_file():
    with pytest.raises(ConversionError):
        import_tflite(b"not a model at all")


def test_batch_norm_affine_folds_into_the_conv():
    b = TFLiteBuilder()
    x = b.input((1, 8, 8, 3))
    y = b.conv2d(x, _w(4, 3, 3, 3, scale=0.01), _w(4))
    gamma, beta = np.abs(_w(4)) + 0.5, _w(4)
    opt = b.s.MulOptionsT()
    y = b.op("MUL", [y, b.const(gamma)], b.shape(y), opt, "MulOptions")
    y = b.add(y, b.const(beta))
    y = b.unary("RELU6", y)
    model = _check(b.build([x], [y]), (8, 8, 3))
    assert [n.op for n in model.graph.nodes] == ["conv"] and model.graph.nodes[0].act == "relu6"
