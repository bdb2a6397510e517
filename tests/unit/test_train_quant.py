"""edge_sdk.train quantizers: levels, straight-through gradients, HEQ step, rounding."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edge_sdk.arith import round_shift as np_round_shift  # noqa: E402
from edge_sdk.train.quant import (  # noqa: E402
    act_quant_floor,
    act_quant_round,
    heq_step,
    kernel_quant,
    kernel_quantize,
    nqe_codes,
    nqe_quantize,
    percentile99,
    round_shift,
)


@pytest.fixture
def w():
    return torch.randn(6, 5, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_1bit_is_sign_times_mean_abs(w):
    codes, levels, m = kernel_quant(w, 1)
    assert set(codes.unique().tolist()) <= {-1.0, 1.0}
    assert torch.allclose(m, w.abs().mean(dim=(2, 3)))
    assert torch.equal(levels, torch.where(w >= 0, 1.0, -1.0).double())


def test_2bit_ternary_threshold_is_quarter_mean(w):
    codes, levels, m = kernel_quant(w, 2)
    keep = w.abs() >= m[:, :, None, None] / 4
    assert torch.equal(levels != 0, keep)
    assert set(codes.unique().tolist()) <= {-1.0, 0.0, 1.0}


def test_3bit_pow2_levels_and_codes(w):
    codes, levels, step = kernel_quant(w, 3)
    assert set(levels.abs().unique().tolist()) <= {0.0, 1.0, 2.0, 4.0}
    assert codes.abs().max() <= 3
    # a code decodes to its level exactly as the chip's pow2 rule does
    mag = torch.where(codes == 0, 0.0, 2.0 ** (codes.abs() - 1))
    assert torch.equal(torch.sign(codes) * mag, levels)
    assert torch.allclose(step, w.abs().mean(dim=(2, 3)) / 4)


def test_5bit_linear_codes_reach_15(w):
    codes, levels, step = kernel_quant(w, 5)
    assert codes.abs().max() == 15 and torch.equal(codes, levels)
    assert torch.allclose(levels * step[:, :, None, None], w, atol=float(step.max()) / 2 + 1e-12)


@pytest.mark.parametrize("bits", [1, 2, 3, 5])
def test_kernel_quantize_straight_through(w, bits):
    x = w.clone().requires_grad_(True)
    (kernel_quantize(x, bits) * 3).sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 3.0))


@pytest.mark.parametrize("bits,levels", [(1, {-1, 1}), (2, {-1, 0, 1}), (3, {-2, -1, 0, 1, 2})])
def test_nqe_codes_levels(bits, levels):
    x = torch.randn(4000, generator=torch.Generator().manual_seed(1))
    codes = nqe_codes(x, heq_step(x, bits), bits)
    assert set(codes.unique().int().tolist()) == levels


@pytest.mark.parametrize("bits", [2, 3])
def test_heq_equalizes_level_usage(bits):
    x = torch.randn(200_000, generator=torch.Generator().manual_seed(2))
    codes = nqe_codes(x, heq_step(x, bits), bits)
    n = {2: 3, 3: 5}[bits]
    freq = torch.stack([(codes == c).float().mean() for c in codes.unique()])
    assert len(freq) == n and float((freq - 1 / n).abs().max()) < 0.06


def test_heq_ternary_is_quantile_gap():
    x = torch.randn(30_001, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    q = torch.quantile(x, torch.tensor([1 / 3, 2 / 3], dtype=torch.float64))
    assert heq_step(x, 2) == pytest.approx(float(q[1] - q[0]), rel=1e-9)


def test_nqe_quantize_ste_masks_outside_range():
    x = torch.tensor([0.1, -0.4, 1.2, 2.4, -3.0], requires_grad=True)
    y = nqe_quantize(x, 1.0, 3)
    assert y.tolist() == [0.0, 0.0, 1.0, 2.0, -2.0]
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 1.0, 0.0]


def test_activation_quantizers():
    x = torch.tensor([-1.0, 0.2, 1.49, 2.5, 9.0], requires_grad=True)
    y = act_quant_round(x, 3.1, 31)
    assert torch.allclose(y / 0.1, torch.tensor([0.0, 2.0, 15.0, 25.0, 31.0]))
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    x2 = torch.tensor([-0.5, 0.9, 1.0, 3.99, 4.5], requires_grad=True)
    y2 = act_quant_floor(x2, 3)
    assert y2.tolist() == [0.0, 0.0, 1.0, 3.0, 3.0]
    y2.sum().backward()
    assert x2.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize("rounding", ["half_away_from_zero", "floor"])
def test_round_shift_matches_chip(rounding):
    acc = np.random.default_rng(4).integers(-(2**30), 2**30, size=5000)
    for n in (0, 1, 3, 12):
        got = round_shift(torch.from_numpy(acc).double(), n, rounding).numpy().astype(np.int64)
        assert np.array_equal(got, np_round_shift(acc, n, rounding))


def test_percentile99():
    x = torch.arange(1000, dtype=torch.float32)
    assert percentile99(x) == 989.0


@pytest.mark.parametrize("bits", [1, 2, 3, 5])
def test_agrees_with_converter_kernel_quant(w, bits):
    """Training and the .tflite converter quantize weights by the same rules (methods.md section 1)."""
    wquant = pytest.importorskip("edge_sdk.convert.wquant")
    from edge_sdk import load_profile

    mode = load_profile("lightspeeur-2803").mode(bits)
    codes, m = wquant.kernel_quant(w.numpy(), mode)
    got_codes, _, got_m = kernel_quant(w, bits)
    assert np.array_equal(got_codes.numpy().astype(np.int64), codes)
    np.testing.assert_allclose(got_m.numpy(), m, rtol=1e-12)


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_agrees_with_converter_heq_step(bits):
    wquant = pytest.importorskip("edge_sdk.convert.wquant")
    from edge_sdk import load_profile

    x = torch.randn(5000, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    mode = load_profile("nqe-1mb").mode(bits)
    assert heq_step(x, bits) == pytest.approx(wquant.heq_step(x.numpy(), mode), rel=1e-9)


def test_2bit_opt_is_the_least_squares_ternary_fit(w):
    """``method="opt"``: no keep-set of taps (with the best scalar for it) fits a kernel closer."""
    import itertools

    codes, levels, alpha = kernel_quant(w, 2, "opt")
    assert set(codes.unique().tolist()) <= {-1.0, 0.0, 1.0}
    got = ((levels * alpha[:, :, None, None] - w) ** 2).sum(dim=(2, 3))
    mag = w.abs().flatten(2)
    best = torch.full(got.shape, float("inf"), dtype=w.dtype)
    for r in range(1, 10):
        for keep in itertools.combinations(range(9), r):
            kept = mag[:, :, list(keep)]
            a = kept.mean(dim=2)  # the least-squares scalar of this keep-set
            err = (mag**2).sum(dim=2) - 2 * a * kept.sum(dim=2) + r * a * a
            best = torch.minimum(best, err)
    np.testing.assert_allclose(got.numpy(), best.numpy(), rtol=1e-9, atol=1e-12)
    twn = kernel_quant(w, 2, "twn")
    twn_err = ((twn[1] * twn[2][:, :, None, None] - w) ** 2).sum(dim=(2, 3))
    assert bool((got <= twn_err + 1e-12).all())


def test_2bit_opt_one_tap_kernel_is_exact():
    w = torch.zeros(2, 2, 3, 3, dtype=torch.float64)
    w[0, 1, 1, 1], w[1, 0, 0, 2] = 0.37, -2.5
    codes, levels, alpha = kernel_quant(w, 2, "opt")
    assert torch.equal(levels * alpha[:, :, None, None], w)
