"""Folding batch norm never changes a weight code: the fused stage (and so the firmware) quantizes
exactly the latent weights that the qact stage trained with.

QAT parks weights on quantization thresholds; deciding their codes again on BN-rescaled weights,
or in float64 instead of the training dtype, flipped some of them (one flip moved a channel of
the ResNet-8 stem by 6 codes and cost the network 2.8 points).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from edge_sdk import load_profile  # noqa: E402
from edge_sdk.train.integer import conv_params  # noqa: E402
from edge_sdk.train.layers import QConv  # noqa: E402
from edge_sdk.train.quant import kernel_quant  # noqa: E402

PROFILE = load_profile("lightspeeur-2803")


def _knife_edge_conv(bits: int, method: str, seed: int) -> QConv:
    """Random kernels, each with one tap moved onto its quantizer's float32 decision boundary,
    and batch norm with gains of both signs."""
    g = torch.Generator().manual_seed(seed)
    node = QConv(PROFILE, 6, 16, bits=bits, kernel_method=method)
    w = torch.randn(16, 6, 3, 3, generator=g)
    mag = w.abs()
    if bits == 2:  # twn / paper thresholds (opt has no fixed threshold: random kernels only)
        frac = {"twn": 0.7, "paper": 0.25}.get(method)
        if frac is not None:
            rest = mag.sum(dim=(2, 3)) - mag[:, :, 0, 0]
            w[:, :, 0, 0] = torch.sign(w[:, :, 0, 0]) * frac * rest / (9 - frac)  # |w00| == frac mean|w|
    elif bits == 5:  # a tap at exactly 7.5 steps (step = max|w| / 15): round half away
        w[:, :, 1, 1] = mag.amax(dim=(2, 3)) * 7.5 / 15
    node.conv.weight.data.copy_(w)
    node.conv.bias.data.copy_(torch.randn(16, generator=g))
    node.bn.weight.data.copy_(torch.randn(16, generator=g) * 0.7)  # some gains negative
    node.bn.bias.data.copy_(torch.randn(16, generator=g))
    node.bn.running_mean.copy_(torch.randn(16, generator=g))
    node.bn.running_var.copy_(torch.rand(16, generator=g) + 0.1)
    node.cap.fill_(3.0)
    return node


@pytest.mark.parametrize(
    "bits,method", [(1, "paper"), (2, "paper"), (2, "twn"), (2, "opt"), (3, "paper"), (5, "paper")]
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fused_codes_are_the_trained_codes(bits, method, seed):
    node = _knife_edge_conv(bits, method, seed)
    node.set_stage("qact")
    trained, _, _ = kernel_quant(node.conv.weight, bits, method)  # what the qact forward used
    gain = node.bn.weight / torch.sqrt(node.bn.running_var + node.bn.eps)
    node.set_stage("fused")
    for dtype in (torch.float64, torch.float32):  # export / eval, and fused-stage training
        fused = conv_params(node, 1 / 31, dtype)["codes"]
        expected = trained.double() * torch.where(gain < 0, -1.0, 1.0).double()[:, None, None, None]
        assert torch.equal(fused.double(), expected), f"{dtype}: codes changed by folding"


def test_fused_weights_are_the_folded_quantized_weights():
    """The integer weights equal gain x quantized latent weights x 2^shift, to the scalar rounding."""
    node = _knife_edge_conv(2, "twn", 3)
    node.set_stage("qact")
    wq = node.weight().detach().double()
    gain = (node.bn.weight / torch.sqrt(node.bn.running_var + node.bn.eps)).detach().double()
    node.set_stage("fused")
    p = conv_params(node, 1 / 31)
    r = (1 / 31) / (3.0 / 31)
    want = wq * gain[:, None, None, None] * r * 2.0 ** p["shift"]
    got = p["w_int"].detach()
    scal = p["scalars"].double()[:, :, None, None]
    assert torch.all((got - want).abs() <= 0.5 * (want.abs() / scal.clamp(min=1)) + 1e-9)
    assert torch.allclose(node.weight().detach().double(), wq * gain[:, None, None, None], rtol=1e-6)


def test_old_checkpoints_without_gain_still_load():
    node = QConv(PROFILE, 3, 4, bits=2)
    state = {k: v for k, v in node.state_dict().items() if not k.endswith("gain")}
    fresh = QConv(PROFILE, 3, 4, bits=2)
    fresh.gain.fill_(5.0)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.gain, torch.ones(4))


@pytest.mark.parametrize("profile,bits", [("lightspeeur-2803", 2), ("lightspeeur-2803", 5), ("nqe-1mb", 2)])
def test_quant_distance_is_zero_on_the_grid_and_pulls_towards_it(profile, bits):
    """The oscillation-dampening penalty: 0 for weights already on their quantized values, and its
    gradient step moves off-grid weights towards them."""
    node = QConv(load_profile(profile), 4, 6, bits=bits, kernel_method="twn" if bits == 2 else "paper")
    w = torch.randn(6, 4, 3, 3, generator=torch.Generator().manual_seed(7))
    node.conv.weight.data.copy_(w)
    node.set_stage("qact")
    d0 = node.quant_distance()
    assert float(d0.detach()) > 0
    d0.backward()
    with torch.no_grad():
        node.conv.weight -= 0.05 * node.conv.weight.grad / node.conv.weight.grad.abs().max()
    assert float(node.quant_distance().detach()) < float(d0.detach())
    if profile == "lightspeeur-2803":
        with torch.no_grad():
            _, levels, scalar = kernel_quant(node.conv.weight, bits, node.kernel_method)
            node.conv.weight.copy_(levels * scalar[:, :, None, None])
        assert float(node.quant_distance().detach()) < 1e-10
