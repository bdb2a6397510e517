"""The adaptive binary arithmetic coder in pure Python: the executable specification.

``_arith.pyx`` (Cython, ``nogil`` C loops) must produce the same bytes for the same
input and decode the same bits; the tests compare the two.  This module is also the
fallback when the extension is not built.  Everything is integer arithmetic on
unsigned 32/64-bit quantities (Python ints masked to the C widths), so the output
is the same on every machine and every Python.  See docs/codec.md, "Arithmetic coder".

Coder (an LZMA-style range coder, carry propagation through a cached byte):

* state ``low`` (33 bits), ``range`` (32 bits, kept >= 2**24 by renormalizing a
  byte at a time); ``p`` = P(bit == 0) in units of 2**-15, always in 1..32767;
* a bit splits the range at ``bound = (range >> 15) * p``: 0 takes ``[low, low+bound)``,
  1 takes ``[low+bound, low+range)``;
* adaptation: ``p += (32768 - p) >> s`` after a 0, ``p -= p >> s`` after a 1, with
  ``s = min(1 + floor(log2(n + 1)), 7)`` where ``n`` (saturating at 255) counts the
  bits this context has seen: fast learning first (about 1/(n+1)), then a window of
  about 128 bits;
* the first output byte of an LZMA range coder is always 0 and is not written; the
  flush picks the value in the final interval with the most trailing zero bits, and
  trailing zero bytes are dropped, because the decoder reads zeros past the end.

Context model 1 (bit-planes): planes ``(P, H, W)`` of 0/1, grouped ``G`` at a time
(the G bit-planes of one latent channel, most significant first).  The bit at
``(k, y, x)`` is coded with context ``16 * (k % G) + W + 2 N + 4 NE + 8 U`` where
W, N, NE are the already coded neighbours in the same plane (0 outside it) and
U is the bit at the same position in the previous, more significant plane of the
same group (0 for the most significant plane).  Planes, rows, columns in order.
"""

from __future__ import annotations

import numpy as np

PROB_BITS = 15
PROB_ONE = 1 << PROB_BITS
PROB_INIT = PROB_ONE // 2
MAX_SHIFT = 7
COUNT_MAX = 255
TOP = 1 << 24
MASK32 = 0xFFFFFFFF
CONTEXTS_PER_GROUP_BIT = 16
MAX_GROUP = 16

#: Adaptation shift by the number of bits a context has seen (saturating at 255).
SHIFT_TABLE = tuple(
    min((n + 1).bit_length(), MAX_SHIFT) for n in range(COUNT_MAX + 1)
)  # 1 + floor(log2(n+1))


class _Encoder:
    """Range encoder state; ``bytes()`` after ``finish()`` is the stream."""

    def __init__(self) -> None:
        self.low = 0
        self.range = MASK32
        self.cache = 0
        self.pending = 1  # bytes held back: the cache byte plus a run of 0xFF awaiting a carry
        self.out = bytearray()
        self.skip_first = True  # the leading byte is always 0: not written

    def _emit(self, byte: int) -> None:
        if self.skip_first:
            self.skip_first = False
            return
        self.out.append(byte)

    def _shift_low(self) -> None:
        if self.low < 0xFF000000 or self.low > MASK32:
            carry = self.low >> 32
            byte = self.cache
            while self.pending:
                self._emit((byte + carry) & 0xFF)
                byte = 0xFF
                self.pending -= 1
            self.cache = (self.low >> 24) & 0xFF
        self.pending += 1
        self.low = (self.low & 0x00FFFFFF) << 8

    def encode(self, bit: int, probs: list, counts: list, ctx: int) -> None:
        p = probs[ctx]
        shift = SHIFT_TABLE[counts[ctx]]
        bound = (self.range >> PROB_BITS) * p
        if bit:
            self.low += bound
            self.range -= bound
            probs[ctx] = p - (p >> shift)
        else:
            self.range = bound
            probs[ctx] = p + ((PROB_ONE - p) >> shift)
        if counts[ctx] < COUNT_MAX:
            counts[ctx] += 1
        while self.range < TOP:
            self.range = (self.range << 8) & MASK32
            self._shift_low()

    def finish(self) -> bytes:
        hi = self.low + self.range - 1  # last value inside the final interval
        for k in range(32, -1, -1):  # the value in [low, hi] with the most trailing zero bits
            mask = (1 << k) - 1
            value = (self.low + mask) & ~mask
            if value <= hi:
                self.low = value
                break
        for _ in range(5):
            self._shift_low()
        return bytes(self.out).rstrip(b"\x00")


class _Decoder:
    """Range decoder over ``data``; bytes past the end read as 0 (never out of the buffer)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.range = MASK32
        self.code = 0
        self.corrupt = False
        for _ in range(4):
            self.code = (self.code << 8) | self._next()

    def _next(self) -> int:
        byte = self.data[self.pos] if self.pos < len(self.data) else 0
        self.pos += 1
        return byte

    def decode(self, probs: list, counts: list, ctx: int) -> int:
        if self.code >= self.range:  # impossible in a stream this coder wrote
            self.corrupt = True
        p = probs[ctx]
        shift = SHIFT_TABLE[counts[ctx]]
        bound = (self.range >> PROB_BITS) * p
        if self.code < bound:
            self.range = bound
            probs[ctx] = p + ((PROB_ONE - p) >> shift)
            bit = 0
        else:
            self.code -= bound
            self.range -= bound
            probs[ctx] = p - (p >> shift)
            bit = 1
        if counts[ctx] < COUNT_MAX:
            counts[ctx] += 1
        while self.range < TOP:
            self.range = (self.range << 8) & MASK32
            self.code = ((self.code << 8) | self._next()) & MASK32
        return bit


def plane_contexts(planes: np.ndarray, group: int) -> np.ndarray:
    """Context index of every bit of ``planes`` (P, H, W) under context model 1 (vectorized)."""
    b = planes.astype(np.int64)
    n_planes, _, _ = b.shape
    west = np.zeros_like(b)
    west[:, :, 1:] = b[:, :, :-1]
    north = np.zeros_like(b)
    north[:, 1:, :] = b[:, :-1, :]
    north_east = np.zeros_like(b)
    north_east[:, 1:, :-1] = b[:, :-1, 1:]
    up = np.zeros_like(b)
    up[1:] = b[:-1]
    significance = np.arange(n_planes) % group
    up[significance == 0] = 0  # a group's most significant plane has no plane above it
    local = west + 2 * north + 4 * north_east + 8 * up
    return significance[:, None, None] * CONTEXTS_PER_GROUP_BIT + local


def encode_planes(planes: np.ndarray, group: int) -> bytes:
    """Code 0/1 planes (P, H, W), P a multiple of ``group`` (validated by the caller)."""
    n_ctx = CONTEXTS_PER_GROUP_BIT * group
    probs, counts = [PROB_INIT] * n_ctx, [0] * n_ctx
    enc = _Encoder()
    ctx = plane_contexts(planes, group).ravel().tolist()
    for bit, c in zip((planes.ravel() != 0).tolist(), ctx):
        enc.encode(bit, probs, counts, c)
    return enc.finish()


def decode_planes(data: bytes, shape: tuple, group: int) -> tuple[np.ndarray, int, bool]:
    """Decode ``shape`` = (P, H, W) bits: (planes, bytes consumed, corrupt flag)."""
    n_planes, height, width = shape
    n_ctx = CONTEXTS_PER_GROUP_BIT * group
    probs, counts = [PROB_INIT] * n_ctx, [0] * n_ctx
    dec = _Decoder(bytes(data))
    out = np.zeros(shape, np.uint8)
    rows = [[[0] * width for _ in range(height)] for _ in range(n_planes)]
    for k in range(n_planes):
        base = CONTEXTS_PER_GROUP_BIT * (k % group)
        above = rows[k - 1] if k % group else None
        plane = rows[k]
        for y in range(height):
            row, prev = plane[y], plane[y - 1] if y else None
            for x in range(width):
                c = base
                if x:
                    c += row[x - 1]
                if prev is not None:
                    c += 2 * prev[x] + (4 * prev[x + 1] if x + 1 < width else 0)
                if above is not None:
                    c += 8 * above[y][x]
                row[x] = dec.decode(probs, counts, c)
                if dec.corrupt:
                    return out, dec.pos, True
    if n_planes and height and width:
        out[...] = np.asarray(rows, np.uint8)
    return out, dec.pos, False
