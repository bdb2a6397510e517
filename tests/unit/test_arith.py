"""The chip's rounding, requantization, input conversion and weight decoding (datasheet section 2)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_sdk.arith import convert_input, decode_levels, integer_weights, requantize, round_shift
from edge_sdk.chips import load_profile

LS = load_profile("lightspeeur-2803")
NQE = load_profile("nqe-1mb")


@pytest.mark.parametrize(
    "acc, shift, want",
    [
        (5, 1, 3),
        (-5, 1, -3),
        (4, 1, 2),
        (-6, 2, -2),
        (-7, 2, -2),
        (6, 2, 2),
        (7, 0, 7),
        (-1, 1, -1),
        (1, 1, 1),
        (2**30, 12, 2**18),
        (-(2**30) - 2048, 12, -(2**18) - 1),
    ],
)
def test_round_half_away_from_zero(acc, shift, want):
    assert round_shift(np.array([acc]), shift, "half_away_from_zero")[0] == want


@pytest.mark.parametrize("acc, shift, want", [(5, 1, 2), (-5, 1, -3), (-1, 4, -1), (15, 4, 0), (16, 4, 1)])
def test_floor_shift(acc, shift, want):
    assert round_shift(np.array([acc]), shift, "floor")[0] == want


@given(st.integers(-(2**31), 2**31 - 1), st.integers(0, 15))
def test_rounding_matches_exact_fractions(acc, shift):
    from fractions import Fraction

    q = Fraction(acc, 2**shift)
    # half away from zero, computed with exact rationals
    mag = int(abs(q) + Fraction(1, 2))
    want = mag if acc >= 0 else -mag
    assert round_shift(np.array([acc]), shift, "half_away_from_zero")[0] == want
    assert round_shift(np.array([acc]), shift, "floor")[0] == acc // 2**shift


def test_requantize_clamps_act_and_keeps_raw():
    acc = np.array([-100, 0, 31 * 8 + 3, 10_000])
    assert requantize(acc, 3, LS, "act").tolist() == [0, 0, 31, 31]
    assert requantize(acc, 3, LS, "act").dtype == np.uint8
    assert requantize(acc, 3, LS, "raw").tolist() == [-13, 0, 31, 1250]
    assert requantize(np.array([7, 12, 13, -4]), 2, NQE, "act").tolist() == [1, 3, 3, 0]


def test_input_conversion_lightspeeur_formula():
    x = np.arange(256, dtype=np.uint8)
    want = np.minimum(((x.astype(int) >> 2) + 1) >> 1, 31)
    assert np.array_equal(convert_input(x, LS), want)
    assert convert_input(np.array([255], np.uint8), LS)[0] == 31
    assert np.array_equal(convert_input(x, NQE), x)


def test_pow2_decoding_and_integer_weights():
    mode = LS.mode(3)
    codes = np.array([-3, -2, -1, 0, 1, 2, 3], np.int8)
    assert decode_levels(codes, mode).tolist() == [-4, -2, -1, 0, 1, 2, 4]
    assert decode_levels(codes, LS.mode(5)).tolist() == codes.tolist()
    w = integer_weights(codes.reshape(1, 1, 7, 1), np.array([[3]], np.int16), mode)
    assert w.ravel().tolist() == [-12, -6, -3, 0, 3, 6, 12]
    assert mode.max_level == 4 and LS.mode(5).max_level == 15 and NQE.mode(3).max_level == 2
