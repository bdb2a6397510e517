"""Crafted images that try to make the reader slow: they must be rejected quickly.

The writer refuses to produce these, so the tests switch its schedule checks off
(monkeypatch) to craft them, as an attacker with their own writer would.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from edge_sdk.chips import load_profile, profile_from_dict
from edge_sdk.errors import FirmwareError
from edge_sdk.firmware import load_firmware, write_firmware
from edge_sdk.firmware import writer as writer_mod
from edge_sdk.firmware.format import MAX_CHIP_CHANNELS, MAX_TILES
from edge_sdk.network import Layer, Network
from edge_sdk.tiling import LayerSchedule, Schedule


def _big_profile():
    raw = json.loads(load_profile("nqe-1mb").to_json())
    raw["channels"]["max"] = 65535
    raw["max_feature_size"] = 65535
    raw["layer_budget"] = {"major": 1, "sub": 4096}
    raw["sram"] = {"weight_bytes": 1 << 30, "activation_bytes": 1 << 30}
    return profile_from_dict(raw)


def _adds(p, shape, n_layers):
    c = shape[2]
    layers = [
        Layer(
            "c",
            "conv",
            (-1,),
            (shape[0], shape[1], 3),
            shape,
            kernel=1,
            weight_bits=1,
            act_bits=2,
            codes=np.ones((c, 3, 1, 1), np.int8),
            bias=np.zeros(c, np.int32),
        )
    ]
    layers += [Layer(f"a{i}", "add", (0, 0), shape, shape, act_bits=2) for i in range(1, n_layers)]
    return Network(p, (shape[0], shape[1], 3), layers, {})


def _craft(monkeypatch, net, band, group):
    monkeypatch.setattr(writer_mod, "_schedule", lambda n: n.schedule)
    rows = tuple(LayerSchedule(i, band, group, True, 1, 1) for i in range(len(net.layers)))
    net.schedule = Schedule(rows, net.profile.activation_sram_bytes * 8, net.profile.weight_sram_bytes * 8)
    return write_firmware(net)


def test_too_many_chip_channels_is_rejected_fast(monkeypatch):
    net = _adds(_big_profile(), (1, 1, 65535), 8)
    data = _craft(monkeypatch, net, 1, 65535)
    start = time.perf_counter()
    with pytest.raises(FirmwareError, match=f"format's limit is {MAX_CHIP_CHANNELS}"):
        load_firmware(data)
    assert time.perf_counter() - start < 1.0


def test_too_many_tiles_is_rejected_fast(monkeypatch):
    net = _adds(_big_profile(), (1024, 1, 512), 2)  # 1 row x 1 channel tiles: 2 * 1024 * 512 tiles
    data = _craft(monkeypatch, net, 1, 1)
    start = time.perf_counter()
    with pytest.raises(FirmwareError, match=f"tiles exceed the format's limit of {MAX_TILES}"):
        load_firmware(data)
    assert time.perf_counter() - start < 1.0


def test_writer_refuses_what_the_reader_would_refuse():
    net = _adds(_big_profile(), (1, 1, 65535), 5)
    net.schedule = Schedule(tuple(LayerSchedule(i, 1, 65535, True, 1, 1) for i in range(5)), 1 << 33, 1 << 33)
    with pytest.raises(FirmwareError, match="output channels in all"):
        write_firmware(net)
