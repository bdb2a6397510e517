"""Latents over GF(2): B-bit fixed-point values <-> B binary planes, and bit packing.

methods.md section 3 (arXiv 1808.05285): a fixed-point value ``x`` with ``B`` bits and
fractional length ``f`` is the integer ``u = x * 2**f`` (two's complement when signed),
and its binary planes are ``bit_b = (u >> b) & 1``, ``b = 0`` the least significant;
``x = sum_b bit_b * 2**(b - f)`` (with weight ``-2**(B-1-f)`` for the sign bit).
Everything here is vectorized numpy and exact: every round trip returns its input.

Two layouts are used:

* :func:`to_planes` / :func:`from_planes`: planes stacked on a new leading axis,
  index ``b`` (LSB first, as in the paper);
* :func:`latent_planes` / :func:`latent_from_planes`: what the arithmetic coder and the
  bitstream see, ``(C * B, H, W)`` for an ``(H, W, C)`` latent, plane ``c * B + j`` =
  bit ``B - 1 - j`` of channel ``c`` (most significant first, so the coder's
  "previous plane" context is the next more significant bit of the same channel).
"""

from __future__ import annotations

import numpy as np

from ..errors import BitstreamError, InputError

MAX_BITS = 16


def _check_bits(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= MAX_BITS:
        raise InputError(f"bits must be an int 1..{MAX_BITS}, found {bits!r}")
    return int(bits)


def code_dtype(bits: int) -> np.dtype:
    """The smallest unsigned dtype holding ``bits``-bit codes."""
    return np.dtype(np.uint8 if _check_bits(bits) <= 8 else np.uint16)


def check_codes(codes, bits: int) -> np.ndarray:
    """``codes`` as an int64 array of unsigned ``bits``-bit integers (InputError otherwise)."""
    bits = _check_bits(bits)
    arr = np.asarray(codes)
    if not np.issubdtype(arr.dtype, np.integer) and arr.dtype != np.bool_:
        raise InputError(f"codes must be integers, found dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= 1 << bits):
        raise InputError(f"codes must be in 0..{(1 << bits) - 1}, found {arr.min()}..{arr.max()}")
    return arr


def to_planes(codes, bits: int) -> np.ndarray:
    """Unsigned codes (any shape) -> uint8 planes ``(bits, *shape)``, ``planes[b] = (u >> b) & 1``."""
    arr = check_codes(codes, bits)
    shifts = np.arange(bits, dtype=np.int64).reshape((bits,) + (1,) * arr.ndim)
    return ((arr[None] >> shifts) & 1).astype(np.uint8)


def from_planes(planes) -> np.ndarray:
    """Inverse of :func:`to_planes`: ``u = sum_b planes[b] << b`` in the smallest unsigned dtype."""
    arr = np.asarray(planes)
    if arr.ndim < 1 or not 1 <= arr.shape[0] <= MAX_BITS:
        raise InputError(f"planes need a leading axis of 1..{MAX_BITS} bits, found shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise InputError("planes must hold only 0 and 1")
    bits = arr.shape[0]
    weights = (np.int64(1) << np.arange(bits, dtype=np.int64)).reshape((bits,) + (1,) * (arr.ndim - 1))
    return (arr.astype(np.int64) * weights).sum(axis=0).astype(code_dtype(bits))


def to_fixed(x, bits: int, frac: int, signed: bool = False) -> np.ndarray:
    """Real values -> ``bits``-bit fixed-point codes ``u`` (round half away from zero, saturating).

    Signed values are stored in two's complement, so the codes are always unsigned
    ``0 .. 2**bits - 1`` and :func:`to_planes` applies unchanged.
    """
    bits = _check_bits(bits)
    scaled = np.asarray(x, dtype=np.float64) * 2.0**frac
    q = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    q = np.clip(q, lo, hi).astype(np.int64)
    return (q & ((1 << bits) - 1)).astype(code_dtype(bits))


def from_fixed(codes, bits: int, frac: int, signed: bool = False) -> np.ndarray:
    """Fixed-point codes -> real values ``u / 2**frac`` (two's complement when ``signed``), float64."""
    arr = check_codes(codes, bits)
    if signed:
        arr = np.where(arr >= 1 << (bits - 1), arr - (1 << bits), arr)
    return arr.astype(np.float64) / 2.0**frac


def to_binary_channels(codes, bits: int) -> np.ndarray:
    """(H, W, C) codes -> (H, W, C * bits) binary channels, channel ``c * bits + b`` = bit b (LSB first)."""
    arr = check_codes(codes, bits)
    if arr.ndim != 3:
        raise InputError(f"codes must be (H, W, C), found shape {arr.shape}")
    planes = to_planes(arr, bits)  # (B, H, W, C)
    return np.ascontiguousarray(planes.transpose(1, 2, 3, 0).reshape(arr.shape[0], arr.shape[1], -1))


def from_binary_channels(channels, bits: int) -> np.ndarray:
    """Inverse of :func:`to_binary_channels`."""
    arr = np.asarray(channels)
    bits = _check_bits(bits)
    if arr.ndim != 3 or arr.shape[2] % bits:
        raise InputError(f"binary channels must be (H, W, C*{bits}), found shape {arr.shape}")
    h, w, cb = arr.shape
    return from_planes(arr.reshape(h, w, cb // bits, bits).transpose(3, 0, 1, 2))


def latent_planes(latent, bits: int) -> np.ndarray:
    """(H, W, C) codes -> coder planes (C * bits, H, W), per channel most significant bit first."""
    arr = check_codes(latent, bits)
    if arr.ndim != 3:
        raise InputError(f"latent must be (H, W, C), found shape {arr.shape}")
    planes = to_planes(arr, bits)[::-1]  # (B, H, W, C), MSB first
    return np.ascontiguousarray(planes.transpose(3, 0, 1, 2).reshape(-1, arr.shape[0], arr.shape[1]))


def latent_from_planes(planes, bits: int) -> np.ndarray:
    """Inverse of :func:`latent_planes`: (C * bits, H, W) -> (H, W, C) codes."""
    arr = np.asarray(planes)
    bits = _check_bits(bits)
    if arr.ndim != 3 or arr.shape[0] % bits:
        raise InputError(f"planes must be (C*{bits}, H, W), found shape {arr.shape}")
    c = arr.shape[0] // bits
    msb_first = arr.reshape(c, bits, arr.shape[1], arr.shape[2]).transpose(1, 2, 3, 0)
    return from_planes(msb_first[::-1])


def pack_bits(binary) -> bytes:
    """0/1 array (any shape, C order) -> bytes, 8 bits per byte, first bit = MSB, zero padded."""
    arr = np.asarray(binary)
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise InputError("pack_bits needs an array of 0 and 1")
    return np.packbits(arr.astype(np.uint8).ravel()).tobytes()


def unpack_bits(data, shape) -> np.ndarray:
    """Inverse of :func:`pack_bits` (BitstreamError if the length or the padding bits are wrong)."""
    shape = tuple(int(d) for d in shape)
    n = int(np.prod(shape, dtype=np.int64))
    buf = np.frombuffer(bytes(data), np.uint8)
    if buf.size != (n + 7) // 8:
        raise BitstreamError(f"packed bits: expected {(n + 7) // 8} bytes for {n} bits, found {buf.size}")
    bits = np.unpackbits(buf)
    if bits[n:].any():
        raise BitstreamError("packed bits: padding bits after the last bit must be 0")
    return bits[:n].reshape(shape)
