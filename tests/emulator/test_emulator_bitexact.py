"""Emulator == reference, bit for bit: random valid networks, every layer (taps) and the output."""

from __future__ import annotations

import numpy as np
import pytest
from emu_netgen import PROFILES, Recipe, conv_args, frames, recipes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_sdk.builder import NetworkBuilder
from edge_sdk.chips import load_profile
from edge_sdk.network import Network
from edge_sdk.runtime.device import Device
from edge_sdk.runtime.reference import run_reference

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def emulator_device(net: Network, isa: str = "auto") -> Device:
    from edge_sdk.runtime.emulator import EmulatorBackend

    return Device(EmulatorBackend(isa)).load(net)


def assert_same_as_reference(net: Network, frame: np.ndarray, isa: str = "auto") -> None:
    result = emulator_device(net, isa).run(frame, taps=True)
    expected = run_reference(net, frame)
    assert list(result.taps) == [layer.name for layer in net.layers]
    for layer, want in zip(net.layers, expected):
        got = result.taps[layer.name]
        assert got.dtype == want.dtype, (layer.name, got.dtype, want.dtype)
        assert got.shape == want.shape, (layer.name, got.shape, want.shape)
        if not np.array_equal(got, want):
            bad = np.argwhere(got != want)
            raise AssertionError(
                f"layer {layer.name} ({layer.op}) differs at {len(bad)} positions, first {bad[:3]}"
            )
    last_chip = net.n_chip - 1
    assert np.array_equal(result.codes, expected[last_chip])


@SETTINGS
@given(data=st.data())
def test_random_networks_match_reference(emulator_available, data):
    recipe = data.draw(recipes())
    net = recipe.build()
    assert_same_as_reference(net, data.draw(frames(net.input_shape)))


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_batch_matches_reference(emulator_available, data):
    net = data.draw(recipes(max_ops=3)).build()
    batch = data.draw(frames(net.input_shape, count=3))
    result = emulator_device(net).run(batch, taps=True)
    for n in range(3):
        for layer, want in zip(net.layers, run_reference(net, batch[n])):
            assert np.array_equal(result.taps[layer.name][n], want)


def _one_layer_net(profile: str, shape, **conv) -> Network:
    b = NetworkBuilder(profile, shape, seed=7)
    b.conv(**conv)
    return b.build()


# Deterministic coverage: every profile x weight mode x kernel x stride x group kind, odd and even sizes.
CASES = []
for _pid in PROFILES:
    _p = load_profile(_pid)
    for _bits in sorted(_p.weight_modes):
        for _k in _p.kernels:
            for _s in _p.strides:
                CASES.append((_pid, _bits, _k, _s, "dense"))
                CASES.append((_pid, _bits, _k, _s, "depthwise"))
                if _p.groups == "any":
                    CASES.append((_pid, _bits, _k, _s, "grouped"))


@pytest.mark.parametrize("size", [(9, 6), (8, 7)])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_conv_modes(emulator_available, case, size):
    pid, bits, k, s, kind = case
    h, w = size
    p = load_profile(pid)
    b = NetworkBuilder(p, (h, w, 3), seed=bits * 10 + k + s)
    x = b.conv(8, kernel=3, bits=bits)  # a conv first, so the layer under test reads activation codes
    if kind == "dense":
        b.conv(12, kernel=k, stride=s, bits=bits, src=x)
    elif kind == "depthwise":
        b.conv(8, kernel=k, stride=s, bits=bits, groups=8, src=x)
    else:
        b.conv(12, kernel=k, stride=s, bits=bits, groups=4, src=x)
    b.conv(5, kernel=k, stride=s, bits=bits, output="raw")
    net = b.build()
    rng = np.random.default_rng(h * w + bits)
    assert_same_as_reference(net, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("pid", PROFILES)
@pytest.mark.parametrize(
    "pad", [(0, 0, 0, 0), (1, 1, 0, 0), (0, 0, 1, 1), (1, 0, 1, 0), (0, 1, 0, 1), (1, 1, 1, 1)]
)
@pytest.mark.parametrize("stride", [1, 2])
def test_explicit_pads(emulator_available, pid, pad, stride):
    for h, w in [(7, 7), (6, 9)]:
        net = _one_layer_net(pid, (h, w, 3), out_channels=6, kernel=3, stride=stride, pad=pad)
        assert_same_as_reference(net, np.random.default_rng(h).integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("pid", PROFILES)
def test_shift_extremes_and_saturation(emulator_available, pid):
    p = load_profile(pid)
    for shift in (p.shift_min, p.shift_max):
        for output in ("act", "raw"):
            b = NetworkBuilder(p, (6, 5, 3), seed=shift)
            x = b.conv(16, bits=max(p.weight_modes), shift=shift)
            y = b.conv(16, bits=min(p.weight_modes), shift=shift, src=x)
            b.add(
                x, y, mults=(-(1 << (p.multiplier_bits - 1)), (1 << (p.multiplier_bits - 1)) - 1), shift=shift
            )
            b.conv(4, kernel=1, output=output, shift=shift)
            net = b.build()
            for v in (0, 255):
                assert_same_as_reference(net, np.full((6, 5, 3), v, np.uint8))
            assert_same_as_reference(
                net, np.random.default_rng(shift).integers(0, 256, (6, 5, 3), dtype=np.uint8)
            )


@pytest.mark.parametrize("pid", PROFILES)
def test_every_kernel_variant(emulator_available, pid):
    """The portable C build and every SIMD variant this CPU runs give the same bits."""
    from edge_sdk.runtime.emulator import available_isas

    b = NetworkBuilder(pid, (13, 11, 3), seed=3)
    x = b.conv(40, bits=2)
    y = b.conv(40, bits=2, groups=40 if load_profile(pid).groups == "depthwise" else 8)
    b.add(x, y)
    b.maxpool()
    b.conv(37, kernel=3, stride=2)
    b.conv(33, kernel=1, output="raw")
    net = b.build()
    frame = np.random.default_rng(0).integers(0, 256, (13, 11, 3), dtype=np.uint8)
    for isa in available_isas():
        assert_same_as_reference(net, frame, isa)


def test_vgg_style_network(emulator_available):
    from edge_sdk.builder import vgg_style

    net = vgg_style("lightspeeur-2803", 32, (8, 16, 16), bits=3)
    assert_same_as_reference(net, np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8))


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_single_conv_layers(emulator_available, data):
    """One conv on activation codes, many shapes: isolates the conv kernel (channels up to 40, K up to 360)."""
    pid = data.draw(st.sampled_from(PROFILES))
    p = load_profile(pid)
    h, w = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
    c = data.draw(st.integers(1, 40))
    b = NetworkBuilder(p, (h, w, 3), seed=data.draw(st.integers(0, 1000)))
    b.conv(c, kernel=1)
    b.conv(**data.draw(conv_args(p, (h, w, c), max_channels=40)))
    net = b.build()
    assert_same_as_reference(net, data.draw(frames(net.input_shape)))


def test_recipe_rebuild_is_deterministic(emulator_available):
    r = Recipe("nqe-1mb", (5, 5, 3), 1, [("conv", {"out_channels": 4}), ("maxpool", {})])
    a, b = r.build(), r.build()
    assert all(np.array_equal(x.codes, y.codes) for x, y in zip(a.layers, b.layers) if x.codes is not None)
