"""Chip/host partition and the plan: what runs where, why, and typed errors instead of wrong splits."""

import numpy as np
import pytest

from edge_sdk.chips import load_profile
from edge_sdk.convert.importer import import_tflite
from edge_sdk.convert.partition import partition
from edge_sdk.convert.plan import make_plan
from edge_sdk.convert.tflite_writer import TFLiteBuilder, tiny_cnn, tiny_resnet
from edge_sdk.errors import UnsupportedOpError

LS = load_profile("lightspeeur-2803")
NQE = load_profile("nqe-1mb")
RNG = np.random.default_rng(0)


def _w(*shape):
    return RNG.normal(0, 0.1, shape).astype(np.float32)


def _graph(data):
    return import_tflite(data).graph


def test_cnn_split_chip_prefix_host_tail_with_reasons():
    g = _graph(tiny_cnn())
    placed = partition(g, LS)
    targets = [(p.node.op, p.target) for p in placed]
    assert targets[:5] == [("conv", "chip")] * 4 + [("maxpool", "chip")]
    assert [t for _, t in targets[5:]] == ["host"] * 4
    why = {p.node.op: p.reason for p in placed}
    assert "average" in why["gap"] and "convolutions only" in why["dense"]


def test_mid_network_unsupported_kernel_raises_with_op_and_layer():
    b = TFLiteBuilder()
    x = b.input((1, 16, 16, 1))
    y = b.conv2d(x, _w(4, 3, 3, 1), _w(4), act="RELU")
    y = b.conv2d(y, _w(4, 5, 5, 4), _w(4), act="RELU")  # 5x5: not a chip kernel, and the host runs no conv
    y = b.conv2d(y, _w(4, 3, 3, 4), _w(4), act="RELU")
    with pytest.raises(UnsupportedOpError) as err:
        partition(_graph(b.build([x], [y])), LS)
    assert err.value.op == "CONV_2D" and err.value.layer == "conv_2d_1" and "5x5" in str(err.value)


def test_first_layer_unsupported_kernel_raises():
    b = TFLiteBuilder()
    x = b.input((1, 49, 10, 1))
    y = b.conv2d(x, _w(8, 10, 4, 1), _w(8), stride=2, act="RELU")  # the keyword-spotting DS-CNN's first layer
    with pytest.raises(UnsupportedOpError, match="kernel 10x4"):
        partition(_graph(b.build([x], [y])), LS)


def test_chip_op_after_host_part_raises():
    b = TFLiteBuilder()
    x = b.input((1, 8, 8, 2))
    y = b.conv2d(x, _w(2, 3, 3, 2), _w(2), act="RELU")
    y = b.pool(y, "AVERAGE_POOL_2D", 2, 2)  # a local average pool: neither chip nor host
    with pytest.raises(UnsupportedOpError, match="average pooling"):
        partition(_graph(b.build([x], [y])), LS)


def test_resnet_adds_fold_into_convolutions_on_per_kernel_chip():
    g = _graph(tiny_resnet())
    plan = make_plan(g, partition(g, LS), LS)
    assert [pl.op for pl in plan.layers] == ["conv"] * 5  # no add layers
    assert plan.layers[1].channels == 16  # conv_Y carries the identity shortcut (8 + 8 channels)
    assert plan.layers[3].channels == 16 + 32  # and the 1x1 shortcut's positive and negative parts
    assert len(plan.notes) == 2


def test_resnet_adds_use_chip_adds_with_sign_split_on_per_layer_chip():
    g = _graph(tiny_resnet())
    plan = make_plan(g, partition(g, NQE), NQE)
    ops = [pl.op for pl in plan.layers]
    assert ops.count("add") == 2 + 3  # relu((x + p) - n); relu(((p1 + p2) - n1) - n2)
    assert all(grp.uniform for pl in plan.layers if pl.op == "add" for grp in pl.groups)


def test_signed_map_into_maxpool_is_refused():
    b = TFLiteBuilder()
    x = b.input((1, 8, 8, 2))
    y = b.conv2d(x, _w(2, 3, 3, 2), _w(2))  # no ReLU
    y = b.pool(y, "MAX_POOL_2D", 2, 2)
    y = b.conv2d(y, _w(2, 3, 3, 2), _w(2), act="RELU")
    g = _graph(b.build([x], [y]))
    with pytest.raises(UnsupportedOpError, match="max-pool|signed"):
        make_plan(g, partition(g, LS), LS)
