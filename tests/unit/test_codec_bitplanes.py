"""GF(2) bit-planes of fixed-point latents (methods.md section 3) and bit packing: exact round trips."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edge_sdk.codec import bitplanes as bp
from edge_sdk.errors import BitstreamError, InputError

shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=6)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 16), shapes, st.integers(0, 2**32 - 1))
def test_planes_round_trip(bits, shape, seed):
    codes = np.random.default_rng(seed).integers(0, 1 << bits, shape)
    planes = bp.to_planes(codes, bits)
    assert planes.shape == (bits, *shape) and planes.dtype == np.uint8
    back = bp.from_planes(planes)
    assert np.array_equal(back, codes) and back.dtype == bp.code_dtype(bits)


def test_plane_b_is_bit_b_lsb_first():
    planes = bp.to_planes(np.array([0b1011, 0b0100]), 4)
    assert planes[:, 0].tolist() == [1, 1, 0, 1] and planes[:, 1].tolist() == [0, 0, 1, 0]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(-4, 8), st.booleans(), st.integers(0, 2**32 - 1))
def test_fixed_point_codes_round_trip_and_value_identity(bits, frac, signed, seed):
    codes = np.random.default_rng(seed).integers(0, 1 << bits, 50)
    x = bp.from_fixed(codes, bits, frac, signed)
    assert np.array_equal(bp.to_fixed(x, bits, frac, signed), codes)
    planes = bp.to_planes(codes, bits).astype(np.float64)
    weights = 2.0 ** (np.arange(bits) - frac)
    if signed:
        weights[-1] = -weights[-1]  # two's complement sign bit
    assert np.array_equal((planes * weights[:, None]).sum(axis=0), x)  # x = sum bit_b 2^(b-f)


def test_fixed_point_rounds_half_away_and_saturates():
    assert bp.to_fixed([0.25, 0.75, 1.25], 4, 1).tolist() == [1, 2, 3]  # 0.5 -> 1, 1.5 -> 2, 2.5 -> 3
    assert bp.to_fixed([100.0, -3.0], 4, 0).tolist() == [15, 0]
    assert bp.from_fixed(bp.to_fixed([-1.5, 9.0], 4, 1, signed=True), 4, 1, signed=True).tolist() == [
        -1.5,
        3.5,
    ]


def test_binary_channels_are_c_times_b_planes():
    codes = np.random.default_rng(2).integers(0, 8, (3, 5, 2))
    ch = bp.to_binary_channels(codes, 3)
    assert ch.shape == (3, 5, 6)
    assert np.array_equal(ch[..., 1 * 3 + 2], (codes[..., 1] >> 2) & 1)
    assert np.array_equal(bp.from_binary_channels(ch, 3), codes)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 16), st.integers(1, 5), st.integers(1, 5), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_latent_planes_msb_first_round_trip(bits, h, w, c, seed):
    latent = np.random.default_rng(seed).integers(0, 1 << bits, (h, w, c))
    planes = bp.latent_planes(latent, bits)
    assert planes.shape == (c * bits, h, w)
    assert np.array_equal(planes[0], (latent[..., 0] >> (bits - 1)) & 1)  # MSB of channel 0 first
    assert np.array_equal(planes[c * bits - 1], latent[..., c - 1] & 1)
    assert np.array_equal(bp.latent_from_planes(planes, bits), latent)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.uint8, shapes, elements=st.integers(0, 1)))
def test_pack_unpack_round_trip(binary):
    data = bp.pack_bits(binary)
    assert len(data) == (binary.size + 7) // 8
    assert np.array_equal(bp.unpack_bits(data, binary.shape), binary)


def test_unpack_rejects_wrong_length_and_dirty_padding():
    with pytest.raises(BitstreamError, match="expected 1 bytes .* found 2"):
        bp.unpack_bits(b"\x00\x00", (5,))
    with pytest.raises(BitstreamError, match="padding"):
        bp.unpack_bits(b"\x01", (5,))


@pytest.mark.parametrize(
    "call",
    [
        lambda: bp.to_planes([16], 4),
        lambda: bp.to_planes([-1], 4),
        lambda: bp.to_planes([1.5], 4),
        lambda: bp.to_planes([1], 0),
        lambda: bp.to_planes([1], 17),
        lambda: bp.from_planes(np.full((2, 3), 2)),
        lambda: bp.latent_planes(np.zeros((2, 2)), 3),
        lambda: bp.pack_bits([0, 2]),
    ],
)
def test_invalid_inputs_raise_input_error(call):
    with pytest.raises(InputError):
        call()
