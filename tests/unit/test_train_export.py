"""Bit-exact export: the fused torch model computes exactly the chip's codes (both profiles)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edge_sdk.errors import ConversionError  # noqa: E402
from edge_sdk.runtime import Device  # noqa: E402
from edge_sdk.runtime.reference import run_reference  # noqa: E402
from edge_sdk.train import QNet  # noqa: E402
from edge_sdk.train.data import ArrayData  # noqa: E402
from edge_sdk.train.export import to_network, torch_codes, weight_memory_bits  # noqa: E402
from edge_sdk.train.trainer import calibrate  # noqa: E402

BITS = {"lightspeeur-2803": [1, 2, 3, 5], "nqe-1mb": [1, 2, 3]}


def _spec(profile: str) -> list[dict]:
    b = BITS[profile]
    return [
        {"out": 8, "bits": b[-1]},
        {"out": 8, "bits": b[0], "s": 2},
        {"op": "pool"},
        {"out": 8, "bits": b[1]},
        {"op": "add", "inputs": [2, 3]},
        {"out": 12, "bits": b[2], "g": 1 if profile == "lightspeeur-2803" else 4},
        {"out": 12, "bits": b[-1], "k": 1},  # 1x1 at the widest mode: single-tap encoding
        {"out": 12, "bits": b[-1], "g": 12},  # depthwise
        {"out": 8, "bits": b[0], "k": 1, "raw": True},
    ]


def _fused_model(profile: str) -> tuple[QNet, torch.Tensor]:
    """A small model pushed through every stage on random data (no real training needed)."""
    torch.manual_seed(0)
    model = QNet(profile, (16, 16, 3), _spec(profile))
    x = torch.randint(0, 256, (48, 16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    model.train()
    model.set_stage("qweight")
    for _ in range(3):
        model(x)
    calibrate(model, ArrayData(x, torch.zeros(len(x), dtype=torch.long)), 2, 24, 0)
    model.set_stage("qact")
    model.train()
    model(x)
    model.set_stage("fused")
    return model, x


@pytest.mark.parametrize("profile", sorted(BITS))
def test_fused_torch_equals_chip_bit_for_bit(profile):
    model, x = _fused_model(profile)
    net = to_network(model)
    net.validate()
    frames = x[:6].numpy()
    logits, outs = torch_codes(model, frames)
    dev = Device("reference").load(net)
    for n, frame in enumerate(frames):
        ref = run_reference(net, frame)
        for i in range(len(model.nodes)):
            assert np.array_equal(ref[i], outs[i][n]), f"layer {i} ({net.layers[i].name}) differs"
        res = dev.run(frame)
        assert np.array_equal(res.codes, outs[-1][n])
        np.testing.assert_allclose(res.output, logits[n], rtol=1e-4, atol=1e-4)
    # the codes are not trivially constant: the test exercises the requantizer
    assert all(np.unique(o).size > 1 for o in outs)


@pytest.mark.parametrize("profile", sorted(BITS))
def test_export_respects_profile(profile):
    model, _ = _fused_model(profile)
    net = to_network(model)
    p = net.profile
    for layer in net.chip_layers:
        assert p.shift_min <= layer.shift <= p.shift_max
        if layer.op == "conv":
            assert layer.weight_bits in p.weight_modes
    assert 0 < weight_memory_bits(net) <= p.weight_sram_bytes * 8


def test_export_needs_fused_stage():
    model = QNet("nqe-1mb", (8, 8, 3), [{"out": 4, "bits": 2, "raw": True}])
    with pytest.raises(ConversionError):
        to_network(model)


def test_firmware_roundtrip_keeps_codes():
    firmware = pytest.importorskip("edge_sdk.firmware")
    model, x = _fused_model("lightspeeur-2803")
    net = to_network(model)
    image = firmware.load_firmware(firmware.write_firmware(net))
    _, outs = torch_codes(model, x[:2].numpy())
    res = Device("reference").load(image).run(x[:2].numpy())
    assert np.array_equal(res.codes, outs[-1])
