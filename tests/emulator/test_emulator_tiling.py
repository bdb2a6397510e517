"""Tiled == untiled, and the SRAM bounds: shrunk-SRAM profiles split layers into bands and channel groups."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from emu_netgen import frames, min_sram, recipes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_sdk import SRAMOverflowError
from edge_sdk.builder import NetworkBuilder
from edge_sdk.chips import load_profile
from edge_sdk.runtime.device import Device
from edge_sdk.runtime.reference import ReferenceBackend, run_reference
from edge_sdk.tiling import LayerSchedule, Schedule, compute_schedule, make_tile


def _emulator():
    from edge_sdk.runtime.emulator import EmulatorBackend

    return EmulatorBackend()


def _tile_count(dev: Device) -> int:
    return sum(len(t) for t in dev._tiles.values())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_tiled_equals_untiled(emulator_available, data):
    recipe = data.draw(recipes(max_ops=4, max_size=12, max_channels=16))
    full = recipe.build()
    act_min, w_min = min_sram(full)
    act = data.draw(st.integers(act_min, act_min * 3))
    wts = data.draw(st.integers(w_min, w_min * 3))
    small = recipe.build(load_profile(recipe.profile).with_sram(activation_bytes=act, weight_bytes=wts))
    frame = data.draw(frames(small.input_shape))
    expected = run_reference(small, frame)  # untiled spec
    emu = Device(_emulator()).load(small)
    got = emu.run(frame, taps=True)
    ref_tiled = Device(ReferenceBackend()).load(small).run(frame, taps=True)
    for layer, want in zip(small.layers, expected):
        assert np.array_equal(got.taps[layer.name], want), layer.name
        assert np.array_equal(ref_tiled.taps[layer.name], want), f"reference tiled != untiled at {layer.name}"
    # the untiled schedule of the full-size profile gives the same bits too
    full_out = Device(_emulator()).load(full).run(frame, taps=True)
    for layer in full.layers:
        assert np.array_equal(full_out.taps[layer.name], got.taps[layer.name])


def _deep_net(profile):
    b = NetworkBuilder(profile, (23, 19, 3), seed=5)
    x = b.conv(24, bits=2)
    y = b.conv(24, groups=24 if profile.groups == "depthwise" else 6, bits=1)
    x = b.add(x, y)
    x = b.conv(32, stride=2)
    b.maxpool()
    b.conv(20, kernel=1, output="raw")
    b.gap()
    b.dense(3)
    return b.build()


@pytest.mark.parametrize("pid", ["lightspeeur-2803", "nqe-1mb"])
def test_many_bands_and_groups(emulator_available, pid):
    full = _deep_net(load_profile(pid))
    act_min, w_min = min_sram(full)
    small = _deep_net(load_profile(pid).with_sram(activation_bytes=act_min, weight_bytes=w_min))
    # the schedule really splits: several bands and channel groups, weights streamed
    assert any(ls.band_rows < small.layers[ls.layer].out_shape[0] for ls in small.schedule.layers)
    assert any(ls.group_channels < small.layers[ls.layer].out_shape[2] for ls in small.schedule.layers)
    assert any(not ls.weights_resident for ls in small.schedule.layers)
    dev = Device(_emulator()).load(small)
    assert _tile_count(dev) > 10 * small.n_chip
    frame = np.random.default_rng(0).integers(0, 256, small.input_shape, dtype=np.uint8)
    got = dev.run(frame, taps=True)
    for layer, want in zip(small.layers, run_reference(small, frame)):
        assert np.array_equal(got.taps[layer.name], want), layer.name


def _small_and_big(pid="lightspeeur-2803"):
    """The same network under a shrunk profile (tiled schedule) and a full-size one."""

    def build(profile):
        b = NetworkBuilder(profile, (16, 16, 3), seed=1)
        b.conv(16)
        b.conv(16)
        return b.build()

    big = build(load_profile(pid))
    act_min, w_min = min_sram(big)
    return build(load_profile(pid).with_sram(activation_bytes=act_min, weight_bytes=w_min)), big


def test_tile_bigger_than_activation_sram_raises(emulator_available):
    small, _ = _small_and_big()
    layer = small.layers[1]
    be = _emulator()
    be.load(small)
    whole = make_tile(small, layer, 0, layer.out_shape[0], 0, layer.out_shape[2])
    be.write_tile(0, np.zeros((whole.in_rows, layer.in_shape[1], whole.in_chn), np.uint8))
    with pytest.raises(SRAMOverflowError, match="activation bits"):
        be.run(1, whole)


def test_schedule_violation_through_device_raises(emulator_available):
    small, big = _small_and_big()
    # a schedule computed for the big SRAM, run on the small chip: the tiles do not fit
    bad = Schedule(big.schedule.layers, small.schedule.activation_sram_bits, small.schedule.weight_sram_bits)
    small.schedule = bad
    dev = Device(_emulator()).load(small)
    with pytest.raises(SRAMOverflowError):
        dev.run(np.zeros(small.input_shape, np.uint8))


def test_weights_not_resident_overflow_raises(emulator_available):
    small, _ = _small_and_big("nqe-1mb")
    layers = tuple(dataclasses.replace(ls, weights_resident=True) for ls in small.schedule.layers)
    small.schedule = Schedule(layers, small.schedule.activation_sram_bits, small.schedule.weight_sram_bits)
    dev = Device(_emulator()).load(small)
    with pytest.raises(SRAMOverflowError, match="weight bits"):
        dev.run(np.zeros(small.input_shape, np.uint8))


def test_unaligned_group_tiles(emulator_available):
    """Tiles that start inside a conv group (make_tile allows it) still compute the right channels."""
    b = NetworkBuilder("nqe-1mb", (7, 6, 3), seed=2)
    x = b.conv(12)
    b.conv(18, groups=6, src=x)  # 2 inputs / 3 outputs per group
    net = b.build()
    frame = np.random.default_rng(3).integers(0, 256, (7, 6, 3), dtype=np.uint8)
    outs = run_reference(net, frame)
    layer = net.layers[1]
    be = _emulator()
    be.load(net)
    for ch0, chn in [(1, 4), (2, 1), (4, 9), (0, 18), (17, 1)]:
        for r0, rows in [(0, 7), (2, 3), (6, 1)]:
            t = make_tile(net, layer, r0, rows, ch0, chn)
            be.write_tile(0, outs[0][t.in_row0 : t.in_row0 + t.in_rows, :, t.in_ch0 : t.in_ch0 + t.in_chn])
            be.run(1, t)
            got = be.read_tile()
            assert np.array_equal(got, outs[1][r0 : r0 + rows, :, ch0 : ch0 + chn]), (ch0, chn, r0, rows)


def test_schedule_unchanged_by_emulator(emulator_available):
    small, _ = _small_and_big()
    before = small.schedule
    Device(_emulator()).load(small).run(np.zeros(small.input_shape, np.uint8))
    assert small.schedule == before == compute_schedule(small)
    assert isinstance(before.layers[0], LayerSchedule)
