"""Writer -> reader round trips and writer determinism."""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest

from edge_sdk.builder import NetworkBuilder
from edge_sdk.errors import FirmwareError
from edge_sdk.firmware import FirmwareImage, load_firmware, write_firmware
from edge_sdk.firmware.samples import GOLDEN_PROFILES, golden_network, random_network
from edge_sdk.network import Network
from edge_sdk.tiling import compute_schedule

SEEDS = range(12)


def assert_networks_equal(a: Network, b: Network) -> None:
    """Every field and every array (values, dtype, shape) equal; None stays None."""
    assert a.profile == b.profile and a.profile.to_json() == b.profile.to_json()
    assert tuple(a.input_shape) == tuple(b.input_shape)
    assert a.metadata == b.metadata
    assert a.schedule == b.schedule
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers):
        for f in dataclasses.fields(la):
            va, vb = getattr(la, f.name), getattr(lb, f.name)
            if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
                assert isinstance(va, np.ndarray) and isinstance(vb, np.ndarray), f.name
                assert va.dtype == vb.dtype and va.shape == vb.shape, (la.name, f.name)
                assert va.tobytes() == vb.tobytes(), (la.name, f.name)
            elif isinstance(va, float) or isinstance(vb, float):
                assert struct.pack("<d", va) == struct.pack("<d", vb), (la.name, f.name)
            else:
                assert (tuple(va) if isinstance(va, (list, tuple)) else va) == (
                    tuple(vb) if isinstance(vb, (list, tuple)) else vb
                ), (la.name, f.name)


@pytest.mark.parametrize("profile", GOLDEN_PROFILES)
@pytest.mark.parametrize("seed", SEEDS)
def test_random_networks_round_trip(profile, seed):
    net = random_network(profile, seed)
    data = write_firmware(net)
    image = load_firmware(data)
    assert isinstance(image, FirmwareImage)
    assert_networks_equal(net, image.network)
    assert write_firmware(image.network) == data


@pytest.mark.parametrize("profile", GOLDEN_PROFILES)
def test_random_networks_cover_every_op_and_weight_width(profile):
    nets = [random_network(profile, seed) for seed in SEEDS]
    ops = {layer.op for net in nets for layer in net.layers}
    widths = {layer.weight_bits for net in nets for layer in net.layers if layer.op == "conv"}
    assert ops == {"conv", "maxpool", "add", "gap", "dense", "softmax"}
    assert widths == set(nets[0].profile.weight_modes)
    assert any(n.n_chip == len(n.layers) for n in nets) and any(n.n_chip < len(n.layers) for n in nets)


def test_metadata_with_nested_values_round_trips():
    net = golden_network("lightspeeur-2803")
    net.metadata = {
        "labels": ["a", "ü", "日本"],
        "nested": {"list": [1, -2, 2**63, None, True, 1.5e-300, {"deep": [b"\x00\xff", ""]}], "empty": {}},
        "bytes": b"\x00" * 40,
        "tuple": (1, 2),
        "numpy": {"scalar": np.float32(0.5), "int": np.int64(7), "array": np.arange(3)},
    }
    image = load_firmware(write_firmware(net))
    assert image.metadata["labels"] == ["a", "ü", "日本"]
    assert image.metadata["nested"]["list"][2] == 2**63
    assert image.metadata["nested"]["list"][6] == {"deep": [b"\x00\xff", ""]}
    assert image.metadata["tuple"] == [1, 2]  # tuples read back as lists (documented)
    assert image.metadata["numpy"] == {"scalar": 0.5, "int": 7, "array": [0, 1, 2]}


def test_writer_is_deterministic_across_metadata_orderings():
    a, b = golden_network("nqe-1mb"), golden_network("nqe-1mb")
    a.metadata = {"z": 1, "a": {"y": [1, {"q": 2, "b": 3}], "x": "s"}, "m": b"\x01"}
    b.metadata = {"m": b"\x01", "a": {"x": "s", "y": [1, {"b": 3, "q": 2}]}, "z": 1}
    assert write_firmware(a) == write_firmware(b) == write_firmware(a)


def test_writer_computes_a_missing_schedule():
    net = golden_network("lightspeeur-2803")
    with_schedule = write_firmware(net)
    net.schedule = None
    assert write_firmware(net) == with_schedule
    assert net.schedule is None  # the caller's network is not modified


def test_all_source_types_load_the_same(tmp_path):
    data = write_firmware(golden_network("lightspeeur-2803"))
    path = tmp_path / "g.edgefw"
    path.write_bytes(data)
    images = [load_firmware(s) for s in (data, bytearray(data), memoryview(data), str(path), path)]
    for image in images:
        assert image.sha256 == images[0].sha256 and image.size == len(data) and image.version == (1, 0)
        assert_networks_equal(images[0].network, image.network)
    conv = images[-1].network.layers[0]
    # Path: arrays are read-only views over the mapping, not copies.
    assert not conv.bias.flags.writeable and not conv.bias.flags.owndata
    assert [s.name for s in images[0].sections][:3] == ["PROFILE", "LAYERS", "WEIGHTS"]


def test_pow2_codes_are_stored_as_signed_codes():
    net = golden_network("lightspeeur-2803")
    layer = next(lay for lay in net.layers if lay.weight_bits == 3)
    image = load_firmware(write_firmware(net))
    loaded = next(lay for lay in image.network.layers if lay.name == layer.name)
    assert loaded.codes.min() >= -3 and loaded.codes.max() <= 3  # codes, not levels -4..4
    np.testing.assert_array_equal(loaded.codes, layer.codes)


def test_host_head_arrays_and_float_bits_are_exact():
    b = NetworkBuilder("lightspeeur-2803", (8, 8, 3), seed=3)
    b.conv(8, bits=2, output="raw")
    b.gap()
    w = np.array([[np.nan, -0.0, np.inf, 1e-45, 3.4e38, -1.5, 2.0, 0.1]], np.float32)
    b.dense(1, w=w, b=np.array([np.float32(1) / 3], np.float32))
    net = b.build()
    net.layers[0].out_scale = 0.1 + 0.2  # not representable in float32: needs the f64 field
    image = load_firmware(write_firmware(net))
    assert_networks_equal(net, image.network)


def test_writer_rejects_networks_it_cannot_store():
    net = golden_network("lightspeeur-2803")
    net.layers[0].shift = 99
    with pytest.raises(FirmwareError, match="not valid for its profile"):
        write_firmware(net)
    net = golden_network("lightspeeur-2803")
    net.layers[4].codes = np.zeros((1, 1, 1, 1), np.int8)  # a maxpool with codes would lose them
    with pytest.raises(FirmwareError, match="maxpool layer's codes is not stored"):
        write_firmware(net)
    net = golden_network("lightspeeur-2803")
    net.layers[0].out_scale = float("nan")
    with pytest.raises(FirmwareError, match="out_scale"):
        write_firmware(net)
    net = golden_network("lightspeeur-2803")
    net.metadata = {1: "int key"}
    with pytest.raises(FirmwareError, match="keys must be strings"):
        write_firmware(net)
    net = golden_network("lightspeeur-2803")
    net.schedule = compute_schedule(golden_network("nqe-1mb"))
    with pytest.raises(FirmwareError, match="schedule is not valid"):
        write_firmware(net)
    with pytest.raises(FirmwareError, match="expects a Network"):
        write_firmware("not a network")


def test_variant_profile_with_other_sram_round_trips():
    net = golden_network("nqe-1mb")
    net.profile = net.profile.with_sram(weight_bytes=4096, activation_bytes=2048)
    net.schedule = compute_schedule(net)
    image = load_firmware(write_firmware(net))
    assert image.profile.weight_sram_bytes == 4096
    assert image.network.schedule.activation_sram_bits == 2048 * 8
    assert_networks_equal(net, image.network)
