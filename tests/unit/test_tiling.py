"""Tiling math (property tests): tiles cover every output exactly once, fit the SRAM, carry the right halo."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_sdk import TilingError
from edge_sdk.builder import NetworkBuilder
from edge_sdk.chips import load_profile
from edge_sdk.tiling import check_schedule, compute_schedule, layer_tiles, tile_act_bits, weight_bits


@st.composite
def small_networks(draw):
    prof_id = draw(st.sampled_from(["lightspeeur-2803", "nqe-1mb"]))
    h = draw(st.integers(3, 20))
    w = draw(st.integers(3, 20))
    act_kib = draw(st.sampled_from([1, 2, 4, 64]))
    profile = load_profile(prof_id).with_sram(
        activation_bytes=act_kib * 1024, weight_bytes=draw(st.sampled_from([256, 2048, 131072]))
    )
    b = NetworkBuilder(profile, (h, w, 3), seed=draw(st.integers(0, 2**16)))
    c = draw(st.sampled_from([4, 8, 16]))
    x = b.conv(
        c,
        kernel=draw(st.sampled_from([1, 3])),
        stride=draw(st.sampled_from([1, 2])),
        bits=draw(st.sampled_from(sorted(profile.weight_modes))),
    )
    if draw(st.booleans()):
        b.conv(c, groups=c, bits=min(profile.weight_modes))
    y = b.conv(c, bits=max(profile.weight_modes))
    b.add(x, y) if b.layers[x].out_shape == b.layers[y].out_shape else None
    if min(b.layers[-1].out_shape[:2]) >= 2:
        b.maxpool()
    return b.build(schedule=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_networks())
def test_tiles_partition_outputs_and_fit_sram(net):
    try:
        schedule = compute_schedule(net)
    except TilingError as exc:  # tiny SRAMs may not fit at all: the error must name the layer and the need
        assert "does not fit" in str(exc) and "limit" in str(exc)
        return
    assert check_schedule(net, schedule) == []
    for ls in schedule.layers:
        layer = net.layers[ls.layer]
        covered = np.zeros(layer.out_shape[::2], dtype=int)  # (rows, channels)
        for t in layer_tiles(net, ls.layer, ls.band_rows, ls.group_channels):
            covered[t.out_row0 : t.out_row0 + t.out_rows, t.ch0 : t.ch0 + t.chn] += 1
            assert tile_act_bits(net, ls.layer, t) <= schedule.activation_sram_bits
            # halo: the loaded band plus virtual padding spans exactly the rows the window reads
            if layer.op == "conv":
                span = (t.out_rows - 1) * layer.stride + layer.kernel
                assert t.pad_top + t.in_rows + t.pad_bottom == span
                assert 0 <= t.in_row0 and t.in_row0 + t.in_rows <= layer.in_shape[0]
        assert (covered == 1).all()
        w_need = weight_bits(net, layer, layer.out_shape[2] if ls.weights_resident else ls.group_channels)
        assert w_need <= schedule.weight_sram_bits


def test_schedule_prefers_whole_layers_when_they_fit():
    b = NetworkBuilder("lightspeeur-2803", (56, 56, 3))
    b.conv(64, bits=2)
    b.conv(64, bits=2)
    net = b.build()
    assert all(
        len(layer_tiles(net, s.layer, s.band_rows, s.group_channels)) == 1 for s in net.schedule.layers
    )
    assert all(s.weights_resident for s in net.schedule.layers)


def test_small_sram_forces_bands_and_groups():
    p = load_profile("nqe-1mb").with_sram(activation_bytes=2048, weight_bytes=512)
    b = NetworkBuilder(p, (32, 32, 3))
    b.conv(64, bits=2)
    b.conv(64, bits=3)
    net = b.build()
    s0, s1 = net.schedule.layers
    assert s0.band_rows < 32
    assert not s1.weights_resident and s1.group_channels < 64
    assert s1.weight_bits <= 512 * 8


def test_infeasible_layer_names_layer_need_and_limit():
    p = load_profile("nqe-1mb").with_sram(activation_bytes=64)
    b = NetworkBuilder(p, (32, 32, 3))
    b.conv(16, bits=2, name="too_wide")
    with pytest.raises(TilingError, match=r"layer 0 \('too_wide'.*needs \d+ activation bits \(limit 512\)"):
        b.build()


def test_check_schedule_rejects_edited_schedules():
    b = NetworkBuilder("nqe-1mb", (16, 16, 3))
    b.conv(8, bits=2)
    net = b.build()
    from dataclasses import replace

    bad = replace(net.schedule, layers=(replace(net.schedule.layers[0], band_rows=0),))
    assert check_schedule(net, bad)
    bad = replace(net.schedule, layers=(replace(net.schedule.layers[0], act_bits=1),))
    assert "recorded 1" in check_schedule(net, bad)[0]
    assert check_schedule(net, replace(net.schedule, layers=())) != []
