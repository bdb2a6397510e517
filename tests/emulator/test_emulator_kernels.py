"""Kernel-level tests: the requantizer's rounding edge cases, add, max-pool and conv against arith / reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edge_sdk.arith import requantize as spec_requantize
from edge_sdk.arith import round_shift
from edge_sdk.chips import load_profile
from edge_sdk.runtime.reference import add_acc, conv_acc, maxpool_codes

PROFILES = {p: load_profile(p) for p in ("lightspeeur-2803", "nqe-1mb")}
I32 = np.iinfo(np.int32)


def _k():
    from edge_sdk.runtime import _emulator

    return _emulator


def _spec(acc: np.ndarray, shift: int, rounding: str, act_max: int, raw: bool) -> np.ndarray:
    q = round_shift(acc.astype(np.int64), shift, rounding)
    return q.astype(np.int32) if raw else np.clip(q, 0, act_max).astype(np.uint8)


def _edge_values(shift: int) -> np.ndarray:
    vals = {0, 1, -1, 2, -2, 3, -3, I32.max, I32.min, I32.max - 1, I32.min + 1, 31, 32, -31, -32}
    if shift:
        half = 1 << (shift - 1)
        unit = 1 << shift
        for m in range(-4, 5):
            for d in (-1, 0, 1):
                vals.add(m * unit + half + d)  # exact .5 ties and their neighbours
                vals.add(m * unit + d)
                vals.add(-(m * unit + half) + d)
        vals.update(
            {I32.max - half, I32.min + half, (I32.max >> shift) << shift, -((I32.max >> shift) << shift)}
        )
    return np.array(sorted(v for v in vals if I32.min <= v <= I32.max), dtype=np.int32)


@pytest.mark.parametrize("rounding", ["half_away_from_zero", "floor"])
@pytest.mark.parametrize("shift", [0, 1, 2, 3, 5, 11, 12, 15, 16, 24, 30])
@pytest.mark.parametrize("raw", [False, True])
def test_requantize_edge_cases(emulator_available, rounding, shift, raw):
    acc = _edge_values(shift)
    for act_max in (3, 31, 255):
        got = _k().requantize(acc, shift, rounding == "floor", act_max, raw)
        assert got.dtype == (np.int32 if raw else np.uint8)
        assert np.array_equal(got, _spec(acc, shift, rounding, act_max, raw)), (shift, act_max)


def test_documented_rounding_examples(emulator_available):
    k = _k()
    # docs/datasheet.md 2.1: R(5,1)=3, R(-5,1)=-3, R(-6,2)=-2 (half away); floor R(-5,1)=-3, R(5,1)=2
    assert k.requantize(np.array([5, -5], np.int32), 1, False, 31, True).tolist() == [3, -3]
    assert k.requantize(np.array([-6], np.int32), 2, False, 31, True).tolist() == [-2]
    assert k.requantize(np.array([-5, 5], np.int32), 1, True, 31, True).tolist() == [-3, 2]
    assert k.requantize(np.array([7, -7, 100], np.int32), 0, False, 31, False).tolist() == [7, 0, 31]


@pytest.mark.parametrize("pid", list(PROFILES))
def test_requantize_matches_profile_spec(emulator_available, pid):
    p = PROFILES[pid]
    rng = np.random.default_rng(0)
    acc = rng.integers(-(1 << 20), 1 << 20, 5000).astype(np.int32)
    for shift in range(p.shift_min, p.shift_max + 1):
        for output in ("act", "raw"):
            got = _k().requantize(acc, shift, p.rounding == "floor", p.act_max, output == "raw")
            assert np.array_equal(got, spec_requantize(acc, shift, p, output))


@settings(max_examples=100, deadline=None)
@given(
    acc=hnp.arrays(np.int32, st.integers(0, 70)),
    shift=st.integers(0, 30),
    floor=st.booleans(),
    act_max=st.integers(0, 255),
    raw=st.booleans(),
)
def test_requantize_property(emulator_available, acc, shift, floor, act_max, raw):
    got = _k().requantize(acc, shift, floor, act_max, raw)
    assert np.array_equal(got, _spec(acc, shift, "floor" if floor else "half_away_from_zero", act_max, raw))


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 5), st.integers(1, 9), st.integers(1, 40)),
    seed=st.integers(0, 2**31),
    ma=st.integers(-2048, 2047),
    mb=st.integers(-2048, 2047),
    shift=st.integers(0, 15),
    floor=st.booleans(),
    raw=st.booleans(),
)
def test_add_kernel(emulator_available, shape, seed, ma, mb, shift, floor, raw):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = rng.integers(0, 256, shape, dtype=np.uint8)
    got = _k().add(a, b, ma, mb, shift, floor, 31, raw)
    want = _spec(add_acc(a, b, (ma, mb)), shift, "floor" if floor else "half_away_from_zero", 31, raw)
    assert np.array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(shape=st.tuples(st.integers(2, 9), st.integers(2, 9), st.integers(1, 70)), seed=st.integers(0, 2**31))
def test_maxpool_kernel(emulator_available, shape, seed):
    x = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    assert np.array_equal(_k().maxpool(x), maxpool_codes(x))


@settings(max_examples=120, deadline=None)
@given(
    h=st.integers(1, 8),
    w=st.integers(1, 8),
    groups=st.sampled_from([1, 2, 3, "dw"]),
    gi=st.integers(1, 5),
    go=st.integers(1, 5),
    k=st.sampled_from([1, 3]),
    s=st.sampled_from([1, 2]),
    pad=st.tuples(*[st.integers(0, 1)] * 4),
    seed=st.integers(0, 2**31),
    shift=st.integers(0, 12),
    floor=st.booleans(),
    raw=st.booleans(),
    chunk=st.sampled_from([64, 256, 96 * 1024]),
)
def test_conv_kernel_direct(
    emulator_available, h, w, groups, gi, go, k, s, pad, seed, shift, floor, raw, chunk
):
    """conv_tile on a whole map == reference conv_acc + requantize (small im2col chunks included)."""
    from edge_sdk.runtime import emulator

    if k == 1:
        pad = (0, 0, 0, 0)
    if h + pad[0] + pad[2] < k or w + pad[1] + pad[3] < k:
        return
    if groups == "dw":
        groups, gi, go = 7, 1, 1
    c, o = groups * gi, groups * go
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 32, (h, w, c), dtype=np.uint8)
    wts = rng.integers(-2047, 2048, (o, gi, k, k)).astype(np.int32)
    bias = rng.integers(-(1 << 19), 1 << 19, o).astype(np.int32)
    acc = conv_acc(x, wts, bias, s, pad, groups)
    want = _spec(acc, shift, "floor" if floor else "half_away_from_zero", 31, raw)
    if gi == 1 and go == 1:
        wk = np.ascontiguousarray(wts.reshape(o, k * k).T.astype(np.int16))
    else:
        kk = k * k * gi
        wk = np.zeros((o, -(-kk // 32) * 32), np.int16)
        wk[:, :kk] = wts.transpose(0, 2, 3, 1).reshape(o, kk)
    ho, wo = want.shape[:2]
    for isa in emulator.available_isas():
        got = _k().conv_tile(
            x,
            pad[0],
            pad[2],
            pad[1],
            pad[3],
            k,
            s,
            ho,
            wo,
            0,
            o,
            gi,
            go,
            0,
            wk,
            bias,
            shift,
            floor,
            31,
            raw,
            31,
            _k().isa_index(isa),
            chunk,
        )
        assert np.array_equal(got, want), isa


def test_isa_names(emulator_available):
    k = _k()
    assert k.available_isas()[0] == "default"
    assert k.best_isa() in k.available_isas()
    assert set(k.available_isas()) <= set(k.isa_names())
    with pytest.raises(ValueError):
        k.isa_index("nope")
