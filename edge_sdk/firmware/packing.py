"""Bit packing of b-bit weight codes (docs/firmware-format.md section 5.3).

Codes are packed as consecutive b-bit fields of an LSB-first bit stream: code ``j``
occupies stream bits ``j*b .. j*b+b-1`` (its least significant bit first) and stream
bit ``t`` is bit ``t % 8`` of byte ``t // 8``.  Signed codes are stored as b-bit two's
complement; binary weight modes store -1 as field 0 and +1 as field 1.  Everything is
vectorized with numpy so a multi-megabyte layer packs in milliseconds.
"""

from __future__ import annotations

import numpy as np

from ..errors import FirmwareError

CHUNK = 1 << 20  # fields per vectorized step; a multiple of 8

__all__ = [
    "pack_binary",
    "pack_signed",
    "pack_unsigned",
    "packed_size",
    "pad_bits_clear",
    "unpack_binary",
    "unpack_signed",
    "unpack_unsigned",
]


def packed_size(count: int, bits: int) -> int:
    """Bytes that ``count`` fields of ``bits`` bits occupy: ceil(count * bits / 8)."""
    _check_bits(bits)
    if count < 0:
        raise FirmwareError(f"field count must be >= 0, found {count}")
    return (count * bits + 7) // 8


def _check_bits(bits: int) -> None:
    if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool) or not 1 <= bits <= 8:
        raise FirmwareError(f"field width must be an integer 1..8 bits, found {bits!r}")


def _as_int_array(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu":
        raise FirmwareError(f"codes must be an integer array, found dtype {arr.dtype}")
    return arr.reshape(-1)


def _first_outside(flat: np.ndarray, lo: int, hi: int) -> tuple[int, int]:
    """(index, value) of the first element outside lo..hi (the caller knows one exists)."""
    bad = np.flatnonzero((flat < lo) | (flat > hi))
    return int(bad[0]), int(flat[bad[0]])


def pack_unsigned(fields: np.ndarray, bits: int) -> bytes:
    """Pack unsigned fields 0 .. 2^bits-1 into an LSB-first stream (zero pad bits)."""
    _check_bits(bits)
    flat = _as_int_array(fields)
    if flat.size and (flat.min() < 0 or flat.max() > (1 << bits) - 1):
        j, v = _first_outside(flat, 0, (1 << bits) - 1)
        raise FirmwareError(f"field {j} = {v} does not fit {bits} unsigned bits (0..{(1 << bits) - 1})")
    if bits == 8:
        return flat.astype(np.uint8).tobytes()
    out = bytearray(packed_size(flat.size, bits))
    for start in range(0, flat.size, CHUNK):  # CHUNK is a multiple of 8, so chunks end on byte boundaries
        part = flat[start : start + CHUNK].astype(np.uint8)
        # One row of 8 little-endian bits per field, keep the low ``bits`` columns, then
        # let packbits lay the concatenated stream out LSB-first.
        per_field = np.unpackbits(part[:, None], axis=1, bitorder="little")[:, :bits]
        packed = np.packbits(per_field.reshape(-1), bitorder="little").tobytes()
        out[start * bits // 8 : start * bits // 8 + len(packed)] = packed
    return bytes(out)


def unpack_unsigned(data, bits: int, count: int) -> np.ndarray:
    """The first ``count`` unsigned ``bits``-bit fields of a packed stream, as uint8.

    ``data`` is any buffer (bytes, memoryview, uint8 array); it must hold at least
    ``packed_size(count, bits)`` bytes, which is checked before anything is allocated.
    """
    need = packed_size(count, bits)
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    if buf.dtype != np.uint8:
        raise FirmwareError(f"packed data must be bytes or uint8, found dtype {buf.dtype}")
    if buf.size < need:
        raise FirmwareError(f"{count} {bits}-bit fields need {need} bytes, found {buf.size}")
    if bits == 8:
        return buf[:count].copy()
    fields = np.empty(count, dtype=np.uint8)
    # Chunked so the temporaries (count*bits bytes of 0/1 per chunk) stay small
    # however large the layer: the only full-size allocation is the result.
    for start in range(0, count, CHUNK):
        n = min(CHUNK, count - start)
        first = start * bits // 8
        planes = np.unpackbits(buf[first : first + packed_size(n, bits)], bitorder="little", count=n * bits)
        planes = planes.reshape(n, bits)
        out = fields[start : start + n]
        out[:] = planes[:, 0]
        for j in range(1, bits):
            out |= planes[:, j] << np.uint8(j)
    return fields


def pack_signed(codes: np.ndarray, bits: int) -> bytes:
    """Pack signed codes -2^(bits-1) .. 2^(bits-1)-1 as two's-complement fields."""
    _check_bits(bits)
    flat = _as_int_array(codes).astype(np.int64)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if flat.size and (flat.min() < lo or flat.max() > hi):
        j, v = _first_outside(flat, lo, hi)
        raise FirmwareError(f"code {j} = {v} does not fit {bits} signed bits ({lo}..{hi})")
    return pack_unsigned(flat & ((1 << bits) - 1), bits)


def unpack_signed(data, bits: int, count: int) -> np.ndarray:
    """The first ``count`` two's-complement ``bits``-bit codes of a stream, as int8."""
    fields = unpack_unsigned(data, bits, count)
    if bits == 8:
        return fields.view(np.int8)
    # Sign-extend in place: move the field's top bit to bit 7, then shift back arithmetically.
    fields <<= np.uint8(8 - bits)
    codes = fields.view(np.int8)
    codes >>= np.int8(8 - bits)
    return codes


def pack_binary(codes: np.ndarray, bits: int = 1) -> bytes:
    """Pack binary codes (-1 -> field 0, +1 -> field 1)."""
    flat = _as_int_array(codes)
    if flat.size and not np.all((flat == -1) | (flat == 1)):
        j = int(np.flatnonzero((flat != -1) & (flat != 1))[0])
        raise FirmwareError(f"binary code {j} = {int(flat[j])} must be -1 or +1")
    return pack_unsigned((flat > 0).astype(np.uint8), bits)


def unpack_binary(data, bits: int, count: int) -> np.ndarray:
    """Binary codes as int8 -1/+1 (FirmwareError for a field other than 0 or 1)."""
    fields = unpack_unsigned(data, bits, count)
    if fields.size and fields.max() > 1:
        j = int(np.flatnonzero(fields > 1)[0])
        raise FirmwareError(f"binary field {j} = {int(fields[j])} must be 0 (-1) or 1 (+1)")
    return (fields.astype(np.int8) * 2 - 1).astype(np.int8)


def pad_bits_clear(data, bits: int, count: int) -> bool:
    """True if the bits after the last field, up to the byte boundary, are all zero."""
    used = count * bits
    if used % 8 == 0:
        return True
    last = (
        int(np.frombuffer(data, dtype=np.uint8)[used // 8])
        if not isinstance(data, np.ndarray)
        else int(data.reshape(-1)[used // 8])
    )
    return last >> (used % 8) == 0
