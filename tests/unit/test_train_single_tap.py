"""Fused-stage integers of single-tap kernels, and CutMix for distillation."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edge_sdk.chips import load_profile  # noqa: E402
from edge_sdk.train.data import cutmix, generator  # noqa: E402
from edge_sdk.train.integer import conv_params  # noqa: E402
from edge_sdk.train.layers import QConv  # noqa: E402


def _pointwise(bits: int, seed: int = 0) -> QConv:
    torch.manual_seed(seed)
    node = QConv(load_profile("lightspeeur-2803"), 16, 8, kernel=1, bits=bits)
    with torch.no_grad():  # magnitudes over two decades, as in a real 1x1 layer
        mag = 10 ** torch.empty(8, 16, 1, 1).uniform_(-2, 0)
        node.conv.weight.copy_(mag * torch.sign(torch.randn(8, 16, 1, 1)))
    node.cap.fill_(4.0)
    node.set_stage("fused")
    return node


@pytest.mark.parametrize("bits", [3, 5])
def test_single_tap_weights_keep_scalar_precision(bits):
    """A 1x1 weight is one tap: its (code, scalar) pair is chosen for the product, so the
    integer weight is within 1 % of the wanted value down to 1/40 of the layer's largest."""
    node = _pointwise(bits)
    p = conv_params(node, 4.0 / 31)
    w = node.conv.weight.double() * (4.0 / 31) / (4.0 / 31) * 2.0 ** p["shift"]
    got = p["w_int"].detach()
    big = w.abs() >= w.abs().max() / 40
    rel = ((got - w).abs() / w.abs())[big]
    assert float(rel.max()) < 0.01, float(rel.max())
    assert float(got.abs().max()) <= node.profile.weight_int_max
    mode = node.profile.mode(bits)
    assert float(p["codes"].abs().max()) <= mode.max  # stored codes stay in the mode's range


def test_single_tap_integers_are_code_times_scalar():
    node = _pointwise(5, seed=1)
    p = conv_params(node, 4.0 / 31)
    assert torch.equal(p["w_int"].detach(), p["codes"] * p["scalars"][:, :, None, None])


def test_multi_tap_kernels_are_unchanged():
    """3x3 kernels keep the per-kernel max-level fit (level 15 = the largest tap)."""
    torch.manual_seed(2)
    node = QConv(load_profile("lightspeeur-2803"), 4, 4, kernel=3, bits=5)
    node.cap.fill_(4.0)
    node.set_stage("fused")
    p = conv_params(node, 4.0 / 31)
    assert torch.equal(p["codes"].abs().amax(dim=(2, 3)), torch.full((4, 4), 15.0, dtype=p["codes"].dtype))


def test_cutmix_pastes_one_box_and_reports_its_share():
    x = torch.zeros(6, 32, 32, 3, dtype=torch.uint8)
    for i in range(6):
        x[i] = i * 40
    y = torch.arange(6)
    mixed, pasted, lam = cutmix(x, y, generator(3))
    assert mixed.dtype == torch.uint8 and mixed.shape == x.shape
    for i in range(6):
        kept = (mixed[i] == x[i]).all(dim=-1).float().mean().item()
        if int(pasted[i]) != i:
            assert kept == pytest.approx(lam)
        src = x[int(np.where(y.numpy() == int(pasted[i]))[0][0])]
        assert ((mixed[i] == x[i]) | (mixed[i] == src)).all()
    assert 0.0 <= lam <= 1.0


def test_cutmix_is_deterministic():
    x = torch.randint(0, 256, (4, 16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    a = cutmix(x, torch.arange(4), generator(7))
    b = cutmix(x, torch.arange(4), generator(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]
