"""The reference backend against a second, loop-by-loop reading of the datasheet, and tiled == untiled."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_sdk.arith import integer_weights
from edge_sdk.builder import NetworkBuilder
from edge_sdk.chips import load_profile
from edge_sdk.runtime import Device
from edge_sdk.runtime.reference import conv_acc, maxpool_codes, run_reference


def naive_conv(x, w, bias, stride, pad, groups):
    """Datasheet 2.3, literally: one output at a time."""
    h, wd, c = x.shape
    o, ci, k, _ = w.shape
    t, left, b, r = pad
    ho, wo = (h + t + b - k) // stride + 1, (wd + left + r - k) // stride + 1
    out = np.zeros((ho, wo, o), dtype=np.int64)
    for yy in range(ho):
        for xx in range(wo):
            for oo in range(o):
                acc = int(bias[oo])
                base = (oo // (o // groups)) * ci
                for i in range(ci):
                    for ky in range(k):
                        for kx in range(k):
                            sy, sx = yy * stride + ky - t, xx * stride + kx - left
                            if 0 <= sy < h and 0 <= sx < wd:
                                acc += int(x[sy, sx, base + i]) * int(w[oo, i, ky, kx])
                out[yy, xx, oo] = acc
    return out


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 7),
    st.integers(1, 7),
    st.sampled_from([1, 2, 4]),
    st.sampled_from([1, 3]),
    st.sampled_from([1, 2]),
    st.data(),
)
def test_conv_matches_loop_definition(h, w, c, k, stride, data):
    groups = data.draw(st.sampled_from([g for g in (1, 2, c) if c % g == 0]))
    o = groups * data.draw(st.integers(1, 2))
    pad = tuple(data.draw(st.integers(0, k - 1)) for _ in range(4))
    if (h + pad[0] + pad[2] - k) < 0 or (w + pad[1] + pad[3] - k) < 0:
        return
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    x = rng.integers(0, 32, (h, w, c))
    wt = rng.integers(-2047, 2048, (o, c // groups, k, k))
    bias = rng.integers(-(2**19), 2**19, o)
    assert np.array_equal(
        conv_acc(x, wt, bias, stride, pad, groups), naive_conv(x, wt, bias, stride, pad, groups)
    )


def test_maxpool_drops_odd_edge():
    x = np.arange(5 * 3 * 2, dtype=np.uint8).reshape(5, 3, 2)
    y = maxpool_codes(x)
    assert y.shape == (2, 1, 2)
    assert y[1, 0, 1] == max(x[2, 0, 1], x[2, 1, 1], x[3, 0, 1], x[3, 1, 1])


def _mixed_net(profile, seed):
    b = NetworkBuilder(profile, (13, 11, 3), seed=seed)
    a = b.conv(8, bits=sorted(profile.weight_modes)[0])
    c = b.conv(8, bits=sorted(profile.weight_modes)[-1])
    b.add(a, c)
    b.conv(8, groups=8, stride=2, bits=2)
    b.maxpool()
    b.conv(6, kernel=1, output="raw", bits=3)
    b.gap()
    b.dense(4)
    b.softmax()
    return b.build()


@pytest.mark.parametrize("prof", ["lightspeeur-2803", "nqe-1mb"])
@pytest.mark.parametrize("act_bytes", [200, 400, 1 << 20])
def test_tiled_reference_equals_untiled(prof, act_bytes):
    profile = load_profile(prof).with_sram(activation_bytes=act_bytes, weight_bytes=64)
    net = _mixed_net(profile, seed=act_bytes)
    frames = np.random.default_rng(1).integers(0, 256, (2, 13, 11, 3), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dev = Device("reference").load(net)
    result = dev.run(frames, taps=True)
    assert sum(len(t) for t in dev._tiles.values()) > (len(net.chip_layers) if act_bytes < 1 << 20 else 0)
    for n, frame in enumerate(frames):
        untiled = run_reference(net, frame)
        for layer, out in zip(net.layers, untiled):
            assert np.array_equal(result.taps[layer.name][n], out), layer.name
    assert result.output.shape == (2, 4)
    np.testing.assert_allclose(result.output.sum(axis=1), 1.0, rtol=1e-5)


def test_integer_weights_used_by_reference_are_level_times_scalar():
    net = _mixed_net(load_profile("lightspeeur-2803"), seed=3)
    layer = net.layers[0]
    w = integer_weights(layer.codes, layer.scalars, net.profile.mode(layer.weight_bits))
    assert np.abs(w).max() <= net.profile.weight_int_max
    assert np.array_equal(
        w[2, 1],
        layer.codes[2, 1].astype(int) * int(layer.scalars[2, 1]) if layer.weight_bits != 3 else w[2, 1],
    )


def test_reference_backend_handles_tiles_across_conv_groups():
    from edge_sdk.runtime.reference import ReferenceBackend
    from edge_sdk.tiling import make_tile

    b = NetworkBuilder("nqe-1mb", (9, 9, 3), seed=11)
    b.conv(4, bits=2)
    b.conv(8, groups=2, bits=3)
    net = b.build()
    x = np.random.default_rng(0).integers(0, 256, (9, 9, 3), dtype=np.uint8)
    first, want = run_reference(net, x)[:2]
    be = ReferenceBackend()
    be.load(net)
    tile = make_tile(net, net.layers[1], 2, 5, 2, 4)  # output channels 2..5 straddle both groups
    be.write_tile(
        0, first[tile.in_row0 : tile.in_row0 + tile.in_rows, :, tile.in_ch0 : tile.in_ch0 + tile.in_chn]
    )
    be.run(1, tile)
    assert np.array_equal(be.read_tile(), want[2:7, :, 2:6])


def test_add_counts_each_operand_at_its_own_width():
    from edge_sdk.tiling import layer_tiles, tile_act_bits

    b = NetworkBuilder(load_profile("nqe-1mb"), (8, 8, 3), seed=0)
    c = b.conv(3, bits=2)
    b.add(c, -1)  # 2-bit codes + the 8-bit image
    net = b.build()
    tile = layer_tiles(net, 1, 8, 3)[0]
    assert tile_act_bits(net, 1, tile) == 8 * 8 * 3 * (2 + 8) + 8 * 8 * 3 * 2
