# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Cython kernels of the adaptive binary arithmetic coder (spec: edge_sdk/codec/arith_ref.py).

Integer-only (uint32/uint64 state, no floating point anywhere), so every machine
writes and reads the same bytes.  The Python-level functions re-check shapes and
limits before any pointer is used (the wrapper edge_sdk.codec.arith checks first);
the loops run with the GIL released and never read or write outside the buffers
whose lengths they are given: the decoder reads zeros past the end of its input
and the encoder refuses to write past its output capacity.
"""

import numpy as np

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

cdef enum:
    PROB_BITS = 15
    PROB_ONE = 1 << 15
    PROB_INIT = 1 << 14
    MAX_SHIFT = 7
    COUNT_MAX = 255
    CTX_PER_BIT = 16
    MAX_GROUP = 16
    N_CTX_MAX = 256  # CTX_PER_BIT * MAX_GROUP

cdef uint32_t TOP = 1u << 24
MAX_SYMBOLS = 1 << 30  # hard ceiling of one call; the wrapper enforces a far lower one

# Adaptation shift by the number of bits a context has seen: min(1 + floor(log2(n + 1)), 7).
cdef uint8_t SHIFT_TABLE[256]


cdef void _init_shift_table() noexcept:
    cdef int n, s
    for n in range(COUNT_MAX + 1):
        s = 0
        while (n + 1) >> s:
            s += 1
        SHIFT_TABLE[n] = s if s < MAX_SHIFT else MAX_SHIFT


_init_shift_table()


cdef struct Model:
    uint16_t prob[N_CTX_MAX]   # P(bit == 0) in units of 2**-15, always 1..32767
    uint8_t count[N_CTX_MAX]   # bits seen, saturating


cdef struct Encoder:
    uint64_t low
    uint32_t rng
    uint8_t cache
    uint64_t pending
    uint8_t *out
    Py_ssize_t pos
    Py_ssize_t cap
    int skip_first
    int overflow


cdef struct Decoder:
    uint32_t code
    uint32_t rng
    const uint8_t *buf
    Py_ssize_t n
    Py_ssize_t pos
    int corrupt


cdef inline void _model_init(Model *m) noexcept nogil:
    cdef int i
    for i in range(N_CTX_MAX):
        m.prob[i] = PROB_INIT
        m.count[i] = 0


cdef inline void _adapt(Model *m, int ctx, int bit) noexcept nogil:
    cdef uint32_t p = m.prob[ctx]
    cdef int s = SHIFT_TABLE[m.count[ctx]]
    if bit:
        p -= p >> s
    else:
        p += (PROB_ONE - p) >> s
    m.prob[ctx] = <uint16_t>p
    if m.count[ctx] < COUNT_MAX:
        m.count[ctx] += 1


cdef inline void _emit(Encoder *e, uint8_t byte) noexcept nogil:
    if e.skip_first:  # the leading byte of this coder is always 0: not written
        e.skip_first = 0
        return
    if e.pos >= e.cap:
        e.overflow = 1
        return
    e.out[e.pos] = byte
    e.pos += 1


cdef inline void _shift_low(Encoder *e) noexcept nogil:
    cdef uint8_t carry, byte
    if e.low < <uint64_t>0xFF000000u or e.low > <uint64_t>0xFFFFFFFFu:
        carry = <uint8_t>(e.low >> 32)
        byte = e.cache
        while e.pending:
            _emit(e, <uint8_t>(byte + carry))
            byte = 0xFF
            e.pending -= 1
        e.cache = <uint8_t>(e.low >> 24)
    e.pending += 1
    e.low = (e.low & 0x00FFFFFFu) << 8


cdef inline void _encode_bit(Encoder *e, Model *m, int ctx, int bit) noexcept nogil:
    cdef uint32_t bound = (e.rng >> PROB_BITS) * m.prob[ctx]
    if bit:
        e.low += bound
        e.rng -= bound
    else:
        e.rng = bound
    _adapt(m, ctx, bit)
    while e.rng < TOP:
        e.rng <<= 8
        _shift_low(e)


cdef void _finish(Encoder *e) noexcept nogil:
    # The value in the final interval with the most trailing zero bits, then 5 shifts.
    cdef uint64_t hi = e.low + e.rng - 1, mask, value
    cdef int k, i
    for k in range(32, -1, -1):
        mask = ((<uint64_t>1) << k) - 1
        value = (e.low + mask) & ~mask
        if value <= hi:
            e.low = value
            break
    for i in range(5):
        _shift_low(e)
    while e.pos > 0 and e.out[e.pos - 1] == 0:  # the decoder reads zeros past the end
        e.pos -= 1


cdef inline uint8_t _next(Decoder *d) noexcept nogil:
    cdef uint8_t byte = 0
    if d.pos < d.n:
        byte = d.buf[d.pos]
    d.pos += 1
    return byte


cdef inline int _decode_bit(Decoder *d, Model *m, int ctx) noexcept nogil:
    cdef uint32_t bound
    cdef int bit
    if d.code >= d.rng:  # impossible in a stream this coder wrote
        d.corrupt = 1
    bound = (d.rng >> PROB_BITS) * m.prob[ctx]
    if d.code < bound:
        d.rng = bound
        bit = 0
    else:
        d.code -= bound
        d.rng -= bound
        bit = 1
    _adapt(m, ctx, bit)
    while d.rng < TOP:
        d.rng <<= 8
        d.code = (d.code << 8) | _next(d)
    return bit


cdef inline int _context(const uint8_t *bits, Py_ssize_t i, int sig, Py_ssize_t y, Py_ssize_t x,
                         Py_ssize_t plane, Py_ssize_t w) noexcept nogil:
    """Context model 1 of bit ``i`` = (k, y, x), sig = k % group: 16 sig + W + 2 N + 4 NE + 8 U (arith_ref.py)."""
    cdef int c = CTX_PER_BIT * sig
    if x > 0:
        c += bits[i - 1]
    if y > 0:
        c += 2 * bits[i - w]
        if x + 1 < w:
            c += 4 * bits[i - w + 1]
    if sig > 0:
        c += 8 * bits[i - plane]
    return c


cdef Py_ssize_t _encode_planes(const uint8_t *bits, Py_ssize_t P, Py_ssize_t H, Py_ssize_t W, int group,
                               uint8_t *out, Py_ssize_t cap) noexcept nogil:
    """Code normalized 0/1 bits; returns the stream length or -1 if ``cap`` was too small."""
    cdef Model m
    cdef Encoder e
    cdef Py_ssize_t k, y, x, i = 0
    cdef int sig
    _model_init(&m)
    e.low = 0
    e.rng = 0xFFFFFFFFu
    e.cache = 0
    e.pending = 1
    e.out = out
    e.pos = 0
    e.cap = cap
    e.skip_first = 1
    e.overflow = 0
    for k in range(P):
        sig = <int>(k % group)
        for y in range(H):
            for x in range(W):
                _encode_bit(&e, &m, _context(bits, i, sig, y, x, H * W, W), bits[i])
                i += 1
    _finish(&e)
    return -1 if e.overflow else e.pos


cdef int _decode_planes(const uint8_t *buf, Py_ssize_t n, Py_ssize_t P, Py_ssize_t H, Py_ssize_t W, int group,
                        uint8_t *bits, Py_ssize_t *consumed) noexcept nogil:
    """Decode P*H*W bits into ``bits``; returns 1 if the stream is corrupt (then stops), else 0."""
    cdef Model m
    cdef Decoder d
    cdef Py_ssize_t k, y, x, i = 0
    cdef int j, sig
    _model_init(&m)
    d.buf = buf
    d.n = n
    d.pos = 0
    d.rng = 0xFFFFFFFFu
    d.code = 0
    d.corrupt = 0
    for j in range(4):
        d.code = (d.code << 8) | _next(&d)
    for k in range(P):
        sig = <int>(k % group)
        for y in range(H):
            for x in range(W):
                bits[i] = <uint8_t>_decode_bit(&d, &m, _context(bits, i, sig, y, x, H * W, W))
                i += 1
                if d.corrupt:
                    consumed[0] = d.pos
                    return 1
    consumed[0] = d.pos
    return 0


def _check_geometry(Py_ssize_t P, Py_ssize_t H, Py_ssize_t W, int group):
    if not 1 <= group <= MAX_GROUP:
        raise ValueError(f"group must be 1..{MAX_GROUP}, found {group}")
    if P < 0 or H < 0 or W < 0 or P % group:
        raise ValueError(f"planes shape ({P}, {H}, {W}) invalid for group {group}")
    total = int(P) * int(H) * int(W)  # Python ints: the C product could overflow on hostile sizes
    if total > MAX_SYMBOLS:
        raise ValueError(f"at most {MAX_SYMBOLS} bits per call, found {total}")


def encode_planes(const uint8_t[:, :, ::1] planes, int group):
    """0/1 uint8 planes (P, H, W), C-contiguous -> bytes (see arith_ref.encode_planes)."""
    cdef Py_ssize_t P = planes.shape[0], H = planes.shape[1], W = planes.shape[2]
    _check_geometry(P, H, W, group)
    cdef Py_ssize_t total = P * H * W
    if total == 0:
        return b""
    # normalize to 0/1 so that the contexts stay in range whatever the caller passed
    bits_arr = (np.asarray(planes) != 0).astype(np.uint8)
    cdef const uint8_t[::1] bits = bits_arr.reshape(-1)
    cdef Py_ssize_t cap = 2 * total + 16  # > 15.01 bits per bit, the worst case of a 15-bit model
    out_arr = np.empty(cap, np.uint8)
    cdef uint8_t[::1] out = out_arr
    cdef Py_ssize_t length
    with nogil:
        length = _encode_planes(&bits[0], P, H, W, group, &out[0], cap)
    if length < 0:
        raise RuntimeError("arithmetic encoder output overflow (a bug: the bound is a worst case)")
    return out_arr[:length].tobytes()


def decode_planes(const uint8_t[::1] data, Py_ssize_t P, Py_ssize_t H, Py_ssize_t W, int group):
    """bytes -> (planes uint8 (P, H, W), bytes consumed, corrupt flag) (see arith_ref.decode_planes)."""
    _check_geometry(P, H, W, group)
    out_arr = np.zeros((P, H, W), np.uint8)
    cdef Py_ssize_t n = data.shape[0], consumed = 0
    cdef int status = 0
    cdef const uint8_t *src = NULL
    cdef uint8_t[::1] bits = out_arr.reshape(-1)
    if P * H * W == 0:
        return out_arr, 4, False
    if n > 0:
        src = &data[0]
    with nogil:
        status = _decode_planes(src, n, P, H, W, group, &bits[0], &consumed)
    return out_arr, consumed, bool(status)
