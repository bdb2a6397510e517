"""Weight quantizers (methods.md sections 1, 2), fixed point, and cap calibration rules."""

import numpy as np
import pytest

from edge_sdk.chips import load_profile
from edge_sdk.convert.calibrate import batch_stat, calibrate
from edge_sdk.convert.float_exec import pixels_to_real, run_graph
from edge_sdk.convert.importer import import_tflite
from edge_sdk.convert.partition import partition
from edge_sdk.convert.plan import make_plan
from edge_sdk.convert.tflite_writer import tiny_cnn
from edge_sdk.convert.wquant import (
    fixed_point,
    heq_step,
    kernel_quant,
    layer_quant,
    levels_of,
    refit_integer,
    round_half_away,
    single_tap_encode,
)

LS = load_profile("lightspeeur-2803")
NQE = load_profile("nqe-1mb")
K = np.array([[0.9, -0.3, 0.05], [0.0, -0.6, 0.2], [0.45, 0.1, -0.15]])


def _one(bits, method="paper"):
    codes, m = kernel_quant(K[None, None], LS.mode(bits), method)
    return codes[0, 0], float(m[0, 0])


def test_round_half_away_from_zero():
    np.testing.assert_array_equal(round_half_away(np.array([0.5, -0.5, 1.5, -2.5, 0.49])), [1, -1, 2, -3, 0])


def test_five_bit_step_is_max_over_15():
    codes, m = _one(5)
    assert m == pytest.approx(0.9 / 15)
    np.testing.assert_array_equal(codes, round_half_away(K / (0.9 / 15)))
    assert codes.max() == 15


def test_one_bit_is_sign_times_mean_abs():
    codes, m = _one(1)
    assert m == pytest.approx(np.abs(K).mean())
    np.testing.assert_array_equal(codes, np.where(K >= 0, 1, -1))


def test_two_bit_ternary_threshold_is_quarter_mean():
    codes, m = _one(2)
    assert m == pytest.approx(np.abs(K).mean())
    np.testing.assert_array_equal(codes, np.where(np.abs(K) >= m / 4, np.sign(K), 0))


def test_three_bit_levels_are_quarter_half_and_full_mean():
    codes, scalar = _one(3)
    m = np.abs(K).mean()
    assert scalar == pytest.approx(m / 4)
    levels = levels_of(codes, LS.mode(3)) * scalar
    allowed = {0.0, m / 4, m / 2, m}
    assert all(min(abs(abs(v) - a) for a in allowed) < 1e-12 for v in levels.ravel())


def test_lloyd_never_worse_than_paper():
    rng = np.random.default_rng(0)
    w = rng.standard_t(3, (6, 5, 3, 3))
    for bits in (1, 2, 3, 5):
        mode = LS.mode(bits)
        errs = []
        for method in ("paper", "lloyd"):
            codes, m = kernel_quant(w, mode, method)
            errs.append(((levels_of(codes, mode) * m[..., None, None] - w) ** 2).sum())
        assert errs[1] <= errs[0] + 1e-9, bits


def test_fixed_point_shift_rule():
    mode = LS.mode(5)
    codes, m = kernel_quant(K[None, None] * 10, mode)  # max |w| = 9 -> shift_w = floor(log2(2047 / 9)) = 7
    none = np.zeros((1, 1), bool)
    fp = fixed_point(codes, m, np.array([1.0]), mode, LS, none, np.zeros((1, 1)))
    assert fp.shift == 7 and fp.scalars[0, 0] == round(0.6 * 128)
    fp = fixed_point(codes, m, np.array([50000.0]), mode, LS, none, np.zeros((1, 1)))
    assert fp.shift == 3  # shift_b = floor(log2(524287 / 50000)) = 3 wins
    assert fp.bias[0] == 50000 * 8
    tiny = fixed_point(codes * 0, m * 1e-6, np.array([0.0]), mode, LS, none, np.zeros((1, 1)))
    assert tiny.shift == 12  # clipped to the profile's shift range


def test_single_tap_kernels_are_encoded_exactly():
    code, scalar = single_tap_encode(np.array([1024.0, -96.0, 7.0]), LS.mode(5), 136)
    np.testing.assert_array_equal(code * scalar, [1024, -96, 7])
    assert (scalar <= 136).all() and (np.abs(code) <= 15).all()


def test_refit_integer_reduces_rounding_error():
    rng = np.random.default_rng(1)
    w2 = rng.normal(0, 10, (20, 3, 9))
    mode = LS.mode(5)
    m = np.abs(w2).max(-1) / 15
    codes = round_half_away(w2 / m[..., None]).astype(np.int64)
    scal = np.maximum(round_half_away(m), 1).astype(np.int64)
    before = ((codes * scal[..., None] - w2) ** 2).sum()
    c2, s2 = refit_integer(w2, codes, scal, mode, 136)
    assert ((c2 * s2[..., None] - w2) ** 2).sum() < before


def test_heq_step_ternary_and_quinary():
    rng = np.random.default_rng(2)
    w = rng.normal(0, 1, 20000)
    q = np.quantile(w, [1 / 3, 2 / 3])
    assert heq_step(w, NQE.mode(2)) == pytest.approx(q[1] - q[0])
    j = np.arange(1, 5)
    c = j - 2.5
    assert heq_step(w, NQE.mode(3)) == pytest.approx((c * np.quantile(w, j / 5)).sum() / (c * c).sum())
    codes, step = layer_quant(w, NQE.mode(3))
    counts = np.bincount(codes + 2, minlength=5) / w.size
    assert counts.min() > 0.1  # histogram equalization: every level is used


def test_percentile_cap_is_max_over_batches():
    model = import_tflite(tiny_cnn())
    g = model.graph
    plan = make_plan(g, partition(g, LS), LS)
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (40, 16, 16, 3)).astype(np.uint8)
    caps = calibrate(g, plan, x, levels=31, percentile=99.0, batch=10)
    first = plan.layers[0].groups[0]
    per_batch = [
        np.percentile(first.ref.evaluate(run_graph(g, pixels_to_real(g, x[i : i + 10]))), 99.0)
        for i in range(0, 40, 10)
    ]
    assert caps[first.key] == pytest.approx(max(per_batch))
    assert batch_stat(np.arange(101.0), "max", 0, 31) == 100.0
    assert plan.layers[1].groups[0].cap == 6.0  # ReLU6 -> capped ReLU with cap 6, not calibrated
