"""A network that breaks the profile is rejected with a ProfileError naming the layer and the rule."""

import numpy as np
import pytest

from edge_sdk import ProfileError
from edge_sdk.builder import NetworkBuilder


def _net(profile="lightspeeur-2803", **conv):
    b = NetworkBuilder(profile, (16, 16, 3), seed=0)
    b.conv(8, bits=2, **conv)
    return b.build(schedule=False)


def test_valid_network_passes():
    _net().validate()


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda n: setattr(n.layers[0], "shift", 13), "shift 13 outside"),
        (lambda n: setattr(n.layers[0], "weight_bits", 4), "no 4-bit weight mode"),
        (lambda n: n.layers[0].codes.__setitem__((0, 0, 0, 0), 2), "outside the 2-bit range"),
        (lambda n: setattr(n.layers[0], "codes", n.layers[0].codes.astype(np.int16)), "codes must be int8"),
        (lambda n: n.layers[0].scalars.__setitem__((0, 0), 2048), "scalars must be 0..2047"),
        (lambda n: n.layers[0].scalars.__setitem__((0, 0), -1), "scalars must be 0..2047"),
        (
            lambda n: setattr(n.layers[0], "bias", np.full(8, 2**20, np.int32)),
            "needs more than the profile's 20 bits",
        ),
        (lambda n: setattr(n.layers[0], "out_shape", (15, 16, 8)), "inconsistent with the conv"),
        (lambda n: setattr(n.layers[0], "pad", (2, 1, 1, 1)), "padding"),
        (lambda n: setattr(n.layers[0], "groups", 3), "groups 3"),
        (lambda n: setattr(n.layers[0], "op", "lstm"), "unknown op"),
        (lambda n: setattr(n.layers[0], "inputs", (0,)), "input"),
        (lambda n: setattr(n.layers[0], "act_bits", 8), "act_bits must be 5"),
        (lambda n: setattr(n, "input_shape", (16, 16, 4)), "input channels"),
        (lambda n: setattr(n, "input_shape", (512, 16, 3)), "max feature size"),
    ],
)
def test_violations_are_named(edit, match):
    net = _net()
    edit(net)
    with pytest.raises(ProfileError, match=match):
        net.validate()


def test_integer_weight_bound():
    b = NetworkBuilder("lightspeeur-2803", (8, 8, 3))
    b.conv(8, bits=5)
    net = b.build(schedule=False)
    net.layers[0].scalars[0, 0] = 200  # 15 x 200 = 3000 > 2047
    with pytest.raises(ProfileError, match="largest integer weight 3000"):
        net.validate()


def test_depthwise_only_on_lightspeeur_and_groups_on_nqe():
    b = NetworkBuilder("lightspeeur-2803", (8, 8, 3))
    b.conv(8, bits=2)
    b.conv(8, bits=2, groups=2)
    with pytest.raises(ProfileError, match="groups=2 not supported"):
        b.build()
    b = NetworkBuilder("nqe-1mb", (8, 8, 3))
    b.conv(8, bits=2)
    b.conv(8, bits=2, groups=2)
    b.build()


def test_accumulator_overflow_is_rejected():
    b = NetworkBuilder("lightspeeur-2803", (8, 8, 3))
    b.conv(1024, bits=5)
    net_ok = b.build(schedule=False)
    layer = net_ok.layers[0]
    layer.in_shape = (8, 8, 3)
    # 1024 input channels x 9 taps x 31 x 2047 + bias stays below 2^31; a fake 8-bit input would not
    b2 = NetworkBuilder("nqe-1mb", (8, 8, 3))
    b2.conv(8, bits=3)
    net = b2.build(schedule=False)
    net.layers[0].bias = np.full(8, 2**15 - 1, np.int32)
    net.validate()


def test_host_layers_must_follow_chip_layers():
    b = NetworkBuilder("nqe-1mb", (8, 8, 3))
    b.conv(8, bits=2)
    b.gap()
    b.conv(8, bits=2, src=0)
    with pytest.raises(ProfileError, match="chip layers must come before"):
        b.build()


def test_chip_layer_cannot_read_raw_accumulators():
    b = NetworkBuilder("nqe-1mb", (8, 8, 3))
    b.conv(8, bits=2, output="raw")
    b.conv(8, bits=2)
    with pytest.raises(ProfileError, match="raw accumulators"):
        b.build()
