"""The packed-weight GEMM of the AVX-512 kernel variants: layout, bit-exactness against the reference, validation.

Output channels sit in the vector lanes, 16 to a block, so block edges, short last blocks, conv groups that
start mid-block and tiles whose first channel is not a multiple of 16 are what can go wrong; the strategies
below make all of them common.  On CPUs (or platforms) without a packed kernel the weights are accepted and
ignored, and the same assertions hold.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_sdk.runtime.reference import conv_acc


def _k():
    from edge_sdk.runtime import _emulator

    return _emulator


def _gemm_rows(wts: np.ndarray) -> np.ndarray:
    o, gi, k, _ = wts.shape
    kk = k * k * gi
    wk = np.zeros((o, -(-kk // 32) * 32), np.int16)
    wk[:, :kk] = wts.transpose(0, 2, 3, 1).reshape(o, kk)
    return wk


@given(o=st.integers(1, 70), kp32=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_pack_layout(emulator_available, o, kp32, seed):
    """Row b, position (kk*16 + j)*2 + t holds W[b*16 + j, 2*kk + t]; channels past O are zero."""
    from edge_sdk.runtime.emulator import pack_gemm_weights

    kp = 32 * kp32
    w = np.random.default_rng(seed).integers(-32767, 32768, (o, kp)).astype(np.int16)
    packed = pack_gemm_weights(w)
    nb = -(-o // 16)
    assert packed.shape == (nb, kp * 16) and packed.dtype == np.int16 and packed.flags.c_contiguous
    b, kk, j, t = np.meshgrid(np.arange(nb), np.arange(kp // 2), np.arange(16), np.arange(2), indexing="ij")
    ch = b * 16 + j
    got = packed[b, (kk * 16 + j) * 2 + t]
    want = np.where(ch < o, w[np.minimum(ch, o - 1), 2 * kk + t], 0)
    assert np.array_equal(got, want)


@settings(max_examples=150, deadline=None)
@given(
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    groups=st.sampled_from([1, 2, 3]),
    gi=st.integers(1, 20),
    go=st.sampled_from([1, 5, 8, 16, 17, 24, 32, 33, 48]),
    k=st.sampled_from([1, 3]),
    s=st.sampled_from([1, 2]),
    pad=st.tuples(*[st.integers(0, 1)] * 4),
    first=st.floats(0, 1),
    seed=st.integers(0, 2**31),
    shift=st.integers(0, 14),
    floor=st.booleans(),
    raw=st.booleans(),
    chunk=st.sampled_from([64, 1000, 96 * 1024]),
)
def test_packed_conv_equals_reference(
    emulator_available, h, w, groups, gi, go, k, s, pad, first, seed, shift, floor, raw, chunk
):
    """conv_tile with packed weights == reference conv + requantizer, for every kernel variant and any tile."""
    from edge_sdk.arith import round_shift
    from edge_sdk.runtime import emulator

    if k == 1:
        pad = (0, 0, 0, 0)
    if h + pad[0] + pad[2] < k or w + pad[1] + pad[3] < k or gi == go == 1:
        return
    c, o = groups * gi, groups * go
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 32, (h, w, c), dtype=np.uint8)
    wts = rng.integers(-2047, 2048, (o, gi, k, k)).astype(np.int32)
    bias = rng.integers(-(1 << 19), 1 << 19, o).astype(np.int32)
    acc = conv_acc(x, wts, bias, s, pad, groups).astype(np.int64)
    q = round_shift(acc, shift, "floor" if floor else "half_away_from_zero")
    want = q.astype(np.int32) if raw else np.clip(q, 0, 31).astype(np.uint8)
    ch0 = min(int(first * o), o - 1)  # a tile of channels ch0.. (mid-block and mid-group starts included)
    wk = _gemm_rows(wts)
    packed = emulator.pack_gemm_weights(wk)
    ho, wo = want.shape[:2]
    for isa in emulator.available_isas():
        got = _k().conv_tile(
            x, pad[0], pad[2], pad[1], pad[3], k, s, ho, wo, ch0, o - ch0, gi, go, 0, wk, bias,
            shift, floor, 31, raw, 31, _k().isa_index(isa), chunk, packed,
        )  # fmt: skip
        assert np.array_equal(got, want[:, :, ch0:]), isa


def test_backend_packs_only_where_a_kernel_uses_it(emulator_available):
    from edge_sdk.runtime import emulator

    for isa in emulator.available_isas():
        k = _k()
        backend = emulator.EmulatorBackend(isa)
        assert backend._packed == k.has_packed_gemm(k.isa_index(isa))
    assert not _k().has_packed_gemm(_k().isa_index("default"))
    with pytest.raises(ValueError, match="kernel variant"):
        _k().has_packed_gemm(99)


def _call(packed, weights=None, gi=3, go=20):
    x = np.zeros((4, 4, gi), np.uint8)
    wk = _gemm_rows(np.ones((go, gi, 3, 3), np.int32)) if weights is None else weights
    bias = np.zeros(go, np.int32)
    return _k().conv_tile(x, 1, 1, 1, 1, 3, 1, 4, 4, 0, go, gi, go, 0, wk, bias, 4, False, 31, False, 31, -1,
                          96 * 1024, packed)  # fmt: skip


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((2, 32 * 16), np.int32), "int16"),
        (np.zeros((1, 32 * 16), np.int16), r"packed weights must be \(ceil\(O/16\), kp\*16\) = \(2, 512\)"),
        (np.zeros((2, 64 * 16), np.int16), "found"),
        (np.zeros((2, 32, 16), np.int16), "2 dimensions"),
        (np.zeros((2, 32 * 16), np.int16)[:, ::2], "dimensions|C-contiguous"),
        ([[0] * 512] * 2, "numpy array"),
    ],
)
def test_bad_packed_weights_are_refused(emulator_available, bad, match):
    with pytest.raises(ValueError, match=match):
        _call(bad)


def test_depthwise_refuses_packed_weights(emulator_available):
    x = np.zeros((4, 4, 5), np.uint8)
    wd = np.zeros((9, 5), np.int16)
    with pytest.raises(ValueError, match="packed weights"):
        _k().conv_tile(x, 1, 1, 1, 1, 3, 1, 4, 4, 0, 5, 1, 1, 0, wd, np.zeros(5, np.int32), 4, False, 31, False,
                       31, -1, 96 * 1024, np.zeros((1, 16 * 9), np.int16))  # fmt: skip
