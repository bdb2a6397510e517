"""Property tests of the b-bit code packing (docs/firmware-format.md section 5.3)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_sdk.errors import FirmwareError
from edge_sdk.firmware.packing import (
    pack_binary,
    pack_signed,
    pack_unsigned,
    packed_size,
    pad_bits_clear,
    unpack_binary,
    unpack_signed,
    unpack_unsigned,
)

BITS = st.integers(min_value=1, max_value=8)


@st.composite
def signed_codes(draw):
    bits = draw(BITS)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    codes = draw(st.lists(st.integers(lo, hi), min_size=0, max_size=300))
    return bits, np.array(codes, dtype=np.int8)


@settings(max_examples=200, deadline=None)
@given(signed_codes())
def test_signed_round_trip_every_width(case):
    bits, codes = case
    data = pack_signed(codes, bits)
    assert len(data) == packed_size(codes.size, bits) == -(-codes.size * bits // 8)
    out = unpack_signed(data, bits, codes.size)
    assert out.dtype == np.int8
    np.testing.assert_array_equal(out, codes)
    assert pad_bits_clear(data, bits, codes.size)
    assert pack_signed(codes, bits) == data  # deterministic


@settings(max_examples=100, deadline=None)
@given(BITS, st.data())
def test_unsigned_round_trip(bits, data):
    fields = np.array(data.draw(st.lists(st.integers(0, (1 << bits) - 1), max_size=200)), dtype=np.uint8)
    packed = pack_unsigned(fields, bits)
    np.testing.assert_array_equal(unpack_unsigned(packed, bits, fields.size), fields)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([-1, 1]), max_size=200))
def test_binary_round_trip(codes):
    arr = np.array(codes, dtype=np.int8)
    data = pack_binary(arr)
    assert len(data) == -(-arr.size // 8)
    np.testing.assert_array_equal(unpack_binary(data, 1, arr.size), arr)


@settings(max_examples=100, deadline=None)
@given(BITS, st.integers(min_value=1, max_value=50), st.data())
def test_out_of_range_codes_are_rejected(bits, n, data):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    bad = data.draw(st.one_of(st.integers(-300, lo - 1), st.integers(hi + 1, 300)))
    codes = np.zeros(n, dtype=np.int64)
    codes[data.draw(st.integers(0, n - 1))] = bad
    with pytest.raises(FirmwareError, match=f"does not fit {bits} signed bits"):
        pack_signed(codes, bits)


def test_lsb_first_worked_examples_from_the_spec():
    assert pack_binary(np.array([1, -1, -1, 1, 1, 1, -1, 1, -1, 1])) == bytes([0xB9, 0x02])
    assert pack_signed(np.array([1, -1, 0, 1, -1]), 2) == bytes([0x4D, 0x03])
    assert pack_signed(np.array([3, -3, -1, 0, 2]), 3) == bytes([0xEB, 0x21])
    assert pack_signed(np.array([-15, 7, 15]), 5) == bytes([0xF1, 0x3C])


def test_ternary_field_minus_two_decodes_as_minus_two():
    # The packing layer is width-generic; the reader then rejects -2 for a ternary mode.
    assert unpack_signed(bytes([0b10]), 2, 1).tolist() == [-2]


def test_binary_and_widths_are_checked():
    with pytest.raises(FirmwareError, match="must be -1 or \\+1"):
        pack_binary(np.array([1, 0]))
    with pytest.raises(FirmwareError, match="field width"):
        pack_signed(np.array([0]), 9)
    with pytest.raises(FirmwareError, match="field width"):
        packed_size(3, 0)
    with pytest.raises(FirmwareError, match="integer array"):
        pack_signed(np.array([0.5]), 4)
    with pytest.raises(FirmwareError, match="need 2 bytes, found 1"):
        unpack_signed(b"\x00", 3, 5)
    with pytest.raises(FirmwareError, match="must be 0"):
        unpack_binary(bytes([0b10]), 2, 1)


def test_pad_bits_detects_garbage():
    assert not pad_bits_clear(bytes([0b1000_0001]), 3, 2)
    assert pad_bits_clear(bytes([0b0011_1111]), 3, 2)


@pytest.mark.parametrize("bits", range(1, 9))
def test_empty_and_large(bits):
    assert pack_signed(np.zeros(0, np.int8), bits) == b""
    assert unpack_signed(b"", bits, 0).shape == (0,)
    rng = np.random.default_rng(bits)
    codes = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=100_003).astype(np.int8)
    np.testing.assert_array_equal(unpack_signed(pack_signed(codes, bits), bits, codes.size), codes)


@pytest.mark.parametrize("bits", range(1, 9))
def test_chunk_boundaries_do_not_change_the_stream(monkeypatch, bits):
    from edge_sdk.firmware import packing

    rng = np.random.default_rng(100 + bits)
    codes = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=1000).astype(np.int8)
    whole = pack_signed(codes, bits)
    monkeypatch.setattr(packing, "CHUNK", 64)
    assert pack_signed(codes, bits) == whole
    np.testing.assert_array_equal(unpack_signed(whole, bits, codes.size), codes)
