# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Cython kernels of the emulator backend (the C loops live in _kernels.h).

Every function validates its arguments (types, dtypes, shapes, strides, index
ranges) before a pointer is touched, raises ValueError on a violation, and runs
its loops with the GIL released.  No module state is mutated after import, so
any number of threads may call these concurrently on their own arrays.
"""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int16_t, int32_t, uint8_t

cnp.import_array()
ek_init()


cdef extern from "_kernels.h" nogil:
    int EK_OK
    int EK_ERR_NOMEM
    int EK_ERR_RANGE
    int EK_ISA_COUNT
    const char *ek_isa_names[]

    ctypedef struct ek_conv_params:
        int in_rows, in_w, in_c
        int pad_top, pad_bottom, pad_left, pad_right
        int k, s
        int out_rows, out_w, chn
        int ch0
        int gi, go
        int in_ch0
        int depthwise
        int kp
        int ldw
        int shift, floor_mode, act_max, raw
        int code_max
        int isa
        int chunk_bytes

    void ek_init()
    int ek_isa_supported(int isa)
    int ek_best_isa()
    int ek_conv_tile(const ek_conv_params *prm, const uint8_t *band, const int16_t *W, const int16_t *Wp,
                     const int32_t *bias, void *out)
    int ek_has_packed_gemm(int isa)
    int EK_PK_BLOCK
    void ek_maxpool(const uint8_t *band, int out_rows, int w, int c, uint8_t *out)
    void ek_add(const uint8_t *a, const uint8_t *b, size_t n, int ma, int mb, int shift, int floor_mode,
                int act_max, int raw, uint8_t *out_u8, int32_t *out_i32)
    void ek_requant_flat(const int32_t *acc, size_t n, int shift, int floor_mode, int act_max, int raw,
                         uint8_t *out_u8, int32_t *out_i32)


KP_ALIGN = 32  # GEMM weight rows are zero-padded to a multiple of this many int16
MAX_SHIFT = 30
CHUNK_BYTES = 96 * 1024  # im2col working set per step (fits L2 with the weight block)
_DIM_MAX = 1 << 20


def isa_names():
    """All kernel variants compiled into this build, best last."""
    return [ek_isa_names[i].decode() for i in range(EK_ISA_COUNT)]


def available_isas():
    """The kernel variants this CPU can run, best last ("default" is the portable C build)."""
    return [ek_isa_names[i].decode() for i in range(EK_ISA_COUNT) if ek_isa_supported(i)]


def best_isa():
    return ek_isa_names[ek_best_isa()].decode()


PACK_BLOCK = EK_PK_BLOCK  # output channels per block of packed GEMM weights


def has_packed_gemm(int isa):
    """Whether kernel variant ``isa`` (an index) runs GEMMs on packed weights (see ``conv_tile``)."""
    _need(0 <= isa < EK_ISA_COUNT, f"kernel variant {isa} outside 0..{EK_ISA_COUNT - 1}")
    return bool(ek_has_packed_gemm(isa))


cpdef int isa_index(name) except -1:
    """Index of a kernel variant by name ("auto" = the best this CPU runs)."""
    if name is None or name == "auto":
        return ek_best_isa()
    names = isa_names()
    if name not in names:
        raise ValueError(f"unknown kernel variant {name!r}; compiled: {names}")
    i = names.index(name)
    if not ek_isa_supported(i):
        raise ValueError(f"kernel variant {name!r} is not supported by this CPU (available: {available_isas()})")
    return i


cdef inline void _need(bint ok, str message) except *:
    if not ok:
        raise ValueError(message)


cdef inline void _check_array(object arr, str name, object dtype, int ndim) except *:
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, found {type(arr).__name__}")
    if arr.dtype != dtype or arr.ndim != ndim:
        raise ValueError(f"{name} must be {np.dtype(dtype).name} with {ndim} dimensions, found {arr.dtype} {arr.shape}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    for d in arr.shape:
        _need(d < _DIM_MAX, f"{name} dimension {d} too large")


def conv_tile(band, int pad_top, int pad_bottom, int pad_left, int pad_right, int kernel, int stride,
              int out_rows, int out_w, int ch0, int chn, int gi, int go, int in_ch0, weights, bias,
              int shift, bint floor_mode, int act_max, bint raw, int code_max, int isa=-1,
              int chunk_bytes=CHUNK_BYTES, packed=None):
    """One conv tile: uint8 band (rows, W, C) -> uint8 codes or int32 raw (out_rows, out_w, chn).

    Output channel ch0 + j (absolute) belongs to conv group (ch0 + j) // go and reads band channels
    ((ch0 + j) // go) * gi - in_ch0 ... + gi.  ``weights``: int16 (O, kp) GEMM rows ordered (ky, kx, i) and
    zero-padded to kp (a multiple of 32), or, for depthwise (gi == go == 1), int16 (k*k, O).
    ``bias``: int32 (O,).  ``packed``: None, or the GEMM weights repacked for the AVX2 / AVX-512 kernels,
    int16 (ceil(O / PACK_BLOCK), kp * PACK_BLOCK) laid out [block][kp/2][PACK_BLOCK][2]
    (emulator.pack_gemm_weights); used where the variant has a packed GEMM, ignored otherwise.  The result is the same bit for bit.
    Raises ValueError on any inconsistency and OverflowError for codes > code_max.
    """
    _check_array(band, "band", np.uint8, 3)
    _check_array(bias, "bias", np.int32, 1)
    _check_array(weights, "weights", np.int16, 2)
    cdef int in_rows = band.shape[0], in_w = band.shape[1], in_c = band.shape[2]
    cdef int hp, wp, o_count, c_first, c_last, depthwise
    _need(kernel in (1, 3) and stride in (1, 2), f"kernel {kernel} / stride {stride} not in (1, 3) / (1, 2)")
    _need(min(pad_top, pad_bottom, pad_left, pad_right) >= 0 and max(pad_top, pad_bottom, pad_left, pad_right) <= 2,
          "pads must be 0..2")
    _need(in_w >= 1 and in_c >= 1 and in_rows >= 0, f"empty band {band.shape}")
    _need(out_rows >= 1 and out_w >= 1 and chn >= 1, "empty output block")
    hp = pad_top + in_rows + pad_bottom
    wp = pad_left + in_w + pad_right
    _need((out_rows - 1) * stride + kernel <= hp, f"{out_rows} output rows need more than the band's {hp} rows")
    _need((out_w - 1) * stride + kernel <= wp, f"{out_w} output columns need more than the band's {wp} columns")
    _need(gi >= 1 and go >= 1 and ch0 >= 0 and in_ch0 >= 0, "bad group geometry")
    c_first = (ch0 // go) * gi - in_ch0
    c_last = ((ch0 + chn - 1) // go) * gi - in_ch0
    _need(c_first >= 0 and c_last + gi <= in_c, f"groups read channels {c_first}..{c_last + gi} of a {in_c}-channel band")
    o_count = bias.shape[0]
    _need(ch0 + chn <= o_count, f"channels {ch0}+{chn} exceed the layer's {o_count}")
    depthwise = gi == 1 and go == 1
    if depthwise:
        _need(weights.shape[0] == kernel * kernel and weights.shape[1] == o_count,
              f"depthwise weights must be (k*k, O) = ({kernel * kernel}, {o_count}), found {weights.shape}")
    else:
        _need(weights.shape[0] == o_count and weights.shape[1] % KP_ALIGN == 0
              and weights.shape[1] >= kernel * kernel * gi and weights.shape[1] > 0,
              f"GEMM weights must be (O, kp>=k*k*gi, kp%32==0), found {weights.shape}")
    if packed is not None:
        _check_array(packed, "packed", np.int16, 2)
        _need(not depthwise and packed.shape[0] == (o_count + EK_PK_BLOCK - 1) // EK_PK_BLOCK
              and packed.shape[1] == weights.shape[1] * EK_PK_BLOCK,
              f"packed weights must be (ceil(O/{EK_PK_BLOCK}), kp*{EK_PK_BLOCK}) = "
              f"({(o_count + EK_PK_BLOCK - 1) // EK_PK_BLOCK}, {weights.shape[1] * EK_PK_BLOCK}) "
              f"for GEMM weights {weights.shape}, found {packed.shape}")
    _need(0 <= shift <= MAX_SHIFT, f"shift {shift} outside 0..{MAX_SHIFT}")
    _need(0 <= act_max <= 255 and 0 <= code_max <= 255, "act_max / code_max outside 0..255")
    if isa < 0:
        isa = ek_best_isa()
    _need(isa < EK_ISA_COUNT and ek_isa_supported(isa), f"kernel variant {isa} not supported here")
    _need(chunk_bytes >= 64, "chunk_bytes too small")
    # the padded int16 copy, the im2col block and the output must stay addressable
    _need(hp * <long long>wp * in_c < (1LL << 31) and out_rows * <long long>out_w * chn < (1LL << 31)
          and out_rows * <long long>out_w < (1LL << 31), "tile too large")

    out = np.empty((out_rows, out_w, chn), dtype=np.int32 if raw else np.uint8)
    cdef ek_conv_params prm
    prm.in_rows = in_rows
    prm.in_w = in_w
    prm.in_c = in_c
    prm.pad_top = pad_top
    prm.pad_bottom = pad_bottom
    prm.pad_left = pad_left
    prm.pad_right = pad_right
    prm.k = kernel
    prm.s = stride
    prm.out_rows = out_rows
    prm.out_w = out_w
    prm.chn = chn
    prm.ch0 = ch0
    prm.gi = gi
    prm.go = go
    prm.in_ch0 = in_ch0
    prm.depthwise = depthwise
    prm.kp = 0 if depthwise else weights.shape[1]
    prm.ldw = weights.shape[1] if depthwise else 0
    prm.shift = shift
    prm.floor_mode = floor_mode
    prm.act_max = act_max
    prm.raw = raw
    prm.code_max = code_max
    prm.isa = isa
    prm.chunk_bytes = chunk_bytes

    cdef const uint8_t[:, :, ::1] b_v = band
    cdef const int16_t[:, ::1] w_v = weights
    cdef const int32_t[::1] bias_v = bias
    cdef const int16_t *w_ptr
    cdef const int16_t *wp_ptr = NULL
    cdef const int16_t[:, ::1] wp_v
    cdef const uint8_t *b_ptr = &b_v[0, 0, 0] if in_rows > 0 else NULL
    cdef void *o_ptr = cnp.PyArray_DATA(out)
    cdef int rc
    cdef uint8_t zero_band = 0
    if depthwise:
        w_ptr = &w_v[0, ch0]
    else:
        w_ptr = &w_v[ch0, 0]
    if b_ptr == NULL:
        b_ptr = &zero_band
    if packed is not None:  # the C dispatch falls back to the plain GEMM where the variant has no packed one
        wp_v = packed
        wp_ptr = &wp_v[0, 0]
    with nogil:
        rc = ek_conv_tile(&prm, b_ptr, w_ptr, wp_ptr, &bias_v[ch0], o_ptr)
    if rc == EK_ERR_NOMEM:
        raise MemoryError("conv tile scratch")
    if rc == EK_ERR_RANGE:
        raise OverflowError(f"band holds codes above the layer's input maximum {code_max}")
    return out


def maxpool(band):
    """2x2/2 max-pool of uint8 codes (rows, W, C) -> (rows // 2, W // 2, C) (odd last row/column dropped)."""
    _check_array(band, "band", np.uint8, 3)
    cdef int rows = band.shape[0] // 2, w = band.shape[1], c = band.shape[2]
    out = np.empty((rows, w // 2, c), dtype=np.uint8)
    if out.size == 0:
        return out
    cdef const uint8_t[:, :, ::1] b_v = band
    cdef uint8_t[:, :, ::1] o_v = out
    with nogil:
        ek_maxpool(&b_v[0, 0, 0], rows, w, c, &o_v[0, 0, 0])
    return out


def add(a, b, int ma, int mb, int shift, bint floor_mode, int act_max, bint raw):
    """acc = a*ma + b*mb on uint8 codes of equal shape, then the requantizer (uint8 act / int32 raw)."""
    _check_array(a, "a", np.uint8, 3)
    _check_array(b, "b", np.uint8, 3)
    _need(a.shape == b.shape, f"add operands differ in shape: {a.shape} vs {b.shape}")
    _need(abs(ma) < (1 << 16) and abs(mb) < (1 << 16), "multipliers must fit 16 signed bits")
    _need(0 <= shift <= MAX_SHIFT and 0 <= act_max <= 255, "shift / act_max out of range")
    out = np.empty(a.shape, dtype=np.int32 if raw else np.uint8)
    cdef size_t n = a.size
    if n == 0:
        return out
    cdef const uint8_t[:, :, ::1] a_v = a
    cdef const uint8_t[:, :, ::1] b_v = b
    cdef uint8_t *o8 = NULL
    cdef int32_t *o32 = NULL
    if raw:
        o32 = <int32_t *>cnp.PyArray_DATA(out)
    else:
        o8 = <uint8_t *>cnp.PyArray_DATA(out)
    with nogil:
        ek_add(&a_v[0, 0, 0], &b_v[0, 0, 0], n, ma, mb, shift, floor_mode, act_max, raw, o8, o32)
    return out


def requantize(acc, int shift, bint floor_mode, int act_max, bint raw):
    """The requantizer alone on int32 accumulators (any shape): uint8 codes or int32 raw."""
    if not isinstance(acc, np.ndarray) or acc.dtype != np.int32:
        raise ValueError(f"acc must be an int32 numpy array, found {getattr(acc, 'dtype', type(acc).__name__)}")
    _need(0 <= shift <= MAX_SHIFT and 0 <= act_max <= 255, "shift / act_max out of range")
    flat = np.ascontiguousarray(acc).reshape(-1)
    out = np.empty(flat.shape[0], dtype=np.int32 if raw else np.uint8)
    cdef size_t n = flat.shape[0]
    if n == 0:
        return out.reshape(acc.shape)
    cdef const int32_t[::1] a_v = flat
    cdef uint8_t *o8 = NULL
    cdef int32_t *o32 = NULL
    if raw:
        o32 = <int32_t *>cnp.PyArray_DATA(out)
    else:
        o8 = <uint8_t *>cnp.PyArray_DATA(out)
    with nogil:
        ek_requant_flat(&a_v[0], n, shift, floor_mode, act_max, raw, o8, o32)
    return out.reshape(acc.shape)
